"""``steve inspect``: state, manifests, resources, logs, dag, decisions, errors.

Each subcommand is one call into :mod:`steve.porcelain.inspect` (or
:mod:`steve.porcelain.dag`) and a formatter; ``--json`` prints one JSON
document (``logs``: one object per line) whose fields docs/inspect.md
documents and docs/schemas/inspect/*.json pins.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from steve.cli.app import INT64_MAX, BlockWriter, Context, cli, is_regular_file, pass_state

if TYPE_CHECKING:
    from steve.daemon.client import Client
    from steve.events import Event, EventLog
    from steve.porcelain.inspect import LogFilter
    from steve.porcelain.runs import Run


@contextlib.contextmanager
def _reading(state: Context) -> Iterator[EventLog]:
    """The repository's event log, opened to read: without the command's signer and
    redactor (an inspect command appends nothing), closed at the end."""
    from steve.events import EventLog

    log = EventLog.for_repo(state.repo())
    try:
        yield log
    finally:
        log.close()


def _dump(value: object) -> None:
    click.echo(json.dumps(value, sort_keys=True, ensure_ascii=False))


def _run_json(run: Run | None) -> dict[str, Any] | None:
    if run is None:
        return None
    return {
        "id": run.id,
        "name": run.name,
        "stage": run.stage.value,
        "created": run.created,
        "updated": run.updated,
    }


def _when(seconds: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds))


_run_option = click.option(
    "--run", "run", metavar="RUN", help="A run id, prefix or name (default: the current run)."
)
_json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON (docs/inspect.md).")


@cli.group("inspect")
def inspect() -> None:
    """Look inside the repository: the run's state, its manifests, resources, logs,
    the plan DAG, the decision history and recurring errors."""


@inspect.command("state")
@_run_option
@_json_option
@pass_state
def inspect_state(state: Context, run: str | None, as_json: bool) -> None:
    """The run, its stage, the stages it may move to and what blocks each."""
    from steve.porcelain.inspect import run_state

    report = run_state(state.repo(), run, now=int(time.time()))
    if as_json:
        _dump(
            {
                "run": _run_json(report.run),
                "runs": report.runs,
                "next": [
                    {
                        "stage": n.stage.value,
                        "command": n.command,
                        "ready": n.ready,
                        "blockers": [
                            {"kind": b.kind.value, "detail": b.detail} for b in n.blockers
                        ],
                    }
                    for n in report.next
                ],
                "pending_approvals": [
                    {"id": a.id.hex, "kind": a.request.kind.value, "summary": a.request.summary}
                    for a in report.pending_approvals
                ],
            }
        )
        return
    if report.run is None:
        click.echo(f"no current run ({report.runs} runs); start one with `steve run new`")
        return
    r = report.run
    click.echo(f"run {r.id} ({r.name})  stage {r.stage.value}")
    if not report.next:
        click.echo(f"  {r.stage.value} is the last stage: nothing follows")
    for n in report.next:
        mark = "ready" if n.ready else "blocked"
        click.echo(f"  -> {n.stage.value:<8} {mark:<7} {n.command}")
        for b in n.blockers:
            click.echo(f"       blocked: {b.detail}")


def _item_json(item: Any) -> dict[str, Any]:
    return {
        "kind": item.kind.value,
        "id": item.oid.hex,
        "title": item.title,
        "time": item.time,
        "ref": item.ref,
    }


@inspect.command("manifests")
@_run_option
@_json_option
@pass_state
def inspect_manifests(state: Context, run: str | None, as_json: bool) -> None:
    """The run's active manifests (latest of each kind, every node's receipt), by id and title."""
    from steve.porcelain.inspect import manifests

    report = manifests(state.repo(), run)
    if as_json:
        _dump(
            {
                "run": _run_json(report.run),
                "manifests": [_item_json(m) for m in report.manifests],
                "receipts": [_item_json(m) for m in report.receipts],
            }
        )
        return
    if report.run is None:
        click.echo("no current run; start one with `steve run new`")
        return
    click.echo(f"run {report.run.id} ({report.run.name})  stage {report.run.stage.value}")
    if not report.manifests:
        click.echo("  no manifests yet")
    for m in report.manifests:
        click.echo(f"  {m.kind.value:<16} {m.oid.short()}  {m.title}")
    if report.receipts:
        click.echo(f"  receipts ({len(report.receipts)} nodes):")
        for m in report.receipts:
            click.echo(f"    {m.oid.short()}  {m.title}")


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


@inspect.command("resources")
@_run_option
@click.option("--no-containers", is_flag=True, help="Do not ask the container engine.")
@_json_option
@pass_state
def inspect_resources(state: Context, run: str | None, no_containers: bool, as_json: bool) -> None:
    """Object store size by kind, event count, STEVE's containers (running and left
    behind) and tokens spent against budgets."""
    from steve.porcelain.inspect import ContainerCensus, container_census, resources

    census = (
        ContainerCensus((), "not asked (--no-containers)")
        if no_containers
        else container_census(os.environ.get("DOCKER_HOST") or None)
    )
    with _reading(state) as log:
        report = resources(state.repo(), log, census=census, run=run)
    c = report.containers
    if as_json:
        _dump(
            {
                "objects": {
                    "count": report.object_count,
                    "bytes": report.object_bytes,
                    "by_kind": [
                        {"kind": k.kind, "count": k.count, "bytes": k.bytes} for k in report.objects
                    ],
                },
                "disk_bytes": report.disk_bytes,
                "events": {"count": report.events, "undelivered": report.undelivered},
                "containers": {
                    "available": c.unavailable is None,
                    "unavailable": c.unavailable,
                    "running": c.running,
                    "left_behind": c.left_behind,
                    "items": [
                        {
                            "kind": i.kind,
                            "id": i.id,
                            "run": i.run,
                            "step": i.step,
                            "status": i.status,
                            "left_behind": i.left_behind,
                        }
                        for i in c.items
                    ],
                },
                "tokens": [
                    {"scope": t.scope, "used": t.used, "limit": t.limit} for t in report.tokens
                ],
            }
        )
        return
    click.echo(
        f"objects  {report.object_count} ({_size(report.object_bytes)} of content), "
        f"{_size(report.disk_bytes)} on disk"
    )
    for k in report.objects:
        click.echo(f"  {k.kind:<16} {k.count:>10}  {_size(k.bytes):>10}")
    extra = f" ({report.undelivered} waiting in the outbox)" if report.undelivered else ""
    click.echo(f"events   {report.events}{extra}")
    if c.unavailable is not None:
        click.echo(f"containers  {c.unavailable}")
    else:
        click.echo(f"containers  {c.running} running, {c.left_behind} left behind")
        for i in c.items:
            gone = "  (left behind: `steve janitor` removes it)" if i.left_behind else ""
            click.echo(
                f"  {i.kind} {i.id[:12]} run={i.run or '-'} step={i.step or '-'} "
                f"{i.status or '-'}{gone}"
            )
    click.echo("tokens")
    for t in report.tokens:
        limit = "no budget" if t.limit is None else f"of {t.limit}"
        click.echo(f"  {t.scope:<40} {t.used:>10} {limit}")


# --- logs ---------------------------------------------------------------------------


def _log_json(event: Event) -> dict[str, Any]:
    from steve.events import redact
    from steve.porcelain.inspect import log_text

    node, stream, text = log_text(event)
    payload = redact(event.payload)
    if text is not None:
        payload.pop("data", None)
    return {
        "seq": event.seq,
        "time": event.time,
        "level": event.level.value,
        "type": event.event_type,
        "run_id": event.run_id,
        "correlation_id": event.correlation_id,
        "actor": event.actor,
        "node": node,
        "stream": stream,
        "text": text,
        "payload": payload,
    }


def _log_line(event: Event) -> str:
    from steve.cli.events import format_event
    from steve.events.jsonlog import iso_ms
    from steve.porcelain.escape import escape_text
    from steve.porcelain.inspect import log_text

    node, stream, text = log_text(event)
    if text is None:
        return format_event(event, False)
    body = escape_text(text.rstrip("\n"))
    return f"{event.seq} {iso_ms(event.time / 1000)} {node or '-'}/{stream or '-'} | {body}"


@inspect.command("logs")
@_run_option
@click.option("--node", metavar="NODE", help="Only this step's events and output.")
@click.option("--correlation-id", "correlation", metavar="ID", help="Only this correlation id.")
@click.option(
    "--type", "event_type", metavar="TYPE", help="Only this event type (TYPE.* for a family)."
)
@click.option(
    "--lines",
    "-n",
    type=click.IntRange(0, 1_000_000),
    default=50,
    show_default=True,
    help="Show the newest N entries first.",
)
@click.option(
    "--from-seq",
    type=click.IntRange(1, INT64_MAX),
    metavar="N",
    help="Start at sequence number N instead of the newest entries.",
)
@click.option("--follow", "-f", is_flag=True, help="Keep printing new entries as they commit.")
@_json_option
@pass_state
def inspect_logs(
    state: Context,
    run: str | None,
    node: str | None,
    correlation: str | None,
    event_type: str | None,
    lines: int,
    from_seq: int | None,
    follow: bool,
    as_json: bool,
) -> None:
    """Step output and events, newest last: the newest N entries, then (--follow) each
    new one as it commits, also while another process builds.  Filters combine."""
    from steve.porcelain.inspect import LogFilter
    from steve.porcelain.runs import find_run

    repo = state.repo()
    run_id = find_run(repo, run).id if run is not None else None
    flt = LogFilter(run_id, node, correlation, event_type)
    with _reading(state) as log:
        _print_logs(log, flt, lines, from_seq, follow, as_json)


def _print_logs(
    log: EventLog,
    flt: LogFilter,
    lines: int,
    from_seq: int | None,
    follow: bool,
    as_json: bool,
) -> None:
    from steve.porcelain.inspect import follow as follow_events
    from steve.porcelain.inspect import tail

    stream = sys.stdout.buffer
    out = BlockWriter(stream, flush_each=follow or not is_regular_file(stream))
    emit = _emitter(out, as_json)
    nxt = 1 if from_seq is None else from_seq
    if from_seq is None:
        nxt = log.head().seq + 1  # the tail ends here and a follow goes on from here
        for event in tail(log, flt, limit=lines, before=nxt):
            emit(event)
    if from_seq is not None or follow:
        source = (
            follow_events(log, flt, from_seq=nxt)
            if follow
            else (e for e in log.events(from_seq=nxt, **_filters(flt)) if flt.matches_node(e))
        )
        for event in source:
            emit(event)
    out.flush()


def _filters(flt: LogFilter) -> dict[str, Any]:
    return {
        "run_id": flt.run_id,
        "correlation_id": flt.correlation_id,
        "event_type": flt.event_type,
    }


def _emitter(out: BlockWriter, as_json: bool) -> Any:
    def emit(event: Event) -> None:
        line = json.dumps(_log_json(event), sort_keys=True) if as_json else _log_line(event)
        out.line(line.encode())

    return emit


def follow_through(client: Client, root: Path, args: list[str]) -> int:
    """``steve inspect logs --follow`` through steved (the daemon holds the key): new
    entries from the daemon's event head on (or --from-seq), filtered by node here."""
    from steve.cli.daemon import follow_daemon
    from steve.porcelain.inspect import LogFilter

    p = inspect_logs.make_context("logs", list(args)).params
    if p["run"] is not None:
        click.echo("steve: --run through steved takes a run id (not a prefix or name)", err=True)
    flt = LogFilter(p["run"], p["node"], p["correlation"], p["event_type"])
    start = p["from_seq"]
    if start is None:
        start = int(client.call("status").get("event_head") or 0) + 1
        click.echo(
            "steve: following through steved from the newest event (`steve unlock` shows "
            "the newest entries first)",
            err=True,
        )
    out = BlockWriter(sys.stdout.buffer, flush_each=True)
    emit = _emitter(out, bool(p["as_json"]))

    def each(event: Event) -> None:
        if flt.matches_node(event):
            emit(event)

    return follow_daemon(client, root, int(start), _filters(flt), each)


