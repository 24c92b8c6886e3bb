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
from steve.cli.common import write_log
from steve.cli.homely import friendly, report_recorded
from steve.cli.llmopts import llm_options
from steve.errors import EXIT_FALSE, InvalidInput
from steve.messages import msg
from steve.objects.model import MANIFEST_TYPES

if TYPE_CHECKING:
    from steve.porcelain.runs import Run, Transition

MANIFEST_KINDS = tuple(t.value for t in MANIFEST_TYPES)
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


def _json_line(value: object) -> None:
    """One JSON document on one line (the --json output of every command)."""
    _line(json.dumps(value, sort_keys=True, ensure_ascii=False))


_QUIET = click.option("-q", "--quiet", is_flag=True, help="Print nothing on success.")
_JSON_HELP = "JSON output (schema in docs/cli.md)."


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
@_QUIET
@pass_state
def freeze(
    state: Context,
    kind: str,
    file: str,
    ref: str | None,
    amends: str | None,
    parents: tuple[str, ...],
    batch: bool,
    quiet: bool,
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
                if not quiet:
                    out.write(oid.hex.encode() + b"\n")
        finally:
            if stream is not sys.stdin.buffer:
                stream.close()
        return
    draft = lib.load_draft(_read_input(file), file)
    amended = repo.rev_parse(amends) if amends else None
    oid = lib.freeze(repo, kind, draft, parents=parent_ids, amends=amended, now=now, tz=tz, ref=ref)
    if not quiet:
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
    elif (text := _source_text(repo, oid, obj)) is not None:
        out.write(text.encode())  # a mirrored page's source record: its extracted text
    else:
        for chunk in repo.iter_content(oid):
            out.write(chunk)


def _source_text(repo: Any, oid: Any, obj: object) -> str | None:
    """A source record's header and extracted text (None: ``obj`` is not a record)."""
    from steve.objects.model import Blob

    if not isinstance(obj, Blob) or b"research.source" not in obj.data:
        return None
    from steve.research.extract import extract_text
    from steve.research.records import as_source

    rec = as_source(repo, oid, len(obj.data))
    if rec is None:
        return None
    ex = extract_text(repo.read_blob(rec.content), rec.media_type, rec.charset)
    head = [
        f"source {oid.hex}",
        f"URL:       {rec.final_url}",
        f"Content:   {rec.content.hex} ({rec.media_type}, {rec.size} bytes)",
        f"Extractor: {'none (no text)' if ex is None else ex.extractor}",
    ]
    if ex is not None and ex.title:
        head.append(f"Title:     {ex.title}")
    body = "" if ex is None else ex.text.rstrip("\n") + "\n"
    return "\n".join(head) + "\n\n" + body


# --- log / diff ---------------------------------------------------------------------------

DEFAULT_LOG_FORMAT = "manifest %H (%k)%nDate:   %ad%n%n    %s%n"


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
@click.option("--json", "as_json", is_flag=True, help="JSON Lines, one manifest per line.")
@click.option(
    "--run", "runs", multiple=True, metavar="RUN", help="Start at a run's latest manifests."
)
@click.option("--all", "all_refs", is_flag=True, help="Start at every ref (runs included).")
@pass_state
def log(
    state: Context,
    revs: tuple[str, ...],
    limit: int | None,
    oneline: bool,
    fmt: str | None,
    kinds: tuple[str, ...],
    graph: bool,
    as_json: bool,
    runs: tuple[str, ...],
    all_refs: bool,
) -> None:
    """Walk manifest history newest first (default start: the current run's latest manifests,
    else HEAD).  Output streams as the walk proceeds."""
    from steve.objects.model import ObjectType
    from steve.porcelain.history import row_formatter, walk_rows
    from steve.porcelain.log import Graph, log_starts

    if as_json and (graph or oneline or fmt):
        raise click.UsageError("--json excludes --graph, --oneline and --format")
    repo = state.repo()
    fmt_text = fmt.removeprefix("format:").removeprefix("tformat:") if fmt else None
    render = (
        _log_json
        if as_json
        else row_formatter(fmt_text or ("%h %k %s" if oneline else DEFAULT_LOG_FORMAT))
    )
    drawer = Graph() if graph else None
    stdout = _out()
    each = is_terminal(stdout)
    out = BlockWriter(stdout, flush_each=each)
    kind_filter = [ObjectType(k) for k in kinds] or None
    starts = log_starts(repo, revs, runs=runs, all_refs=all_refs)
    write_log(walk_rows(repo, starts, kinds=kind_filter, limit=limit), render, out, each, drawer)


def _tz(minutes: int) -> str:
    sign = "+" if minutes >= 0 else "-"
    hours, mins = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}{mins:02d}"


