"""Build, test and replay commands: ``steve build``, ``steve test``, ``steve replay``.

Each command opens the engine (``DOCKER_HOST`` when set, see
:func:`steve.cli.containers.engine`), makes one porcelain call and prints
one line per node.  Progress: when standard error is a terminal (and no
``--quiet``), a live progress display there (:mod:`steve.cli.progress`);
otherwise nothing.  ``-v``/``--verbose`` (build, test) prints a plain
``started NODE`` line as each step starts instead, and shows the steps'
output on standard error as it arrives, line by line (``NODE| line`` for stdout,
``NODE! line`` for stderr); it always goes into the log objects and events.
A failed step or test, or a replay mismatch, exits 13 after the summary.
``SOURCE_DATE_EPOCH`` fixes the time of the stage transitions and the
certificate (receipts carry the steps' real times).

SIGINT (Ctrl-C) and SIGTERM: the first one stops the running steps (SIGTERM,
then SIGKILL after the runner's grace period), starts no new one, records
the stopped steps as ``StepError.Interrupted`` and removes their
containers and volumes, saying so on standard error; a second one kills the
running steps at once and the cleanup still finishes.  The command then
exits 130 (STEVE-CONT-007).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

from steve.cli.app import Context, cli, frozen_time, identity, pass_state
from steve.cli.gate import gate_options
from steve.cli.homely import say
from steve.cli.llmopts import llm_options
from steve.cli.stages import build_target
from steve.messages import msg

if TYPE_CHECKING:
    from steve.exec import DockerRunner
    from steve.porcelain.actioncache import StaleEntry
    from steve.porcelain.junit import JUnitCase, JUnitReport
    from steve.porcelain.replay import ReplayReport
    from steve.porcelain.steps import NodeOutcome, NodeStatus, Progress, ProgressCallback
    from steve.porcelain.testing import TestReport
    from steve.progress import Progress as ProgressReports
    from steve.repo import Repo


def _echo(text: str) -> None:
    click.echo(text)


def _outcome_line(o: NodeOutcome) -> str:
    receipt = o.receipt.short() if o.receipt is not None else "-" * 12
    line = f"{o.status.value:<8} {receipt}  {o.node}"
    if o.failure:
        line += f"  {o.failure}: {o.detail}"
    elif o.status.value == "skipped":
        line += f"  ({o.detail})"
    return line


LINE_MAX = 4096  # a longer line is shown in pieces of this many bytes


class _LiveLog:
    """``-v``: step output on standard error as it arrives, one ``NODE| line`` per line
    (stderr lines ``NODE! line``); at most LINE_MAX bytes buffered per stream."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._partial: dict[tuple[str, str], bytearray] = {}

    def __call__(self, node: str, stream: str, data: bytes) -> None:
        with self._lock:
            buf = self._partial.setdefault((node, stream), bytearray())
            buf += data
            while True:
                cut = buf.find(b"\n")
                if cut < 0 and len(buf) < LINE_MAX:
                    break
                end = cut + 1 if 0 <= cut < LINE_MAX else LINE_MAX
                self._show(node, stream, bytes(buf[:end]))
                del buf[:end]

    def flush(self) -> None:
        with self._lock:
            for (node, stream), buf in self._partial.items():
                if buf:
                    self._show(node, stream, bytes(buf))
                    buf.clear()

    @staticmethod
    def _show(node: str, stream: str, line: bytes) -> None:
        mark = "|" if stream == "stdout" else "!"
        text = line.rstrip(b"\n").decode("utf-8", "replace")
        text = "".join(c if c.isprintable() or c == "\t" else "\ufffd" for c in text)
        click.echo(f"{node}{mark} {text}", err=True)


@contextmanager
def _live_log(verbose: bool) -> Iterator[_LiveLog | None]:
    if not verbose:
        yield None
        return
    live = _LiveLog()
    try:
        yield live
    finally:
        live.flush()


