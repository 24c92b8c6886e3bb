"""The event log API: append/emit/flush, filters, follow, backpressure, drop policy,
segments and checkpoints, the spooler, structured logs, and the repository hook."""

from __future__ import annotations

import io
import json
import threading
import time
from pathlib import Path

import blake3
import pytest

from steve.errors import EventLogUnavailable, InvalidEvent, WrongKey
from steve.events import (
    GENESIS,
    EventLog,
    JsonLogger,
    Level,
    LogSpooler,
    Rotation,
    chain_hash,
    reassemble,
    redact,
    spool_log,
)
from steve.events.signing import SigningKey
from steve.events.store import EventStore
from steve.objects import cbor
from steve.porcelain.freeze import freeze, load_draft
from steve.porcelain.runs import Stage, goto, new_run
from steve.repo import Repo

EXAMPLE_DESIGN = Path(__file__).resolve().parents[2] / "examples" / "design.yaml"


def test_append_returns_the_committed_event_with_its_chain_hash(log: EventLog) -> None:
    first = log.append("note.added", {"text": "hello", "n": 1}, run_id="r1")
    second = log.append("note.added", {"blob": b"\x00\x01"}, causation_id="c0", actor="bob")
    assert (first.seq, second.seq) == (1, 2)
    assert first.prev_hash == GENESIS and second.prev_hash == first.hash
    assert first.hash == chain_hash(GENESIS, first.canonical_bytes())
    assert cbor.decode(first.payload_bytes) == {"text": "hello", "n": 1}
    assert first.correlation_id == "corr-test" and first.actor == "tester"
    assert second.actor == "bob" and second.causation_id == "c0"
    stored = list(log.events())
    assert stored == [first, second]
    assert log.verify().ok


def test_reopened_log_continues_the_chain(log_path: Path, key: bytes) -> None:
    with EventLog(log_path, key) as one:
        a = one.append("a.b", {})
    with EventLog(log_path, key) as two:
        b = two.append("a.b", {})
        assert b.seq == a.seq + 1 and b.prev_hash == a.hash
        assert two.verify().ok


def test_wrong_key_is_a_typed_error(log_path: Path, key: bytes) -> None:
    with EventLog(log_path, key) as lg:
        lg.append("a.b", {})
    other = EventLog(log_path, bytes(32))
    with pytest.raises(WrongKey):
        other.append("a.b", {})
    other.close()


@pytest.mark.parametrize(
    ("event_type", "payload", "level"),
    [
        ("Bad Type", {}, "info"),
        ("", {}, "info"),
        ("ok.type", {"f": 1.5}, "info"),
        ("ok.type", {1: "int key"}, "info"),
        ("ok.type", {"big": b"x" * (1 << 20)}, "info"),
        ("ok.type", {}, "loud"),
    ],
)
def test_invalid_events_are_refused_before_queueing(
    log: EventLog, event_type: str, payload: dict[object, object], level: str
) -> None:
    with pytest.raises(InvalidEvent):
        log.emit(event_type, payload, level=level)  # type: ignore[arg-type]
    assert log.flush() == 0


def test_filters_and_from_seq(log: EventLog) -> None:
    for i in range(30):
        log.emit(
            "container.started" if i % 3 == 0 else "log.chunk",
            {"i": i},
            run_id=f"r{i % 2}",
            correlation_id="x" if i < 10 else None,
            level="debug" if i % 5 == 0 else "info",
        )
    log.flush()
    assert [e.payload["i"] for e in log.events(run_id="r1", from_seq=20)] == [
        i for i in range(19, 30) if i % 2 == 1
    ]
    assert [e.seq for e in log.events(event_type="container.*")] == [
        i + 1 for i in range(30) if i % 3 == 0
    ]
    assert [e.seq for e in log.events(event_type="container")] == []
    assert len(list(log.events(correlation_id="x"))) == 10
    assert len(list(log.events(correlation_id="corr-test"))) == 20
    assert all(e.level is not Level.DEBUG for e in log.events(min_level=Level.INFO))
    # streaming works across pages
    assert [e.seq for e in log.store().iter_events(page=7)] == list(range(1, 31))


def test_follow_sees_events_committed_later(log: EventLog) -> None:
    log.append("a.b", {"i": 0})
    seen: list[int] = []
    done = threading.Event()

    def produce() -> None:
        for i in range(1, 5):
            time.sleep(0.02)
            log.append("a.b", {"i": i})
        done.set()

    t = threading.Thread(target=produce)
    t.start()
    for event in log.follow(poll=0.01, stop=lambda: done.is_set() and len(seen) >= 5):
        seen.append(event.payload["i"])
    t.join()
    assert seen == [0, 1, 2, 3, 4]


