"""Manifest and run commands: schema, freeze, cat-manifest, cat, log, diff, the stage
commands (design, research, plan), run ..., status.

Each command parses its options, makes one library call and formats the
result.  The library modules (pydantic schemas above all) are imported
inside the commands, so plumbing commands start without them.

``SOURCE_DATE_EPOCH`` (the reproducible-builds convention) fixes the time
recorded in frozen manifests and transitions: when set, time = its value
and the offset is +0000, so the same draft freezes to the same id anywhere.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, BinaryIO

import click

from steve.cli.app import (
    INT64_MAX,
    BlockWriter,
    Context,
    cli,
    frozen_time,
    identity,
    is_terminal,
    pass_state,
)
from steve.errors import InvalidInput, UnknownRevision

if TYPE_CHECKING:
    from steve.objects.oid import ObjectId
    from steve.porcelain.runs import Run, Transition
    from steve.repo import Repo

MANIFEST_KINDS = (
    "design",
    "research",
    "plan",
    "build_receipt",
    "test_certificate",
    "deploy_receipt",
)
STAGES = ("DESIGN", "RESEARCH", "PLAN", "BUILD", "TEST", "DEPLOY")


def _out() -> BinaryIO:
    return sys.stdout.buffer


def _line(text: str) -> None:
    _out().write(text.encode() + b"\n")


def _read_input(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        with open(path, "rb") as fh:  # noqa: PTH123 (a user-given path, str or "-")
            return fh.read()
    except OSError as exc:
        raise InvalidInput("cannot read draft", f"{path}: {exc.strerror}") from exc


def _kind_arg(value: str) -> str:
    if value not in MANIFEST_KINDS:
        raise InvalidInput(
            "unknown manifest kind", f"{value!r} (known: {', '.join(MANIFEST_KINDS)})"
        )
    return value


# --- schema / freeze / cat-manifest -------------------------------------------------------


@cli.command()
@click.argument("kind")
def schema(kind: str) -> None:
    """Print the JSON Schema of a manifest KIND's draft (design, research, plan, ...)."""
    from steve.objects.schemas import json_schema

    _line(json_schema(_kind_arg(kind)))


def _jsonl(stream: BinaryIO) -> Iterator[dict[str, Any]]:
    from steve.porcelain.freeze import load_draft

    for n, raw in enumerate(stream, 1):
        if not raw.strip():
            continue
        if not raw.lstrip().startswith(b"{"):
            raise InvalidInput("batch input must be JSON Lines", f"line {n} is not a JSON object")
        yield load_draft(raw, f"line {n}")


@cli.command()
@click.argument("kind")
@click.argument("file")
@click.option("--ref", "ref", default=None, help="Move REF to the new manifest (compare-and-swap).")
@click.option("--amends", default=None, metavar="REV", help="Make an amendment of REV.")
@click.option("--parent", "parents", multiple=True, metavar="REV", help="A parent (repeatable).")
@click.option("--batch", is_flag=True, help="FILE is JSON Lines: one draft per line, one id out.")
@pass_state
def freeze(
    state: Context,
    kind: str,
    file: str,
    ref: str | None,
    amends: str | None,
    parents: tuple[str, ...],
    batch: bool,
) -> None:
    """Validate a draft (YAML or JSON; - for stdin), store it as a KIND manifest, print its id.

    Validation errors name the field path and rule; nothing is stored then.
    """
    from steve.porcelain import freeze as lib

    kind = _kind_arg(kind)
    repo = state.repo()
    now, tz = frozen_time()
    parent_ids = [repo.rev_parse(p) for p in parents]
    if batch:
        if ref or amends:
            raise click.UsageError("--batch takes no --ref or --amends")
        stream = sys.stdin.buffer if file == "-" else open(file, "rb")  # noqa: SIM115, PTH123
        try:
            out = _out()
            for oid in lib.freeze_many(
                repo, kind, _jsonl(stream), parents=parent_ids, now=now, tz=tz
            ):
                out.write(oid.hex.encode() + b"\n")
        finally:
            if stream is not sys.stdin.buffer:
                stream.close()
        return
    draft = lib.load_draft(_read_input(file), file)
    amended = repo.rev_parse(amends) if amends else None
    oid = lib.freeze(repo, kind, draft, parents=parent_ids, amends=amended, now=now, tz=tz, ref=ref)
    _line(oid.hex)


