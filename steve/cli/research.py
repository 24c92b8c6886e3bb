"""``steve research``: scope, fetch, refresh, import, search (and FILE, as before).

Each subcommand is one call into :mod:`steve.research`; this module reads the
environment (``SOURCE_DATE_EPOCH``, ``STEVE_KILL_SWITCH``) and prints.
``steve research FILE`` (or ``-``) still freezes a hand-written research
manifest: a first argument that names no subcommand is handed to
``freeze-file``.  Other modules add subcommands with ``@research.command()``
and a line in :data:`SUBCOMMAND_MODULES`.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from steve.cli.app import Context, cli, frozen_time, pass_state, report
from steve.cli.porcelain import research_file

if TYPE_CHECKING:
    from steve.porcelain.hostaction import GateSettings
    from steve.repo import Repo
    from steve.research.fetch import FetchOutcome

SUBCOMMAND_MODULES: tuple[str, ...] = ()
"""Modules that register more ``steve research`` subcommands (imported with this one)."""

_JSON = click.option("--json", "as_json", is_flag=True, help="JSON output (docs/cli.md).")
_RUN = click.option("--run", "run", default=None, help="Run id, prefix or name (default: current).")
_QUESTION = click.option(
    "--question", "question", default=None, metavar="RQ-nnn",
    help="Use this question's source policy and budget (default: the scope's).",
)  # fmt: skip
_JOBS = click.option(
    "--jobs", "-j", type=click.IntRange(1, 64), default=8, show_default=True,
    help="Concurrent fetches.",
)  # fmt: skip


class ResearchGroup(click.Group):
    """A group whose first argument, when it names no subcommand, is a draft FILE for
    ``freeze-file`` (so ``steve research FILE`` keeps working)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        first = next((a for a in args if not a.startswith("-") or a == "-"), None)
        if (
            args
            and first is not None
            and first not in self.commands
            and not {"--help", "-h"} & set(args[: args.index(first)])
        ):
            args = ["freeze-file", *args]
        return super().parse_args(ctx, args)


@cli.group("research", cls=ResearchGroup)
def research() -> None:
    """RESEARCH: scope the questions, fetch and mirror sources, search.

    `steve research FILE` (or -) freezes FILE as the run's research manifest.
    """


research.add_command(research_file)


def _register_knowledge_side() -> None:
    from steve.cli.research_cite import register

    register(research)  # extract, summarize, freeze, show


_register_knowledge_side()


def _gate(repo: Repo) -> GateSettings:
    from steve.cli.gate import kill_env
    from steve.porcelain.hostaction import gate_settings

    return gate_settings(repo, kill_env=kill_env())


def _emit(obj: object) -> None:
    click.echo(json.dumps(obj, sort_keys=True))


# --- scope -------------------------------------------------------------------------------


@research.command("scope")
@click.option("--question", default=None, metavar="RQ-nnn", help="Change only this question.")
@click.option("--allow", multiple=True, metavar="DOMAIN", help="Allow a domain (repeatable).")
@click.option("--deny", multiple=True, metavar="DOMAIN", help="Deny a domain (repeatable).")
@click.option(
    "--media-type", "media_types", multiple=True, metavar="TYPE",
    help="Allowed media types (repeatable; replaces the list; type/* allowed).",
)  # fmt: skip
@click.option("--max-page-bytes", type=click.IntRange(1), default=None, help="Page size cap.")
@click.option("--robots/--ignore-robots", default=None, help="Honour robots.txt (default on).")
@click.option("--max-redirects", type=click.IntRange(0, 50), default=None)
@click.option("--timeout", "timeout", type=click.IntRange(1, 3600), default=None,
              help="Seconds a whole fetch may take.")  # fmt: skip