@contextmanager
def _progress_display(
    state: Context, title: str, *, quiet: bool = False, plain_only: bool = False
) -> Iterator[ProgressCallback | None]:
    """A progress callback: with ``plain_only`` (``-v``) a ``started NODE`` line per step
    (so live step output is not drawn over), else the live display on a terminal
    (:func:`steve.cli.progress.node_display`); none when ``quiet`` or not a terminal."""
    if plain_only and not (quiet or state.quiet):

        def plain(p: Progress) -> None:
            if p.status.value == "started":
                click.echo(f"started  {'':12}  {p.node}", err=True)

        yield plain
        return
    from steve.cli.progress import node_display

    with node_display(title, state, quiet=quiet) as shown:
        yield shown


@contextmanager
def _stop_on_signals(runner: DockerRunner) -> Iterator[list[str]]:
    """SIGINT/SIGTERM handlers for the block (see the module docstring); yields the names
    of the signals received."""
    seen: list[str] = []

    def handler(signum: int, frame: object) -> None:
        name = signal.Signals(signum).name
        seen.append(name)
        if len(seen) == 1:
            running = runner.running
            runner.cancel(f"interrupted by {name}")
            msg = (
                f"steve: {name}: stopping {running} running step(s) (SIGTERM, SIGKILL after "
                f"{runner.stop_grace_s:g} s), removing their containers and volumes; no new "
                "step starts (interrupt again to kill them at once)\n"
            )
        else:
            runner.cancel(now=True)
            msg = (
                f"steve: {name} again: killing the running step(s) now; still removing "
                "their containers and volumes\n"
            )
        # os.write: a signal handler must not re-enter a buffered stream
        os.write(2, msg.encode())

    if threading.current_thread() is not threading.main_thread():
        # inside steved (a forwarded command runs on its writer thread): signals are
        # the daemon's (SIGTERM lets in-flight writes finish, docs/daemon.md)
        yield seen
        return
    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, handler) for sig in signals}
    try:
        yield seen
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _raise_if_interrupted(seen: list[str], outcomes: list[NodeOutcome]) -> None:
    from steve.errors import StepsInterrupted

    if seen:
        stopped = [o.node for o in outcomes if o.failure == "StepError.Interrupted"]
        raise StepsInterrupted(f"{seen[0]} received", stopped)


def _runner_and_clock() -> tuple[object, Callable[[], int], int]:
    from steve.cli.containers import engine
    from steve.exec import DockerRunner

    eng = engine()
    _, tz = frozen_time()
    return DockerRunner(eng), lambda: frozen_time()[0], tz


_JSON = click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON object (schema: docs/cli.md)."
)
_QUIET = click.option(
    "--quiet", "-q", is_flag=True, help="No progress and no per-node lines (errors still shown)."
)


def _node_json(o: NodeOutcome) -> dict[str, Any]:
    return {
        "node": o.node,
        "kind": o.kind,
        "status": o.status.value,
        "receipt": None if o.receipt is None else o.receipt.hex,
        "action_key": None if o.action_key is None else o.action_key.hex,
        "failure": None if o.failure is None else o.failure.value,
        "detail": o.detail,
        "duration_ms": o.duration_ms,
        "outputs": {name: oid.hex for name, oid in sorted(o.outputs.items())},
        "logs": {ref.stream: ref.blob for ref in o.logs},
    }


def _stale_json(stale: list[StaleEntry]) -> list[dict[str, Any]]:
    return [
        {
            "key": s.key_hex,
            "receipt": None if s.receipt is None else s.receipt.hex,
            "reason": s.reason,
        }
        for s in stale
    ]


def _print_json(value: dict[str, Any]) -> None:
    click.echo(json.dumps(value, sort_keys=True, ensure_ascii=False))


