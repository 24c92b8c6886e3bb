"""Real SQLCipher files on disk: confidentiality, wrong keys, damaged files.

Every check here works on the bytes of the real files under ``.steve/``
(and the real ``steve`` entry point where exit codes matter).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from steve.errors import (
    BadConfig,
    CorruptDatabase,
    NotARepository,
    RepositoryExists,
    SteveError,
    StorageError,
    WrongKey,
)
from steve.objects.model import Blob, ObjectType, hash_object
from steve.repo import Repo
from steve.store.kdf import KdfParams
from steve.store.maint import ProblemKind
from tests.conftest import PASSPHRASE, make_fast_kdf

SENTINEL = "SENTINEL-7f3a9c1e-PLAINTEXT-MUST-NOT-LEAK"
PAGE = 4096


def files_under(root: Path) -> Iterator[Path]:
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            yield Path(dirpath) / name


def scan(root: Path, needles: list[bytes]) -> list[str]:
    """Every (file, needle) where a needle occurs in a file's raw bytes."""
    hits = []
    for path in files_under(root):
        data = path.read_bytes()
        hits += [f"{path.name}: {n!r}" for n in needles if n in data]
    return hits


def needles_for(text: str) -> list[bytes]:
    # the plain text, a distinctive half of it, and its UTF-16 form
    return [text.encode(), text.encode()[10:30], text.encode("utf-16-le")]


def steve_cli(
    args: list[str], env: dict[str, str], **kw: object
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "steve", *args],
        env=env,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=60,
        check=False,
        **kw,  # type: ignore[arg-type]
    )


def cli_env(root: Path, passphrase: str = PASSPHRASE) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEVE_")}
    env["STEVE_PASSPHRASE"] = passphrase
    env["STEVE_DIR"] = str(root)
    return env


def fill(repo: Repo, n: int = 400, size: int = 3000) -> list[bytes]:
    """Write ``n`` random blobs (spread over many pages); returns their contents."""
    blobs = [os.urandom(size) for _ in range(n)]
    with repo.writer() as w:
        for b in blobs:
            w.add(Blob(b))
    return blobs


# --- nothing readable outside the encryption -----------------------------------------------


def test_scan_finds_plaintext(tmp_path: Path) -> None:
    """The detector itself works (so an empty result below means something)."""
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "f").write_bytes(b"xx" + SENTINEL.encode("utf-16-le") + b"yy")
    assert scan(tmp_path, needles_for(SENTINEL)) == [f"f: {needles_for(SENTINEL)[2]!r}"]


def test_sentinel_never_in_plaintext_on_disk(repo: Repo, repo_path: Path) -> None:
    steve_dir = repo_path / ".steve"
    needles = needles_for(SENTINEL)
    fill(repo, 50)
    oid = repo.write_blob(f"payload {SENTINEL} payload".encode())
    big = repo.write_blob((SENTINEL.encode() + b"\n") * 40_000)  # chunked, > 1 MiB
    ref = f"refs/heads/{SENTINEL}"
    repo.update_ref(ref, oid, None, message=f"reflog says {SENTINEL}")
    repo.update_ref("refs/heads/main", big, message=SENTINEL)
    repo.create_tag(f"t-{SENTINEL}", oid, message=f"tag message {SENTINEL}")
    repo.set_symbolic_ref("refs/heads/alias", ref, message=SENTINEL)
    # read it back through the key, so we know it really is in there
    assert SENTINEL.encode() in repo.read_blob(oid)
    assert repo.reflog(ref)[0].message == f"reflog says {SENTINEL}"
    assert any(SENTINEL in r.name for r in repo.list_refs())

    # while open: the WAL and shared-memory files exist and hold no plaintext
    names = {p.name for p in files_under(steve_dir)}
    assert "steve.db-wal" in names
    assert scan(steve_dir, needles) == []
    assert SENTINEL.encode() not in (steve_dir / "config").read_bytes()

    repo.gc(prune_before=None)
    assert repo.fsck().ok
    repo.close()
    assert scan(steve_dir, needles) == []
    # and the store really is encrypted: not even SQLite's magic header is visible
    assert not (steve_dir / "steve.db").read_bytes().startswith(b"SQLite format 3")

    again = Repo.open(repo_path, passphrase=PASSPHRASE)
    try:
        assert SENTINEL.encode() in again.read_blob(oid)
        assert again.read_blob(big) == (SENTINEL.encode() + b"\n") * 40_000
    finally:
        again.close()
    assert scan(steve_dir, needles) == []


def snapshot(root: Path) -> set[Path]:
    return {p for p in files_under(root)} | {Path(d) for d, _, _ in os.walk(root)}


