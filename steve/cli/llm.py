"""Model commands: ``steve llm ask|log|show|use`` and ``steve budget show|set``.

Each is one call into :mod:`steve.llm`; the provider SDKs are imported only
when a live provider is chosen (:mod:`steve.cli.llmopts`).
"""

from __future__ import annotations

import json
import sys

import click

from steve.cli.app import INT64_MAX, Context, cli, pass_state
from steve.cli.llmopts import llm_options, open_llm
from steve.errors import SteveError


@cli.group("llm")
def llm() -> None:
    """Ask a model, list the request log, choose the provider."""


@llm.command("ask")
@llm_options
@click.argument("prompt")
@click.option("--system", default="", help="System prompt.")
@click.option(
    "--max-tokens",
    type=click.IntRange(1, 1 << 24),
    default=1024,
    show_default=True,
    help="Most tokens the answer may use.",
)
@click.option("--run", "run_id", default=None, help="Charge this run's budget.")
@click.option("--stage", default=None, help="Charge this stage's budget (with --run).")
@click.option("--node", default=None, help="Charge this plan node's budget (with --run).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of the text.")
@pass_state
def llm_ask(
    state: Context,
    llm_name: str | None,
    llm_model: str | None,
    prompt: str,
    system: str,
    max_tokens: int,
    run_id: str | None,
    stage: str | None,
    node: str | None,
    as_json: bool,
) -> None:
    """Ask the model PROMPT ('-' reads standard input); the answer streams to stdout.

    The exchange is redacted, budgeted and recorded; its ids go to standard
    error (or into the --json object) once they are committed."""
    from steve.llm.types import Message

    text = sys.stdin.read() if prompt == "-" else prompt
    model = open_llm(state, llm_name, llm_model)
    request = model.request([Message.user(text)], system=system, max_tokens=max_tokens)
    ex = model.session.complete(
        request, run_id=run_id, stage=stage, node=node, on_text=None if as_json else model.echo
    )
    if as_json:
        click.echo(json.dumps(_exchange_json(ex), sort_keys=True))
        return
    if ex.response.text and not ex.response.text.endswith("\n"):
        click.echo("")
    u = ex.response.usage
    click.echo(
        f"request {ex.request_oid.hex}\nresponse {ex.response_oid.hex}\n"
        f"{ex.provider} {ex.response.model} in={u.input_tokens} out={u.output_tokens}"
        + (" (replayed)" if ex.replayed else ""),
        err=True,
    )


def _exchange_json(ex: object) -> dict[str, object]:
    from steve.llm.record import Exchange

    assert isinstance(ex, Exchange)
    r = ex.response
    return {
        "request": ex.request_oid.hex,
        "response": ex.response_oid.hex,
        "exchange": ex.exchange_oid.hex,
        "provider": ex.request.provider,
        "model": ex.request.model,
        "response_id": r.id,
        "text": r.text,
        "tool_uses": [{"id": t.id, "name": t.name, "input": t.input} for t in r.tool_uses],
        "stop_reason": r.stop_reason,
        "input_tokens": r.usage.input_tokens,
        "output_tokens": r.usage.output_tokens,
        "replayed": ex.replayed,
    }


@llm.command("log")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per exchange.")
@pass_state
def llm_log(state: Context, as_json: bool) -> None:
    """List the recorded exchanges (the request log), by request id."""
    from steve.llm import record

    repo = state.repo()
    for _, tree in record.iter_exchanges(repo):
        ex = record.load(repo, tree, "")
        if as_json:
            click.echo(json.dumps(_exchange_json(ex), sort_keys=True))
            continue
        first = ex.request.messages[-1].text.strip().splitlines() or [""]
        u = ex.response.usage
        click.echo(
            f"{ex.request_oid.hex} {ex.response_oid.hex} {ex.request.provider} "
            f"{ex.request.model} in={u.input_tokens} out={u.output_tokens} {first[0][:60]}"
        )


