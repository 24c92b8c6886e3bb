"""The homely layer (docs/messages.md): friendly lines beside the facts, and gentle
wellbeing nudges after a command's result.

Every porcelain status line goes through :func:`say`: it prints the message's
factual line (``ID.fact``) where the command always printed it, and, only on an
interactive terminal (standard output and standard error both terminals) and
never with ``--quiet``, the friendly line (``ID.friendly``) first, on standard
error.  Scripts, pipes and files never see a friendly line, so machine output
is what it always was.

Nudges (:func:`nudges`) are computed by :mod:`steve.porcelain.homely` after a
command that opened the repository ran on a terminal; the CLI prints them last
(:data:`steve.cli.app.AFTERWORD`), never during a build or a prompt.
"""

from __future__ import annotations

import os
import sys
import time
from typing import TYPE_CHECKING

import click

from steve.cli.app import LENT_REPO
from steve.messages import messages, msg

if TYPE_CHECKING:
    from steve.cli.app import Context
    from steve.porcelain.stages import Recorded


def interactive() -> bool:
    """True when a person reads both output streams on a terminal (inside steved:
    when the forwarding client's were, as it tells in ``STEVE_TERMINAL``)."""
    if LENT_REPO.get() is not None:
        return os.environ.get("STEVE_TERMINAL") == "1"
    try:
        return os.isatty(sys.stdout.fileno()) and os.isatty(sys.stderr.fileno())
    except (OSError, ValueError, AttributeError):
        return False


def friendly_allowed(state: Context | None = None) -> bool:
    """Whether friendly lines may be printed now: a terminal, and no ``--quiet``
    (``state``: the command's Context; None: the current click context's)."""
    if state is None:
        from steve.cli.app import Context

        ctx = click.get_current_context(silent=True)
        state = None if ctx is None else ctx.find_object(Context)
    if state is not None and state.quiet:
        return False
    return interactive()


def say(state: Context | None, message_id: str, /, *, err: bool = False, **facts: object) -> None:
    """Print ``message_id``'s factual line (standard output, or standard error with
    ``err``), preceded on a terminal without ``--quiet`` by its friendly line."""
    friendly = f"{message_id}.friendly"
    if friendly in messages() and friendly_allowed(state):
        click.echo(msg(friendly, **facts), err=True)
    click.echo(msg(f"{message_id}.fact", **facts), err=err)


def friendly(state: Context | None, message_id: str, /, **facts: object) -> None:
    """Only the friendly line of ``message_id`` (standard error, when allowed): for a
    command whose factual line is its result (an id on standard output), printed
    by the command itself right after."""
    if friendly_allowed(state):
        click.echo(msg(f"{message_id}.friendly", **facts), err=True)


def report_recorded(state: Context | None, result: Recorded, kind: str) -> None:
    """The status lines of a recorded manifest (standard error): the transition it
    made, or the amendment, each after its friendly line on a terminal."""
    if result.transition is not None:
        t = result.transition
        say(state, "run.moved", err=True, run=result.run.id, from_stage=t.from_stage,
            to_stage=t.to_stage)  # fmt: skip
    if result.amends is not None:
        say(state, "run.amended", err=True, run=result.run.id, kind=kind,
            old=result.amends.short(), stage=result.run.stage.value)  # fmt: skip


def nudges(state: Context) -> list[str]:
    """The nudge lines due after this command (each recorded as a ``homely.nudge``
    event by the library), for the CLI to print after the result."""
    from steve.errors import SteveError, TestsFailed
    from steve.porcelain.homely import check_nudges, settings_of

    repo = state.repo()
    settings = settings_of(repo)
    if settings.nudges == "off":
        return []
    tests_failed: bool | None = None
    if state.command == "test":
        tests_failed = isinstance(state.failure, TestsFailed)
    now = int(time.time())
    local = time.localtime(now)
    try:
        due = check_nudges(
            repo,
            settings,
            now=now,
            hour=local.tm_hour,
            minute=local.tm_min,
            tests_failed=tests_failed,
        )
    except SteveError:  # a nudge never turns a command into a failure
        return []
    lines = []
    for nudge in due:
        lines.append(msg(f"homely.{nudge.kind}.friendly", **nudge.facts))
        lines.append("  " + msg(f"homely.{nudge.kind}.fact", **nudge.facts))
    return lines