def test_no_files_outside_steve_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fast_kdf: KdfParams
) -> None:
    work = tmp_path / "work"
    (work / "src" / "deep").mkdir(parents=True)
    (work / "src" / "a.txt").write_text(SENTINEL)
    (work / "src" / "deep" / "b.bin").write_bytes(os.urandom(3 * (1 << 20)))  # chunked
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    # any temp file SQLite, Python or STEVE would create lands here
    monkeypatch.setenv("TMPDIR", str(private_tmp))
    monkeypatch.setenv("SQLITE_TMPDIR", str(private_tmp))
    monkeypatch.setattr(tempfile, "tempdir", str(private_tmp))
    monkeypatch.chdir(work)

    repo = Repo.init(work, passphrase=PASSPHRASE, kdf=fast_kdf)
    before = snapshot(tmp_path)
    try:
        tree = repo.write_tree(work / "src")
        blob = repo.write_blob(SENTINEL.encode() * 1000)
        repo.update_ref("refs/heads/main", tree, message=SENTINEL)
        repo.update_ref(f"refs/heads/{SENTINEL}", blob, None)
        repo.create_tag("v1", tree, message=SENTINEL)
        list(repo.iter_objects())
        b"".join(repo.iter_content(repo.rev_parse("main")))
        assert repo.fsck().ok
        repo.gc(prune_before=2**40)  # prune everything unreachable, vacuum
        repo.delete_ref(f"refs/heads/{SENTINEL}")
    finally:
        repo.close()
    # the CLI too (a real process, same temp directory)
    env = cli_env(work)
    env["TMPDIR"] = env["SQLITE_TMPDIR"] = str(private_tmp)
    proc = steve_cli(["hash-object", "-w", "src/a.txt"], env, cwd=work)
    assert proc.returncode == 0, proc.stderr
    proc = steve_cli(["cat-file", "--batch-all-objects", "--batch"], env, cwd=work)
    assert proc.returncode == 0, proc.stderr
    proc = steve_cli(["fsck"], env, cwd=work)
    assert proc.returncode == 0, proc.stderr

    after = snapshot(tmp_path)
    new = {p for p in after - before if ".steve" not in p.relative_to(tmp_path).parts}
    assert new == set()
    assert list(private_tmp.iterdir()) == []
    assert scan(work / ".steve", needles_for(SENTINEL)) == []


# --- keys ------------------------------------------------------------------------------------


def test_wrong_passphrase_is_wrong_key(repo: Repo, repo_path: Path) -> None:
    repo.write_blob(b"x")
    repo.close()
    db = repo_path / ".steve" / "steve.db"
    before = db.read_bytes()
    with pytest.raises(WrongKey) as info:
        Repo.open(repo_path, passphrase="not pw")
    assert info.value.code == "STEVE-KEY-001"
    assert info.value.exit_code == 4
    with pytest.raises(WrongKey):
        Repo.open(repo_path, key=bytes(32))
    with pytest.raises(WrongKey):
        Repo.derive_key(repo_path, "PW")
    assert db.read_bytes() == before  # a failed open changes nothing


def test_wrong_key_with_tampered_key_check(repo: Repo, repo_path: Path) -> None:
    """If the config's key check is forged to match a wrong key, SQLCipher still refuses."""
    from steve.config import RepoConfig
    from steve.store.kdf import derive_key, key_check

    repo.close()
    cfg_path = repo_path / ".steve" / "config"
    cfg = RepoConfig.read(cfg_path)
    wrong = derive_key("wrong", cfg.kdf)
    RepoConfig(cfg.repository_id, cfg.kdf, key_check(wrong), cfg.format).write(cfg_path)
    with pytest.raises((WrongKey, CorruptDatabase)):
        Repo.open(repo_path, passphrase="wrong")


def test_wrong_passphrase_cli(repo: Repo, repo_path: Path) -> None:
    oid = repo.write_blob(b"secret")
    repo.close()
    proc = steve_cli(["cat-file", "-t", oid.hex], cli_env(repo_path, "not the passphrase"))
    assert proc.returncode == 4
    assert "STEVE-KEY-001" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""
    ok = steve_cli(["cat-file", "-t", oid.hex], cli_env(repo_path))
    assert (ok.returncode, ok.stdout) == (0, "blob\n"), ok.stderr


# --- damaged database files ------------------------------------------------------------------


