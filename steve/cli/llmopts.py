"""The model options every command that asks a model shares, and their resolution.

    @cli.command("design")
    @llm_options
    @pass_state
    def design(state, llm_name, llm_model, ...):
        llm = open_llm(state, llm_name, llm_model)
        ex = llm.session.complete(llm.request(...), on_text=llm.echo)

Environment read here (and only here): ``STEVE_LLM``, ``STEVE_LLM_MODEL``,
``STEVE_LLM_FALLBACK``, ``STEVE_LLM_FIXTURE``, ``ANTHROPIC_API_KEY``,
``ANTHROPIC_BASE_URL``, ``OPENAI_API_KEY``, ``OPENAI_BASE_URL``.  Keys are
passed to the SDK client and registered with the redactor; they are never
written anywhere.  The redactor also registers the vault's values (``steve
secret set``) and the values of environment
variables whose names end in ``_KEY``, ``_TOKEN``, ``_SECRET``, ``_PASSWORD``
or ``_PASSPHRASE`` (see docs/llm.md#redaction).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from steve.cli.app import Context
    from steve.llm.registry import Choice
    from steve.llm.session import LLMSession
    from steve.llm.types import Message, Request, Tool
    from steve.redact import Redactor

F = TypeVar("F", bound=Callable[..., Any])

SECRET_SUFFIXES = ("_KEY", "_TOKEN", "_SECRET", "_PASSWORD", "_PASSPHRASE")


def llm_options(f: F) -> F:
    """Add ``--llm NAME`` and ``--llm-model MODEL`` (parameters ``llm_name``, ``llm_model``)."""
    f = click.option(
        "--llm-model",
        "llm_model",
        metavar="MODEL",
        default=None,
        help="Model id (default: STEVE_LLM_MODEL, [llm] model, the provider's default).",
    )(f)
    f = click.option(
        "--llm",
        "llm_name",
        metavar="NAME",
        default=None,
        help="Model provider: anthropic, openai, scripted, replay[:PROVIDER] "
        "(default: STEVE_LLM, [llm] provider, scripted).",
    )(f)
    return f


def env_secrets(environ: Mapping[str, str]) -> dict[str, bytes]:
    """The values of secret-looking environment variables, by variable name, that the
    redaction pipeline can redact reliably (others are too short to matter)."""
    from steve.errors import WeakSecretValue
    from steve.redact import NAME_RE as NAME
    from steve.redact import check_secret

    found: dict[str, bytes] = {}
    for name, value in sorted(environ.items()):
        if not name.upper().endswith(SECRET_SUFFIXES) or not value or not NAME.fullmatch(name):
            continue
        raw = value.encode("utf-8", "surrogateescape")
        try:
            check_secret(name, raw, found)
        except WeakSecretValue:
            continue
        found[name] = raw
    return found


def cli_redactor(extra: Mapping[str, bytes] | None = None) -> Redactor:
    """STEVE's redactor with the environment's secrets and ``extra`` (the vault's
    values, ``steve secret set``) registered."""
    from steve.redact import Redactor

    secrets = env_secrets(os.environ)
    secrets.update(extra or {})
    return Redactor(secrets)


@dataclass
class OpenLlm:
    """What a command needs to ask a model: the session, and the provider and model
    names its requests carry (``provider`` is the recorded one under replay)."""

    session: LLMSession
    choice: Choice

    @property
    def provider(self) -> str:
        return self.choice.target

    @property
    def model(self) -> str:
        return self.choice.model

    def request(
        self,
        messages: Sequence[Message],
        *,
        system: str = "",
        tools: Sequence[Tool] = (),
        max_tokens: int = 4096,
        temperature_milli: int | None = None,
    ) -> Request:
        from steve.llm.types import Request

        return Request(
            self.provider,
            self.model,
            tuple(messages),
            system,
            tuple(tools),
            max_tokens=max_tokens,
            temperature_milli=temperature_milli,
        )

    @staticmethod
    def echo(text: str) -> None:
        """An ``on_text`` callback: the streamed text on standard output, at once."""
        out = sys.stdout
        out.write(text)
        out.flush()


def choose(state: Context, llm_name: str | None, llm_model: str | None) -> Choice:
    from steve.llm.registry import choose as choose_provider

    repo = state.repo()
    return choose_provider(
        flag=llm_name,
        env=os.environ.get("STEVE_LLM") or None,
        settings=repo.config.llm if repo.config else None,
        model=llm_model,
        env_model=os.environ.get("STEVE_LLM_MODEL") or None,
    )


def open_llm(
    state: Context,
    llm_name: str | None,
    llm_model: str | None,
    *,
    redactor: Redactor | None = None,
) -> OpenLlm:
    """The session for the provider chosen by ``--llm`` / ``STEVE_LLM`` / the config."""
    from steve.errors import BadLlmConfig
    from steve.llm.registry import BASE_URL_VARIABLES, KEY_VARIABLES, make_provider
    from steve.llm.session import LLMSession

    choice = choose(state, llm_name, llm_model)
    repo = state.repo()
    key = os.environ.get(KEY_VARIABLES[choice.name]) if choice.live else None
    base_url = os.environ.get(BASE_URL_VARIABLES[choice.name]) if choice.live else None
    fixture = os.environ.get("STEVE_LLM_FIXTURE") if choice.name == "scripted" else None
    fallback = os.environ.get("STEVE_LLM_FALLBACK") or "error"
    if fallback not in ("error", "recorded"):
        raise BadLlmConfig(f"STEVE_LLM_FALLBACK={fallback!r}: use error or recorded")
    provider = make_provider(
        choice,
        repo,
        api_key=key or None,
        base_url=base_url or None,
        fixture=Path(fixture) if fixture else None,
    )
    if redactor is None:
        vault = {r.name: r.data for r in repo.list_secrets() if r.kind == "value"}
        redactor = cli_redactor(vault)
    session = LLMSession(
        repo,
        provider,
        redactor=redactor,
        fallback="recorded" if fallback == "recorded" else "error",
    )
    return OpenLlm(session, choice)
