"""Tamper evidence: random logs verify; any single edit, deletion, insertion or
reorder made directly in SQL with the key (triggers dropped) is caught at the
right seq; the triggers really refuse UPDATE and DELETE; seals and signatures
are checked."""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlcipher3 import dbapi2 as sqlite

from steve.errors import CheckpointInvalid, EventChainBroken
from steve.events import EventLog, Rotation, chain_hash
from steve.events.model import canonical_bytes
from steve.events.signing import SigningKey
from steve.events.verify import ProblemKind
from steve.objects import cbor
from tests.events.conftest import raw_connect

KEY = bytes(range(32))
SIGNER = SigningKey.from_raw(bytes(range(100, 132)))
_counter = itertools.count()

texts = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)
scalars = st.one_of(
    st.integers(-(2**63), 2**63), st.booleans(), st.none(), texts, st.binary(max_size=40)
)
payloads = st.dictionaries(
    texts, st.recursive(scalars, lambda c: st.lists(c, max_size=3), max_leaves=6), max_size=4
)
events_st = st.lists(
    st.tuples(
        st.sampled_from(["a.b", "run.transition", "log.chunk", "ref.updated"]),
        payloads,
        st.one_of(st.none(), st.sampled_from(["r1", "r2"])),
        st.sampled_from(["debug", "info", "warning", "error"]),
    ),
    min_size=1,
    max_size=25,
)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One directory for every hypothesis example (each example uses a fresh file)."""
    return tmp_path_factory.mktemp("tamper")


def build(tmp: Path, events: list[tuple[str, dict[str, Any], str | None, str]]) -> Path:
    path = tmp / f"e{next(_counter)}.db"
    with EventLog(path, KEY, synchronous="OFF", batch_size=7) as log:
        for etype, payload, run, level in events:
            log.emit(etype, payload, run_id=run, level=level)
    return path


def verify(path: Path) -> Any:
    with EventLog(path, KEY) as log:
        return log.verify()


def no_triggers(path: Path) -> Any:
    conn = raw_connect(path, KEY)
    for name in ("events_no_update", "events_no_delete"):
        conn.execute(f"DROP TRIGGER {name}")
    return conn


@given(events=events_st)
def test_random_sequences_verify(scratch: Path, events: list[Any]) -> None:
    report = verify(build(scratch, events))
    assert report.ok, report.problems
    assert report.events == report.last_seq == len(events)


EDITS = {
    "payload": "payload = x'a0'",  # an empty map: well formed, wrong content
    "type": "event_type = 'forged.type'",
    "time": "time = time + 1",
    "run": "run_id = 'other'",
    "corr": "correlation_id = 'x'",
    "actor": "actor = 'mallory'",
    "level": "level = 'error'",
    "hash": "hash = zeroblob(32)",
    "prev": "prev_hash = zeroblob(32)",
}


@given(events=events_st, data=st.data())
def test_single_edit_is_caught_at_its_seq(scratch: Path, events: list[Any], data: Any) -> None:
    path = build(scratch, events)
    k = data.draw(st.integers(1, len(events)), label="seq")
    column = data.draw(st.sampled_from(sorted(EDITS)), label="column")
    conn = no_triggers(path)
    before = conn.execute("SELECT * FROM events WHERE seq = ?", (k,)).fetchone()
    conn.execute(f"UPDATE events SET {EDITS[column]} WHERE seq = ?", (k,))
    after = conn.execute("SELECT * FROM events WHERE seq = ?", (k,)).fetchone()
    conn.close()
    report = verify(path)
    if before == after:  # e.g. the level or run already had that value
        assert report.ok
        return
    assert report.first_bad_seq == k, (column, report.problems)


@given(events=events_st, data=st.data())
def test_single_delete_is_caught_at_its_seq(scratch: Path, events: list[Any], data: Any) -> None:
    path = build(scratch, events)
    k = data.draw(st.integers(1, len(events)), label="seq")
    conn = no_triggers(path)
    conn.execute("DELETE FROM events WHERE seq = ?", (k,))
    conn.close()
    report = verify(path)
    assert report.first_bad_seq == k, report.problems
    assert "missing" in report.problems[0].why


def _shift_up(conn: Any, k: int) -> None:
    conn.execute("UPDATE events SET seq = -seq WHERE seq >= ?", (k,))
    conn.execute("UPDATE events SET seq = 1 - seq WHERE seq < 0")


@given(events=events_st, data=st.data())
def test_single_insert_is_caught(scratch: Path, events: list[Any], data: Any) -> None:
    """A forged event chained correctly from its predecessor is caught at the next seq
    (its successor no longer links to it), or by the head at the end; a naive one at
    its own seq."""
    path = build(scratch, events)
    n = len(events)
    k = data.draw(st.integers(1, n + 1), label="position")
    forged = data.draw(st.booleans(), label="forged")
    conn = no_triggers(path)
    prev = (
        bytes(32)
        if k == 1
        else bytes(conn.execute("SELECT hash FROM events WHERE seq = ?", (k - 1,)).fetchone()[0])
    )
    payload = b"\xa0"
    row = (k, 1, "info", "forged.event", None, None, None, None, payload)
    h = chain_hash(prev, canonical_bytes(*row)) if forged else os.urandom(32)
    _shift_up(conn, k)
    conn.execute("INSERT INTO events VALUES (?,?,?,?,?,?,?,?,?,?,?)", (*row, prev, h))
    conn.close()
    report = verify(path)
    if not forged:
        expected = k
    elif k <= n:
        expected = k + 1
    else:
        expected = k  # appended past the recorded head
    assert report.first_bad_seq == expected, report.problems


@given(events=events_st.filter(lambda e: len(e) >= 2), data=st.data())
def test_reorder_is_caught_at_the_first_moved_seq(
    scratch: Path, events: list[Any], data: Any
) -> None:
    path = build(scratch, events)
    n = len(events)
    i = data.draw(st.integers(1, n - 1), label="i")
    j = data.draw(st.integers(i + 1, n), label="j")
    conn = no_triggers(path)
    conn.execute("UPDATE events SET seq = -1 WHERE seq = ?", (i,))
    conn.execute("UPDATE events SET seq = ? WHERE seq = ?", (i, j))
    conn.execute("UPDATE events SET seq = ? WHERE seq = -1", (j,))
    conn.close()
    report = verify(path)
    assert report.first_bad_seq == i, report.problems


def test_verify_error_names_the_first_bad_seq(tmp_path: Path) -> None:
    path = build(tmp_path, [("a.b", {"i": i}, None, "info") for i in range(10)])
    conn = no_triggers(path)
    conn.execute("UPDATE events SET payload = x'a16169182a' WHERE seq = 4")  # {"i": 42}
    conn.close()
    report = verify(path)
    with pytest.raises(EventChainBroken) as err:
        report.raise_for_problems()
    assert err.value.seq == 4
    assert "first bad seq 4: hash does not match" in str(err.value)


def forge_payload(conn: Any, seq: int, payload: bytes) -> None:
    """Replace event ``seq``'s payload and recompute its hash (as a forger would)."""
    row = conn.execute(
        "SELECT seq, time, level, event_type, run_id, correlation_id, causation_id, actor, "
        "prev_hash FROM events WHERE seq = ?",
        (seq,),
    ).fetchone()
    h = chain_hash(bytes(row[8]), canonical_bytes(*row[:8], payload))
    conn.execute("UPDATE events SET payload = ?, hash = ? WHERE seq = ?", (payload, h, seq))


