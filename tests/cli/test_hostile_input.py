"""Hostile input gets a typed error, never a traceback (issue 12, items 7 and 8).

Out-of-range times and integers, non-UTF-8 passphrases, documents nested
100,000 deep, ``init`` over a dangling symlink and racing ``init`` runs.
Each case runs the real entry point (``python -m steve``) and checks the exit
code and the error code on the last line of standard error.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from steve.objects import cbor
from steve.objects.model import TIME_MAX, ObjectType, decode_object
from steve.objects.oid import ObjectId
from steve.repo import Repo
from steve.store.kdf import KdfParams
from tests.conftest import PASSPHRASE

DEEP = 100_000


def steve(
    root: Path,
    *args: str,
    input: bytes | None = None,
    env: dict[str, str] | None = None,
    envb: dict[bytes, bytes] | None = None,
) -> subprocess.CompletedProcess[bytes]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("STEVE_", "SOURCE_DATE"))}
    base.update(STEVE_PASSPHRASE=PASSPHRASE, STEVE_DIR=str(root))
    base.update(env or {})
    environ: dict[bytes, bytes] = {os.fsencode(k): os.fsencode(v) for k, v in base.items()}
    environ.update(envb or {})
    return subprocess.run(
        [sys.executable, "-m", "steve", *args],
        input=input,
        env=environ,
        capture_output=True,
        timeout=120,
        check=False,
    )


def assert_typed(proc: subprocess.CompletedProcess[bytes], exit_code: int, code: str) -> None:
    err = proc.stderr.decode(errors="replace")
    assert "Traceback" not in err, err
    assert proc.returncode == exit_code, (proc.returncode, err)
    assert err.strip().splitlines()[-1].strip() == f"[{code}]", err


@pytest.fixture
def root(repo_path: Path, fast_kdf: KdfParams) -> Path:
    with Repo.init(repo_path, passphrase=PASSPHRASE, kdf=fast_kdf) as repo:
        blob = repo.write_blob(b"x\n")
        repo.update_ref("refs/heads/main", blob, None, message="m")
    return repo_path


# --- item 7: times and integers --------------------------------------------------------------


@pytest.mark.parametrize("epoch", ["9223372036854775808", str(TIME_MAX + 1), "١٢٣", "-1"])
def test_source_date_epoch_out_of_range(root: Path, epoch: str) -> None:
    for args in (["tag", "-m", "x", "t", "main"], ["run", "new", "--name", "r"]):
        proc = steve(root, *args, env={"SOURCE_DATE_EPOCH": epoch})
        assert_typed(proc, 6, "STEVE-INPUT-001")
        assert proc.stdout == b""


def test_source_date_epoch_at_the_limit_is_accepted(root: Path) -> None:
    proc = steve(root, "tag", "-m", "x", "t", "main", env={"SOURCE_DATE_EPOCH": str(TIME_MAX)})
    assert proc.returncode == 0, proc.stderr
    with Repo.open(root, passphrase=PASSPHRASE) as repo:
        tag = repo.read_object(ObjectId.from_hex(proc.stdout.decode().strip()))
        assert getattr(tag, "time", None) == TIME_MAX
    assert steve(root, "cat", "t").returncode == 0


def _envelope(kind: str, time: int, tz: int = 0) -> bytes:
    if kind == "tag":
        return cbor.encode(
            {
                "type": "tag",
                "v": 1,
                "object": bytes(32),
                "object_type": "blob",
                "tag": "t",
                "tagger": {"name": "n", "email": "e"},
                "time": time,
                "tz": tz,
                "message": "m",
            }
        )
    return cbor.encode(
        {"type": kind, "v": 1, "parents": [], "links": [], "time": time, "tz": tz, "body": {}}
    )


@pytest.mark.parametrize(
    ("kind", "time", "tz"),
    [("design", 2**64 - 1, 0), ("tag", 2**63, 0), ("plan", TIME_MAX + 1, 0), ("tag", 0, 1440),
     ("design", -1, 0)],
)  # fmt: skip
def test_hash_object_refuses_out_of_range_times(root: Path, kind: str, time: int, tz: int) -> None:
    proc = steve(root, "hash-object", "-w", "-t", kind, "--stdin", input=_envelope(kind, time, tz))
    assert_typed(proc, 6, "STEVE-OBJ-002")
    assert proc.stdout == b""


def test_stored_tag_with_out_of_range_time_is_a_typed_error(root: Path) -> None:
    """A tag stored before the bound existed (or written around it) fails typed on read,
    and `verify` reports it instead of passing it."""
    data = _envelope("tag", 2**63)
    oid = ObjectId.of(data)
    with Repo.open(root, passphrase=PASSPHRASE) as repo, repo.backend.transaction() as tx:
        tx.put(oid, ObjectType.TAG, len(data), data)
    assert_typed(steve(root, "cat", oid.hex), 9, "STEVE-OBJ-003")
    proc = steve(root, "verify", oid.hex)
    assert proc.returncode == 9 and b"Traceback" not in proc.stderr


def test_in_range_times_round_trip() -> None:
    for kind, time in (("tag", 0), ("tag", TIME_MAX), ("design", TIME_MAX)):
        obj = decode_object(_envelope(kind, time, -1439))
        assert getattr(obj, "time", None) == time


@pytest.mark.parametrize(
    "args",
    [
        ["events", "--from-seq", "99999999999999999999999"],
        ["log", "-n", "99999999999999999999999"],
        ["for-each-ref", "--count", "99999999999999999999999"],
    ],
)
def test_huge_integer_options_are_usage_errors(root: Path, args: list[str]) -> None:
    proc = steve(root, *args)
    assert proc.returncode == 2, proc.stderr
    assert b"Traceback" not in proc.stderr


def test_huge_short_is_clamped_like_git(root: Path) -> None:
    proc = steve(root, "rev-parse", "--short=99999999999999999999999", "main")
    assert proc.returncode == 0 and len(proc.stdout.strip()) == 64, proc.stderr
    assert_typed(steve(root, "rev-parse", "main@{" + "9" * 5000 + "}"), 6, "STEVE-REV-003")


# --- item 8: typed errors instead of exit 10 ---------------------------------------------------


def test_non_utf8_passphrase_in_environment(root: Path) -> None:
    proc = steve(root, "show-ref", envb={b"STEVE_PASSPHRASE": b"pw\xff\xfe"})
    assert_typed(proc, 4, "STEVE-KEY-004")


def test_non_utf8_passphrase_in_key_file(root: Path, tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_bytes(b"\xc3\x28secret\n")
    proc = steve(root, "show-ref", env={"STEVE_KEY_FILE": str(key_file)})
    assert_typed(proc, 4, "STEVE-KEY-004")


@pytest.mark.parametrize(
    "text",
    [
        "[" * DEEP + "]" * DEEP,
        '{"title": ' + "[" * DEEP + "]" * DEEP + "}",
        "title: " + "[" * DEEP + "]" * DEEP + "\n",
        "title: x\nquestions: " + "{a: " * DEEP + "1" + "}" * DEEP + "\n",
    ],
    ids=["json-list", "json-object", "yaml-flow-list", "yaml-flow-map"],
)
def test_draft_nested_100000_deep(root: Path, tmp_path: Path, text: str) -> None:
    draft = tmp_path / "deep.txt"
    draft.write_text(text)
    proc = steve(root, "freeze", "research", str(draft))
    assert_typed(proc, 6, "STEVE-INPUT-001")
    assert b"nest" in proc.stderr


def test_draft_just_inside_the_depth_limit_is_only_a_schema_problem(
    root: Path, tmp_path: Path
) -> None:
    draft = tmp_path / "ok.json"
    draft.write_text(json.dumps({"title": "x", "extra": [[[1]]]}))
    assert_typed(steve(root, "freeze", "research", str(draft)), 6, "STEVE-MANIFEST-001")


def test_events_payload_nested_5000_deep(root: Path) -> None:
    payload = '{"a": ' * 5000 + "1" + "}" * 5000
    proc = steve(root, "events", "append", "--type", "a.b", "--payload", payload)
    assert_typed(proc, 6, "STEVE-EVT-001")


def test_events_payload_nested_deep_through_the_library(repo: Repo) -> None:
    from steve.errors import InvalidEvent
    from steve.events import EventLog

    value: dict[str, object] = {}
    inner = value
    for _ in range(5000):
        inner["a"] = {}
        inner = inner["a"]  # type: ignore[assignment]
    with EventLog.for_repo(repo) as log, pytest.raises(InvalidEvent):
        log.append("a.b", value)


def test_init_over_a_dangling_steve_symlink(tmp_path: Path) -> None:
    target = tmp_path / "work"
    target.mkdir()
    (target / ".steve").symlink_to(tmp_path / "nowhere")
    proc = steve(target, "init", str(target))
    assert_typed(proc, 3, "STEVE-REPO-002")
    assert not (tmp_path / "nowhere").exists()
    assert [p.name for p in target.iterdir()] == [".steve"]  # no staging left behind


def test_concurrent_inits_one_wins_the_others_are_typed(tmp_path: Path) -> None:
    target = tmp_path / "race"
    target.mkdir()
    base = {k: v for k, v in os.environ.items() if not k.startswith("STEVE_")}
    base["STEVE_PASSPHRASE"] = PASSPHRASE
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "steve", "init", str(target)],
            env=base,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(6)
    ]
    results = [(p.wait(timeout=300), p.stderr.read().decode() if p.stderr else "") for p in procs]
    codes = sorted(rc for rc, _ in results)
    assert codes.count(0) == 1, results
    for rc, err in results:
        assert "Traceback" not in err
        if rc != 0:
            assert rc == 3 and err.strip().splitlines()[-1].strip() == "[STEVE-REPO-002]", err
    assert [p.name for p in target.iterdir()] == [".steve"]
    with Repo.open(target, passphrase=PASSPHRASE) as repo:
        assert repo.head() is not None


# --- item 10: a tampered config's KDF parameters ------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("memory_kib", "99999999999999999999"),
        ("memory_kib", "4194305"),
        ("iterations", "1e9"),
        ("iterations", "1000000000"),
        ("parallelism", "0"),
        ("parallelism", "true"),
    ],
)
def test_tampered_kdf_parameters_are_refused_before_argon2(
    root: Path, field: str, value: str
) -> None:
    import re
    import time

    config = root / ".steve" / "config"
    text = config.read_text()
    config.write_text(re.sub(rf"(?m)^{field} = .*$", f"{field} = {value}", text))
    start = time.monotonic()
    proc = steve(root, "show-ref")
    assert_typed(proc, 3, "STEVE-REPO-003")
    assert field.encode() in proc.stderr
    assert time.monotonic() - start < 30


def test_kdf_parameters_in_range_are_accepted(fast_kdf: KdfParams) -> None:
    from steve.errors import InvalidInput
    from steve.store.kdf import KdfParams as Params

    Params(fast_kdf.salt, memory_kib=65536, iterations=64).validate()  # 16x the default's work
    Params(fast_kdf.salt, memory_kib=1 << 20, iterations=4).validate()
    with pytest.raises(InvalidInput):  # each in range, together 32x the default's work
        Params(fast_kdf.salt, memory_kib=1 << 20, iterations=8).validate()


# --- item 9: unlock --ttl -----------------------------------------------------------------------


@pytest.mark.parametrize("ttl", ["1.5h", "4294967296s", "4294967297s", "0s"])
def test_unlock_refuses_bad_ttls(root: Path, ttl: str) -> None:
    proc = steve(root, "unlock", "--ttl", ttl)
    assert_typed(proc, 6, "STEVE-INPUT-001")
    assert steve(root, "show-ref", env={"STEVE_PASSPHRASE": ""}).returncode == 4  # nothing cached


def test_unlock_reports_the_expiry_the_keyring_set(root: Path) -> None:
    try:
        proc = steve(root, "unlock", "--ttl", "90m")
        assert proc.returncode == 0, proc.stderr
        # the kernel reports whole hours here (1h: 3600..7200 s left), never "no expiry"
        assert proc.stderr.decode().strip() == (
            "unlocked for 5400s (the kernel keyring reports 3600s to 7200s left)"
        ), proc.stderr
    finally:
        steve(root, "lock")
