"""The local full-text index of the mirror (SQLite FTS5 inside the encrypted database).

Fetching stays fast because nothing is extracted while fetching: each stored
source record is queued (:func:`mark_pending`, in the fetch's own
transaction, derived space ``research.fts-pending``) and :func:`index_pending`
extracts and indexes the queue before a local search answers.  A source is
indexed under its URL; a refreshed URL replaces its text.

    >>> index_pending(repo)          # sources indexed now
    12
    >>> repo.search_text("sqlite wal", 5)
"""

from __future__ import annotations

from collections.abc import Callable

from steve.objects.oid import ObjectId
from steve.repo import Repo, RepoTransaction
from steve.research.extract import extract_text
from steve.research.records import lookup, read_source

__all__ = ["PENDING_SPACE", "index_pending", "mark_pending", "pending_count"]

PENDING_SPACE = "research.fts-pending"
BATCH = 64


def mark_pending(tx: RepoTransaction, record: ObjectId) -> None:
    """Queue source record ``record`` for the full-text index (in ``tx``)."""
    tx.put_derived(PENDING_SPACE, record.raw, b"")


def pending_count(repo: Repo) -> int:
    return sum(1 for _ in repo.iter_derived(PENDING_SPACE))


def index_pending(repo: Repo, progress: Callable[[int], None] | None = None) -> int:
    """Extract and index every queued source (batches of 64, one transaction each);
    returns how many were indexed.  A record that is no longer its URL's latest is
    dropped from the queue (the latest one has its own entry)."""
    done = 0
    while True:
        keys = [k for k, _ in _take(repo, BATCH)]
        if not keys:
            return done
        rows: list[tuple[str, ObjectId, str, str]] = []
        for key in keys:
            oid = ObjectId(key)
            record = read_source(repo, oid)
            latest = lookup(repo, record.url)
            if latest is None or latest[0] != oid:
                continue
            extracted = extract_text(
                repo.read_blob(record.content), record.media_type, record.charset
            )
            if extracted is None:
                continue
            rows.append((record.url, record.content, extracted.title or "", extracted.text))
        with repo.transaction() as tx:
            for uri, content, title, body in rows:
                tx.put_text(uri, content, title, body)
            for key in keys:
                tx.delete_derived(PENDING_SPACE, key)
        done += len(rows)
        if progress is not None:
            progress(done)


def _take(repo: Repo, n: int) -> list[tuple[bytes, bytes]]:
    out: list[tuple[bytes, bytes]] = []
    for item in repo.iter_derived(PENDING_SPACE):
        out.append(item)
        if len(out) >= n:
            break
    return out