def test_non_canonical_payload_is_caught(tmp_path: Path) -> None:
    path = build(tmp_path, [("a.b", {"i": 1}, None, "info") for _ in range(3)])
    conn = no_triggers(path)
    forge_payload(conn, 2, bytes.fromhex("a161691801"))
    conn.close()
    report = verify(path)
    assert report.first_bad_seq == 2 and "malformed" in report.problems[0].why


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE events SET payload = x'a0' WHERE seq = 1",
        "UPDATE events SET seq = 99 WHERE seq = 1",
        "DELETE FROM events WHERE seq = 1",
        "DELETE FROM events",
        "UPDATE segments SET head_hash = zeroblob(32)",
        "DELETE FROM segments",
        "UPDATE checkpoints SET signature = zeroblob(64)",
        "DELETE FROM checkpoints",
        "DELETE FROM signing_keys",
        "UPDATE signing_keys SET public_key = zeroblob(32)",
    ],
)
def test_triggers_refuse_update_and_delete(tmp_path: Path, sql: str) -> None:
    path = build(tmp_path, [("a.b", {"i": i}, None, "info") for i in range(3)])
    with EventLog(path, KEY) as log:
        log.seal(key=SIGNER)
    conn = raw_connect(path, KEY)
    before = conn.execute("SELECT count(*), sum(length(hash)) FROM events").fetchone()
    with pytest.raises(sqlite.IntegrityError, match="append-only"):
        conn.execute(sql)
    assert conn.execute("SELECT count(*), sum(length(hash)) FROM events").fetchone() == before
    conn.close()
    assert verify(path).ok