def test_producers_block_when_the_queue_is_full_and_nothing_is_lost(
    log_path: Path, key: bytes
) -> None:
    lg = EventLog(log_path, key, queue_size=8, batch_size=4, synchronous="NORMAL")
    store = lg.store()
    with store.lock:  # stall the writer: it needs this lock to commit
        lg.emit("a.b", {"i": -1})
        blocked = threading.Event()
        finished = threading.Event()

        def produce() -> None:
            for i in range(40):
                if i == 20:
                    blocked.set()
                lg.emit("a.b", {"i": i})
            finished.set()

        t = threading.Thread(target=produce)
        t.start()
        time.sleep(0.3)
        assert not finished.is_set(), "a producer ran ahead of a stalled writer"
        assert not blocked.is_set()
    t.join(10)
    assert finished.is_set()
    lg.flush()
    assert [e.payload["i"] for e in lg.events()] == list(range(-1, 40))
    assert lg.dropped == 0
    lg.close()


def test_debug_events_are_dropped_counted_and_the_drop_recorded(log_path: Path, key: bytes) -> None:
    lg = EventLog(log_path, key, queue_size=4, batch_size=4, drop_debug=True)
    store = lg.store()
    with store.lock:
        lg.emit("a.b", {"i": 0})
        time.sleep(0.1)  # the writer takes it and waits for the lock
        for i in range(1, 50):
            lg.emit("noise.debug", {"i": i}, level="debug")
        dropped = lg.dropped
        assert dropped >= 40
    lg.emit("a.b", {"i": 99})  # info events block when the queue is full, never drop
    lg.flush()
    events = list(lg.events())
    kept_debug = [e for e in events if e.event_type == "noise.debug"]
    reports = [e for e in events if e.event_type == "events.dropped"]
    assert len(kept_debug) + dropped == 49
    assert sum(e.payload["count"] for e in reports) == dropped
    assert reports[-1].level is Level.WARNING
    assert events[-1].payload.get("i") == 99 or events[-2].payload.get("i") == 99
    assert lg.verify().ok
    lg.close()


def test_closed_log_refuses_events(log: EventLog) -> None:
    log.append("a.b", {})
    log.close()
    with pytest.raises(EventLogUnavailable):
        log.emit("a.b", {})
    log.close()  # idempotent


def test_rotation_seals_segments_and_signs_checkpoints(log_path: Path, key: bytes) -> None:
    rot = Rotation(max_events=10, max_bytes=1 << 30, max_age_s=3600)
    signer = SigningKey.generate()
    with EventLog(log_path, key, rotation=rot, batch_size=3, signer=signer) as lg:
        for i in range(35):
            lg.append("a.b", {"i": i})
        segments = lg.store().segments()
        assert [(s.first_seq, s.last_seq) for s in segments] == [(1, 10), (11, 20), (21, 30)]
        for s in segments:
            assert s.head_hash == lg.store().hash_at(s.last_seq)
        cps = lg.store().checkpoints()
        assert [c.seq for c in cps] == [10, 20, 30]
        manual = lg.seal()
        assert manual is not None and (manual.first_seq, manual.last_seq) == (31, 35)
        assert lg.seal() is None  # empty open segment
        extra = lg.checkpoint()
        assert extra.seq == 35
        report = lg.verify()
        assert report.ok and report.segments == 4 and report.checkpoints == 5
        pinned = lg.verify(public_key=signer.public_key)
        assert pinned.ok and pinned.signed_seq == 35 and pinned.unsigned_events == 0


def test_rotation_by_bytes_and_age(tmp_path: Path, key: bytes) -> None:
    store = EventStore(tmp_path / "e.db", key, rotation=Rotation(10**9, 100, 3600))
    row = (1, "info", "a.b", None, None, None, None, cbor.encode({"d": b"x" * 60}))
    store.append([row])
    assert store.segments() == []
    store.append([row])
    assert [s.reason for s in store.segments()] == ["bytes>=100"]
    small = cbor.encode({})
    store.append([(5000, "info", "a.b", None, None, None, None, small)])
    assert store.head().segment_opened == 5000  # the segment's first event's time
    late = (5000 + 3600 * 1000, "info", "a.b", None, None, None, None, small)
    store.append([late, late])  # sealed at the first late event, inside the batch
    assert [(s.reason, s.last_seq) for s in store.segments()][-1] == ("age>=3600s", 4)
    store.close()


