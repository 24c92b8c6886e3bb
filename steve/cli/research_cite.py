"""The knowledge side of ``steve research``: extract, summarize, freeze, show.

:func:`register` adds the four commands to the ``research`` group of
:mod:`steve.cli.research` (``steve research extract`` ...).  The library is
:mod:`steve.research.notebook` and :mod:`steve.research.summarize`.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from steve.cli.app import Context, frozen_time, identity, pass_state
from steve.cli.llmopts import llm_options

__all__ = ["extract_cmd", "freeze_cmd", "register", "show_cmd", "summarize_cmd"]

_RUN = click.option("--run", "run", default=None, help="Run id, prefix or name (default: current).")
_JSON = click.option("--json", "as_json", is_flag=True, help="JSON output (fields in docs/cli.md).")
_QUESTION = click.option(
    "--question",
    "questions",
    multiple=True,
    metavar="RQ",
    help="Only this research question (repeatable; default: all of the design's).",
)


def _json_line(value: object) -> None:
    sys.stdout.write(json.dumps(value, sort_keys=True, ensure_ascii=False) + "\n")


@click.command("extract")
@_RUN
@_QUESTION
@click.option(
    "--url", "urls", multiple=True, metavar="URL", help="Only this mirrored page (repeatable)."
)
@click.option(
    "--count",
    type=click.IntRange(1, 20),
    default=3,
    show_default=True,
    help="Excerpts per question and source.",
)
@_JSON
@pass_state
def extract_cmd(
    state: Context,
    run: str | None,
    questions: tuple[str, ...],
    urls: tuple[str, ...],
    count: int,
    as_json: bool,
) -> None:
    """Propose excerpts for the design's research questions from the mirrored pages."""
    from steve.research.notebook import extract

    now, _ = frozen_time()
    done = extract(state.repo(), run_id=run, questions=questions, urls=urls, count=count, now=now)
    if as_json:
        _json_line(
            {
                "draft": done.draft.hex,
                "run": done.run_id,
                "sources": done.sources,
                "excerpts": done.excerpts,
                "questions": done.per_question,
            }
        )
        return
    click.echo(done.draft.hex)
    if not state.quiet:
        click.echo(
            f"run {done.run_id}: {done.excerpts} excerpts from {done.sources} sources", err=True
        )
        for qid, n in done.per_question.items():
            click.echo(f"  {qid}: {n} excerpts", err=True)


@click.command("summarize")
@_RUN
@_QUESTION
@llm_options
@_JSON
@pass_state
def summarize_cmd(
    state: Context,
    run: str | None,
    questions: tuple[str, ...],
    llm_name: str | None,
    llm_model: str | None,
    as_json: bool,
) -> None:
    """Ask the model for a cited summary of each question, from its excerpts only."""
    from steve.cli.stages import model_target
    from steve.research.summarize import summarize

    target = model_target(state, llm_name, llm_model)
    now, _ = frozen_time()
    done = summarize(state.repo(), target, run_id=run, questions=questions, now=now)
    if as_json:
        _json_line(
            {
                "draft": done.draft.hex,
                "run": done.run_id,
                "questions": done.answered,
                "repairs": done.repairs,
                "rejected": [r.qid for r in done.rejected],
                "responses": [e.response_oid.hex for e in done.exchanges],
            }
        )
    else:
        click.echo(done.draft.hex)
        if not state.quiet:
            for qid, status in done.answered.items():
                fixed = done.repairs.get(qid, 0)
                note = f" (citations repaired in {fixed} more round)" if fixed else ""
                click.echo(f"  {qid}: {status}{note}", err=True)
            for r in done.rejected:
                click.echo(f"  {r.qid}: rejected, left open ({r.code})", err=True)
    if done.rejected:
        raise done.rejected[0]


@click.command("freeze")
@_RUN
@click.option("--scope", "scope", default=None, metavar="ID", help="The scope record followed.")
@_JSON
@pass_state
def freeze_cmd(state: Context, run: str | None, scope: str | None, as_json: bool) -> None:
    """Check every citation and freeze the run's research manifest."""
    from steve.research.notebook import freeze

    repo = state.repo()
    now, tz = frozen_time()
    scope_id = None if scope is None else repo.rev_parse(scope)
    result = freeze(repo, run_id=run, scope=scope_id, now=now, tz=tz, actor=str(identity()))
    t = result.transition
    if as_json:
        _json_line(
            {
                "id": result.oid.hex,
                "run": result.run.id,
                "stage": result.run.stage.value,
                "from": None if t is None else str(t.from_stage),
            }
        )
        return
    click.echo(result.oid.hex)
    if t is not None and not state.quiet:
        click.echo(f"run {result.run.id}: {t.from_stage} -> {t.to_stage}", err=True)


def render(view: dict[str, Any]) -> str:
    """``steve research show``'s text: questions, answers, claims and their citations."""
    head = view["manifest"] or "(draft, not frozen)"
    lines = [f"research {head}", f"Title: {view['title']}", ""]
    for q in view["questions"]:
        lines.append(f"{q['id']} [{q['status']}] {q['question']}")
        if q["answer"]:
            lines.append(f"  Answer: {q['answer']}")
        for n, c in enumerate(q["claims"], 1):
            lines.append(f"  {n}. {c['text']}")
            for cite in c["cites"]:
                loc = cite["locator"]
                where = "" if loc is None else f" @{loc['start']}-{loc['end']}"
                lines.append(f'     [{cite["excerpt"]}, {cite["source"]}{where}] "{cite["quote"]}"')
        lines.append("")
    lines.append("Sources:")
    for s in view["sources"]:
        title = f" ({s['title']})" if s["title"] else ""
        lines.append(f"  {s['id']} {s['uri']}{title}")
        if s["record"]:
            lines.append(f"       record {s['record']}")
    return "\n".join(lines) + "\n"


@click.command("show")
@click.argument("rev", required=False)
@_RUN
@_JSON
@pass_state
def show_cmd(state: Context, rev: str | None, run: str | None, as_json: bool) -> None:
    """Print questions, answers and claims with their citations."""
    from steve.research.notebook import view

    value = view(state.repo(), run_id=run, rev=rev)
    if as_json:
        _json_line(value)
    else:
        sys.stdout.write(render(value))


COMMANDS = {
    "extract": extract_cmd,
    "summarize": summarize_cmd,
    "freeze": freeze_cmd,
    "show": show_cmd,
}


def register(group: click.Group) -> None:
    """Add extract, summarize, freeze and show to ``group`` (``steve research``)."""
    for name, command in COMMANDS.items():
        group.add_command(command, name)