@llm.command("show")
@click.argument("rev")
@pass_state
def llm_show(state: Context, rev: str) -> None:
    """Print an exchange as JSON: REV names its tree, its request or its response."""
    from steve.errors import WrongObjectType
    from steve.llm import record
    from steve.llm.types import Request, Response
    from steve.objects.model import ObjectType

    repo = state.repo()
    oid = repo.rev_parse(rev)
    kind = repo.object_type(oid)
    out: dict[str, object]
    if kind is ObjectType.TREE:
        ex = record.load(repo, oid, "")
        out = {
            "exchange": oid.hex,
            "request": ex.request.to_value(),
            "response": ex.response.to_value(),
        }
    elif kind is ObjectType.BLOB and (found := record.find(repo, oid, "")) is not None:
        out = {
            "exchange": found.exchange_oid.hex,
            "request": found.request.to_value(),
            "response": found.response.to_value(),
        }
    elif kind is ObjectType.BLOB:
        data = repo.read_blob(oid)
        try:
            out = {"response": Response.from_canonical(data).to_value()}
        except SteveError:
            try:
                out = {"request": Request.from_canonical(data).to_value()}
            except SteveError:
                raise WrongObjectType(oid.hex, "LLM exchange", "blob") from None
    else:
        raise WrongObjectType(oid.hex, "LLM exchange", kind.value)
    click.echo(json.dumps(out, indent=2, sort_keys=True, ensure_ascii=False))


@llm.command("use")
@click.argument("name", required=False)
@click.option("--model", default=None, help="Model id to record in [llm] model.")
@click.option("--base-url", default=None, help="Server URL to record in [llm] base_url.")
@click.option("--fixture", default=None, help="Scripted answers file for [llm] fixture.")
@click.option("--clear", is_flag=True, help="Remove the [llm] section.")
@pass_state
def llm_use(
    state: Context,
    name: str | None,
    model: str | None,
    base_url: str | None,
    fixture: str | None,
    clear: bool,
) -> None:
    """Record the default provider NAME (and model, base URL) in .steve/config.

    Without arguments, print the provider a command would use and why.  Keys
    are never written: they come from the environment."""
    from steve.cli.llmopts import choose
    from steve.config import LlmSettings
    from steve.llm.registry import check_settings
    from steve.llm.registry import choose as check_choice
    from steve.repo import CONFIG_NAME, STEVE_DIR, Repo

    root = state.root()
    if not (name or model or base_url or fixture or clear):
        c = choose(state, None, None)
        click.echo(f"{c.name} (requests name {c.target}) model={c.model} from {c.source}")
        return
    settings = None if clear else LlmSettings(name, model, base_url, fixture)
    if settings is not None:
        check_choice(settings=settings)  # an unknown name is refused before writing
        check_settings(settings)
    path = root / STEVE_DIR / CONFIG_NAME
    Repo.read_config(root).with_llm(settings).write(path)


# --- budgets ---------------------------------------------------------------------------


@cli.group("budget")
def budget() -> None:
    """Token budgets per project, run, stage and plan node."""


@budget.command("show")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@pass_state
def budget_show(state: Context, as_json: bool) -> None:
    """Print every limit, then every usage total (tokens charged so far)."""
    from steve.llm.budget import Budgets

    budgets = Budgets(state.repo())
    limits = budgets.limits()
    for scope, tokens in sorted(limits.items()):
        if as_json:
            click.echo(json.dumps({"kind": "limit", "scope": scope, "tokens": tokens}))
        else:
            click.echo(f"limit  {scope:<40} {tokens}")
    for key, used in budgets.iter_usage():
        if as_json:
            click.echo(json.dumps({"kind": "used", "scope": key, "tokens": used}))
        else:
            click.echo(f"used   {key:<40} {used}")


@budget.command("set")
@click.argument("scope")
@click.argument("tokens")
@pass_state
def budget_set(state: Context, scope: str, tokens: str) -> None:
    """Set the limit of SCOPE to TOKENS ('none' removes it)."""
    from steve.errors import InvalidInput
    from steve.llm.budget import Budgets

    value: int | None
    if tokens.lower() == "none":
        value = None
    else:
        try:
            value = int(tokens, 10)
        except ValueError:
            raise InvalidInput("invalid token budget", f"{tokens!r} is not a number") from None
        if not 0 <= value <= INT64_MAX:
            raise InvalidInput("invalid token budget", f"{tokens} is outside 0..{INT64_MAX}")
    Budgets(state.repo()).set_limit(scope, value)
