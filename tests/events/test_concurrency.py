"""The event log's lock-free producer path: many producers, emits during flush and
close, appends among emits, an idle writer woken by one event; and the writer's
hand-rolled chain hashing against the canonical bytes for any seq and time.

Whatever the interleaving: no event is lost or written twice, each producer's
events keep their order, seqs are 1..N without gaps, the chain verifies, and
flush() returns only once every event emitted before it is committed.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from steve.errors import EventLogUnavailable
from steve.events import GENESIS, EventLog, chain_hash
from steve.events.model import canonical_bytes
from steve.events.store import EventStore, row_to_event


def _by_producer(log: EventLog) -> tuple[list[int], dict[str, list[int]]]:
    seqs: list[int] = []
    seen: dict[str, list[int]] = defaultdict(list)
    for e in log.events():
        seqs.append(e.seq)
        assert e.run_id is not None
        seen[e.run_id].append(e.payload["i"])
    return seqs, seen


@pytest.mark.parametrize(("queue_size", "batch_size"), [(8, 4), (64, 16), (8192, 4096), (3, 5)])
def test_many_producers_lose_nothing_and_keep_their_order(
    log_path: Path, key: bytes, queue_size: int, batch_size: int
) -> None:
    producers, per = 8, 300
    lg = EventLog(log_path, key, queue_size=queue_size, batch_size=batch_size, synchronous="OFF")
    start = threading.Barrier(producers)

    def produce(w: int) -> None:
        start.wait()
        for i in range(per):
            lg.emit("bench.tick", {"i": i}, run_id=f"p{w}")

    threads = [threading.Thread(target=produce, args=(w,)) for w in range(producers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert lg.flush() == producers * per
    seqs, seen = _by_producer(lg)
    assert seqs == list(range(1, producers * per + 1))
    assert seen == {f"p{w}": list(range(per)) for w in range(producers)}
    assert lg.verify().ok
    lg.close()


def test_flush_during_emits_covers_what_its_thread_emitted(log_path: Path, key: bytes) -> None:
    """Each flusher emits one event, flushes, and must then find it committed, while
    other threads flood the queue (lock-free appends racing the flush's ticket)."""
    lg = EventLog(log_path, key, queue_size=64, batch_size=16, synchronous="OFF")
    stop = threading.Event()
    failures: list[str] = []

    def flood(w: int) -> None:
        i = 0
        while not stop.is_set():
            lg.emit("flood.tick", {"i": i}, run_id=f"f{w}")
            i += 1

    def flusher(w: int) -> None:
        for i in range(40):
            lg.emit("mine.tick", {"i": i}, run_id=f"m{w}")
            lg.flush()
            got = lg.latest(limit=1, run_id=f"m{w}")
            if not got or got[0].payload["i"] != i:
                failures.append(f"m{w}: event {i} not committed after flush")

    floods = [threading.Thread(target=flood, args=(w,)) for w in range(3)]
    flushers = [threading.Thread(target=flusher, args=(w,)) for w in range(3)]
    for t in floods + flushers:
        t.start()
    for t in flushers:
        t.join()
    stop.set()
    for t in floods:
        t.join()
    assert failures == []
    lg.flush()
    seqs, seen = _by_producer(lg)
    assert seqs == list(range(1, len(seqs) + 1))
    for run, got in seen.items():
        assert got == list(range(len(got))), run
    assert lg.verify().ok
    lg.close()


def test_append_among_emits_returns_the_stored_event(log_path: Path, key: bytes) -> None:
    lg = EventLog(log_path, key, queue_size=32, batch_size=8, synchronous="OFF")
    stop = threading.Event()
    appended = []

    def flood() -> None:
        i = 0
        while not stop.is_set():
            lg.emit("flood.tick", {"i": i}, run_id="flood")
            i += 1

    floods = [threading.Thread(target=flood) for _ in range(2)]
    for t in floods:
        t.start()
    for i in range(50):
        appended.append(lg.append("mine.tick", {"i": i}, run_id="mine"))
    stop.set()
    for t in floods:
        t.join()
    lg.flush()
    stored = {e.seq: e for e in lg.events()}
    for i, event in enumerate(appended):
        assert stored[event.seq] == event and event.payload == {"i": i}
    assert lg.verify().ok
    lg.close()


def test_emits_racing_close_either_raise_or_are_written(log_path: Path, key: bytes) -> None:
    for _ in range(5):
        log_path.unlink(missing_ok=True)
        lg = EventLog(log_path, key, queue_size=16, batch_size=4, synchronous="OFF")
        accepted: dict[str, list[int]] = defaultdict(list)
        start = threading.Barrier(5)

        def produce(
            w: int,
            lg: EventLog = lg,
            accepted: dict[str, list[int]] = accepted,
            start: threading.Barrier = start,
        ) -> None:
            start.wait()
            for i in range(100_000):
                try:
                    lg.emit("a.b", {"i": i}, run_id=f"p{w}")
                except EventLogUnavailable:
                    return
                accepted[f"p{w}"].append(i)

        threads = [threading.Thread(target=produce, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        start.wait()
        time.sleep(0.02)
        lg.close()
        for t in threads:
            t.join()
        with EventLog(log_path, key) as again:
            seqs, seen = _by_producer(again)
            assert seqs == list(range(1, len(seqs) + 1))
            # every accepted event is there, in order, once; a refused one is not
            assert seen == {run: got for run, got in accepted.items() if got}
            assert again.verify().ok


def test_a_lone_event_is_committed_without_flush(log_path: Path, key: bytes) -> None:
    lg = EventLog(log_path, key, synchronous="OFF")
    for i in range(3):  # the idle writer is woken each time
        lg.emit("a.b", {"i": i})
        deadline = time.monotonic() + 10
        while lg.committed < i + 1:
            assert time.monotonic() < deadline, "the idle writer was not woken"
            time.sleep(0.001)
        time.sleep(0.02)  # the writer goes back to sleep on an empty queue
    assert [e.payload["i"] for e in lg.events()] == [0, 1, 2]
    lg.close()


def test_changed_defaults_apply_to_later_events(log: EventLog) -> None:
    log.emit("a.b", {})
    log.correlation_id = "other"
    log.actor = "someone"
    log.emit("a.b", {})
    log.flush()
    first, second = log.events()
    assert (first.correlation_id, first.actor) == ("corr-test", "tester")
    assert (second.correlation_id, second.actor) == ("other", "someone")


texts = st.text(min_size=1, max_size=30)


@settings(max_examples=150, deadline=None)
@given(
    head_seq=st.sampled_from([0, 22, 23, 254, 255, 65534, 65535, 2**32 - 2, 2**32 - 1, 2**40])
    | st.integers(0, 2**63 - 10),
    times=st.lists(
        st.sampled_from([0, 23, 24, 2**32 - 1, 2**32, 2**63 - 1, -1, -(2**63)])
        | st.integers(-(2**63), 2**63 - 1),
        min_size=1,
        max_size=4,
    ),
    fields=st.lists(st.one_of(st.none(), texts), min_size=4, max_size=4),
    level=st.sampled_from(["debug", "info", "warning", "error"]),
    payload=st.binary(max_size=300),
)
def test_the_writer_hashes_the_canonical_bytes(
    head_seq: int, times: list[int], fields: list[str | None], level: str, payload: bytes
) -> None:
    """The store's inline encoding of seq and time (fixed forms for the usual
    ranges) gives the hash of :func:`canonical_bytes` for every seq and time."""
    store = EventStore(None, None)
    with store.raw_connection() as conn:
        conn.execute("UPDATE head SET seq = ?, segment_first = ?", (head_seq, head_seq + 1))
    run, corr, cause, actor = fields
    rows = store.append([(t, level, "a.b", run, corr, cause, actor, payload) for t in times])
    prev = GENESIS
    for row in rows:
        event = row_to_event(row)
        assert event.prev_hash == prev
        assert event.hash == chain_hash(prev, canonical_bytes(*row[:9]))
        prev = event.hash
    assert [r[0] for r in rows] == list(range(head_seq + 1, head_seq + 1 + len(times)))
    store.close()