@cli.command("build")
@click.option("--run", "run_spec", metavar="RUN", help="Run id, prefix or name (default: current).")
@click.option(
    "--plan", "plan_rev", metavar="REV", help="Build this plan (e.g. an amendment) instead."
)
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Steps run at the same time.",
)
@click.option("--no-cache", is_flag=True, help="Run every node, even with a cached result.")
@click.option(
    "-v", "--verbose", is_flag=True, help="Show the steps' output on stderr as it arrives."
)
@llm_options
@_JSON
@_QUIET
@pass_state
def build_cmd(
    state: Context,
    run_spec: str | None,
    plan_rev: str | None,
    jobs: int,
    no_cache: bool,
    verbose: bool,
    llm_name: str | None,
    llm_model: str | None,
    as_json: bool,
    quiet: bool,
) -> None:
    """Run the plan's build nodes in containers; one receipt per node.

    Generate nodes ask the model chosen with --llm for a diff (applied in Python to
    the node's input, then built in the container).
    """
    from steve.errors import BuildFailed
    from steve.exec import DockerRunner
    from steve.porcelain.build import build

    repo = state.repo()
    plan = repo.rev_parse(plan_rev) if plan_rev else None
    target = build_target(state, llm_name, llm_model)
    runner, clock, tz = _runner_and_clock()
    assert isinstance(runner, DockerRunner)
    with (
        _live_log(verbose) as live,
        _progress_display(state, "build", quiet=quiet or as_json, plain_only=verbose) as progress,
        _stop_on_signals(runner) as signals,
    ):
        report = build(
            repo,
            runner,
            run=run_spec,
            plan=plan,
            jobs=jobs,
            no_cache=no_cache,
            clock=clock,
            tz=tz,
            actor=str(identity()),
            on_progress=progress,
            on_log=live,
            events=state.event_log(),
            **gate_options(repo),
            model=target,
        )
    if as_json:
        _print_json(
            {
                "run": report.run.id,
                "plan": report.plan.hex,
                "stage": report.run.stage.value,
                "ok": report.ok,
                "counts": {st.value: report.count(st) for st in _statuses()},
                "nodes": [_node_json(o) for o in report.outcomes],
                "stale": _stale_json(report.stale),
            }
        )
    elif not quiet:
        for o in report.outcomes:
            _echo(_outcome_line(o))
        for s in report.stale:
            click.echo(msg("build.stale", key=s.key_hex[:12], reason=s.reason), err=True)
        counts = ", ".join(
            f"{report.count(st)} {st.value}" for st in _statuses() if report.count(st)
        )
        say(state, "build.ok" if report.ok else "build.failed",
            counts=counts or msg("build.nothing"), run=report.run.id, plan=report.plan.short(),
            stage=report.run.stage.value)  # fmt: skip
    _raise_if_interrupted(signals, report.outcomes)
    if not report.ok:
        raise BuildFailed(report.run.id, [o.node for o in report.failed])


def _statuses() -> list[NodeStatus]:
    from steve.porcelain.steps import NodeStatus

    return [NodeStatus.BUILT, NodeStatus.CACHED, NodeStatus.FAILED, NodeStatus.SKIPPED]


def _junit_json(report: JUnitReport | None) -> dict[str, Any] | None:
    if report is None:
        return None
    return {
        "tests": report.tests,
        "failures": report.failures,
        "errors": report.errors,
        "skipped": report.skipped,
        "failed": [
            {"name": c.name, "outcome": c.outcome, "message": c.message} for c in report.failed
        ],
    }