# --- dag ----------------------------------------------------------------------------


@inspect.command("dag")
@_run_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "dot", "mermaid"]),
    default="text",
    show_default=True,
    help="A drawing for the terminal, Graphviz DOT or a Mermaid flowchart.",
)
@click.option("--ascii", "ascii_", is_flag=True, help="Plain ASCII instead of Unicode boxes.")
@_json_option
@pass_state
def inspect_dag(state: Context, run: str | None, fmt: str, ascii_: bool, as_json: bool) -> None:
    """The run's plan DAG, layered by dependency depth, each node with its last status
    (passed, failed, not run, running)."""
    from steve.porcelain.dag import draw, plan_dag, to_dot, to_mermaid

    with _reading(state) as log:
        dag = plan_dag(state.repo(), run, log)
    if as_json:
        _dump(
            {
                "run": dag.run.id,
                "stage": dag.run.stage.value,
                "plan": dag.plan.hex,
                "title": dag.title,
                "nodes": [
                    {
                        "id": n.id,
                        "kind": n.kind,
                        "depth": n.depth,
                        "upstream": list(n.upstream),
                        "status": n.state.value,
                        "receipt": None if n.receipt is None else n.receipt.hex,
                    }
                    for n in dag.nodes
                ],
                "edges": [{"from": a, "to": b} for a, b in dag.edges],
            }
        )
    elif fmt == "dot":
        click.echo(to_dot(dag), nl=False)
    elif fmt == "mermaid":
        click.echo(to_mermaid(dag), nl=False)
    else:
        ascii_ = ascii_ or not _utf8()
        width = int(os.environ.get("COLUMNS") or 100)
        click.echo("\n".join(draw(dag, ascii=ascii_, width=max(40, width))))