@pytest.fixture(scope="module")
def filled_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A closed repository with ~470 pages of objects, copied by each test that damages it."""
    root = tmp_path_factory.mktemp("filled")
    repo = Repo.init(root, passphrase=PASSPHRASE, kdf=make_fast_kdf())
    try:
        blobs = fill(repo, 400, 4000)
        oid, _ = hash_object(Blob(blobs[0]))
        repo.update_ref("refs/heads/main", oid, None, message="m")
        assert repo.fsck().ok
    finally:
        repo.close()
    assert sorted(p.name for p in (root / ".steve").iterdir()) == ["config", "steve.db"]
    return root


def damaged_copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst / ".steve" / "steve.db"


def flip_byte(db: Path, offset: int) -> None:
    data = bytearray(db.read_bytes())
    data[offset] ^= 0x5A
    db.write_bytes(bytes(data))


def open_and_check(root: Path) -> tuple[str, list[str]]:
    """Open, fsck and read everything; returns how damage surfaced.

    ("open", [...]) - a typed error at open; ("fsck", [kinds]) - fsck problems;
    ("read", [...]) - a typed error while reading.  Any other exception fails.
    """
    try:
        repo = Repo.open(root, passphrase=PASSPHRASE)
    except (CorruptDatabase, StorageError) as exc:
        return "open", [exc.code]
    try:
        report = repo.fsck()
        if not report.ok:
            return "fsck", sorted({p.kind.value for p in report.problems})
        try:
            for info in repo.iter_objects():
                repo.read_object(info.oid)
        except SteveError as exc:
            return "read", [exc.code]
        return "clean", []
    finally:
        repo.close()


@pytest.mark.parametrize("where", ["page 2", "middle", "middle+3000", "last page", "last hmac"])
def test_flipped_byte_in_data_page_is_detected(
    filled_repo: Path, tmp_path: Path, where: str
) -> None:
    root = tmp_path / "r"
    db = damaged_copy(filled_repo, root)
    size = db.stat().st_size
    assert size > 100 * PAGE
    middle = (size // PAGE // 2) * PAGE
    offset = {
        "page 2": PAGE + 100,
        "middle": middle + 500,
        "middle+3000": middle + 3000,
        "last page": size - PAGE + 200,
        "last hmac": size - 10,  # inside the page's IV/HMAC reserve
    }[where]
    flip_byte(db, offset)
    how, detail = open_and_check(root)
    assert how != "clean", "a damaged page went unnoticed"
    if how == "fsck":
        assert set(detail) <= {ProblemKind.DATABASE.value, ProblemKind.CORRUPT.value}
    else:
        assert detail == [CorruptDatabase.code]


def test_flipped_byte_cli_fsck(filled_repo: Path, tmp_path: Path) -> None:
    root = tmp_path / "r"
    db = damaged_copy(filled_repo, root)
    flip_byte(db, (db.stat().st_size // PAGE // 2) * PAGE + 777)
    proc = steve_cli(["fsck"], cli_env(root))
    assert proc.returncode == 9, proc.stderr
    assert "Traceback" not in proc.stderr
    # reading every object's content either never touches the damaged page (it
    # may be a pointer-map page) or reports it; never a traceback
    proc = steve_cli(["cat-file", "--batch-all-objects", "--batch"], cli_env(root))
    assert proc.returncode in (0, 9), proc.stderr
    assert "Traceback" not in proc.stderr
    if proc.returncode == 9:
        # a damaged page (STOR-001), or content that no longer hashes to its id
        # (OBJ-003: every content read re-hashes the stored bytes)
        assert "STEVE-STOR-001" in proc.stderr or "STEVE-OBJ-003" in proc.stderr


def test_damaged_database_error_is_not_buried_in_library_logs(
    filled_repo: Path, tmp_path: Path
) -> None:
    """stderr carries STEVE's own error report only, not SQLCipher's internal log lines."""
    root = tmp_path / "r"
    flip_byte(damaged_copy(filled_repo, root), 100)  # page 1: fails at open
    proc = steve_cli(["rev-parse", "main"], cli_env(root))
    assert proc.returncode == 9
    lines = proc.stderr.splitlines()
    assert lines[0].startswith("steve: error: "), lines[:3]
    assert len(lines) <= 6, lines[:8]
    assert "ERROR CORE" not in proc.stderr


@pytest.mark.parametrize("offset", [0, 8, 15, 16, 20, 100, 2048, PAGE - 1])
def test_flipped_byte_in_page_one_fails_at_open(
    filled_repo: Path, tmp_path: Path, offset: int
) -> None:
    root = tmp_path / "r"
    flip_byte(damaged_copy(filled_repo, root), offset)
    with pytest.raises(CorruptDatabase) as info:
        Repo.open(root, passphrase=PASSPHRASE)
    assert info.value.code == "STEVE-STOR-001"
    proc = steve_cli(["rev-parse", "main"], cli_env(root))
    assert proc.returncode == 9
    assert "STEVE-STOR-001" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("keep", ["empty", "100 bytes", "one page", "half", "all but a page"])
def test_truncated_database(filled_repo: Path, tmp_path: Path, keep: str) -> None:
    root = tmp_path / "r"
    db = damaged_copy(filled_repo, root)
    size = db.stat().st_size
    n = {
        "empty": 0,
        "100 bytes": 100,
        "one page": PAGE,
        "half": (size // PAGE // 2) * PAGE,
        "all but a page": size - PAGE,
    }[keep]
    with db.open("r+b") as fh:
        fh.truncate(n)
    how, detail = open_and_check(root)
    assert how != "clean"
    if how == "fsck":
        assert set(detail) <= {ProblemKind.DATABASE.value, ProblemKind.CORRUPT.value}
    else:
        assert detail == [CorruptDatabase.code]


def test_missing_database_file(filled_repo: Path, tmp_path: Path) -> None:
    root = tmp_path / "r"
    damaged_copy(filled_repo, root).unlink()
    with pytest.raises(NotARepository):
        Repo.open(root, passphrase=PASSPHRASE)
    assert not (root / ".steve" / "steve.db").exists()  # not silently re-created


# --- config --------------------------------------------------------------------------------


def test_missing_config(filled_repo: Path, tmp_path: Path) -> None:
    root = tmp_path / "r"
    damaged_copy(filled_repo, root)
    (root / ".steve" / "config").unlink()
    with pytest.raises(NotARepository):
        Repo.open(root, passphrase=PASSPHRASE)
    proc = steve_cli(["rev-parse", "main"], cli_env(root))
    assert proc.returncode == 3
    assert "STEVE-REPO-001" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    "garble",
    [
        "binary",
        "not toml",
        "no kdf section",
        "bad salt hex",
        "bad memory",
        "bad algorithm",
        "bad key check hex",
        "empty",
    ],
)
def test_garbled_config(filled_repo: Path, tmp_path: Path, garble: str) -> None:
    root = tmp_path / "r"
    damaged_copy(filled_repo, root)
    cfg = root / ".steve" / "config"
    text = cfg.read_text()
    salt_line = next(line for line in text.splitlines() if line.startswith("salt"))
    check_line = next(line for line in text.splitlines() if line.startswith("key_check"))
    new = {
        "binary": None,
        "not toml": "[core\nformat = = 1\n",
        "no kdf section": text.split("[kdf]")[0],
        "bad salt hex": text.replace(salt_line, 'salt = "zz"'),
        "bad memory": text.replace("memory_kib = 256", 'memory_kib = "lots"'),
        "bad algorithm": text.replace('"argon2id"', '"md5"'),
        "bad key check hex": text.replace(check_line, 'key_check = "xyz"'),
        "empty": "",
    }[garble]
    if new is None:
        cfg.write_bytes(b"\xff\xfe\x00garbage\x80")
    else:
        assert new != text or garble == "empty"
        cfg.write_text(new)
    with pytest.raises(BadConfig) as info:
        Repo.open(root, passphrase=PASSPHRASE)
    assert info.value.code == "STEVE-REPO-003"
    proc = steve_cli(["rev-parse", "main"], cli_env(root))
    assert proc.returncode == 3, proc.stderr
    assert "STEVE-REPO-003" in proc.stderr
    assert "Traceback" not in proc.stderr


# --- init ---------------------------------------------------------------------------------


def test_init_refuses_existing_repository(repo: Repo, repo_path: Path, fast_kdf: KdfParams) -> None:
    with pytest.raises(RepositoryExists):
        Repo.init(repo_path, passphrase=PASSPHRASE, kdf=fast_kdf)
    assert repo.fsck().ok  # the existing one is untouched


def leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


def test_init_with_bad_key_leaves_nothing(tmp_path: Path, fast_kdf: KdfParams) -> None:
    root = tmp_path / "r"
    root.mkdir()
    with pytest.raises(SteveError):
        Repo.init(root, key=b"too short", kdf=fast_kdf)
    assert leftovers(root) == []


def test_init_with_empty_passphrase_leaves_nothing(tmp_path: Path, fast_kdf: KdfParams) -> None:
    root = tmp_path / "r"
    with pytest.raises(SteveError):
        Repo.init(root, passphrase="", kdf=fast_kdf)
    assert not (root / ".steve").exists()


def test_init_failing_midway_leaves_nothing(
    tmp_path: Path, fast_kdf: KdfParams, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure after the database exists (config write hits a full disk) leaves no trace."""
    from steve.config import RepoConfig

    def disk_full(self: RepoConfig, path: Path) -> None:
        path.write_text("partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(RepoConfig, "write", disk_full)
    root = tmp_path / "r"
    root.mkdir()
    with pytest.raises((StorageError, OSError)):
        Repo.init(root, passphrase=PASSPHRASE, kdf=fast_kdf)
    assert leftovers(root) == []


def test_init_then_open_roundtrip_types(repo: Repo, repo_path: Path) -> None:
    oid = repo.write_blob(b"abc")
    repo.close()
    with Repo.open(repo_path, passphrase=PASSPHRASE) as again:
        assert again.object_type(oid) is ObjectType.BLOB
        assert again.read_blob(oid) == b"abc"
        head = again.head()
        assert head is not None and head.symbolic == "refs/heads/main"