@click.option("--pages", type=click.IntRange(0), default=None, help="Budget: pages (0: none).")
@click.option("--bytes", "bytes_", type=click.IntRange(0), default=None, help="Budget: bytes.")
@click.option("--tokens", type=click.IntRange(0), default=None, help="Budget: model tokens.")
@click.option("--seconds", type=click.IntRange(0), default=None, help="Budget: seconds.")
@click.option("--show", is_flag=True, help="Print the current scope; record nothing.")
@_RUN
@_JSON
@pass_state
def scope_cmd(
    state: Context,
    question: str | None,
    allow: tuple[str, ...],
    deny: tuple[str, ...],
    media_types: tuple[str, ...],
    max_page_bytes: int | None,
    robots: bool | None,
    max_redirects: int | None,
    timeout: int | None,
    pages: int | None,
    bytes_: int | None,
    tokens: int | None,
    seconds: int | None,
    show: bool,
    run: str | None,
    as_json: bool,
) -> None:
    """Record the run's research scope: per design question (RQ-nnn) a budget and a
    source policy, starting from the previous scope or the defaults."""
    from steve.research.scope import ScopeChanges, load_scope, record_scope

    repo = state.repo()
    if show:
        scope = load_scope(repo, run)
    else:
        budget = {
            k: v
            for k, v in (("pages", pages), ("bytes", bytes_), ("tokens", tokens),
                         ("seconds", seconds))
            if v is not None
        }  # fmt: skip
        changes = ScopeChanges(
            question, allow, deny, media_types, max_page_bytes, robots, max_redirects,
            timeout, budget,
        )  # fmt: skip
        scope = record_scope(repo, run_id=run, changes=changes, now=frozen_time()[0])
    from steve.research.fetch import usage_of

    def account(qid: str) -> str | None:
        return None if scope.run_id is None else f"{scope.run_id}/{qid}"

    used = {
        a: usage_of(repo, a)
        for a in (account(q) for q in ("*", *(q.id for q in scope.questions)))
        if a is not None
    }
    if as_json:
        _emit({**scope.to_json(), "used": {a: u.to_record() for a, u in used.items()}})
        return
    if scope.recorded is not None and not show:
        click.echo(scope.recorded.hex)
    elif show:
        click.echo(f"scope {scope.recorded.hex if scope.recorded else '(defaults)'}")
    if show or not state.quiet:
        out = sys.stdout if show else sys.stderr
        for qid, text, b, p in [
            ("*", "(no question)", scope.budget, scope.policy),
            *((q.id, q.question, q.budget, q.policy) for q in scope.questions),
        ]:
            u = used.get(account(qid) or "")
            spent = f" (used {u.pages} pages, {u.bytes} bytes)" if u and u.pages else ""
            click.echo(
                f"{qid}: pages {b.pages}, bytes {b.bytes}, tokens {b.tokens}, "
                f"seconds {b.seconds}{spent}; allow {','.join(p.allow) or '*'}, deny "
                f"{','.join(p.deny) or '-'}, max {p.max_page_bytes} B, robots "
                f"{'on' if p.robots else 'off'}  {text}",
                file=out,
            )


# --- fetch, refresh -------------------------------------------------------------------------


def offline_default(repo: Repo) -> bool:
    """Offline unless told otherwise when the run is reproducible: SOURCE_DATE_EPOCH is
    set, or ``offline = true`` under ``[research]`` in .steve/config."""
    if os.environ.get("SOURCE_DATE_EPOCH", "").strip():
        return True
    settings = None if repo.config is None else repo.config.research
    return bool(settings and settings.offline)


def _fetch(
    state: Context,
    urls: tuple[str, ...],
    question: str | None,
    offline: bool | None,
    jobs: int,
    run: str | None,
    as_json: bool,
    refresh: bool,
) -> None:
    from steve.porcelain.hostaction import wall_clock
    from steve.research.fetch import fetch_sources
    from steve.research.scope import load_scope

    repo = state.repo()
    scope = load_scope(repo, run)
    if question is not None:
        scope.question(question)  # an unknown id fails before anything is fetched
    is_offline = offline_default(repo) if offline is None else offline

    from steve.cli.progress import held, terminal_progress

    # the display (a terminal, not --quiet): how many URLs are done, the last one
    shown = terminal_progress(state, at_once=True)
    if shown is not None:
        shown.start("refresh" if refresh else "fetch", len(urls), unit="pages")

    def progress(o: FetchOutcome) -> None:
        if shown is not None:
            shown.advance(1, o.url)
        if o.error is not None:
            return
        with held(shown):
            if as_json:
                _emit(o.to_json())
            elif refresh:
                old = o.previous.hex if o.previous is not None else "-"
                click.echo(f"{old} -> {o.record.hex if o.record else '-'} {o.url}")
            else:
                click.echo(f"{o.record.hex if o.record else '-'} {o.url}")

    try:
        outcomes = fetch_sources(
            repo,
            list(urls),
            policy=scope.policy_for(question),
            gate=_gate(repo),
            budget=scope.budget_for(question),
            account=None if scope.run_id is None else f"{scope.run_id}/{question or '*'}",
            offline=is_offline and not refresh,
            refresh=refresh,
            jobs=jobs,
            progress=progress,
            clock=wall_clock,
        )
    finally:
        if shown is not None:
            shown.close()
    failed = [o for o in outcomes if o.error is not None]
    for o in failed:
        assert o.error is not None
        if as_json:
            _emit(o.to_json())
        report(o.error)
    if failed:
        assert failed[0].error is not None
        sys.exit(failed[0].error.exit_code)