def _utf8() -> bool:
    encoding = getattr(sys.stdout, "encoding", None) or ""
    return encoding.lower().replace("-", "") == "utf8"


# --- decisions and errors -----------------------------------------------------------


@inspect.command("decisions")
@_run_option
@_json_option
@pass_state
def inspect_decisions(state: Context, run: str | None, as_json: bool) -> None:
    """The decision history: stage transitions, approvals, gate verdicts and
    kill-switch changes, with who and why, oldest first."""
    from steve.porcelain.inspect import decisions

    with _reading(state) as log:
        found, items = decisions(state.repo(), log, run, now=int(time.time()))
    if as_json:
        _dump(
            {
                "run": None if found is None else found.id,
                "decisions": [
                    {
                        "time": d.time,
                        "kind": d.kind.value,
                        "what": d.what,
                        "actor": d.actor,
                        "reason": d.reason,
                        "ref": d.ref,
                    }
                    for d in items
                ],
            }
        )
        return
    if found is not None:
        click.echo(f"run {found.id} ({found.name})  stage {found.stage.value}")
    if not items:
        click.echo("  no decisions recorded")
    for d in items:
        why = f"  ({d.reason})" if d.reason else ""
        click.echo(f"  {_when(d.time)}  {d.kind.value:<11} {d.what}  by {d.actor}{why}")


