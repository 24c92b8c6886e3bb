"""The CLI (`steve events ...`, `steve verify`, `steve fsck --events`) and closure
verification by hash."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from steve.errors import EXIT_CORRUPT, EXIT_INVALID
from steve.events import EventLog
from steve.events.signing import IdentityInfo
from steve.objects.model import (
    CHUNK_SIZE,
    Blob,
    ChunkedBlob,
    Manifest,
    Tree,
    hash_object,
)
from steve.porcelain.freeze import freeze, load_draft
from steve.porcelain.verify import VerifyKind, verify
from steve.repo import Repo
from tests.cli.conftest import Invoke
from tests.events.conftest import raw_connect

EXAMPLE_DESIGN = Path(__file__).resolve().parents[2] / "examples" / "design.yaml"


def test_events_append_list_filter_and_verify(
    invoke: Invoke, cli_repo: Path, signing_identity: IdentityInfo
) -> None:
    out = invoke(
        "events", "append", "--type", "note.added", "--payload", '{"text": "hi"}', "--run", "r1"
    )
    assert out.exit_code == 0, out.stderr
    seq, digest = out.lines[0].split()
    assert seq == "1" and len(digest) == 64
    blob = invoke("hash-object", "-w", "--stdin", input=b"x").lines[0]
    assert invoke("update-ref", "refs/heads/main", blob).exit_code == 0
    listed = invoke("events", "--json")
    records = [json.loads(line) for line in listed.lines]
    assert [r["type"] for r in records] == ["note.added", "ref.updated"]
    assert records[0]["payload"] == {"text": "hi"} and records[0]["run_id"] == "r1"
    assert records[1]["payload"]["new"] == blob
    assert records[0]["correlation_id"] != records[1]["correlation_id"]  # one per invocation
    assert [json.loads(x)["seq"] for x in invoke("events", "--json", "--run", "r1").lines] == [1]
    assert len(invoke("events", "--type", "ref.*").lines) == 1
    assert invoke("events", "--from-seq", "2").lines[0].startswith("2 ")
    corr = records[1]["correlation_id"]
    assert len(invoke("events", "--correlation", corr).lines) == 1
    ok = invoke("events", "verify", "--json")
    assert ok.exit_code == 0
    assert json.loads(ok.lines[-1])["events"] == 2
    sealed = invoke("events", "seal", "--json")
    info = json.loads(sealed.lines[0])
    assert info["seq"] == 2 and info["segment"]["last_seq"] == 2
    pinned = invoke("events", "verify", "--public-key", info["public_key"])
    assert pinned.exit_code == 0, pinned.stderr
    fsck = invoke("fsck", "--events")
    assert fsck.exit_code == 0 and ", 2 events: ok" in fsck.stderr


def test_events_append_rejects_bad_input(invoke: Invoke) -> None:
    invoke("events", "append", "--type", "x.y", "--payload", "[1]").assert_error(
        EXIT_INVALID, "STEVE-EVT-001"
    )
    invoke("events", "append", "--type", "x.y", "--payload", "{nope").assert_error(
        EXIT_INVALID, "STEVE-EVT-001"
    )
    invoke("events", "append", "--type", "Bad", "--payload", "{}").assert_error(
        EXIT_INVALID, "STEVE-EVT-001"
    )
    invoke("events", "append", "--type", "x.y", "--payload", '{"f": 1.5}').assert_error(
        EXIT_INVALID, "STEVE-EVT-001"
    )


def test_events_verify_reports_the_first_bad_seq(invoke: Invoke, cli_repo: Path) -> None:
    for i in range(5):
        invoke("events", "append", "--type", "a.b", "--payload", json.dumps({"i": i}))
    key = Repo.derive_key(cli_repo, "pw")
    conn = raw_connect(cli_repo / ".steve" / "events.db", key)
    conn.execute("DROP TRIGGER events_no_update")
    conn.execute("UPDATE events SET event_type = 'x.y' WHERE seq = 3")
    conn.close()
    out = invoke("events", "verify")
    out.assert_error(EXIT_CORRUPT, "STEVE-EVT-002")
    assert "first bad seq 3" in out.stderr
    assert out.lines[0].startswith("chain seq 3:")
    invoke("fsck", "--events").assert_error(EXIT_CORRUPT, "STEVE-FSCK-001")


def test_structured_logs_go_to_the_log_file(
    invoke: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "steve.jsonl"
    monkeypatch.setenv("STEVE_LOG", "info")
    monkeypatch.setenv("STEVE_LOG_FILE", str(target))
    blob = invoke("hash-object", "-w", "--stdin", input=b"secret contents").lines[0]
    invoke("update-ref", "refs/heads/main", blob)
    (line,) = target.read_text().splitlines()
    rec = json.loads(line)
    assert rec["msg"] == "ref.updated" and rec["fields"]["new"] == blob
    assert set(rec) == {"ts", "level", "target", "correlation_id", "msg", "fields"}
    assert "secret contents" not in target.read_text()


def test_follow_streams_new_events_from_another_process(
    cli_repo: Path, steve_env: dict[str, str]
) -> None:
    env = dict(steve_env, STEVE_DIR=str(cli_repo))
    follower = subprocess.Popen(
        ["steve", "events", "--follow", "--json"], env=env, stdout=subprocess.PIPE
    )
    try:
        subprocess.run(
            ["steve", "events", "append", "--type", "x.y", "--payload", '{"n": 7}'],
            env=env,
            check=True,
            capture_output=True,
        )
        assert follower.stdout is not None
        line = follower.stdout.readline()
        assert json.loads(line)["payload"] == {"n": 7}
    finally:
        follower.kill()
        follower.wait()


# --- steve verify ------------------------------------------------------------------------


def test_verify_walks_the_whole_closure(repo: Repo) -> None:
    big = os.urandom(3 * 1024 * 1024 + 5)
    tree_dir = Path(repo.root or ".") / "work"
    (tree_dir / "sub").mkdir(parents=True)
    (tree_dir / "a.txt").write_bytes(b"a")
    (tree_dir / "sub" / "big.bin").write_bytes(big)
    tree = repo.write_tree(tree_dir)
    tag = repo.create_tag("v1", tree, message="snapshot")
    report = verify(repo, "v1")
    assert report.ok, report.problems
    chunks = -(-len(big) // CHUNK_SIZE)
    assert report.objects == 1 + 2 + 1 + 1 + chunks  # tag, 2 trees, a.txt, big's index, chunks
    assert report.root == tag


def _closure_with_manifest(repo: Repo) -> tuple[Manifest, object]:
    draft = load_draft(EXAMPLE_DESIGN.read_bytes())
    oid = freeze(repo, "design", draft, now=1_700_000_000, tz=0)
    obj = repo.read_object(oid)
    assert isinstance(obj, Manifest)
    return obj, oid


def test_verify_tells_corrupt_missing_and_invalid(repo: Repo) -> None:
    good = repo.write_blob(b"good")
    gone = Blob(b"never stored")
    gone_id, _ = hash_object(gone)
    tree = Tree.from_entries([])
    from steve.objects.model import Mode, TreeEntry

    tree = Tree.from_entries(
        [TreeEntry("good", Mode.FILE, good), TreeEntry("gone", Mode.FILE, gone_id)]
    )
    tree_id = repo.write(tree)
    report = verify(repo, tree_id.hex)
    assert [(p.kind, p.oid) for p in report.problems] == [(VerifyKind.MISSING, gone_id)]
    # corrupt: change the stored bytes of the good blob behind STEVE's back
    assert repo.key is not None and repo.steve_dir is not None
    conn = raw_connect(repo.steve_dir / "steve.db", repo.key)
    conn.execute("UPDATE objects SET data = ? WHERE oid = ?", (b"garbage", good.raw))
    conn.close()
    report = verify(repo, tree_id)
    kinds = sorted((p.kind.value, p.oid.hex) for p in report.problems)
    assert kinds == sorted([("missing", gone_id.hex), ("corrupt", good.hex)])


def test_verify_checks_manifests_against_their_schema(repo: Repo) -> None:
    manifest, oid = _closure_with_manifest(repo)
    assert verify(repo, oid.hex).ok  # type: ignore[attr-defined]
    bad_body = dict(manifest.body)
    bad_body["title"] = 12345
    forged = Manifest(
        manifest.kind,
        manifest.version,
        manifest.parents,
        manifest.links,
        manifest.time,
        manifest.tz,
        bad_body,
    )
    forged_id = repo.write(forged)
    report = verify(repo, forged_id)
    assert [p.kind for p in report.problems] == [VerifyKind.INVALID]
    assert "does not validate" in report.problems[0].detail
    future = Manifest(
        manifest.kind,
        99,
        manifest.parents,
        manifest.links,
        manifest.time,
        manifest.tz,
        manifest.body,
    )
    report = verify(repo, repo.write(future))
    assert "schema version 99" in report.problems[0].detail


def test_verify_chunk_mismatch_is_corrupt(repo: Repo) -> None:
    short = repo.write(Blob(b"abc"))  # the index below claims CHUNK_SIZE bytes for it
    tail = repo.write(Blob(b"xyz"))
    index = ChunkedBlob(CHUNK_SIZE + 3, ((short, CHUNK_SIZE), (tail, 3)))
    oid = repo.write(index)
    report = verify(repo, oid)
    assert [(p.kind, p.oid) for p in report.problems] == [(VerifyKind.CORRUPT, short)]
    assert f"inline blob of {CHUNK_SIZE} bytes" in report.problems[0].detail


def test_steve_verify_command(invoke: Invoke, cli_repo: Path) -> None:
    blob = invoke("hash-object", "-w", "--stdin", input=b"v").lines[0]
    invoke("update-ref", "refs/heads/main", blob)
    ok = invoke("verify", "main", "--json")
    assert ok.exit_code == 0
    assert json.loads(ok.lines[-1]) == {
        "root": blob,
        "objects": 1,
        "bytes": json.loads(ok.lines[-1])["bytes"],
        "problems": {},
        "ok": True,
    }
    key = Repo.derive_key(cli_repo, "pw")
    conn = raw_connect(cli_repo / ".steve" / "steve.db", key)
    conn.execute("UPDATE objects SET data = ? WHERE oid = ?", (b"zz", bytes.fromhex(blob)))
    conn.close()
    bad = invoke("verify", "main")
    bad.assert_error(EXIT_CORRUPT, "STEVE-VERIFY-001")
    assert bad.lines[0].startswith(f"corrupt {blob}: hash mismatch")


def test_event_log_of_a_cli_repo_uses_the_repository_key(invoke: Invoke, cli_repo: Path) -> None:
    invoke("events", "append", "--type", "a.b")
    key = Repo.derive_key(cli_repo, "pw")
    with EventLog(cli_repo / ".steve" / "events.db", key) as log:
        assert [e.event_type for e in log.events()] == ["a.b"]
    data = (cli_repo / ".steve" / "events.db").read_bytes()
    assert b"a.b" not in data and b"SQLite format" not in data
