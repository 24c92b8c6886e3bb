"""`steve rekey`: the passphrase changes, nothing else does, and an interrupted rekey
is finished or undone by the next open (the crash points are laid out by hand
here; tests/backup/test_rekey_kill.py SIGKILLs real rekeys)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from steve.config import RepoConfig
from steve.errors import RepositoryInUse, WrongKey
from steve.events import EventLog
from steve.repo import Repo
from steve.store import rekey as rk
from steve.store.kdf import KdfParams, derive_key, key_check
from tests.backup.helpers import check_clean, contents, fill
from tests.conftest import PASSPHRASE


@pytest.fixture
def filled(repo_path: Path, fast_kdf: KdfParams) -> dict[str, bytes]:
    with Repo.init(repo_path, passphrase=PASSPHRASE, kdf=fast_kdf) as repo:
        return fill(repo, 12)


def _contents(root: Path, passphrase: str) -> dict[str, bytes]:
    with Repo.open(root, passphrase=passphrase) as repo:
        return contents(repo, "refs/heads/b")


def test_rekey_changes_the_passphrase_salt_and_parameters_and_keeps_every_record(
    repo_path: Path, filled: dict[str, bytes]
) -> None:
    before = RepoConfig.read(repo_path / ".steve" / "config")
    report = Repo.rekey(
        repo_path, old_passphrase=PASSPHRASE, new_passphrase="new pw", memory_kib=512, iterations=2
    )
    assert report.databases == ("steve.db", "events.db")
    after = RepoConfig.read(repo_path / ".steve" / "config")
    assert (after.kdf.memory_kib, after.kdf.iterations) == (512, 2)
    assert after.kdf.salt != before.kdf.salt and after.key_check != before.key_check
    assert after.repository_id == before.repository_id
    with pytest.raises(WrongKey):
        Repo.open(repo_path, passphrase=PASSPHRASE)
    assert _contents(repo_path, "new pw") == filled
    check_clean(repo_path, passphrase="new pw").close()
    assert sorted(os.listdir(repo_path / ".steve")) == ["config", "events.db", "steve.db"]
    for name in ("config", "events.db", "steve.db"):
        assert (repo_path / ".steve" / name).stat().st_mode & 0o777 == 0o600
    with Repo.open(repo_path, passphrase="new pw") as repo:  # the rekey is an event
        log = EventLog.for_repo(repo)
        assert [e.event_type for e in log.events()][-1] == "repo.rekeyed"
        log.close()


def test_the_old_key_no_longer_decrypts_the_database_files(
    repo_path: Path, filled: dict[str, bytes], fast_kdf: KdfParams
) -> None:
    old = Repo.derive_key(repo_path, PASSPHRASE)
    Repo.rekey(repo_path, old_key=old, new_passphrase="new pw")
    from steve.errors import CorruptDatabase
    from steve.store.sqlite import SqlCipherBackend

    # bypassing the key check: SQLCipher itself refuses the old key on the new file
    with pytest.raises((WrongKey, CorruptDatabase)):
        SqlCipherBackend.open(repo_path / ".steve" / "steve.db", old, key_checked=False)


def test_a_wrong_current_passphrase_changes_nothing(
    repo_path: Path, filled: dict[str, bytes]
) -> None:
    config = (repo_path / ".steve" / "config").read_bytes()
    with pytest.raises(WrongKey):
        Repo.rekey(repo_path, old_passphrase="nope", new_passphrase="new pw")
    assert (repo_path / ".steve" / "config").read_bytes() == config
    assert _contents(repo_path, PASSPHRASE) == filled


def test_rekey_waits_for_other_processes_and_gives_up_with_a_typed_error(
    repo_path: Path, filled: dict[str, bytes]
) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom steve.repo import Repo\n"
            "r = Repo.open(sys.argv[1], passphrase='pw')\nprint('ready', flush=True)\n"
            "time.sleep(60)\n",
            str(repo_path),
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"ready"
        with pytest.raises(RepositoryInUse):
            Repo.rekey(repo_path, old_passphrase=PASSPHRASE, new_passphrase="x", busy_timeout=0.3)
    finally:
        holder.kill()
        holder.wait()
    assert _contents(repo_path, PASSPHRASE) == filled
    assert not (repo_path / ".steve" / rk.STAGING).exists()


def _stage(root: Path, new_passphrase: str) -> tuple[Path, RepoConfig]:
    """Lay out a rekey up to (not including) its commit point, as a crash leaves it."""
    steve_dir = root / ".steve"
    old = RepoConfig.read(steve_dir / "config")
    old_key = derive_key(PASSPHRASE, old.kdf)
    params = KdfParams(os.urandom(16), old.kdf.memory_kib, 1, 1)
    new_key = derive_key(new_passphrase, params)
    new = RepoConfig(
        old.repository_id, params, key_check(new_key), old.format, old.events_public_key
    )
    staging = steve_dir / rk.STAGING
    staging.mkdir(mode=0o700)
    for name in rk.DATABASES:
        rk.export_database(steve_dir / name, staging / name, old_key, new_key, busy_timeout=5)
    new.write(staging / "config")
    return steve_dir, new


def test_a_rekey_killed_before_its_commit_point_is_rolled_back(
    repo_path: Path, filled: dict[str, bytes]
) -> None:
    steve_dir, _ = _stage(repo_path, "new pw")
    (steve_dir / rk.STAGING / "config").unlink()  # killed even before the staged config
    assert _contents(repo_path, PASSPHRASE) == filled
    assert not (steve_dir / rk.STAGING).exists()
    steve_dir, _ = _stage(repo_path, "new pw")  # staged completely, not committed
    assert _contents(repo_path, PASSPHRASE) == filled
    with pytest.raises(WrongKey):
        Repo.open(repo_path, passphrase="new pw")
    check_clean(repo_path, passphrase=PASSPHRASE).close()


@pytest.mark.parametrize("moved", [(), ("steve.db",), ("steve.db", "events.db")])
def test_a_rekey_killed_after_its_commit_point_is_finished_by_the_next_open(
    repo_path: Path, filled: dict[str, bytes], moved: tuple[str, ...]
) -> None:
    steve_dir, new = _stage(repo_path, "new pw")
    new.write(steve_dir / "config")  # the commit point
    for name in moved:  # part of the roll-forward happened before the kill
        for suffix in ("-wal", "-shm"):
            (steve_dir / f"{name}{suffix}").unlink(missing_ok=True)
        (steve_dir / rk.STAGING / name).replace(steve_dir / name)
    with pytest.raises(WrongKey):
        Repo.open(repo_path, passphrase=PASSPHRASE)
    assert not (steve_dir / rk.STAGING).exists()
    assert _contents(repo_path, "new pw") == filled
    check_clean(repo_path, passphrase="new pw").close()


def test_an_old_write_ahead_log_never_meets_the_new_database(
    repo_path: Path, filled: dict[str, bytes]
) -> None:
    """The old database's -wal holds committed pages under the old key; the
    roll-forward removes it before the new file takes the name."""
    holder = Repo.open(repo_path, passphrase=PASSPHRASE)  # keeps steve.db-wal in place
    holder.update_ref("refs/heads/late", holder.write_blob(b"late"), old=None)
    shutil.copy(repo_path / ".steve" / "steve.db-wal", repo_path / "saved-wal")
    holder.close()
    steve_dir, new = _stage(repo_path, "new pw")
    new.write(steve_dir / "config")
    shutil.copy(repo_path / "saved-wal", steve_dir / "steve.db-wal")  # as a crash leaves it
    with Repo.open(repo_path, passphrase="new pw") as repo:
        assert repo.read_blob(repo.rev_parse("refs/heads/late")) == b"late"
        assert repo.fsck().ok


def test_the_cli_rekey_reads_the_new_passphrase_from_the_environment(
    repo_path: Path, filled: dict[str, bytes], steve_env: dict[str, str]
) -> None:
    env = {**steve_env, "STEVE_NEW_PASSPHRASE": "from env"}
    out = subprocess.run(
        [sys.executable, "-m", "steve", "rekey", "--iterations", "2"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("rekeyed steve.db, events.db: Argon2id")
    assert RepoConfig.read(repo_path / ".steve" / "config").kdf.iterations == 2
    assert _contents(repo_path, "from env") == filled
    missing = {k: v for k, v in env.items() if k != "STEVE_NEW_PASSPHRASE"}
    missing["STEVE_PASSPHRASE"] = "from env"
    out = subprocess.run(
        [sys.executable, "-m", "steve", "rekey"],
        env=missing,
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert out.returncode == 4 and "[STEVE-KEY-002]" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr
