"""The one keyed-SQLCipher connection module (steve/store/sqlcipher.py), on real files.

Issue 12: damage to events.db's header is damage, not a wrong passphrase
(item 11); errors that are not corruption get their own codes (item 11);
a repository on read-only media can be read (item 12); every file STEVE
creates is 0600 in a 0700 directory (item 14); both databases open through
the same module (item 21).
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from sqlcipher3 import dbapi2 as sqlite

from steve.errors import (
    CannotOpenDatabase,
    CorruptDatabase,
    DiskFull,
    ReadOnlyStorage,
    RepositoryBusy,
    StorageIOError,
    WrongKey,
)
from steve.events import EventLog
from steve.events.store import EventStore
from steve.porcelain.freeze import freeze
from steve.repo import Repo
from steve.store import sqlcipher
from steve.store.kdf import KdfParams
from steve.store.sqlite import SqlCipherBackend
from tests.conftest import PASSPHRASE
from tests.mounts import fill, remount_read_only, tmpfs


def cli(args: list[str], root: Path, **kw: object) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEVE_")}
    env.update(STEVE_PASSPHRASE=PASSPHRASE, STEVE_DIR=str(root))
    return subprocess.run(
        [sys.executable, "-m", "steve", *args],
        env=env,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=120,
        check=False,
        **kw,  # type: ignore[arg-type]
    )


def code_of(proc: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.stderr.strip().splitlines()[-1].strip()


def with_events(root: Path, fast_kdf: KdfParams) -> Repo:
    """A repository with objects, refs, a tag, a manifest and events.db."""
    repo = Repo.init(root, passphrase=PASSPHRASE, kdf=fast_kdf)
    log = EventLog.attach(repo)
    blob = repo.write_blob(b"hello\n")
    repo.update_ref("refs/heads/main", blob, None, message="first")
    repo.create_tag("v1", blob, message="tag v1", now=1_700_000_000, tz=0)
    m = freeze(repo, "research", {"title": "ro"}, now=1_700_000_000, tz=0)
    repo.update_ref("refs/heads/main", m, blob, message="m")
    log.close()
    repo.events.sink = None
    return repo


# --- item 11: damage vs wrong key, and errors that are not corruption -------------------------


@pytest.mark.parametrize("offset", [0, 20, 100, 4000])
def test_damaged_events_header_is_corruption_not_a_wrong_key(
    repo_path: Path, fast_kdf: KdfParams, offset: int
) -> None:
    with_events(repo_path, fast_kdf).close()
    events_db = repo_path / ".steve" / "events.db"
    data = bytearray(events_db.read_bytes())
    data[offset] ^= 0x5A
    events_db.write_bytes(bytes(data))
    with Repo.open(repo_path, passphrase=PASSPHRASE) as repo, pytest.raises(
        CorruptDatabase
    ) as info:
        EventLog.for_repo(repo).store()
    assert "events.db" in info.value.action
    proc = cli(["events"], repo_path)
    assert proc.returncode == 9
    assert code_of(proc) == "[STEVE-STOR-001]"
    assert "restore .steve/events.db" in proc.stderr


def test_events_log_opened_with_an_unchecked_wrong_key_is_still_a_wrong_key(
    tmp_path: Path,
) -> None:
    with EventLog(tmp_path / "events.db", os.urandom(32)) as log:
        log.append("a.b", {})
    with pytest.raises(WrongKey):
        EventStore(tmp_path / "events.db", os.urandom(32))


def test_disk_full_is_its_own_error(tmp_path: Path, fast_kdf: KdfParams) -> None:
    with tmpfs(tmp_path / "disk", size_kib=2048) as disk:
        root = disk / "repo"
        Repo.init(root, passphrase=PASSPHRASE, kdf=fast_kdf).close()
        fill(disk, leave_kib=100)
        with Repo.open(root, passphrase=PASSPHRASE) as repo, pytest.raises(DiskFull) as info:
            repo.write_blob(os.urandom(300_000))
        assert info.value.code == "STEVE-STOR-004" and info.value.exit_code == 9
        assert "restore" not in info.value.action
        proc = cli(["hash-object", "-w", "--stdin"], root, input="x" * 300_000)
    assert proc.returncode == 9 and code_of(proc) == "[STEVE-STOR-004]"


def test_busy_database_is_repository_busy(repo: Repo, repo_path: Path) -> None:
    other = SqlCipherBackend.open(
        repo_path / ".steve" / "steve.db", Repo.derive_key(repo_path, PASSPHRASE), 0.2
    )
    try:
        # the first transaction holds the write lock; the second waits 0.2 s
        with repo.backend.transaction(), pytest.raises(RepositoryBusy), other.transaction():
            pass
    finally:
        other.close()


def test_cannot_open_is_its_own_error(tmp_path: Path) -> None:
    with pytest.raises(CannotOpenDatabase) as info:
        sqlcipher.connect(tmp_path / "no such dir" / "x.db", os.urandom(32))
    assert info.value.code == "STEVE-STOR-007"
    with pytest.raises(CannotOpenDatabase):
        SqlCipherBackend.open(tmp_path / "missing.db", os.urandom(32))


def _real_error(sql: str, db: sqlcipher.KeyedConnection) -> sqlite.Error:
    try:
        db.conn.execute(sql)
    except sqlite.Error as exc:
        return exc
    raise AssertionError(f"{sql} did not fail")


def test_classify_by_result_code(tmp_path: Path) -> None:
    key = os.urandom(32)
    db = sqlcipher.connect(tmp_path / "a.db", key)
    db.tune()
    db.conn.execute("CREATE TABLE t (x)")
    db.close()
    ro = sqlcipher.connect(tmp_path / "a.db", key)
    ro.conn.execute("PRAGMA query_only = 1")
    readonly = _real_error("INSERT INTO t VALUES (1)", ro)
    ro.close()
    assert isinstance(sqlcipher.classify(readonly, "a.db"), ReadOnlyStorage)
    wrong = sqlcipher.connect(tmp_path / "a.db", os.urandom(32))
    notadb = _real_error("SELECT * FROM t", wrong)
    wrong.close()
    assert isinstance(sqlcipher.classify(notadb, "a.db", key_checked=False), WrongKey)
    assert isinstance(sqlcipher.classify(notadb, "a.db", key_checked=True), CorruptDatabase)
    # SQLITE_IOERR cannot be provoked on a healthy disk: the exception as sqlcipher3
    # raises it (result code SQLITE_IOERR_READ = 10 | 1 << 8)
    ioerr = sqlite.OperationalError("disk I/O error")
    ioerr.sqlite_errorcode = 10 | (1 << 8)  # type: ignore[attr-defined]
    err = sqlcipher.classify(ioerr, "a.db")
    assert isinstance(err, StorageIOError) and err.code == "STEVE-STOR-006"
    assert "restore" not in err.action


# --- item 12: read-only media ------------------------------------------------------------------


READERS = [
    ["show-ref"],
    ["log"],
    ["fsck"],
    ["fsck", "--events"],
    ["verify", "main"],
    ["cat-file", "-p", "main"],
    ["events"],
    ["events", "verify"],
]


@pytest.mark.slow
def test_read_only_media_can_be_read(tmp_path: Path, fast_kdf: KdfParams) -> None:
    with tmpfs(tmp_path / "media", size_kib=16384) as media:
        root = media / "repo"
        with_events(root, fast_kdf).close()
        before = {tuple(a): cli(a, root) for a in READERS}
        for args, proc in before.items():
            assert proc.returncode == 0, (args, proc.stderr)
        remount_read_only(media)
        for args in READERS:
            proc = cli(list(args), root)
            assert proc.returncode == 0, (args, proc.stderr)
            assert proc.stdout == before[tuple(args)].stdout, args
        with Repo.open(root, passphrase=PASSPHRASE) as again:
            assert again.backend.read_only
            with pytest.raises(ReadOnlyStorage):
                again.write_blob(b"new")
        proc = cli(["update-ref", "refs/heads/x", "main"], root)
        assert proc.returncode == 9 and code_of(proc) == "[STEVE-STOR-005]"
        assert sorted(p.name for p in (root / ".steve").iterdir()) == [
            "config",
            "events.db",
            "steve.db",
        ]


CRASHED_WRITER = r"""
import sys, time
from steve.repo import Repo
repo = Repo.open(sys.argv[1], passphrase="pw")
oid = repo.write_blob(b"after the crash")
repo.update_ref("refs/heads/late", oid, None, message="late")
print("ready", flush=True)
time.sleep(600)
"""


@pytest.mark.slow
def test_read_only_media_with_an_unfolded_wal_reads_its_transactions(
    tmp_path: Path, fast_kdf: KdfParams
) -> None:
    with tmpfs(tmp_path / "media", size_kib=16384) as media:
        root = media / "repo"
        Repo.init(root, passphrase=PASSPHRASE, kdf=fast_kdf).close()
        proc = subprocess.Popen(
            [sys.executable, "-c", CRASHED_WRITER, str(root)], stdout=subprocess.PIPE
        )
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        wal = root / ".steve" / "steve.db-wal"
        assert wal.stat().st_size > 0  # the commit lives only in the WAL
        remount_read_only(media)
        shown = cli(["show-ref"], root)
        assert shown.returncode == 0, shown.stderr
        assert "refs/heads/late" in shown.stdout
        assert cli(["fsck"], root).returncode == 0


# --- item 14: file modes -----------------------------------------------------------------------


def _modes(steve_dir: Path) -> dict[str, int]:
    return {p.name: stat.S_IMODE(p.stat().st_mode) for p in steve_dir.iterdir()}


def test_every_file_is_private_even_under_a_permissive_umask(
    tmp_path: Path, fast_kdf: KdfParams
) -> None:
    old = os.umask(0o022)
    try:
        root = tmp_path / "repo"
        repo = Repo.init(root, passphrase=PASSPHRASE, kdf=fast_kdf)
        log = EventLog.attach(repo)
        blob = repo.write_blob(b"x")
        repo.update_ref("refs/heads/main", blob, None, message="m")
        log.flush()
        steve_dir = root / ".steve"
        live = _modes(steve_dir)  # while both databases are open: WAL and shm exist
        assert {"events.db-wal", "events.db-shm", "steve.db-wal", "steve.db-shm"} <= set(live)
        log.close()
        repo.close()
    finally:
        os.umask(old)
    assert stat.S_IMODE(steve_dir.stat().st_mode) == 0o700
    assert {name: mode for name, mode in live.items() if mode != 0o600} == {}
    assert {name: mode for name, mode in _modes(steve_dir).items() if mode != 0o600} == {}


def test_cli_created_files_are_private(tmp_path: Path, fast_kdf: KdfParams) -> None:
    root = tmp_path / "repo"
    Repo.init(root, passphrase=PASSPHRASE, kdf=fast_kdf).close()
    proc = subprocess.run(
        ["sh", "-c", f"umask 000 && printf x | {sys.executable} -m steve hash-object -w --stdin"
         f" && {sys.executable} -m steve events append --type test.event"],
        env={**os.environ, "STEVE_PASSPHRASE": PASSPHRASE, "STEVE_DIR": str(root)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    steve_dir = root / ".steve"
    assert (steve_dir / "events.db").exists()
    assert stat.S_IMODE(steve_dir.stat().st_mode) == 0o700
    assert {name: mode for name, mode in _modes(steve_dir).items() if mode != 0o600} == {}


def test_existing_loose_modes_are_narrowed_on_open(repo: Repo, repo_path: Path) -> None:
    EventLog.for_repo(repo).close()
    log = EventLog.for_repo(repo)
    log.append("a.b", {})
    log.close()
    repo.close()
    steve_dir = repo_path / ".steve"
    steve_dir.chmod(0o755)
    for name in ("steve.db", "events.db", "config"):
        (steve_dir / name).chmod(0o644)
    with Repo.open(repo_path, passphrase=PASSPHRASE) as again:
        EventLog.for_repo(again).store()
    assert stat.S_IMODE(steve_dir.stat().st_mode) == 0o700
    assert {name: mode for name, mode in _modes(steve_dir).items() if mode != 0o600} == {}


# --- item 21: one module for both databases ----------------------------------------------------


def test_both_databases_open_through_the_one_module() -> None:
    import inspect

    import steve.events.store as events_store

    source = inspect.getsource(events_store)
    assert "SqlCipherBackend" not in source and "._connect" not in source
    assert "from steve.store.sqlcipher import connect" in source
    assert not hasattr(SqlCipherBackend, "_connect")