def _log_json(row: tuple[bytes, str, int, int, bytes, str]) -> str:
    """``log --json``: {"id", "kind", "time", "tz", "parents", "summary"}."""
    oid, kind, stamp, tz, parents, summary = row
    value = {
        "id": oid.hex(),
        "kind": kind,
        "time": stamp,
        "tz": _tz(tz),
        "parents": [parents[i : i + 32].hex() for i in range(0, len(parents), 32)],
        "summary": summary,
    }
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


@cli.command()
@click.argument("old")
@click.argument("new")
@click.option(
    "--envelope/--no-envelope",
    default=True,
    help="Also show envelope changes (parents, links, frozen_at), after the body's.",
)
@click.option("--json", "as_json", is_flag=True, help="JSON Lines, one change per line.")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing; exit 1 if they differ, 0 if not.")
@pass_state
def diff(state: Context, old: str, new: str, envelope: bool, as_json: bool, quiet: bool) -> None:
    """Diff two manifests of one kind field by field (body first; list items with ids keyed
    by id), or two trees path by path (+ added, - removed, ~ changed)."""
    from steve.porcelain.diff import FieldChange, TreeChange, show
    from steve.porcelain.diff import diff as diff_lib

    repo = state.repo()
    changes = diff_lib(repo, repo.rev_parse(old), repo.rev_parse(new), envelope=envelope)
    if quiet:
        sys.exit(EXIT_FALSE if changes else 0)
    for change in changes:
        if not as_json:
            _line(str(change))
        elif isinstance(change, FieldChange):
            _json_line(
                {
                    "op": change.change.value,
                    "section": change.section,
                    "path": change.path,
                    "old": json.loads(show(change.old)) if change.change.value != "+" else None,
                    "new": json.loads(show(change.new)) if change.change.value != "-" else None,
                }
            )
        else:
            assert isinstance(change, TreeChange)
            _json_line(
                {
                    "op": change.change.value,
                    "section": "tree",
                    "path": change.path,
                    "old": None
                    if change.old is None
                    else {"mode": change.old.mode.git, "id": change.old.oid.hex},
                    "new": None
                    if change.new is None
                    else {"mode": change.new.mode.git, "id": change.new.oid.hex},
                }
            )


# --- stage commands -----------------------------------------------------------------------


def _record(state: Context, kind: str, file: str, run: str | None, quiet: bool) -> None:
    from steve.porcelain.freeze import load_draft
    from steve.porcelain.stages import record

    repo = state.repo()
    draft = load_draft(_read_input(file), file)
    now, tz = frozen_time()
    result = record(repo, kind, draft, run_id=run, now=now, tz=tz, actor=str(identity()))
    if quiet:
        return
    _line(result.oid.hex)
    report_recorded(state, result, kind)


_RUN_OPT = click.option(
    "--run", "run", default=None, help="Run id, prefix or name (default: current)."
)


_YES = click.option(
    "--yes",
    "yes",
    is_flag=True,
    help="Approve without review (a design records approved_by: yes-flag).",
)
_ROUNDS = click.option(
    "--rounds",
    type=click.IntRange(0, 10),
    default=2,
    show_default=True,
    help="Repair rounds for invalid model output.",
)


def _one_source(file: str | None, flag: str, used: bool) -> None:
    if (file is None) == (not used):
        raise click.UsageError(f"give FILE or {flag}, not both" if used else f"give FILE or {flag}")


@cli.command()
@click.argument("file", required=False)
@click.option(
    "--intake", "intake", default=None, metavar="TEXT", help="Ask the model for a design of TEXT."
)
@click.option(
    "--project", default=None, metavar="NAME", help="project_id of an intake (default: run name)."
)
@_YES
@_ROUNDS
@llm_options
@_RUN_OPT
@_QUIET
@pass_state
def design(
    state: Context,
    file: str | None,
    intake: str | None,
    project: str | None,
    yes: bool,
    rounds: int,
    llm_name: str | None,
    llm_model: str | None,
    run: str | None,
    quiet: bool,
) -> None:
    """Freeze FILE as the run's design manifest (moves the run to DESIGN).

    With --intake TEXT the model drafts it (- reads TEXT from stdin); the draft is
    shown and frozen only when approved on the terminal or with --yes.
    """
    _one_source(file, "--intake TEXT", intake is not None)
    if intake is not None:
        from steve.cli.stages import design_intake

        design_intake(
            state, intake, run=run, project=project, yes=yes, rounds=rounds,
            llm_name=llm_name, llm_model=llm_model, quiet=quiet,
        )  # fmt: skip
        return
    assert file is not None
    _record(state, "design", file, run, quiet)


