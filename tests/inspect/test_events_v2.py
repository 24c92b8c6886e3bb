"""events.db schema 2: the index by type, migrated in place from version 1; the
newest-first query that inspect's tails read."""

from __future__ import annotations

import os
from pathlib import Path

from steve.events.store import SCHEMA_VERSION, EventFilter, EventStore
from steve.objects import cbor


def _fill(store: EventStore, n: int) -> None:
    batch = [
        (1000 + i, "info", "a.x" if i % 3 else "b.y", "R1" if i % 2 else "R2", None, None,
         None, cbor.encode({"i": i}))
        for i in range(n)
    ]  # fmt: skip
    store.append(batch)


def test_a_version_1_log_is_migrated_in_place(tmp_path: Path) -> None:
    key = os.urandom(32)
    path = tmp_path / "events.db"
    store = EventStore(path, key)
    _fill(store, 30)
    with store.raw_connection() as conn:  # back to what version 1 wrote
        conn.execute("DROP INDEX events_by_type")
        conn.execute("UPDATE meta SET value = 1 WHERE key = 'schema_version'")
        conn.commit()
    store.close()
    again = EventStore(path, key)
    try:
        assert again.get_meta("schema_version") == str(SCHEMA_VERSION) == "2"
        with again.raw_connection() as conn:
            names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            plan = " ".join(
                str(r[-1])
                for r in conn.execute(
                    "EXPLAIN QUERY PLAN SELECT seq FROM events INDEXED BY events_by_type "
                    "WHERE event_type = 'b.y' ORDER BY seq DESC LIMIT 3"
                )
            )
        assert "events_by_type" in names and "events_by_type" in plan
        newest = again.latest(EventFilter(event_type="b.y"), limit=3)
        assert [e.seq for e in newest] == [28, 25, 22]
        assert [e.seq for e in again.latest(EventFilter(event_type="b.y"), limit=2, before=25)] == [
            22,
            19,
        ]
        fam = again.latest(EventFilter(event_type="a.*", run_id="R2"), limit=2)
        assert [(e.seq, e.event_type, e.run_id) for e in fam] == [
            (29, "a.x", "R2"),
            (27, "a.x", "R2"),
        ]
        assert again.count_types(["b.y"]) == 10
        assert [e.seq for e in again.iter_events(EventFilter(event_type="b.*"))][:3] == [1, 4, 7]
    finally:
        again.close()
