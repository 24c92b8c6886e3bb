"""`steve backup`, `steve restore`, `steve rekey`, `steve vacuum`.

Environment (besides the passphrase variables of :mod:`steve.cli.app`):

``STEVE_NEW_PASSPHRASE``   the new passphrase for `steve rekey` (automation)
``STEVE_NEW_KEY_FILE``     file whose first line is the new passphrase
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from pathlib import Path

import click

from steve.cli.app import Context, cli, pass_state, passphrase
from steve.cli.homely import say
from steve.errors import KeyCacheError
from steve.messages import msg


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover


def _cached_or_passphrase(
    repository_id: str, check: bytes, derive: Callable[[str], bytes]
) -> bytes:
    """The key `steve unlock` cached for ``repository_id`` if it passes ``check``, else
    the one ``derive`` makes from the passphrase."""
    from steve.store import keycache
    from steve.store.kdf import key_matches

    key = keycache.cached_key(repository_id)
    if key is not None and key_matches(key, check):
        return key
    return derive(passphrase())


@cli.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the backup's manifest as JSON.")
@pass_state
def backup(state: Context, path: Path, as_json: bool) -> None:
    """Write a consistent, encrypted copy of the repository to the new directory PATH.

    Other processes keep writing meanwhile.  PATH gets both databases (still
    encrypted with the repository key: the backup opens with the passphrase
    the repository has now), the config, and a plain manifest.json of what it
    holds (counts, ref heads, event head; no content).  Written to a temporary
    directory and renamed: a failed backup leaves nothing at PATH.
    """
    from steve.cli.progress import progress_display
    from steve.porcelain.backup import backup as run_backup

    repo = state.repo()
    with progress_display(state, at_once=True) as shown:
        report = run_backup(repo, path, progress=shown)
    m = report.manifest
    if as_json:
        click.echo(m.to_json(), nl=False)
        return
    events = f", {m.events.events} events" if m.events else ""
    say(state, "backup.done", path=report.path, objects=m.counts["objects"],
        refs=m.counts["refs"], events=events, size=_human(sum(m.files.values())),
        seconds=f"{report.seconds:.2f}")  # fmt: skip


@cli.command()
@click.argument("source", metavar="BACKUP", type=click.Path(path_type=Path))
@click.argument("directory", metavar="DIR", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print what was restored as JSON.")
@pass_state
def restore(state: Context, source: Path, directory: Path, as_json: bool) -> None:
    """Restore the backup BACKUP into DIR/.steve (DIR must be new or empty).

    The passphrase is the one the repository had when the backup was taken.
    The restored files are checked against the backup's manifest and fsck'd
    (objects, refs, runs, the event chain) before DIR/.steve appears.
    """
    from steve.porcelain.backup import backup_key, read_backup
    from steve.porcelain.backup import restore as run_restore

    _, config = read_backup(source)
    key = _cached_or_passphrase(
        config.repository_id, config.key_check, lambda p: backup_key(source, p)
    )
    from steve.cli.progress import progress_display

    with progress_display(state, at_once=True) as shown:
        report = run_restore(source, directory, key, progress=shown)
    if as_json:
        out = {
            "directory": str(report.root),
            "objects": report.objects,
            "events": report.events,
            "refs": len(report.manifest.refs),
            "fsck": "ok",
        }
        click.echo(json.dumps(out, sort_keys=True))
        return
    say(None, "backup.restored", source=source, root=report.root, objects=report.objects,
        refs=len(report.manifest.refs), events=report.events)  # fmt: skip


def new_passphrase() -> str:
    """The new passphrase: STEVE_NEW_KEY_FILE, STEVE_NEW_PASSPHRASE or a prompt (twice)."""
    return passphrase(
        True,
        file_var="STEVE_NEW_KEY_FILE",
        env_var="STEVE_NEW_PASSPHRASE",
        prompt="New STEVE passphrase",
        missing="for the new passphrase set STEVE_NEW_PASSPHRASE or STEVE_NEW_KEY_FILE",
    )


@cli.command()
@click.option("--memory-kib", type=int, help="New Argon2id memory in KiB (default: keep).")
@click.option("--iterations", type=int, help="New Argon2id passes (default: keep).")
@click.option("--parallelism", type=int, help="New Argon2id lanes (default: keep).")
@pass_state
def rekey(
    state: Context, memory_kib: int | None, iterations: int | None, parallelism: int | None
) -> None:
    """Change the repository's passphrase (and optionally its Argon2id parameters).

    The current passphrase comes from STEVE_PASSPHRASE / STEVE_KEY_FILE / the
    prompt (or the cached key), the new one from STEVE_NEW_PASSPHRASE /
    STEVE_NEW_KEY_FILE / a prompt.  Both databases are rewritten under the new
    key with a fresh salt; a crash at any moment leaves the repository opening
    with the old passphrase or the new one.  Waits for other STEVE processes to
    close the repository.  The key cached by `steve unlock` is dropped.
    """
    from steve.repo import Repo
    from steve.store import keycache

    root = state.root()
    config = Repo.read_config(root)
    old_key = _cached_or_passphrase(
        config.repository_id, config.key_check, lambda p: Repo.derive_key(root, p)
    )
    report = Repo.rekey(
        root,
        old_key=old_key,
        new_passphrase=new_passphrase(),
        memory_kib=memory_kib,
        iterations=iterations,
        parallelism=parallelism,
    )
    dropped = False
    with contextlib.suppress(KeyCacheError):  # no kernel keyring here: nothing was cached
        dropped = keycache.forget_key(config.repository_id)
    kdf = report.config.kdf
    say(None, "backup.rekeyed", databases=", ".join(report.databases),
        memory_kib=kdf.memory_kib, iterations=kdf.iterations, parallelism=kdf.parallelism,
        dropped=msg("backup.rekeyed_dropped") if dropped else "")  # fmt: skip


@cli.command()
@click.option("--full", is_flag=True, help="Rebuild the whole file (VACUUM) instead.")
@click.option("--json", "as_json", is_flag=True, help="Print the sizes as JSON.")
@pass_state
def vacuum(state: Context, full: bool, as_json: bool) -> None:
    """Give the space freed by `steve gc` back to the file system.

    An incremental vacuum (the database is kept with auto_vacuum=INCREMENTAL)
    or, with --full, a rebuild; then the WAL is folded in and truncated.  It
    is a write like any other: it waits for the current writer, readers keep
    going.
    """
    report = state.repo().vacuum(full=full)
    if as_json:
        out = {
            "before": report.before,
            "after": report.after,
            "reclaimed": report.reclaimed,
            "free_pages": report.free_pages,
            "full": report.full,
        }
        click.echo(json.dumps(out, sort_keys=True))
        return
    say(state, "backup.vacuumed", before=_human(report.before), after=_human(report.after),
        reclaimed=_human(report.reclaimed), free_pages=report.free_pages)  # fmt: skip