@click.command("freeze-file")
@click.argument("file")
@_RUN_OPT
@_QUIET
@pass_state
def research_file(state: Context, file: str, run: str | None, quiet: bool) -> None:
    """Freeze FILE (or - for stdin) as the run's research manifest (moves the run to
    RESEARCH); `steve research FILE` is the same command.  Registered on the
    `research` group by steve.cli.research."""
    _record(state, "research", file, run, quiet)


@cli.command()
@click.argument("file", required=False)
@click.option("--decompose", is_flag=True, help="Ask the model for a plan of the run's design.")
@click.option(
    "--image",
    "images",
    multiple=True,
    metavar="NAME=ID",
    help="An image the plan may use, pinned by id (repeatable).",
)
@click.option(
    "--input",
    "inputs",
    multiple=True,
    metavar="NAME=REV",
    help="An object the plan may pin as an input (repeatable).",
)
@click.option("--hint", default=None, metavar="TEXT", help="More guidance for the model.")
@click.option("--edit", is_flag=True, help="Edit the draft in $VISUAL/$EDITOR before approval.")
@_YES
@_ROUNDS
@llm_options
@_RUN_OPT
@_QUIET
@pass_state
def plan(
    state: Context,
    file: str | None,
    decompose: bool,
    images: tuple[str, ...],
    inputs: tuple[str, ...],
    hint: str | None,
    edit: bool,
    yes: bool,
    rounds: int,
    llm_name: str | None,
    llm_model: str | None,
    run: str | None,
    quiet: bool,
) -> None:
    """Freeze FILE as the run's plan (moves the run to PLAN; in BUILD or TEST it amends
    the run's plan and the run stays).

    With --decompose the model drafts it from the run's design, using only the images
    and inputs offered; it is frozen when approved on the terminal or with --yes.
    """
    _one_source(file, "--decompose", decompose)
    if decompose:
        import os

        from steve.cli.stages import plan_decompose

        editor = os.environ.get("VISUAL") or os.environ.get("EDITOR")
        plan_decompose(
            state, run=run, images=images, inputs=inputs, hint=hint, edit=edit, editor=editor,
            yes=yes, rounds=rounds, llm_name=llm_name, llm_model=llm_model, quiet=quiet,
        )  # fmt: skip
        return
    if edit or images or inputs or hint:
        raise click.UsageError("--edit, --image, --input and --hint go with --decompose")
    assert file is not None
    _record(state, "plan", file, run, quiet)


# --- runs -----------------------------------------------------------------------------------


def _when(stamp: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(stamp)) + "Z"


def _run_line(run: Run, current: str | None) -> str:
    mark = "*" if run.id == current else " "
    return f"{mark} {run.id} {run.stage.value:<8} {_when(run.updated)} {run.name}"


def _run_json(run: Run, current: str | None) -> dict[str, object]:
    return {
        "id": run.id,
        "name": run.name,
        "stage": run.stage.value,
        "created": run.created,
        "updated": run.updated,
        "current": run.id == current,
    }


def _transition_json(t: Transition) -> dict[str, object]:
    return {
        "run": t.run_id,
        "seq": t.seq,
        "from": t.from_stage.value if t.from_stage is not None else None,
        "to": t.to_stage.value,
        "trigger": t.trigger,
        "time": t.time,
        "actor": t.actor,
    }


def _transition_line(t: Transition) -> str:
    src = t.from_stage.value if t.from_stage is not None else "(new)"
    return f"{t.seq:>4} {_when(t.time)} {src:>8} -> {t.to_stage.value:<8} {t.trigger} [{t.actor}]"


@cli.group("run")
def run_group() -> None:
    """Runs of the stage machine (DESIGN -> RESEARCH -> PLAN -> BUILD -> TEST -> DEPLOY)."""


@run_group.command("new")
@click.option("--name", default=None, help="A name for the run (default: its id).")
@click.option("--json", "as_json", is_flag=True, help=_JSON_HELP)
@_QUIET
@pass_state
def run_new(state: Context, name: str | None, as_json: bool, quiet: bool) -> None:
    """Start a run in DESIGN and make it the current run; print its id."""
    from steve.porcelain.runs import new_run

    now, _ = frozen_time()
    run = new_run(state.repo(), name=name, now=now, actor=str(identity()))
    if as_json:
        _json_line(_run_json(run, run.id))
    elif not quiet:
        friendly(state, "run.created")
        _line(msg("run.created.fact", id=run.id))


@run_group.command("list")
@click.option("--json", "as_json", is_flag=True, help=_JSON_HELP)
@pass_state
def run_list(state: Context, as_json: bool) -> None:
    """List runs, oldest first (* marks the current run)."""
    from steve.porcelain.runs import current_run, list_runs

    repo = state.repo()
    cur = current_run(repo)
    for run in list_runs(repo):
        if as_json:
            _json_line(_run_json(run, cur.id if cur else None))
        else:
            _line(_run_line(run, cur.id if cur else None))


