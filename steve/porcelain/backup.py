"""Backup and restore of a whole repository (``steve backup``, ``steve restore``).

A backup is a directory:

    BACKUP/             mode 0700
      manifest.json     plain: what the copy holds, in numbers (no content, no secret)
      config            the repository config (salt, Argon2id parameters, key check)
      steve.db          SQLCipher, the repository key: a consistent copy
      events.db         SQLCipher, the repository key (when the repository has one)

The databases are copied while writers keep working
(:func:`steve.store.snapshot.snapshot_databases`) and stay encrypted with
the same key: the backup opens with the passphrase the repository had when
it was taken.  The directory is written as ``.BACKUP.tmp-*`` next to its
target and renamed into place when complete (files and directory fsynced),
so a failed or killed backup leaves no ``BACKUP``.  Each backup is recorded
as a ``repo.backup`` event.

A restore copies a backup into a new repository directory the same way
(staged, checked, renamed), after checking that what it restored is what
the manifest says, and that ``fsck`` (objects, refs, runs, the event chain and
its reconciliation with the repository) is clean.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from steve.config import RepoConfig
from steve.errors import (
    BackupExists,
    BackupFailed,
    BackupMismatch,
    NotABackup,
    RestoreTargetNotEmpty,
    WrongKey,
)
from steve.events.log import EventLog
from steve.events.store import EventStore
from steve.progress import Progress
from steve.repo import CONFIG_NAME, STEVE_DIR, Repo
from steve.store.kdf import derive_key, key_matches
from steve.store.snapshot import (
    EVENTS_DB,
    MAIN_DB,
    copy_private,
    fsync_path,
    snapshot_databases,
    summarize,
)
from steve.store.sqlcipher import DIR_MODE

MANIFEST_NAME = "manifest.json"


FORMAT = "steve-backup"
VERSION = 1


@dataclass(frozen=True, slots=True)
class EventsSummary:
    """The event log a backup holds: its length and chain head."""

    events: int
    head_seq: int
    head_hash: str
    """Hex of the hash of the event at ``head_seq`` (the chain's tip)."""
    delivered: int
    """The highest outbox seq of this repository the log holds."""


@dataclass(frozen=True, slots=True)
class BackupManifest:
    """``manifest.json``: what a backup holds, checked by ``steve restore``."""

    created: int
    """Unix milliseconds when the copy was taken."""
    repository_id: str
    schema_version: int
    files: dict[str, int]
    """Each database file and its size in bytes."""
    counts: dict[str, int]
    """Rows per table of ``steve.db`` (objects, refs, reflog, runs, ...)."""
    refs: dict[str, str]
    """Each ref and its target id (hex), or ``ref: NAME`` for a symbolic ref."""
    events: EventsSummary | None
    """The event log (None: the repository had no ``events.db`` yet)."""

    def to_json(self) -> str:
        data = {"format": FORMAT, "version": VERSION, **asdict(self)}
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes) -> BackupManifest:
        """Parse and check a manifest; ValueError says what is wrong."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        version = data.get("version")
        if data.get("format") != FORMAT or type(version) is not int or version != VERSION:
            raise ValueError(f"not format {FORMAT!r} version {VERSION}")
        want = {"format", "version", "created", "repository_id", "schema_version", "files",
                "counts", "refs", "events"}  # fmt: skip
        if set(data) != want:
            raise ValueError(f"fields {sorted(set(data) ^ want)} missing or unknown")
        events = data["events"]
        if events is not None:
            fields = {"events": int, "head_seq": int, "head_hash": str, "delivered": int}
            if not isinstance(events, dict) or set(events) != set(fields):
                raise ValueError(
                    "events: not an object with events, head_seq, head_hash, delivered"
                )
            for name, kind in fields.items():
                _check(f"events.{name}", events[name], kind)
            events = EventsSummary(**events)
        _check("created", data["created"], int)
        _check("repository_id", data["repository_id"], str)
        _check("schema_version", data["schema_version"], int)
        for name, kind in (("files", int), ("counts", int), ("refs", str)):
            if not isinstance(data[name], dict):
                raise ValueError(f"{name}: not an object")
            for key, value in data[name].items():
                _check(f"{name}.{key}", value, kind)
        return cls(
            created=data["created"],
            repository_id=data["repository_id"],
            schema_version=data["schema_version"],
            files=data["files"],
            counts=data["counts"],
            refs=data["refs"],
            events=events,
        )

    @classmethod
    def read(cls, path: Path) -> BackupManifest:
        try:
            return cls.from_json(path.read_bytes())
        except FileNotFoundError:
            raise NotABackup(str(path.parent), f"no {MANIFEST_NAME}") from None
        except (OSError, ValueError) as exc:  # JSONDecodeError and UnicodeDecodeError too
            raise NotABackup(str(path.parent), f"unreadable {MANIFEST_NAME}: {exc}") from exc


def _check(name: str, value: object, kind: type) -> None:
    if type(value) is not kind:  # bool is not an int here
        raise ValueError(f"{name}: {value!r} is not {kind.__name__}")


def _events_summary(path: Path, key: bytes, repository_id: str) -> EventsSummary | None:
    if not path.is_file():
        return None
    store = EventStore(path, key, key_checked=True)
    try:
        head = store.head()
        delivered = store.get_meta(f"outbox:{repository_id}")
        return EventsSummary(
            events=store.count(),
            head_seq=head.seq,
            head_hash=head.hash.hex(),
            delivered=int(delivered or 0),
        )
    finally:
        store.close()


def describe(steve_dir: Path, key: bytes, config: RepoConfig, created: int) -> BackupManifest:
    """The manifest of the databases in ``steve_dir`` (a backup's or a repository's)."""
    db = summarize(steve_dir / MAIN_DB, key)
    files = {
        n: (steve_dir / n).stat().st_size for n in (MAIN_DB, EVENTS_DB) if (steve_dir / n).is_file()
    }
    return BackupManifest(
        created=created,
        repository_id=config.repository_id,
        schema_version=db.schema_version,
        files=files,
        counts=db.counts,
        refs=db.refs,
        events=_events_summary(steve_dir / EVENTS_DB, key, config.repository_id),
    )


@dataclass(frozen=True, slots=True)
class BackupReport:
    path: Path
    manifest: BackupManifest
    seconds: float


BACKUP_STEPS = ("copying the databases", "counting objects and refs", "writing the manifest")
RESTORE_STEPS = ("copying the files", "checking them against the manifest", "fsck")


def backup(
    repo: Repo, path: Path | str, *, busy_timeout: float = 30.0, progress: Progress | None = None
) -> BackupReport:
    """Write a backup of ``repo`` to the new directory ``path`` (module docstring) and
    record it as a ``repo.backup`` event.  ``progress`` hears one phase "backup"
    counting the :data:`BACKUP_STEPS` done, the detail the step under way."""
    target = Path(path)
    if repo.steve_dir is None or repo.key is None or repo.config is None:
        raise BackupFailed("backup", "a repository held in memory has nothing to copy")
    if os.path.lexists(target):
        raise BackupExists(str(target))
    parent = target.parent if str(target.parent) else Path()
    started = time.monotonic()
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=parent))
    except OSError as exc:
        raise BackupFailed("backup", f"cannot create a directory in {parent}: {exc}") from exc
    try:
        staging.chmod(DIR_MODE)
        created = time.time_ns() // 1_000_000
        step = _stepper(progress, "backup", BACKUP_STEPS)
        step()
        snapshot_databases(repo.steve_dir, staging, repo.key, busy_timeout=busy_timeout)
        repo.config.write(staging / CONFIG_NAME)
        step()
        manifest = describe(staging, repo.key, repo.config, created)
        step()
        _write_plain(staging / MANIFEST_NAME, manifest.to_json())
        fsync_path(staging, directory=True)
        if os.path.lexists(target):
            raise BackupExists(str(target))
        staging.rename(target)
        fsync_path(parent, directory=True)
        step()
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise BackupFailed("backup", f"{target}: {exc}") from exc
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    with repo.transaction() as tx:
        tx.emit(
            "repo.backup",
            {
                "created": manifest.created,
                "objects": manifest.counts["objects"],
                "refs": manifest.counts["refs"],
                "bytes": sum(manifest.files.values()),
                "event_seq": manifest.events.head_seq if manifest.events else 0,
            },
        )
    return BackupReport(target, manifest, time.monotonic() - started)


def _write_plain(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())


def read_backup(path: Path | str) -> tuple[BackupManifest, RepoConfig]:
    """The manifest and config of the backup at ``path`` (NotABackup if it is not one)."""
    source = Path(path)
    if not source.is_dir():
        raise NotABackup(str(source), "not a directory")
    manifest = BackupManifest.read(source / MANIFEST_NAME)
    if not (source / CONFIG_NAME).is_file() or not (source / MAIN_DB).is_file():
        raise NotABackup(str(source), f"{CONFIG_NAME} or {MAIN_DB} is missing")
    config = RepoConfig.read(source / CONFIG_NAME)
    return manifest, config


def backup_key(path: Path | str, passphrase: str | bytes) -> bytes:
    """Derive and check the key that opens the backup at ``path``."""
    _, config = read_backup(path)
    key = derive_key(passphrase, config.kdf)
    if not key_matches(key, config.key_check):
        raise WrongKey(str(Path(path) / MAIN_DB))
    return key


def compare(want: BackupManifest, have: BackupManifest) -> list[str]:
    """How ``have`` (what was restored) differs from ``want`` (the manifest)."""
    problems: list[str] = []
    if want.repository_id != have.repository_id:
        problems.append(f"repository id {have.repository_id}, manifest says {want.repository_id}")
    if want.schema_version != have.schema_version:
        problems.append(
            f"schema version {have.schema_version}, manifest says {want.schema_version}"
        )
    for table in sorted(set(want.counts) | set(have.counts)):
        w, h = want.counts.get(table), have.counts.get(table)
        if w != h:
            problems.append(f"{table}: {h} rows, manifest says {w}")
    for name in sorted(set(want.refs) | set(have.refs)):
        w_ref, h_ref = want.refs.get(name), have.refs.get(name)
        if w_ref != h_ref:
            problems.append(f"ref {name}: {h_ref or 'absent'}, manifest says {w_ref or 'absent'}")
    if want.events != have.events:
        problems.append(f"event log {have.events}, manifest says {want.events}")
    for name, size in want.files.items():
        if have.files.get(name) != size:
            problems.append(f"{name}: {have.files.get(name)} bytes, manifest says {size}")
    return problems


@dataclass(frozen=True, slots=True)
class RestoreReport:
    root: Path
    manifest: BackupManifest
    objects: int
    events: int


def restore(
    source: Path | str,
    target: Path | str,
    key: bytes,
    *,
    busy_timeout: float = 30.0,
    progress: Progress | None = None,
) -> RestoreReport:
    """Restore the backup ``source`` into ``target/.steve`` (``target`` new or empty).

    The files are copied into a staging directory inside ``target``, checked
    against the manifest (counts, refs, schema, event head), opened, their
    waiting outbox events delivered, and fsck'd with the event log; only then
    is the staging directory renamed to ``.steve``.  On any failure ``target``
    is left as it was.  ``progress`` hears one phase "restore" counting the
    :data:`RESTORE_STEPS` done, the detail the step under way."""
    src, root = Path(source), Path(target)
    manifest, config = read_backup(src)
    if not key_matches(key, config.key_check):
        raise WrongKey(str(src / MAIN_DB))
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise RestoreTargetNotEmpty(str(root))
    created_root = not root.exists()
    try:
        root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".steve-restore-", dir=root))
    except OSError as exc:
        raise BackupFailed("restore", f"cannot create {root}: {exc}") from exc
    try:
        steve_dir = staging / STEVE_DIR
        steve_dir.mkdir(mode=DIR_MODE)
        step = _stepper(progress, "restore", RESTORE_STEPS)
        step()
        for name in (CONFIG_NAME, *manifest.files):
            if not (src / name).is_file():
                raise BackupMismatch(str(src), [f"{name} is missing"])
            copy_private(src / name, steve_dir / name)
        step()
        have = describe(steve_dir, key, config, manifest.created)
        problems = compare(manifest, have)
        if problems:
            raise BackupMismatch(str(src), problems)
        step()
        from steve.events.fsck import fsck as full_fsck  # restore only: fsck's imports

        with Repo.open(staging, key=key, busy_timeout=busy_timeout) as repo:
            log = EventLog.attach(repo)
            try:
                report = full_fsck(repo, log, public_key=config.events_public_key)
            finally:
                log.close()
            if repo.events.error is not None:
                raise repo.events.error
        if report.problems:
            raise BackupMismatch(str(src), [f"fsck: {p}" for p in report.problems])
        fsync_path(steve_dir, directory=True)
        steve_dir.rename(root / STEVE_DIR)
        staging.rmdir()
        fsync_path(root, directory=True)
        step()
    except OSError as exc:
        _undo(staging, root, created_root)
        raise BackupFailed("restore", f"{root}: {exc}") from exc
    except BaseException:
        _undo(staging, root, created_root)
        raise
    return RestoreReport(root, manifest, report.objects, report.events or 0)


def _stepper(progress: Progress | None, task: str, steps: tuple[str, ...]) -> Callable[[], None]:
    """A function to call before each of ``steps`` and once after the last: it reports
    the step done and names the next (the phase starts with the first call)."""
    done = -1

    def step() -> None:
        nonlocal done
        if progress is None:
            return
        if done < 0:
            progress.start(task, len(steps), unit="steps")
        else:
            progress.advance(1)
        done += 1
        if done < len(steps):
            progress.advance(0, steps[done])
        else:
            progress.finish()

    return step


def _undo(staging: Path, root: Path, created_root: bool) -> None:
    shutil.rmtree(staging, ignore_errors=True)
    if created_root:
        with contextlib.suppress(OSError):
            root.rmdir()


__all__ = [
    "MANIFEST_NAME",
    "BackupManifest",
    "BackupReport",
    "EventsSummary",
    "RestoreReport",
    "backup",
    "backup_key",
    "compare",
    "describe",
    "read_backup",
    "restore",
]
