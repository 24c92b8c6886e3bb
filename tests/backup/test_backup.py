"""`steve backup` and `steve restore`: a copy that stays encrypted, a plain manifest
with no content, atomic writes, and restores that check what they restored."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from steve.errors import (
    BackupExists,
    BackupMismatch,
    NotABackup,
    RestoreTargetNotEmpty,
    WrongKey,
)
from steve.events import EventLog
from steve.porcelain import backup as bk
from steve.repo import Repo
from steve.store import snapshot
from steve.store.kdf import KdfParams
from steve.store.sqlite import SCHEMA_VERSION
from tests.backup.helpers import check_clean, contents, fill
from tests.conftest import PASSPHRASE

SENTINEL = b"sentinel-7f3a9c-backup-content"


@pytest.fixture
def source(repo_path: Path, fast_kdf: KdfParams) -> Path:
    with Repo.init(repo_path, passphrase=PASSPHRASE, kdf=fast_kdf) as repo:
        fill(repo, 8)
        log = EventLog.attach(repo)
        repo.update_ref("refs/heads/secret-name", repo.write_blob(SENTINEL * 10), old=None)
        log.close()
    return repo_path


def _backup(root: Path, target: Path) -> bk.BackupReport:
    with Repo.open(root, passphrase=PASSPHRASE) as repo:
        log = EventLog.attach(repo)
        try:
            return bk.backup(repo, target)
        finally:
            log.close()


def test_a_backup_restores_to_an_identical_clean_repository(source: Path, tmp_path: Path) -> None:
    report = _backup(source, tmp_path / "b")
    files = ["config", "events.db", "manifest.json", "steve.db"]
    assert sorted(os.listdir(tmp_path / "b")) == files
    assert (tmp_path / "b").stat().st_mode & 0o777 == 0o700
    for name in os.listdir(tmp_path / "b"):
        assert (tmp_path / "b" / name).stat().st_mode & 0o777 == 0o600
    with Repo.open(source, passphrase=PASSPHRASE) as repo:
        want = contents(repo)
        refs = {r.name: r.target for r in repo.list_refs()}
    key = bk.backup_key(tmp_path / "b", PASSPHRASE)
    restored = bk.restore(tmp_path / "b", tmp_path / "out", key)
    assert restored.objects == report.manifest.counts["objects"]
    assert not [p for p in os.listdir(tmp_path / "out") if p != ".steve"]  # no staging left
    repo = check_clean(tmp_path / "out", passphrase=PASSPHRASE)
    try:
        assert contents(repo) == want
        assert {r.name: r.target for r in repo.list_refs()} == refs
        assert repo.config is not None
        assert repo.config.repository_id == report.manifest.repository_id
    finally:
        repo.close()


def test_the_manifest_describes_the_copy_and_holds_no_content(source: Path, tmp_path: Path) -> None:
    report = _backup(source, tmp_path / "b")
    m = bk.BackupManifest.read(tmp_path / "b" / "manifest.json")
    assert m == report.manifest
    with Repo.open(source, passphrase=PASSPHRASE) as repo:
        assert m.counts["objects"] == sum(1 for _ in repo.iter_objects())
        main = repo.rev_parse("refs/heads/b1")
    assert m.refs["refs/heads/b1"] == main.hex and m.refs["HEAD"] == "ref: refs/heads/main"
    assert m.schema_version == SCHEMA_VERSION and m.events is not None and m.events.events >= 9
    assert m.events.delivered == m.events.events  # every change's event is in the log
    assert m.files == {n: (tmp_path / "b" / n).stat().st_size for n in ("steve.db", "events.db")}
    # nothing readable outside the encrypted databases: the content never appears in
    # any file of the backup, the databases stay encrypted with the repository key
    for name in os.listdir(tmp_path / "b"):
        assert SENTINEL not in (tmp_path / "b" / name).read_bytes(), name
    assert (tmp_path / "b" / "steve.db").read_bytes()[:16] != b"SQLite format 3\x00"


def test_every_backup_is_an_event(source: Path, tmp_path: Path) -> None:
    report = _backup(source, tmp_path / "b")
    with Repo.open(source, passphrase=PASSPHRASE) as repo:
        log = EventLog.attach(repo)
        try:
            last = list(log.events(event_type="repo.backup"))
        finally:
            log.close()
    assert len(last) == 1
    assert last[0].payload["objects"] == report.manifest.counts["objects"]


def test_backup_refuses_an_existing_path_and_writes_nothing(source: Path, tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    with pytest.raises(BackupExists):
        _backup(source, tmp_path / "b")
    assert os.listdir(tmp_path / "b") == []
    assert sorted(os.listdir(tmp_path)) == ["b", "repo"]


def test_a_backup_that_fails_midway_leaves_nothing(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(path: Path, key: bytes, *, busy_timeout: float) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(snapshot, "fold_wal", broken)
    from steve.errors import BackupFailed

    with pytest.raises(BackupFailed):
        _backup(source, tmp_path / "b")
    assert sorted(os.listdir(tmp_path)) == ["repo"]  # no b, no .b.tmp-*


def test_restore_refuses_a_non_empty_directory_and_a_wrong_passphrase(
    source: Path, tmp_path: Path
) -> None:
    _backup(source, tmp_path / "b")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep").write_text("mine")
    key = bk.backup_key(tmp_path / "b", PASSPHRASE)
    with pytest.raises(RestoreTargetNotEmpty):
        bk.restore(tmp_path / "b", tmp_path / "full", key)
    assert os.listdir(tmp_path / "full") == ["keep"]
    with pytest.raises(WrongKey):
        bk.backup_key(tmp_path / "b", "wrong")
    with pytest.raises(NotABackup):
        bk.restore(tmp_path / "repo", tmp_path / "x", key)
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("field", ["objects", "ref", "event-head"])
def test_a_backup_that_does_not_match_its_manifest_is_not_restored(
    source: Path, tmp_path: Path, field: str
) -> None:
    _backup(source, tmp_path / "b")
    path = tmp_path / "b" / "manifest.json"
    data = json.loads(path.read_text())
    if field == "objects":
        data["counts"]["objects"] += 1
    elif field == "ref":
        data["refs"]["refs/heads/b2"] = "00" * 32
    else:
        data["events"]["head_seq"] -= 1
    path.write_text(json.dumps(data))
    key = bk.backup_key(tmp_path / "b", PASSPHRASE)
    with pytest.raises(BackupMismatch):
        bk.restore(tmp_path / "b", tmp_path / "out", key)
    assert not (tmp_path / "out").exists()


def test_a_damaged_database_in_a_backup_is_not_restored(source: Path, tmp_path: Path) -> None:
    _backup(source, tmp_path / "b")
    db = tmp_path / "b" / "steve.db"
    raw = bytearray(db.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # one flipped byte inside some page
    db.write_bytes(bytes(raw))
    key = bk.backup_key(tmp_path / "b", PASSPHRASE)
    from steve.errors import SteveError

    with pytest.raises(SteveError) as caught:
        bk.restore(tmp_path / "b", tmp_path / "out", key)
    assert caught.value.exit_code == 9, caught.value
    assert not (tmp_path / "out").exists()


def test_the_cli_backs_up_restores_and_the_result_passes_fsck_and_events_verify(
    source: Path, tmp_path: Path, steve_env: dict[str, str]
) -> None:
    def steve(*args: str, env: dict[str, str] = steve_env) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "steve", *args],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )

    out = steve("backup", str(tmp_path / "b"), "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["counts"]["objects"] > 0
    again = steve("backup", str(tmp_path / "b"))
    assert again.returncode == 6 and "[STEVE-BACKUP-002]" in again.stderr
    env = {k: v for k, v in steve_env.items() if k != "STEVE_DIR"}
    out = steve("restore", str(tmp_path / "b"), str(tmp_path / "out"), env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"restored {tmp_path / 'b'} into {tmp_path / 'out'}: ")
    restored = {**env, "STEVE_DIR": str(tmp_path / "out")}
    for args in (("fsck", "--events"), ("events", "verify")):
        out = steve(*args, env=restored)
        assert out.returncode == 0, (args, out.stderr)
    out = steve("restore", str(tmp_path / "b"), str(tmp_path / "out"), env=env)
    assert out.returncode == 3 and "[STEVE-BACKUP-005]" in out.stderr


manifests = st.builds(
    bk.BackupManifest,
    created=st.integers(0, 2**53),
    repository_id=st.text(max_size=40),
    schema_version=st.integers(-1, 10),
    files=st.dictionaries(st.text(max_size=20), st.integers(0, 2**53), max_size=3),
    counts=st.dictionaries(st.text(max_size=20), st.integers(0, 2**53), max_size=9),
    refs=st.dictionaries(st.text(max_size=60), st.text(max_size=70), max_size=5),
    events=st.none()
    | st.builds(
        bk.EventsSummary,
        events=st.integers(0, 2**53),
        head_seq=st.integers(0, 2**53),
        head_hash=st.text(max_size=64),
        delivered=st.integers(0, 2**53),
    ),
)


@given(manifests)
def test_a_manifest_round_trips_through_its_json(manifest: bk.BackupManifest) -> None:
    assert bk.BackupManifest.from_json(manifest.to_json()) == manifest


@given(
    st.one_of(
        st.binary(max_size=200),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=10),
            lambda inner: (
                st.lists(inner, max_size=4)
                | st.dictionaries(st.text(max_size=10), inner, max_size=4)
            ),
            max_leaves=20,
        ).map(json.dumps),
    )
)
def test_a_garbage_manifest_is_refused_with_a_typed_error(text: bytes | str) -> None:
    path_dir = Path(tempfile.mkdtemp())
    try:
        (path_dir / "manifest.json").write_bytes(text if isinstance(text, bytes) else text.encode())
        with pytest.raises(NotABackup):
            bk.BackupManifest.read(path_dir / "manifest.json")
    finally:
        shutil.rmtree(path_dir)


@given(manifests, st.sampled_from(["created", "refs", "events", "format", "version"]))
def test_a_manifest_with_a_field_of_the_wrong_type_is_refused(
    manifest: bk.BackupManifest, field: str
) -> None:
    data = json.loads(manifest.to_json())
    data[field] = True if field != "events" else [1]
    with pytest.raises(ValueError):
        bk.BackupManifest.from_json(json.dumps(data))