@run_group.command("show")
@click.argument("run", required=False)
@click.option("--json", "as_json", is_flag=True, help=_JSON_HELP)
@pass_state
def run_show(state: Context, run: str | None, as_json: bool) -> None:
    """Show a run (default: the current one): stage, next stages, manifests."""
    from steve.objects.model import MANIFEST_TYPES
    from steve.porcelain.runs import (
        current_run,
        find_run,
        reachable_by_hand,
        run_manifests,
        run_ref,
    )

    repo = state.repo()
    found = find_run(repo, run)
    if as_json:
        cur = current_run(repo)
        latest = run_manifests(repo, found.id)
        value = _run_json(found, cur.id if cur else None)
        value["next"] = [s.value for s in reachable_by_hand(found.stage)]
        value["manifests"] = [
            {"kind": k.value, "id": latest[k].hex, "ref": run_ref(found.id, k)}
            for k in MANIFEST_TYPES
            if k in latest
        ]
        _json_line(value)
        return
    _line(f"run      {found.id}")
    _line(f"name     {found.name}")
    _line(f"stage    {found.stage.value}")
    _line(f"next     {' '.join(s.value for s in reachable_by_hand(found.stage)) or '(none)'}")
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
@click.option("--json", "as_json", is_flag=True, help=_JSON_HELP)
@_QUIET
@pass_state
def run_goto(
    state: Context, stage: str, run: str | None, reason: str | None, as_json: bool, quiet: bool
) -> None:
    """Move a run to STAGE if the state machine allows it; the transition is recorded.

    STAGE is case-insensitive.  DEPLOY is refused until a deploy command exists
    (a run moved there could never leave it)."""
    from steve.porcelain.runs import Stage, find_run, goto

    repo = state.repo()
    found = find_run(repo, run)
    now, _ = frozen_time()
    trigger = f"goto: {reason}" if reason else "goto"
    t = goto(repo, found.id, Stage.parse(stage), trigger=trigger, now=now, actor=str(identity()))
    if as_json:
        _json_line(_transition_json(t))
    elif not quiet:
        _line(_transition_line(t))


@run_group.command("transitions")
@click.argument("run", required=False)
@click.option("--json", "as_json", is_flag=True, help=_JSON_HELP)
@pass_state
def run_transitions(state: Context, run: str | None, as_json: bool) -> None:
    """List a run's recorded transitions in order."""
    from steve.porcelain.runs import find_run, transitions

    repo = state.repo()
    for t in transitions(repo, find_run(repo, run).id):
        if as_json:
            _json_line(_transition_json(t))
        else:
            _line(_transition_line(t))


@run_group.command("switch")
@click.argument("run")
@click.option("--json", "as_json", is_flag=True, help=_JSON_HELP)
@_QUIET
@pass_state
def run_switch(state: Context, run: str, as_json: bool, quiet: bool) -> None:
    """Make RUN the current run."""
    from steve.porcelain.runs import switch_run

    found = switch_run(state.repo(), run)
    if as_json:
        _json_line(_run_json(found, found.id))
    elif not quiet:
        friendly(state, "run.switched")
        _line(msg("run.switched.fact", id=found.id))


@cli.command()
@click.option("--json", "as_json", is_flag=True, help=_JSON_HELP)
@pass_state
def status(state: Context, as_json: bool) -> None:
    """The current run, its stage and next stages, and its latest manifest of each kind."""
    from steve.porcelain.status import status as status_lib

    st = status_lib(state.repo())
    head = st.head
    if as_json:
        _json_line(
            {
                "head": None
                if head is None
                else {
                    "ref": head.name,
                    "symref": head.symbolic,
                    "id": head.target.hex if head.target else None,
                },
                "runs": st.runs,
                "run": None if st.run is None else _run_json(st.run, st.run.id),
                "next": [s.value for s in st.allowed],
                "manifests": [
                    {"kind": m.kind.value, "ref": m.ref, "id": m.oid.hex, "summary": m.summary}
                    for m in st.manifests
                ],
            }
        )
        return
    if head is not None:
        where = head.symbolic or head.name
        _line(f"HEAD     {where} -> {head.target.hex if head.target else '(unborn)'}")
    if st.run is None:
        _line(msg("status.no_run", runs=st.runs))
        return
    _line(f"run      {st.run.id} ({st.run.name})")
    _line(f"stage    {st.run.stage.value}")
    _line(f"next     {' '.join(s.value for s in st.allowed) or '(none)'}")
    if not st.manifests:
        _line(msg("status.no_manifests"))
    for m in st.manifests:
        _line(f"{m.kind.value:<17}{m.oid.short()}  {m.summary}")