@cli.command("cat-manifest")
@click.argument("rev")
@click.option(
    "--format", "fmt", type=click.Choice(["json", "yaml"]), default="json", show_default=True
)
@pass_state
def cat_manifest(state: Context, rev: str, fmt: str) -> None:
    """Print a manifest exactly as frozen: envelope fields and body, ids as hex."""
    from steve.porcelain.show import read_manifest, to_yaml

    value = read_manifest(state.repo(), rev).to_dict()
    if fmt == "json":
        _line(json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False))
    else:
        _out().write(to_yaml(value).encode())


@cli.command()
@click.argument("rev")
@pass_state
def cat(state: Context, rev: str) -> None:
    """Show any object like `git show`: manifests readable, trees listed, blobs raw."""
    from steve.objects.model import Manifest, Tag, Tree
    from steve.porcelain.show import FrozenManifest, render_manifest, render_tag, render_tree

    repo = state.repo()
    oid = repo.rev_parse(rev)
    obj = repo.read_object(oid)
    out = _out()
    if isinstance(obj, Manifest):
        out.write(render_manifest(FrozenManifest(oid, obj)).encode())
    elif isinstance(obj, Tree):
        out.write(render_tree(obj).encode())
    elif isinstance(obj, Tag):
        out.write(render_tag(oid, obj).encode())
    else:
        for chunk in repo.iter_content(oid):
            out.write(chunk)


# --- log / diff ---------------------------------------------------------------------------

DEFAULT_LOG_FORMAT = "manifest %H (%k)%nDate:   %ad%n%n    %s%n"


def _log_starts(repo: Repo, revs: tuple[str, ...]) -> list[ObjectId]:
    from steve.porcelain.runs import current_run, run_heads

    if revs:
        return [repo.rev_parse(r) for r in revs]
    run = current_run(repo)
    if run is not None:
        heads = run_heads(repo, run.id)
        if heads:
            return heads
    head = repo.head()
    if head is None or head.target is None:
        raise UnknownRevision("HEAD", "no current run with manifests and HEAD points at nothing")
    return [head.target]


@cli.command()
@click.argument("revs", nargs=-1)
@click.option(
    "-n",
    "--max-count",
    "limit",
    type=click.IntRange(max=INT64_MAX),
    default=None,
    help="Show at most N.",
)
@click.option("--oneline", is_flag=True, help='Short form: "%h %k %s".')
@click.option(
    "--format", "--pretty", "fmt", default=None, help="Placeholders: %H %h %s %ad %at %k %p %P %n."
)
@click.option(
    "--kind",
    "kinds",
    multiple=True,
    type=click.Choice(MANIFEST_KINDS),
    help="Only this kind (repeatable).",
)
@click.option("--graph", is_flag=True, help="Draw lanes of descent on the left.")
@pass_state
def log(
    state: Context,
    revs: tuple[str, ...],
    limit: int | None,
    oneline: bool,
    fmt: str | None,
    kinds: tuple[str, ...],
    graph: bool,
) -> None:
    """Walk manifest history newest first (default start: the current run's latest manifests,
    else HEAD).  Output streams as the walk proceeds."""
    from steve.objects.model import ObjectType
    from steve.porcelain.history import Graph, entry_of, row_formatter, walk_rows

    repo = state.repo()
    fmt_text = fmt.removeprefix("format:").removeprefix("tformat:") if fmt else None
    render = row_formatter(fmt_text or ("%h %k %s" if oneline else DEFAULT_LOG_FORMAT))
    drawer = Graph() if graph else None
    stdout = _out()
    each = is_terminal(stdout)
    out = BlockWriter(stdout, flush_each=each)
    kind_filter = [ObjectType(k) for k in kinds] or None
    rows = walk_rows(repo, _log_starts(repo, revs), kinds=kind_filter, limit=limit)
    lines: list[str] = []

    def write_lines() -> None:
        if lines:
            lines.append("")
            out.write("\n".join(lines).encode("utf-8", "surrogateescape"))
            lines.clear()

    first = True
    for row in rows:
        text = render(row)
        if drawer is not None:
            text = drawer.prefix(entry_of(row)) + text
        lines.append(text)
        # the first line goes out before the walk ends; then blocks of lines
        if each or first or len(lines) >= _LOG_BLOCK:
            write_lines()
            if first:
                out.flush()
                first = False
            out.end()
    write_lines()
    out.flush()