def test_rotation_seals_at_the_exact_event_inside_a_batch(tmp_path: Path, key: bytes) -> None:
    """Seals fall where the policy says, whatever the batch size (so verify can tell)."""
    signer = SigningKey.generate()
    with EventLog(
        tmp_path / "e.db", key, rotation=Rotation(max_events=7), batch_size=50, signer=signer
    ) as lg:
        for i in range(30):
            lg.emit("a.b", {"i": i})
        lg.flush()
        assert [(s.first_seq, s.last_seq) for s in lg.store().segments()] == [
            (1, 7),
            (8, 14),
            (15, 21),
            (22, 28),
        ]
        assert [c.seq for c in lg.store().checkpoints()] == [7, 14, 21, 28]
        report = lg.verify(public_key=signer.public_key)
        assert report.ok and report.signed_seq == 28 and report.unsigned_events == 2


def test_signed_checkpoints_verify_with_a_pinned_key(log: EventLog) -> None:
    log.append("a.b", {})
    signer = SigningKey.generate()
    log.seal(key=signer)
    (public,) = log.public_keys().values()
    assert public == signer.public_key
    assert log.verify(public_key=public).ok
    other = log.verify(public_key=SigningKey.generate().public_key)
    assert other.ok  # nothing was due (one event): but nothing is covered either
    assert other.signed_seq == 0 and other.unsigned_events == 1


def test_spooler_chunks_bounded_and_reassembles(log: EventLog) -> None:
    data = bytes(range(256)) * 1000  # 256,000 bytes
    with LogSpooler(
        log, step="build", stream="stdout", run_id="r9", chunk_size=10_000, flush_interval=None
    ) as sp:
        for i in range(0, len(data), 777):
            sp.write(data[i : i + 777])
        assert len(sp._buf) < 10_000
    log.flush()
    chunks = list(log.events(event_type="log.chunk"))
    assert len(chunks) == 26
    assert all(len(e.payload["data"]) <= 10_000 for e in chunks)
    assert [e.payload["index"] for e in chunks] == list(range(26))
    assert reassemble(log, step="build", stream="stdout", run_id="r9") == data
    (end,) = log.events(event_type="log.end")
    assert end.payload["total_bytes"] == len(data)
    assert end.payload["blake3"] == blake3.blake3(data).hexdigest()
    assert end.payload["truncated"] is False


def test_a_slow_step_s_lines_go_out_as_they_come(log: EventLog) -> None:
    """A write that comes flush_interval or more after the last chunk emits the
    partial chunk (a follower sees a slow step live); quick writes still batch."""
    now = [0.0]
    with LogSpooler(log, step="slow", flush_interval=0.25, clock=lambda: now[0]) as sp:
        sp.write(b"first line\n")  # 0.0 s after the start: kept
        assert sp.index == 0
        now[0] = 0.1
        sp.write(b"second\n")
        assert sp.index == 0
        now[0] = 0.3  # 0.3 s since the start, nothing emitted yet: both lines go
        sp.write(b"third\n")
        assert sp.index == 1 and sp.stored == len(b"first line\nsecond\nthird\n")
        now[0] = 0.4  # 0.1 s after that chunk: kept again
        sp.write(b"fourth\n")
        assert sp.index == 1
    log.flush()
    chunks = [e.payload["data"] for e in log.events(event_type="log.chunk")]
    assert chunks == [b"first line\nsecond\nthird\n", b"fourth\n"]
    assert reassemble(log, step="slow", stream="stdout") == b"".join(chunks)


def test_spool_log_caps_stored_bytes_but_counts_and_hashes_everything(log: EventLog) -> None:
    data = b"y" * 5000
    sp = spool_log(log, io.BytesIO(data), step="t", stream="stderr", chunk_size=512, max_bytes=2000)
    log.flush()
    assert sp.stored == 2000 and sp.total == 5000
    assert reassemble(log, step="t", stream="stderr") == data[:2000]
    (end,) = log.events(event_type="log.end")
    assert end.payload["truncated"] is True
    assert end.payload["blake3"] == blake3.blake3(data).hexdigest()
    sp2 = spool_log(log, [b"a", b"b"], step="t2")
    assert sp2.total == 2


