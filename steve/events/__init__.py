"""The event log: append-only, hash-chained, encrypted (``.steve/events.db``).

Public API (stable; other layers code against it)::

    from steve.events import EventLog, LogSpooler, spool_log

    log = EventLog.attach(repo, correlation_id=cid, actor="alice")  # repo changes -> events
    log.emit("container.started", {"image": digest}, run_id=run_id)   # queued, may block
    event = log.append("note", {"text": "hi"})                        # committed, has seq/hash
    with LogSpooler(log, step="build", stream="stdout", run_id=run_id) as sp:
        sp.write(chunk_bytes)                                          # bounded log.chunk events
    log.flush()                                                        # all emitted -> committed
    for e in log.events(run_id=run_id, event_type="container.*"): ...
    report = log.verify()                                              # first bad seq and why
    log = EventLog.attach(repo, signer=signing_key)     # checkpoints signed by the user's key
    log.close()

``EventLog.emit(event_type, payload, *, run_id=None, correlation_id=None,
causation_id=None, actor=None, level="info")``: ``event_type`` is a dotted
lowercase name (``container.started``), ``payload`` a mapping with text keys
and values in STEVE's CBOR data model (int, str, bytes, bool, None, list,
dict; no floats), at most 1 MiB encoded.  See docs/events.md.
"""

from __future__ import annotations

from steve.events.jsonlog import JsonLogger, redact
from steve.events.log import BATCH_SIZE, EVENTS_DB, QUEUE_SIZE, EventLog, open_log
from steve.events.model import GENESIS, MAX_PAYLOAD, Event, Level, chain_hash
from steve.events.signing import SigningKey
from steve.events.spool import CHUNK_SIZE, MAX_BYTES, LogSpooler, reassemble, spool_log
from steve.events.store import Checkpoint, EventFilter, EventStore, Head, Rotation, Segment
from steve.events.verify import ChainProblem, ChainReport, ProblemKind, verify_chain

__all__ = [
    "BATCH_SIZE",
    "CHUNK_SIZE",
    "EVENTS_DB",
    "GENESIS",
    "MAX_BYTES",
    "MAX_PAYLOAD",
    "QUEUE_SIZE",
    "ChainProblem",
    "ChainReport",
    "Checkpoint",
    "Event",
    "EventFilter",
    "EventLog",
    "EventStore",
    "Head",
    "JsonLogger",
    "Level",
    "LogSpooler",
    "ProblemKind",
    "Rotation",
    "Segment",
    "SigningKey",
    "chain_hash",
    "open_log",
    "reassemble",
    "redact",
    "spool_log",
    "verify_chain",
]