_LOG_BLOCK = 1024
"""Lines joined into one write by ``steve log`` when stdout is not a terminal."""


@cli.command()
@click.argument("old")
@click.argument("new")
@pass_state
def diff(state: Context, old: str, new: str) -> None:
    """Field-level diff of two manifests of one kind (+ added, - removed, ~ changed)."""
    from steve.porcelain.diff import diff as diff_lib

    repo = state.repo()
    for change in diff_lib(repo, repo.rev_parse(old), repo.rev_parse(new)):
        _line(str(change))


# --- stage commands -----------------------------------------------------------------------


def _record(state: Context, kind: str, file: str, run: str | None) -> None:
    from steve.porcelain.freeze import load_draft
    from steve.porcelain.stages import record

    repo = state.repo()
    draft = load_draft(_read_input(file), file)
    now, tz = frozen_time()
    result = record(repo, kind, draft, run_id=run, now=now, tz=tz, actor=str(identity()))
    _line(result.oid.hex)
    if result.transition is not None:
        t = result.transition
        click.echo(f"run {result.run.id}: {t.from_stage} -> {t.to_stage}", err=True)


_RUN_OPT = click.option(
    "--run", "run", default=None, help="Run id, prefix or name (default: current)."
)


@cli.command()
@click.argument("file")
@_RUN_OPT
@pass_state
def design(state: Context, file: str, run: str | None) -> None:
    """Freeze FILE as the run's design manifest (moves the run to DESIGN)."""
    _record(state, "design", file, run)


@cli.command()
@click.argument("file")
@_RUN_OPT
@pass_state
def research(state: Context, file: str, run: str | None) -> None:
    """Freeze FILE as the run's research manifest (moves the run to RESEARCH)."""
    _record(state, "research", file, run)


@cli.command()
@click.argument("file")
@_RUN_OPT
@pass_state
def plan(state: Context, file: str, run: str | None) -> None:
    """Freeze FILE as the run's plan (moves the run to PLAN)."""
    _record(state, "plan", file, run)


# --- runs -----------------------------------------------------------------------------------


def _when(stamp: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(stamp)) + "Z"


def _run_line(run: Run, current: str | None) -> str:
    mark = "*" if run.id == current else " "
    return f"{mark} {run.id} {run.stage.value:<8} {_when(run.updated)} {run.name}"


def _transition_line(t: Transition) -> str:
    src = t.from_stage.value if t.from_stage is not None else "(new)"
    return f"{t.seq:>4} {_when(t.time)} {src:>8} -> {t.to_stage.value:<8} {t.trigger} [{t.actor}]"


@cli.group("run")
def run_group() -> None:
    """Runs of the stage machine (DESIGN -> RESEARCH -> PLAN -> BUILD -> TEST -> DEPLOY)."""


