"""``steve tui``: the terminal UI (docs/tui.md)."""

from __future__ import annotations

import sys

import click

from steve.cli.app import Context, cli, is_terminal, open_repo, pass_state
from steve.errors import NotATerminal


@cli.command("tui")
@click.option("--run", "run_id", metavar="RUN", help="Run id, prefix or name (default: current).")
@click.option(
    "--poll",
    type=click.FloatRange(0.02, 5.0),
    default=0.1,
    show_default=True,
    metavar="SECONDS",
    help="How often the event log is read for new events.",
)
@pass_state
def tui(state: Context, run_id: str | None, poll: float) -> None:
    """The run's stage machine, the plan DAG with live node states (following the
    event log, so another process may build), the selected node's log, manifests
    and receipts, and keys for the next allowed command (b build, t test, ? help).

    Reads only: the repository is opened for reading and the keys run the real
    `steve build` / `steve test` as child processes.
    """
    for name, stream in (("standard input", sys.stdin), ("standard output", sys.stdout)):
        if not is_terminal(stream.buffer):
            raise NotATerminal(name)
    from steve.events import EventLog
    from steve.tui.app import SteveTui

    root = state.root()
    repo = open_repo(root)  # not state.repo(): no outbox drain, nothing is written
    try:
        repo.forbid_writes()  # SQLite's query_only: a write would fail, not happen
        log = EventLog.for_repo(repo)
        try:
            log.forbid_writes()
            argv = (sys.executable, "-m", "steve", "-C", str(root))
            SteveTui(repo, log, run=run_id, steve_argv=argv, poll=poll).run()
        finally:
            log.close()
    finally:
        repo.close()
