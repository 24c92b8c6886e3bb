"""The policy gate's commands: ``steve approvals | approve | deny | kill-switch | deploy``.

Each is one call into :mod:`steve.porcelain.approvals`,
:mod:`steve.porcelain.hostaction` or :mod:`steve.porcelain.deploy`.  This
module reads ``STEVE_KILL_SWITCH`` and owns the terminal: the yes/no prompt
of a host action is the callback it passes to the library, and only when
stdin and stderr are terminals.
"""

from __future__ import annotations

import datetime
import json
import os
import select
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from steve.cli.app import Context, cli, frozen_time, identity, pass_state

if TYPE_CHECKING:
    from steve.porcelain.approvals import Approval
    from steve.porcelain.gate import Action
    from steve.porcelain.hostaction import Answer, Preview, Prompt
    from steve.repo import Repo


def kill_env() -> bool:
    """``STEVE_KILL_SWITCH=1`` (any value but empty and 0 turns it on)."""
    return os.environ.get("STEVE_KILL_SWITCH", "").strip() not in ("", "0")


def _when(t: int | None) -> str:
    if t is None:
        return "-"
    return datetime.datetime.fromtimestamp(t, datetime.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _approval_line(a: Approval) -> str:
    r = a.request
    who = f" by {a.answer.actor}" if a.answer else ""
    return (
        f"{r.id.hex[:12]}  {a.state.value:<8}  expires {_when(r.expires_at)}{who}  {r.summary}"
    )


@cli.command("approvals")
@click.option("--all", "all_", is_flag=True, help="Also list denied, expired and used requests.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per request.")
@pass_state
def approvals_cmd(state: Context, all_: bool, as_json: bool) -> None:
    """List approval requests: pending and granted (approved, unused, unexpired)."""
    from steve.porcelain.approvals import State, list_approvals
    from steve.porcelain.hostaction import wall_clock

    shown = (State.PENDING, State.APPROVED)
    for a in list_approvals(state.repo(), now=wall_clock()):
        if not all_ and a.state not in shown:
            continue
        if as_json:
            click.echo(json.dumps(a.to_json(), sort_keys=True))
        else:
            click.echo(_approval_line(a))


def _answer(state: Context, spec: str, approve: bool, reason: str | None) -> None:
    from steve.porcelain.approvals import answer
    from steve.porcelain.hostaction import wall_clock

    done = answer(
        state.repo(),
        spec,
        approve=approve,
        now=wall_clock(),
        actor=str(identity()),
        reason=reason,
    )
    click.echo(_approval_line(done))


@cli.command("approve")
@click.argument("approval_id", metavar="ID")
@click.option("--reason", default=None, help="Why (recorded with the answer).")
@pass_state
def approve(state: Context, approval_id: str, reason: str | None) -> None:
    """Grant the pending approval request ID (an id prefix of 4+ hex digits)."""
    _answer(state, approval_id, True, reason)


@cli.command("deny")
@click.argument("approval_id", metavar="ID")
@click.option("--reason", default=None, help="Why (recorded with the answer).")
@pass_state
def deny(state: Context, approval_id: str, reason: str | None) -> None:
    """Refuse the pending approval request ID."""
    _answer(state, approval_id, False, reason)


@cli.command("kill-switch")
@click.argument("change", type=click.Choice(["on", "off", "status"]), default="status")
@click.option("--reason", default=None, help="Why (recorded in the event).")
@click.option("--json", "as_json", is_flag=True, help="Print the state as one JSON object.")
@pass_state
def kill_switch_cmd(state: Context, change: str, reason: str | None, as_json: bool) -> None:
    """Turn the kill switch on or off, or show it.  On: every host action and every
    container is denied, and the repository's running containers are stopped."""
    from steve.errors import SteveError
    from steve.porcelain.hostaction import kill_switch, set_kill_switch

    repo = state.repo()
    changed = False
    stopped: list[str] = []
    warning = None
    if change != "status":
        changed = set_kill_switch(repo, change == "on", actor=str(identity()), reason=reason)
    switch = kill_switch(repo, kill_env=kill_env())
    if change == "on":
        from steve.cli.containers import engine

        try:
            with engine() as eng:
                stopped = eng.janitor.stop_running(repo.repository_id)
        except SteveError as err:  # the switch is on; the engine could not be told
            warning = f"running containers not stopped: {err.message} ({err.detail}) [{err.code}]"
    if as_json:
        value: dict[str, Any] = {
            "on": switch.on,
            "repository": switch.stored,
            "environment": switch.env,
            "changed": changed,
            "stopped": stopped,
        }
        click.echo(json.dumps(value, sort_keys=True))
    else:
        click.echo(f"kill switch {'on' if switch.on else 'off'} ({switch.source})")
        for cid in stopped:
            click.echo(f"stopped container {cid[:12]}")
    if warning:
        click.echo(f"steve: warning: {warning}", err=True)


def _terminal_prompt(timeout: int, reason: str | None = None) -> Prompt:
    from steve.porcelain.hostaction import Answer

    def ask(action: Action, preview: Preview) -> tuple[Answer, str | None]:
        click.echo(preview.text(), err=True, nl=False)
        click.echo(f"Go ahead? [y/N] (no answer in {timeout}s: timed out) ", err=True, nl=False)
        ready, _, _ = select.select([sys.stdin], [], [], timeout)
        if not ready:
            click.echo("", err=True)
            return Answer.TIMED_OUT, f"no answer within {timeout}s"
        line = sys.stdin.readline().strip().lower()
        return (Answer.YES, reason) if line in ("y", "yes") else (Answer.NO, reason)

    return ask


def _on_terminal() -> bool:
    try:
        return os.isatty(sys.stdin.fileno()) and os.isatty(sys.stderr.fileno())
    except (OSError, ValueError, AttributeError):
        return False


PROMPT_TIMEOUT = 300


def gate_options(repo: Repo) -> dict[str, Any]:
    """``gate`` and ``prompt`` for a library call that may run host actions (build and
    test review host-reaching container grants): the repository's gate with
    STEVE_KILL_SWITCH, and the yes/no prompt when on a terminal."""
    from steve.porcelain.hostaction import gate_settings

    return {
        "gate": gate_settings(repo, kill_env=kill_env()),
        "prompt": _terminal_prompt(PROMPT_TIMEOUT) if _on_terminal() else None,
    }


@cli.command("deploy")
@click.option(
    "--to",
    "target",
    required=True,
    type=click.Path(path_type=Path),
    help="The folder to create (a new or empty folder).",
)
@click.option("--run", "run_spec", metavar="RUN", help="Run id, prefix or name (default: current).")
@click.option("--dry-run", "-n", is_flag=True, help="Only show what would be deployed.")
@click.option(
    "--override-unverified",
    is_flag=True,
    help="Deploy without a passing certificate of the current build (needs --reason; recorded).",
)
@click.option("--reason", default=None, help="Why: the override's reason, and the answer's.")
@click.option(
    "--timeout",
    type=click.IntRange(1, 86400),
    default=PROMPT_TIMEOUT,
    show_default=True,
    help="Seconds to wait for the yes/no answer on a terminal.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
@pass_state
def deploy_cmd(
    state: Context,
    target: Path,
    run_spec: str | None,
    dry_run: bool,
    override_unverified: bool,
    reason: str | None,
    timeout: int,
    as_json: bool,
) -> None:
    """Write the run's certified artifacts to a new folder, after a yes on the terminal
    or a granted approval (`steve approve`); the decision is frozen in a deploy receipt."""
    from steve.porcelain.deploy import deploy, plan_deploy
    from steve.porcelain.hostaction import gate_settings

    repo = state.repo()
    if dry_run:
        plan = plan_deploy(
            repo,
            target,
            run=run_spec,
            override_reason=reason,
            override=override_unverified,
        )
        if as_json:
            click.echo(json.dumps(_plan_json(plan), sort_keys=True))
        else:
            click.echo(plan.preview.text(), nl=False)
        return
    if override_unverified:
        click.echo(
            "steve: WARNING: --override-unverified: artifacts no passing test certificate "
            "covers may be deployed; the override is recorded in the deploy receipt",
            err=True,
        )
    _, tz = frozen_time()
    report = deploy(
        repo,
        target,
        run=run_spec,
        override_reason=reason,
        override=override_unverified,
        gate=gate_settings(repo, kill_env=kill_env()),
        prompt=_terminal_prompt(timeout, reason) if _on_terminal() else None,
        clock=lambda: frozen_time()[0],
        tz=tz,
        actor=str(identity()),
    )
    if as_json:
        value = _plan_json(report.plan)
        value.update(
            receipt=report.receipt.hex,
            decision=report.decision.model_dump(),
            written=[w.model_dump() for w in report.written],
            stage=None if report.transition is None else report.transition.to_stage.value,
        )
        click.echo(json.dumps(value, sort_keys=True))
        return
    d = report.decision
    click.echo(f"deployed {len(report.written)} files to {report.plan.target}")
    why = f": {d.reason}" if d.reason else ""
    click.echo(f"decision {d.decision} via {d.via} by {d.actor}{why}")
    click.echo(f"receipt  {report.receipt.hex}")


def _plan_json(plan: Any) -> dict[str, Any]:
    return {
        "run": plan.run.id,
        "target": str(plan.target),
        "certificate": None if plan.certificate is None else plan.certificate.hex,
        "unverified": plan.unverified,
        "action": plan.action.digest.hex,
        "files": [
            {"path": f.path, "blob": f.blob.hex, "size": f.size, "executable": f.executable}
            for f in plan.files
        ],
    }