@run_group.command("new")
@click.option("--name", default=None, help="A name for the run (default: its id).")
@pass_state
def run_new(state: Context, name: str | None) -> None:
    """Start a run in DESIGN and make it the current run; print its id."""
    from steve.porcelain.runs import new_run

    now, _ = frozen_time()
    run = new_run(state.repo(), name=name, now=now, actor=str(identity()))
    _line(run.id)


@run_group.command("list")
@pass_state
def run_list(state: Context) -> None:
    """List runs, oldest first (* marks the current run)."""
    from steve.porcelain.runs import current_run, list_runs

    repo = state.repo()
    cur = current_run(repo)
    for run in list_runs(repo):
        _line(_run_line(run, cur.id if cur else None))


@run_group.command("show")
@click.argument("run", required=False)
@pass_state
def run_show(state: Context, run: str | None) -> None:
    """Show a run (default: the current one): stage, next stages, manifests."""
    from steve.objects.model import MANIFEST_TYPES
    from steve.porcelain.runs import allowed_from, find_run, run_manifests, run_ref

    repo = state.repo()
    found = find_run(repo, run)
    _line(f"run      {found.id}")
    _line(f"name     {found.name}")
    _line(f"stage    {found.stage.value}")
    _line(f"next     {' '.join(s.value for s in allowed_from(found.stage)) or '(none)'}")
    _line(f"created  {_when(found.created)}")
    _line(f"updated  {_when(found.updated)}")
    latest = run_manifests(repo, found.id)
    for kind in MANIFEST_TYPES:
        if kind in latest:
            _line(f"{kind.value:<17}{latest[kind].hex}  {run_ref(found.id, kind)}")


@run_group.command("goto")
@click.argument("stage", type=click.Choice(STAGES, case_sensitive=False))
@click.option("--run", "run", default=None, help="Run id, prefix or name (default: current).")
@click.option("--reason", default=None, help="Why (recorded in the transition's trigger).")
@pass_state
def run_goto(state: Context, stage: str, run: str | None, reason: str | None) -> None:
    """Move a run to STAGE if the state machine allows it; the transition is recorded."""
    from steve.porcelain.runs import Stage, find_run, goto

    repo = state.repo()
    found = find_run(repo, run)
    now, _ = frozen_time()
    trigger = f"goto: {reason}" if reason else "goto"
    t = goto(repo, found.id, Stage.parse(stage), trigger=trigger, now=now, actor=str(identity()))
    _line(_transition_line(t))


@run_group.command("transitions")
@click.argument("run", required=False)
@pass_state
def run_transitions(state: Context, run: str | None) -> None:
    """List a run's recorded transitions in order."""
    from steve.porcelain.runs import find_run, transitions

    repo = state.repo()
    for t in transitions(repo, find_run(repo, run).id):
        _line(_transition_line(t))


@run_group.command("switch")
@click.argument("run")
@pass_state
def run_switch(state: Context, run: str) -> None:
    """Make RUN the current run."""
    from steve.porcelain.runs import switch_run

    _line(switch_run(state.repo(), run).id)


@cli.command()
@pass_state
def status(state: Context) -> None:
    """The current run, its stage and next stages, and its latest manifest of each kind."""
    from steve.porcelain.status import status as status_lib

    st = status_lib(state.repo())
    head = st.head
    if head is not None:
        where = head.symbolic or head.name
        _line(f"HEAD     {where} -> {head.target.hex if head.target else '(unborn)'}")
    if st.run is None:
        _line(f"no current run ({st.runs} run(s)); start one with `steve run new`")
        return
    _line(f"run      {st.run.id} ({st.run.name})")
    _line(f"stage    {st.run.stage.value}")
    _line(f"next     {' '.join(s.value for s in st.allowed) or '(none)'}")
    if not st.manifests:
        _line("no manifests yet")
    for m in st.manifests:
        _line(f"{m.kind.value:<17}{m.oid.short()}  {m.summary}")