@research.command("fetch")
@click.argument("urls", nargs=-1, required=True, metavar="URL...")
@_QUESTION
@click.option(
    "--offline/--online", "offline", default=None,
    help="Answer only from the mirror (default when SOURCE_DATE_EPOCH is set or "
    "[research] offline = true), or fetch what the mirror lacks.",
)  # fmt: skip
@_JOBS
@_RUN
@_JSON
@pass_state
def fetch_cmd(
    state: Context,
    urls: tuple[str, ...],
    question: str | None,
    offline: bool | None,
    jobs: int,
    run: str | None,
    as_json: bool,
) -> None:
    """Mirror each URL (from the mirror when it holds it) under the scope's source
    policy; prints `RECORD-ID URL` per URL once stored."""
    _fetch(state, urls, question, offline, jobs, run, as_json, refresh=False)


@research.command("refresh")
@click.argument("urls", nargs=-1, required=True, metavar="URL...")
@_QUESTION
@_JOBS
@_RUN
@_JSON
@pass_state
def refresh_cmd(
    state: Context,
    urls: tuple[str, ...],
    question: str | None,
    jobs: int,
    run: str | None,
    as_json: bool,
) -> None:
    """Fetch each URL again (the one deliberate re-fetch); prints `OLD -> NEW URL`
    (the old record stays in the URL's history: `steve reflog`)."""
    _fetch(state, urls, question, False, jobs, run, as_json, refresh=True)


# --- import ----------------------------------------------------------------------------------


@research.command("import")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@_JSON
@pass_state
def import_cmd(state: Context, directory: Path, as_json: bool) -> None:
    """Seed the mirror from DIRECTORY/index.json and its files (no network)."""
    from steve.porcelain.hostaction import wall_clock
    from steve.research.imports import import_mirror

    for s in import_mirror(state.repo(), directory, now=wall_clock()):
        if as_json:
            prev = None if s.previous is None else s.previous.hex
            _emit({"url": s.url, "record": s.record.hex, "previous": prev})
        elif not state.quiet:
            click.echo(f"{s.record.hex} {s.url}")


# --- search ----------------------------------------------------------------------------------


@research.command("search")
@click.argument("query")
@click.option(
    "--provider", type=click.Choice(["local", "searxng"]), default="local", show_default=True,
    help="The mirror's full-text index, or a SearxNG-compatible endpoint.",
)  # fmt: skip
@click.option("--searxng", "searxng_url", default=None, metavar="URL",
              help="The SearxNG endpoint (default: [research] searxng_url).")  # fmt: skip
@click.option("--limit", type=click.IntRange(1, 1000), default=10, show_default=True)
@_RUN
@_JSON
@pass_state
def search_cmd(
    state: Context,
    query: str,
    provider: str,
    searxng_url: str | None,
    limit: int,
    run: str | None,
    as_json: bool,
) -> None:
    """Search and record the query with its results; prints `URL  TITLE` per hit."""
    from steve.errors import SearchUnavailable
    from steve.porcelain.runs import find_run
    from steve.research.search import LocalSearch, SearchProvider, SearxngSearch, search

    repo = state.repo()
    chosen: SearchProvider
    if provider == "searxng":
        settings = None if repo.config is None else repo.config.research
        url = searxng_url or (settings.searxng_url if settings else None)
        if not url:
            raise SearchUnavailable("searxng", "no endpoint configured")
        chosen = SearxngSearch(repo, url, _gate(repo))
    else:
        chosen = LocalSearch(repo)
    run_id = None if run is None else find_run(repo, run).id
    done = search(repo, chosen, query, limit=limit, now=frozen_time()[0], run_id=run_id)
    if as_json:
        _emit(done.to_json())
        return
    for h in done.hits:
        click.echo(f"{h.url}  {h.title}".rstrip())
    if not state.quiet:
        click.echo(f"search {done.record.hex}: {len(done.hits)} result(s)", err=True)


for _module in SUBCOMMAND_MODULES:
    importlib.import_module(_module)
