"""Changing a repository's key (``steve rekey``), crash-safe at every instant.

A rekey must change three files together: ``steve.db``, ``events.db`` (both
keyed with the repository key) and ``config`` (the salt, the Argon2id
parameters and the key check).  No file system commits three files at once,
so the switch is staged and has one commit point:

1. with the repository lock held exclusively (:class:`steve.store.lock.DirLock`:
   no other process has the repository open), each database is copied with
   ``sqlcipher_export`` into ``.steve/rekey/`` under the new key, switched to
   WAL, closed cleanly and fsynced; then the new config is written there
   (temporary file, fsync, rename) and the directory fsynced;
2. **commit**: the new config replaces ``.steve/config`` (temporary file,
   fsync, rename, fsync of ``.steve``);
3. roll forward: for each database still in ``.steve/rekey/``, the old
   ``-wal`` and ``-shm`` are removed and the new file is renamed over the
   old one; then ``.steve/rekey/`` is removed.

:func:`recover` (run by every open that finds ``.steve/rekey/``, under the
exclusive lock) decides by one comparison: if ``.steve/config`` is byte for
byte ``.steve/rekey/config``, the commit happened and step 3 is finished;
otherwise nothing was committed and ``.steve/rekey/`` is deleted.  Before the
commit the old config and the untouched old databases open with the old
passphrase; after it, step 3 (repeated as often as needed: each rename is
atomic and a database already moved is no longer in ``.steve/rekey/``) makes
the databases match the new config.  So a SIGKILL at any instant leaves a
repository that opens with the old passphrase or the new one, never both and
never neither.

``PRAGMA rekey`` works in WAL mode with the SQLCipher this runs on (4.19,
checked), but it rewrites one database in place; it cannot switch two
databases and the config together, hence the copy.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from steve.config import RepoConfig
from steve.store.snapshot import fsync_path
from steve.store.sqlcipher import DIR_MODE, FILE_MODE, connect

STAGING = "rekey"
"""``.steve/rekey/``: the new databases and config while a rekey runs."""
CONFIG_NAME = "config"
DATABASES = ("steve.db", "events.db")


def fsync_dir(directory: Path) -> None:
    """Make the entries of ``directory`` (creations, renames, deletions) durable."""
    fsync_path(directory, directory=True)


def _raw(key: bytes) -> str:
    return f"x'{key.hex()}'"


def export_database(
    src: Path, dst: Path, old_key: bytes, new_key: bytes, *, busy_timeout: float
) -> None:
    """Copy the keyed database ``src`` to a new file ``dst`` keyed with ``new_key``
    (``sqlcipher_export``: schema, rows, triggers, AUTOINCREMENT counters and
    ``auto_vacuum``), in WAL mode, closed cleanly and fsynced."""
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    os.close(fd)
    db = connect(src, old_key, busy_timeout=busy_timeout, create=False)
    try:
        db.check_key()
        with db.errors():
            db.conn.execute(f'ATTACH DATABASE ? AS rekeyed KEY "{_raw(new_key)}"', (str(dst),))
            db.conn.execute("PRAGMA rekeyed.cipher_page_size = 4096")
        with db.transaction():
            db.conn.execute("SELECT sqlcipher_export('rekeyed')")
        with db.errors():
            db.conn.execute("DETACH DATABASE rekeyed")
    finally:
        db.close()
    new = connect(dst, new_key, busy_timeout=busy_timeout, create=False)
    try:
        new.check_key()
        with new.errors():
            new.conn.execute("PRAGMA journal_mode = WAL")
    finally:
        new.close()
    fsync_path(dst)


@dataclass(frozen=True, slots=True)
class RekeyReport:
    databases: tuple[str, ...]
    """The database files rewritten under the new key."""
    config: RepoConfig
    """The config now in force."""


def rekey_files(
    steve_dir: Path,
    old_key: bytes,
    new_key: bytes,
    new_config: RepoConfig,
    *,
    busy_timeout: float = 30.0,
) -> RekeyReport:
    """Switch the databases of ``steve_dir`` from ``old_key`` to ``new_key`` and its
    config to ``new_config`` (the protocol above).  The caller holds the
    repository lock exclusively and has checked ``old_key``."""
    recover(steve_dir)
    staging = steve_dir / STAGING
    staging.mkdir(mode=DIR_MODE)
    done: list[str] = []
    for name in DATABASES:
        if (steve_dir / name).is_file():
            export_database(
                steve_dir / name, staging / name, old_key, new_key, busy_timeout=busy_timeout
            )
            done.append(name)
    new_config.write(staging / CONFIG_NAME)
    fsync_dir(staging)
    new_config.write(steve_dir / CONFIG_NAME)  # the commit point
    fsync_dir(steve_dir)
    recover(steve_dir)
    return RekeyReport(tuple(done), new_config)


def committed(steve_dir: Path) -> bool:
    """Whether the rekey staged in ``steve_dir`` reached its commit point."""
    staged = steve_dir / STAGING / CONFIG_NAME
    try:
        return staged.read_bytes() == (steve_dir / CONFIG_NAME).read_bytes()
    except FileNotFoundError:
        return False


def recover(steve_dir: Path) -> str | None:
    """Finish or undo a rekey a crash interrupted: ``"completed"``, ``"rolled back"``,
    or None when there was none.  The caller holds the exclusive lock."""
    staging = steve_dir / STAGING
    if not staging.exists():
        return None
    outcome = "rolled back"
    if committed(steve_dir):
        outcome = "completed"
        for name in DATABASES:
            new = staging / name
            if not new.is_file():
                continue  # already moved (or the repository has no such database)
            for suffix in ("-wal", "-shm"):  # the old database's: they must not meet the new
                with contextlib.suppress(FileNotFoundError):
                    (steve_dir / f"{name}{suffix}").unlink()
            new.replace(steve_dir / name)
        fsync_dir(steve_dir)
    shutil.rmtree(staging)
    for leftover in steve_dir.glob(f".{CONFIG_NAME}.*.tmp"):  # a killed config write
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()
    fsync_dir(steve_dir)
    return outcome


__all__ = ["DATABASES", "STAGING", "RekeyReport", "committed", "recover", "rekey_files"]
