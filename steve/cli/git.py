"""Git bridge commands: export-git, verify-git, import-git (one library call each).

dulwich is imported by the commands (through steve.gitbridge), so other
commands start without it.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from steve.cli.app import Context, cli, pass_state
from steve.errors import GitVerifyFailed

if TYPE_CHECKING:
    from steve.gitbridge.export import SkippedRef


def _line(text: str) -> None:
    sys.stdout.buffer.write(text.encode() + b"\n")


def _note(text: str) -> None:
    click.echo(text, err=True)


_PATH = click.Path(path_type=Path)


@cli.command("export-git")
@click.argument("path", type=_PATH)
@click.argument("refs", nargs=-1)
@click.option(
    "--all", "all_refs", is_flag=True, help="Export every ref (unexportable ones listed)."
)
@click.option("--force", is_flag=True, help="Allow non-fast-forward ref updates (old ids shown).")
@click.option("--bare", is_flag=True, help="Create a bare repository if PATH is missing or empty.")
@pass_state
def export_git(
    state: Context, path: Path, refs: tuple[str, ...], all_refs: bool, force: bool, bare: bool
) -> None:
    """Export manifest history to the git repository at PATH (created if missing).

    REF... default to every branch and the current run's refs.  Prints
    `<git id> <git ref> <status>` per ref.
    """
    from steve.cli.progress import progress_display
    from steve.gitbridge import RefStatus
    from steve.gitbridge import export_git as export_lib
    from steve.porcelain.runs import current_run

    repo = state.repo()
    run = current_run(repo) if not refs and not all_refs else None
    with progress_display(state) as shown:
        report = export_lib(
            repo,
            path,
            refs,
            all_refs=all_refs,
            force=force,
            bare=bare,
            run=run.id if run is not None else None,
            progress=shown,
        )
    for r in report.refs:
        _line(f"{r.new} {r.git_ref} {r.status.value}")
        if r.status is RefStatus.FORCED:
            _note(f"forced {r.git_ref}: was {r.old}")
    _note_skipped(report.skipped)
    if report.head is not None:
        _note(f"HEAD -> {report.head}")
    from steve.cli.events import export_checkpoints

    export_checkpoints(state, path)
    where = "created" if report.created else "updated"
    pack = f"in {report.pack}" if report.pack else "(nothing new)"
    _note(
        f"{where} {path}: {report.commits} commit(s), {report.tags} tag(s), "
        f"{report.objects} object(s) {pack}"
    )


@cli.command("verify-git")
@click.argument("path", type=_PATH)
@click.argument("rev", required=False)
def verify_git(path: Path, rev: str | None) -> None:
    """Audit an exported git repository by hash, without STEVE's key (exit 9 on problems).

    Checks every commit reachable from REV (default: every ref).
    """
    from steve.gitbridge import verify_git as verify_lib

    report = verify_lib(path, rev)
    for problem in report.problems:
        _line(str(problem))
    for ref in report.unchecked:
        _note(f"not checked: {ref} (no Steve-Object id)")
    verdict = "ok" if report.ok else f"{len(report.problems)} problem(s)"
    signed = f", {report.checkpoints} signed checkpoint(s)" if report.checkpoints else ""
    _note(f"checked {report.commits} commit(s), {report.tags} tag(s){signed}: {verdict}")
    if not report.ok:
        raise GitVerifyFailed(str(path), report.commits + report.tags, len(report.problems))


@cli.command("import-git")
@click.argument("path", type=_PATH)
@click.argument("rev")
@click.option(
    "--ref", "ref", default=None, help="Point REF (refs/imports/REF if short) at the tree."
)
@pass_state
def import_git(state: Context, path: Path, rev: str, ref: str | None) -> None:
    """Store the tree of git revision REV (commit, tag or tree) of PATH; print the tree id."""
    from steve.cli.progress import progress_display
    from steve.gitbridge import import_git as import_lib

    repo = state.repo()
    with progress_display(state) as shown:
        result = import_lib(repo, path, rev, ref=ref, progress=shown)
    _line(result.tree.hex)
    source = f"commit {result.commit}" if result.commit else f"tree {result.git_tree}"
    _note(f"imported {source}" + (f"; {result.ref} -> {result.tree.short()}" if result.ref else ""))


def _note_skipped(skipped: Sequence[SkippedRef], most: int = 5) -> None:
    """One line per skipped ref, but a namespace with more than ``most`` of them
    (the index refs of model exchanges or approvals under ``--all``) in one line
    with its count and the first reason."""
    groups: dict[str, list[SkippedRef]] = {}
    for s in skipped:
        groups.setdefault("/".join(s.steve_ref.split("/")[:2]) + "/", []).append(s)
    for prefix, refs in groups.items():
        if len(refs) <= most:
            for s in refs:
                _note(f"skipped {s.steve_ref}: {s.reason}")
        else:
            _note(
                f"skipped {len(refs)} refs under {prefix} (the first: {refs[0].steve_ref}: "
                f"{refs[0].reason})"
            )