@cli.command("test")
@click.option("--run", "run_spec", metavar="RUN", help="Run id, prefix or name (default: current).")
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Tests run at the same time.",
)
@click.option("--no-cache", is_flag=True, help="Run every test, even with a cached pass.")
@click.option(
    "-v", "--verbose", is_flag=True, help="Show the tests' output on stderr as it arrives."
)
@_JSON
@click.option(
    "--quiet",
    "-q",
    is_flag=True,
    help="Print only the certificate id (no progress, no per-node lines).",
)
@pass_state
def test_cmd(
    state: Context,
    run_spec: str | None,
    jobs: int,
    no_cache: bool,
    verbose: bool,
    as_json: bool,
    quiet: bool,
) -> None:
    """Run the plan's test nodes in containers and freeze a test certificate."""
    from steve.errors import TestsFailed
    from steve.exec import DockerRunner
    from steve.porcelain.testing import run_tests

    repo = state.repo()
    runner, clock, tz = _runner_and_clock()
    assert isinstance(runner, DockerRunner)
    with (
        _live_log(verbose) as live,
        _progress_display(state, "test", quiet=quiet or as_json, plain_only=verbose) as progress,
        _stop_on_signals(runner) as signals,
    ):
        report = run_tests(
            repo,
            runner,
            run=run_spec,
            jobs=jobs,
            no_cache=no_cache,
            clock=clock,
            tz=tz,
            actor=str(identity()),
            on_progress=progress,
            on_log=live,
            events=state.event_log(),
            **gate_options(repo),
        )
    if as_json:
        _print_json(
            {
                "run": report.run.id,
                "plan": report.plan.hex,
                "stage": report.run.stage.value,
                "certificate": report.certificate.hex,
                "reused": report.reused,
                "verdict": report.verdict,
                "ok": report.ok,
                "tests": [
                    {**_node_json(o), "junit": _junit_json(report.junit.get(o.node))}
                    for o in report.tests
                ],
                "failures": [f.model_dump(mode="json") for f in report.failures],
                "stale": _stale_json(report.stale),
            }
        )
    elif quiet:
        _echo(report.certificate.hex)
    else:
        _print_test_report(state, report)
    _raise_if_interrupted(signals, report.tests)
    if not report.ok:
        failed = [str(f.node) for f in report.failures]
        raise TestsFailed(report.run.id, report.certificate.hex, failed)


def _print_test_report(state: Context, report: TestReport) -> None:
    for o in report.tests:
        _echo(_outcome_line(o))
        junit = report.junit.get(o.node)
        if junit is not None:
            _echo(
                f"{'':8} {'':12}  junit: {junit.tests} tests, {junit.failures} failures, "
                f"{junit.errors} errors, {junit.skipped} skipped"
            )
            for case in junit.failed:
                _echo(_case_lines(case))
        elif not o.ok and o.kind == "test" and not o.junit:
            why = "declare the report file as an output ending in .xml"
            _echo(f"{'':8} {'':12}  junit: none ({why})")
        if not o.ok and o.receipt is not None:
            _echo(f"{'':8} {'':12}  output: steve logs {o.receipt.short()}")
    for s in report.stale:
        click.echo(msg("build.stale", key=s.key_hex[:12], reason=s.reason), err=True)
    same = msg("test.unchanged") if report.reused else ""
    _echo(msg("test.certificate", id=report.certificate.hex, unchanged=same))
    tests, failures, run, stage = (
        len(report.tests), len(report.failures), report.run.id, report.run.stage.value
    )  # fmt: skip
    if report.verdict in ("pass", "fail"):
        say(state, f"test.{report.verdict}", tests=tests, failures=failures, run=run, stage=stage)
    else:
        _echo(msg("test.verdict.fact", verdict=report.verdict, tests=tests, failures=failures,
                  run=run, stage=stage))  # fmt: skip


def _case_lines(case: JUnitCase) -> str:
    """``FAIL classname.name: message`` (an error is ``ERROR``), the message's further
    lines indented under it."""
    pad = " " * 24
    first, *rest = (case.message or "(no message)").splitlines() or ["(no message)"]
    label = "FAIL" if case.outcome == "failure" else "ERROR"
    lines = [f"{pad}{label} {case.name}: {first}", *(f"{pad}      {line}" for line in rest[:20])]
    if len(rest) > 20:
        lines.append(f"{pad}      ... {len(rest) - 20} more lines")
    return "\n".join(lines)


def _replay_line(r: ReplayReport) -> str:
    line = f"{r.verdict:<16} {r.receipt.short()}  {r.node}  verdict {r.verdict_id.short()}"
    if not r.key_matches:
        line += "  (note: the action key recomputed differs from the receipt's)"
    return line