def _sealed(tmp_path: Path) -> Path:
    path = tmp_path / "sealed.db"
    with EventLog(path, KEY, rotation=Rotation(max_events=5), signer=SIGNER) as log:
        for i in range(12):
            log.append("a.b", {"i": i})
    return path


def _drop(conn: Any, table: str) -> None:
    conn.execute(f"DROP TRIGGER {table}_no_update")
    conn.execute(f"DROP TRIGGER {table}_no_delete")


def test_tampered_signature_is_caught(tmp_path: Path) -> None:
    path = _sealed(tmp_path)
    conn = raw_connect(path, KEY)
    _drop(conn, "checkpoints")
    conn.execute("UPDATE checkpoints SET signature = zeroblob(64) WHERE checkpoint = 2")
    conn.close()
    report = verify(path)
    assert [(p.kind, p.seq) for p in report.problems] == [(ProblemKind.CHECKPOINT, 10)]
    with pytest.raises(CheckpointInvalid):
        report.raise_for_problems()


def test_rewritten_history_with_a_new_key_fails_the_pinned_key(tmp_path: Path) -> None:
    """Someone holding the database key can rewrite everything and re-sign with a key of
    their own; a verifier that pinned the original public key notices."""
    path = _sealed(tmp_path)
    conn = raw_connect(path, KEY)
    for table in ("checkpoints", "signing_keys"):
        _drop(conn, table)
    conn.execute("DELETE FROM checkpoints")
    conn.execute("DELETE FROM signing_keys")
    conn.close()
    with EventLog(path, KEY, rotation=Rotation(max_events=5)) as log:
        log.checkpoint(key=SigningKey.generate())  # the forger's own key signs
        assert log.verify().ok
        report = log.verify(public_key=SIGNER.public_key)
        assert not report.ok
        assert report.signed_seq == 0 and report.seal_due == 5
        assert [p.kind for p in report.problems] == [ProblemKind.UNSIGNED]


def test_segment_head_mismatch_is_caught(tmp_path: Path) -> None:
    path = _sealed(tmp_path)
    conn = raw_connect(path, KEY)
    _drop(conn, "segments")
    conn.execute("UPDATE segments SET head_hash = zeroblob(32) WHERE segment = 1")
    conn.close()
    report = verify(path)
    assert [(p.kind, p.seq) for p in report.problems] == [(ProblemKind.SEGMENT, 5)]


@given(
    seq=st.integers(-(2**63), 2**64 - 1),
    time_ms=st.integers(-(2**63), 2**64 - 1),
    texts=st.lists(st.one_of(st.none(), texts), min_size=6, max_size=6),
    payload=st.binary(max_size=300),
)
def test_event_bytes_are_the_canonical_cbor_of_the_event_map(
    seq: int, time_ms: int, texts: list[str | None], payload: bytes
) -> None:
    level, etype, run, corr, cause, actor = texts
    fast = canonical_bytes(
        seq, time_ms, level or "info", etype or "a.b", run, corr, cause, actor, payload
    )
    slow = cbor.encode(
        {
            "v": 1,
            "seq": seq,
            "time": time_ms,
            "level": level or "info",
            "type": etype or "a.b",
            "run": run,
            "corr": corr,
            "cause": cause,
            "actor": actor,
            "payload": payload,
        }
    )
    assert fast == slow
    assert cbor.decode(fast)["payload"] == payload