def test_json_logger_writes_required_fields_and_redacts() -> None:
    out = io.StringIO()
    logger = JsonLogger(out, level="info", correlation_id="c-1", target="steve.test")
    logger.debug("hidden")
    logger.info(
        "container started",
        image="busybox",
        passphrase="hunter2",
        api_key="sk-123",
        data=b"object contents",
        nested={"token": "t", "ok": 1, "raw": b"12"},
        long="z" * 1000,
    )
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    rec = json.loads(lines[0])
    assert set(rec) == {"ts", "level", "target", "correlation_id", "msg", "fields"}
    assert rec["level"] == "info" and rec["target"] == "steve.test"
    assert rec["correlation_id"] == "c-1" and rec["msg"] == "container started"
    assert rec["ts"].endswith("Z") and "T" in rec["ts"]
    f = rec["fields"]
    assert f["image"] == "busybox"
    assert f["passphrase"] == f["api_key"] == f["data"] == "[redacted]"
    assert f["nested"] == {"token": "[redacted]", "ok": 1, "raw": "<2 bytes>"}
    assert len(f["long"]) < 300
    text = out.getvalue()
    for secret in ("hunter2", "sk-123", "object contents"):
        assert secret not in text
    assert redact({"x": [b"abc"]}) == {"x": ["<3 bytes>"]}


def test_event_log_mirrors_committed_events_to_the_structured_log(
    log_path: Path, key: bytes
) -> None:
    out = io.StringIO()
    with EventLog(log_path, key, logger=JsonLogger(out, level="info")) as lg:
        lg.append("secret.thing", {"password": "p4ss", "ref": "refs/heads/main"})
        lg.append("quiet.thing", {}, level="debug")
    (line,) = out.getvalue().splitlines()
    rec = json.loads(line)
    assert rec["msg"] == "secret.thing" and rec["fields"]["seq"] == 1
    assert rec["fields"]["ref"] == "refs/heads/main"
    assert "p4ss" not in line


# --- the repository hook -----------------------------------------------------------------


def test_repository_changes_become_events_with_the_correlation_id(repo: Repo) -> None:
    lg = EventLog.attach(repo, correlation_id="op-1", actor="alice")
    try:
        blob = repo.write_blob(b"x")
        repo.update_ref("refs/heads/main", blob, old=None)
        repo.create_tag("v1", blob)
        repo.set_symbolic_ref("refs/heads/alias", "refs/heads/main")
        repo.delete_ref("refs/heads/main")
        run = new_run(repo, name="demo", now=1_700_000_000, actor="alice")
        goto(repo, run.id, Stage.RESEARCH, now=1_700_000_001, actor="alice")
        lg.flush()
        events = list(lg.events())
        types = [e.event_type for e in events]
        assert types == [
            "ref.updated",
            "ref.updated",
            "ref.symbolic",
            "ref.deleted",
            "run.created",
            "run.transition",
        ]
        assert all(e.correlation_id == "op-1" and e.actor == "alice" for e in events)
        assert events[0].payload == {"ref": "refs/heads/main", "old": None, "new": blob.hex}
        assert events[1].payload["ref"] == "refs/tags/v1"
        assert events[4].run_id == run.id == events[5].run_id
        assert events[5].payload == {
            "seq": 1,
            "from": "DESIGN",
            "to": "RESEARCH",
            "trigger": "goto",
        }
        assert lg.verify().ok
    finally:
        lg.close()
    assert (repo_path_of(repo) / ".steve" / "events.db").is_file()


def repo_path_of(repo: Repo) -> Path:
    assert repo.root is not None
    return repo.root


def test_freeze_emits_manifest_frozen(repo: Repo) -> None:
    lg = EventLog.attach(repo)
    try:
        draft = _design_draft()
        oid = freeze(repo, "design", draft, now=1_700_000_000, tz=0, ref="refs/heads/design")
        (event,) = lg_events(lg, "manifest.frozen")
        assert event.payload == {"kind": "design", "id": oid.hex, "ref": "refs/heads/design"}
    finally:
        lg.close()


def lg_events(lg: EventLog, event_type: str) -> list[object]:
    lg.flush()
    return list(lg.events(event_type=event_type))


def _design_draft() -> dict[str, object]:
    return load_draft(EXAMPLE_DESIGN.read_bytes(), str(EXAMPLE_DESIGN))


def test_memory_repo_gets_a_memory_log() -> None:
    repo = Repo.memory()
    with EventLog.attach(repo) as lg:
        repo.update_ref("refs/heads/main", repo.write_blob(b"m"))
        lg.flush()
        assert [e.event_type for e in lg.events()] == ["ref.updated"]
        assert lg.path is None