@cli.command("replay")
@click.argument("receipt", required=False, metavar="RECEIPT")
@click.option("--all", "all_run", metavar="RUN", help="Replay every node receipt of RUN.")
@pass_state
def replay_cmd(state: Context, receipt: str | None, all_run: str | None) -> None:
    """Re-run a receipt's step from its pinned inputs and compare the outputs."""
    from steve.errors import ReplayMismatch
    from steve.exec import DockerRunner

    if (receipt is None) == (all_run is None):
        raise click.UsageError("give RECEIPT or --all RUN")
    repo = state.repo()
    runner, clock, tz = _runner_and_clock()
    assert isinstance(runner, DockerRunner)
    from steve.cli.progress import progress_display

    with _stop_on_signals(runner) as signals, progress_display(state, at_once=True) as shown:
        reports = _replay(repo, runner, receipt, all_run, clock, tz, shown)
    if signals:
        from steve.errors import StepsInterrupted

        raise StepsInterrupted(f"{signals[0]} received", [r.node for r in reports])
    bad = [r for r in reports if not r.ok]
    for r in reports:
        for d in r.differing:
            exp = d.expected.short() if d.expected else "-"
            act = d.actual.short() if d.actual else "-"
            _echo(f"  {r.node}: {d.path}  {exp} -> {act}")
    if bad:
        raise ReplayMismatch(
            [r.receipt.hex for r in bad], [d.path for r in bad for d in r.differing]
        )


def _replay(
    repo: Repo,
    runner: DockerRunner,
    receipt: str | None,
    all_run: str | None,
    clock: Callable[[], int],
    tz: int,
    shown: ProgressReports | None,
) -> list[ReplayReport]:
    from steve.cli.progress import held
    from steve.porcelain.replay import replay, replay_all

    def say(r: ReplayReport) -> None:
        with held(shown):
            _echo(_replay_line(r))

    if receipt is not None:
        oid = repo.rev_parse(receipt)
        if shown is not None:
            shown.start("replay", 1, unit="steps")
            shown.advance(0, f"receipt {oid.short()}")
        reports = [replay(repo, runner, oid, clock=clock, tz=tz)]
        if shown is not None:
            shown.advance(1, reports[0].node)
            shown.finish()
        say(reports[0])
    else:
        reports = replay_all(
            repo, runner, all_run, clock=clock, tz=tz, on_replayed=say, progress=shown
        )
    return reports


@cli.command("logs")
@click.argument("target", required=False, metavar="[RUN|RECEIPT]")
@click.option("--node", "node", metavar="N", help="Only this node's output.")
@click.option(
    "--follow",
    "-f",
    is_flag=True,
    help="Print the run's output as its steps write it, until the build or test ends.",
)
@pass_state
def logs_cmd(state: Context, target: str | None, node: str | None, follow: bool) -> None:
    """Print the labelled stdout and stderr of a receipt's step or of a run's steps."""
    from steve.porcelain.logs import follow_logs, latest_start, step_logs
    from steve.porcelain.runs import find_run

    repo = state.repo()
    out = sys.stdout.buffer
    if follow:
        run = find_run(repo, target)
        events = state.event_log()
        if latest_start(events, run.id) is None:
            click.echo(
                f"steve: no build or test of run {run.id} yet: waiting for the next "
                "`steve build` or `steve test` (Ctrl-C stops)",
                err=True,
            )
        last: tuple[str, str] | None = None
        for piece in follow_logs(events, run.id, node=node):
            if (piece.node, piece.stream) != last:
                last = (piece.node, piece.stream)
                out.write(f"==> {piece.node} {piece.stream} <==\n".encode())
            out.write(piece.data)
            out.flush()
        return
    for section in step_logs(repo, target, node=node):
        note = " (empty)" if section.size == 0 else ""
        if section.truncated:
            note += " (truncated at the output limit)"
        header = (
            f"==> {section.node} {section.stream} (receipt {section.receipt.short()}){note} <=="
        )
        out.write(header.encode() + b"\n")
        ended = True
        for data in repo.iter_content(section.blob):
            if data:
                out.write(data)
                ended = data.endswith(b"\n")
        if not ended:
            out.write(b"\n")
    out.flush()