@inspect.command("errors")
@click.option(
    "--min", "minimum", type=click.IntRange(1), default=1, show_default=True,
    help="Only codes seen at least this often.",
)  # fmt: skip
@_json_option
@pass_state
def inspect_errors(state: Context, minimum: int, as_json: bool) -> None:
    """Recurring errors by code: how often, first and last seen, the latest message
    (`steve help CODE` explains a code)."""
    from steve.porcelain.inspect import error_counts

    rows = error_counts(state.repo(), minimum=minimum)
    if as_json:
        _dump(
            {
                "errors": [
                    {
                        "code": e.code,
                        "count": e.count,
                        "first": e.first,
                        "last": e.last,
                        "message": e.message,
                    }
                    for e in rows
                ]
            }
        )
        return
    if not rows:
        click.echo("no errors counted")
        return
    for e in rows:
        click.echo(
            f"{e.code:<18} {e.count:>6}x  first {_when(e.first)}  last {_when(e.last)}  {e.message}"
        )


@inspect.command("record-error", hidden=True)
@click.argument("code")
@click.option("--message", default="", help="The error's one-line message.")
@pass_state
def inspect_record_error(state: Context, code: str, message: str) -> None:
    """Count one occurrence of CODE (how a command run beside steved counts its error
    through the daemon; see docs/inspect.md)."""
    import re

    from steve.errors import InvalidInput

    if re.fullmatch(r"STEVE-[A-Z]+-[0-9]{3}", code) is None:
        raise InvalidInput("not an error code", f"{code!r} (expected STEVE-FAMILY-NNN)")
    state.repo().count_error(code, message[:500], now=int(time.time()))
