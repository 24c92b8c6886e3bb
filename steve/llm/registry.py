"""Choosing and making a provider by name.

The name comes from ``--llm NAME``, else ``STEVE_LLM``, else the repository
config's ``[llm] provider``, else :data:`DEFAULT_PROVIDER` (``scripted``:
offline, free, never a surprise bill).  The CLI reads the flag and the
environment and passes the values in; nothing here reads ``os.environ``.

Names: ``anthropic``, ``openai``, ``scripted``, ``replay`` and
``replay:PROVIDER``.  Replay answers requests recorded from another
provider, and the provider is part of a request (and of its id), so a
replayed request must name the recorded one: ``replay:anthropic``, or plain
``replay`` for the config's provider (else ``scripted``).
:attr:`Choice.target` is that name, the one stages write into requests.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from steve.config import LlmSettings
from steve.errors import BadLlmConfig, NoApiKey, UnknownProvider
from steve.llm.provider import Provider
from steve.repo import Repo

PROVIDERS = ("anthropic", "openai", "scripted", "replay")
LIVE = ("anthropic", "openai")
DEFAULT_PROVIDER = "scripted"
DEFAULT_MODELS = {
    "anthropic": "claude-sonnet-4-5",
    "openai": "gpt-4o-mini",
    "scripted": "scripted",
}
KEY_VARIABLES = {"anthropic": "ANTHROPIC_API_KEY", "openai": "OPENAI_API_KEY"}
BASE_URL_VARIABLES = {"anthropic": "ANTHROPIC_BASE_URL", "openai": "OPENAI_BASE_URL"}


@dataclass(frozen=True, slots=True)
class Choice:
    """Which provider answers (``name``), which one requests name (``target``), the
    model, the base URL and fixture from the config, and where the name came from."""

    name: str
    target: str
    model: str
    base_url: str | None
    fixture: str | None
    source: str

    @property
    def live(self) -> bool:
        return self.name in LIVE


def _parse(name: str, where: str) -> tuple[str, str | None]:
    base, sep, target = name.strip().partition(":")
    if base not in PROVIDERS or (sep and (base != "replay" or target not in DEFAULT_MODELS)):
        raise UnknownProvider(name, where)
    return base, (target or None)


def choose(
    *,
    flag: str | None = None,
    env: str | None = None,
    settings: LlmSettings | None = None,
    model: str | None = None,
    env_model: str | None = None,
) -> Choice:
    """The provider to use (see the module doc for the order)."""
    config_name = settings.provider if settings else None
    for value, source in ((flag, "--llm"), (env, "STEVE_LLM"), (config_name, "[llm] provider")):
        if value:
            name, target = _parse(value, source)
            break
    else:
        name, target, source = DEFAULT_PROVIDER, None, "default"
    if name == "replay" and target is None:
        configured = _parse(config_name, "[llm] provider")[0] if config_name else None
        target = configured if configured in DEFAULT_MODELS else DEFAULT_PROVIDER
    target = target or name
    same = settings is not None and settings.provider in (None, name, f"replay:{target}", target)
    chosen_model = (
        model
        or env_model
        or (settings.model if same and settings else None)
        or DEFAULT_MODELS[target]
    )
    return Choice(
        name,
        target,
        chosen_model,
        settings.base_url if same and settings else None,
        settings.fixture if same and settings else None,
        source,
    )


def check_settings(settings: LlmSettings) -> None:
    """BadLlmConfig unless ``settings`` can be written as the ``[llm]`` section: a
    known provider, an http(s) base URL, one-line values."""
    if settings.provider:
        _parse(settings.provider, "[llm] provider")
    if settings.base_url is not None and not settings.base_url.startswith(("http://", "https://")):
        raise BadLlmConfig(f"base URL {settings.base_url!r} is not an http(s) URL")
    for key in ("provider", "model", "base_url", "fixture"):
        value = getattr(settings, key)
        if value is not None and (not value or any(ord(c) < 0x20 for c in value)):
            raise BadLlmConfig(f"[llm] {key} must be a non-empty one-line string")


def make_provider(
    choice: Choice,
    repo: Repo,
    *,
    api_key: str | None = None,
    base_url: str | None = None,
    fixture: Path | None = None,
    max_retries: int = 2,
    timeout: float = 120.0,
) -> Provider:
    """The provider ``choice`` names.  ``api_key`` is required for a live provider;
    ``base_url`` overrides the config's; ``fixture`` the scripted provider's answers
    (else the config's, else the fixture shipped with STEVE).  Imports the SDK of a
    live provider here, not before."""
    if choice.name == "replay":
        from steve.llm.replay import ReplayProvider

        return ReplayProvider(repo)
    if choice.name == "scripted":
        from steve.llm.scripted import ScriptedProvider

        path = fixture or (Path(choice.fixture) if choice.fixture else None)
        if path is not None and not path.is_absolute() and repo.root is not None:
            path = repo.root / path
        return ScriptedProvider.from_file(path) if path else ScriptedProvider.default()
    if not api_key:
        raise NoApiKey(choice.name, KEY_VARIABLES[choice.name])
    url = base_url or choice.base_url
    if url is not None and not url.startswith(("http://", "https://")):
        raise BadLlmConfig(f"base URL {url!r} is not an http(s) URL")
    if choice.name == "anthropic":
        from steve.llm.anthropic_provider import AnthropicProvider

        return AnthropicProvider(
            api_key=api_key, base_url=url, max_retries=max_retries, timeout=timeout
        )
    from steve.llm.openai_provider import OpenAIProvider

    return OpenAIProvider(api_key=api_key, base_url=url, max_retries=max_retries, timeout=timeout)
