"""Approvals: frozen, expiring answers to one action digest (the seed's approvals workflow).

    >>> req, created = request(repo, action, now=t, actor="ci", ttl=3600)
    >>> answer(repo, req.id.hex[:8], approve=True, now=t + 5, actor="ana", reason="release 1.2")
    >>> granted(repo, now=t + 10)      # what the policy gate may honour
    (Granted(id=..., digest=action.digest, expires_at=t + 3600),)

Every record is a blob of canonical CBOR (so verify, fsck, gc reachability and
export-git carry it) named by a ref of the request:

* ``refs/approvals/<id>/request``: the request (the action's kind, subject,
  digest and summary, who asked, when, until when it may be answered and
  used).  ``<id>`` is the request blob's id.
* ``refs/approvals/<id>/decision``: the answer (approved or denied, who,
  when, why), created by compare-and-swap from nothing, so a request is
  answered once.
* ``refs/approvals/<id>/used``: the one use of a granted approval (an
  approval allows one action once), also created from nothing.

Each change commits with its event (``approval.requested``,
``approval.approved`` / ``approval.denied``, ``approval.used``).  An approval
matches only the exact action digest it was requested for; after
``expires_at`` it can neither be answered nor used.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from steve.errors import (
    AmbiguousPrefix,
    ApprovalDecided,
    ApprovalExpired,
    ApprovalNotFound,
    ApprovalUsed,
    CorruptObject,
    InvalidInput,
    MalformedObject,
    ObjectNotFound,
    RefUpdateRejected,
)
from steve.objects import cbor
from steve.objects.model import Blob, ObjectType, hash_object, object_size
from steve.objects.oid import ObjectId
from steve.porcelain.gate import Action, ActionKind, Granted
from steve.repo import Repo, RepoTransaction

PREFIX = "refs/approvals/"
REQUEST_TYPE = "steve.approval.request"
DECISION_TYPE = "steve.approval.decision"
USE_TYPE = "steve.approval.use"
MAX_REASON = 2000


class State(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    EXPIRED = "expired"
    USED = "used"


@dataclass(frozen=True, slots=True)
class Request:
    id: ObjectId
    kind: ActionKind
    subject: str
    digest: ObjectId
    summary: str
    requested_by: str
    requested_at: int
    expires_at: int
    run: str | None


@dataclass(frozen=True, slots=True)
class Answer:
    approved: bool
    actor: str
    at: int
    reason: str | None


@dataclass(frozen=True, slots=True)
class Approval:
    """A request with its answer and use, and its state at the time it was read."""

    request: Request
    answer: Answer | None
    used_at: int | None
    state: State

    @property
    def id(self) -> ObjectId:
        return self.request.id

    def to_json(self) -> dict[str, Any]:
        r, a = self.request, self.answer
        return {
            "id": r.id.hex,
            "state": self.state.value,
            "kind": r.kind.value,
            "subject": r.subject,
            "digest": r.digest.hex,
            "summary": r.summary,
            "requested_by": r.requested_by,
            "requested_at": r.requested_at,
            "expires_at": r.expires_at,
            "run": r.run,
            "decided_by": a.actor if a else None,
            "decided_at": a.at if a else None,
            "reason": a.reason if a else None,
            "used_at": self.used_at,
        }


def _ref(oid: ObjectId, part: str) -> str:
    return f"{PREFIX}{oid.hex}/{part}"


def _put_record(tx: RepoTransaction, record: Mapping[str, object]) -> ObjectId:
    blob = Blob(cbor.encode(dict(record)))
    oid, data = hash_object(blob)
    tx.put(oid, ObjectType.BLOB, object_size(blob), data)
    return oid


def _read_record(repo: Repo, oid: ObjectId, kind: str) -> dict[str, Any]:
    try:
        value = cbor.decode(repo.read_blob(oid))
    except MalformedObject as exc:
        raise CorruptObject(oid.hex, f"not an approval record: {exc.detail}") from exc
    if not isinstance(value, dict) or value.get("type") != kind:
        raise CorruptObject(oid.hex, f"not a {kind} record")
    return value


def _reason(reason: str | None) -> str | None:
    if reason is None:
        return None
    if len(reason) > MAX_REASON or not reason.strip():
        raise InvalidInput("invalid reason", f"1..{MAX_REASON} characters, not only blanks")
    return reason


# --- reading ----------------------------------------------------------------------------


def _request_from(oid: ObjectId, rec: Mapping[str, Any]) -> Request:
    try:
        return Request(
            id=oid,
            kind=ActionKind(rec["kind"]),
            subject=str(rec["subject"]),
            digest=ObjectId.from_hex(str(rec["digest"])),
            summary=str(rec["summary"]),
            requested_by=str(rec["requested_by"]),
            requested_at=int(rec["requested_at"]),
            expires_at=int(rec["expires_at"]),
            run=None if rec.get("run") is None else str(rec["run"]),
        )
    except (KeyError, ValueError, TypeError) as exc:
        raise CorruptObject(oid.hex, f"approval request: {exc}") from exc


def _load(repo: Repo, oid: ObjectId, refs: Mapping[str, ObjectId], now: int) -> Approval:
    request = _request_from(oid, _read_record(repo, refs["request"], REQUEST_TYPE))
    answer = None
    if "decision" in refs:
        rec = _read_record(repo, refs["decision"], DECISION_TYPE)
        answer = Answer(
            rec.get("verdict") == "approved",
            str(rec.get("actor")),
            int(rec.get("at", 0)),
            None if rec.get("reason") is None else str(rec["reason"]),
        )
    used_at = None
    if "used" in refs:
        used_at = int(_read_record(repo, refs["used"], USE_TYPE).get("at", 0))
    if used_at is not None:
        state = State.USED
    elif answer is not None and not answer.approved:
        state = State.DENIED
    elif now >= request.expires_at:
        state = State.EXPIRED
    elif answer is not None:
        state = State.APPROVED
    else:
        state = State.PENDING
    return Approval(request, answer, used_at, state)


def _grouped(repo: Repo) -> dict[ObjectId, dict[str, ObjectId]]:
    out: dict[ObjectId, dict[str, ObjectId]] = {}
    for ref in repo.list_refs(PREFIX):
        parts = ref.name[len(PREFIX) :].split("/")
        if len(parts) != 2 or ref.target is None:
            continue
        try:
            oid = ObjectId.from_hex(parts[0])
        except ValueError:
            continue
        out.setdefault(oid, {})[parts[1]] = ref.target
    return {k: v for k, v in out.items() if "request" in v}


def list_approvals(repo: Repo, *, now: int) -> list[Approval]:
    """Every approval request, oldest first."""
    found = [_load(repo, oid, refs, now) for oid, refs in _grouped(repo).items()]
    return sorted(found, key=lambda a: (a.request.requested_at, a.id.hex))


def find(repo: Repo, spec: str, *, now: int) -> Approval:
    """The approval request whose id starts with ``spec`` (4+ hex characters)."""
    text = spec.strip().lower()
    if len(text) < 4 or any(c not in "0123456789abcdef" for c in text):
        raise ApprovalNotFound(spec, "an approval id is 4 to 64 hex characters")
    groups = _grouped(repo)
    hits = [oid for oid in groups if oid.hex.startswith(text)]
    if not hits:
        raise ApprovalNotFound(spec)
    if len(hits) > 1:
        raise AmbiguousPrefix(text, [h.hex for h in hits])
    return _load(repo, hits[0], groups[hits[0]], now)


def granted(repo: Repo, *, now: int) -> tuple[Granted, ...]:
    """The approvals the gate may honour now: approved, unexpired, unused."""
    return tuple(
        Granted(a.id.hex, a.request.digest, a.request.expires_at)
        for a in list_approvals(repo, now=now)
        if a.state is State.APPROVED
    )


# --- changes ----------------------------------------------------------------------------


def request(
    repo: Repo,
    action: Action,
    *,
    now: int,
    actor: str,
    ttl: int,
    run_id: str | None = None,
) -> tuple[Approval, bool]:
    """A pending approval request for ``action``: the one already pending for its digest,
    or a new one (second value: whether it was created)."""
    for existing in list_approvals(repo, now=now):
        if existing.request.digest == action.digest and existing.state is State.PENDING:
            return existing, False
    record = {
        "type": REQUEST_TYPE,
        "kind": action.kind.value,
        "subject": action.subject,
        "digest": action.digest.hex,
        "summary": action.summary,
        "requested_by": actor,
        "requested_at": now,
        "expires_at": now + ttl,
        "run": run_id,
        "nonce": os.urandom(16).hex(),  # two requests for one action at one time differ
    }
    with repo.transaction() as tx:
        oid = _put_record(tx, record)
        _create_ref(repo, tx, _ref(oid, "request"), oid, "approval requested", now)
        tx.emit(
            "approval.requested",
            {
                "id": oid.hex,
                "kind": action.kind.value,
                "subject": action.subject,
                "digest": action.digest.hex,
                "expires_at": now + ttl,
            },
            run_id=run_id,
        )
    return find(repo, oid.hex, now=now), True


def answer(
    repo: Repo, spec: str, *, approve: bool, now: int, actor: str, reason: str | None
) -> Approval:
    """Approve or deny the pending request ``spec`` (once; before it expires)."""
    current = find(repo, spec, now=now)
    if current.state is State.EXPIRED:
        raise ApprovalExpired(current.id.hex, current.request.expires_at)
    if current.state is not State.PENDING:
        raise ApprovalDecided(current.id.hex, current.state.value)
    verdict = "approved" if approve else "denied"
    record = {
        "type": DECISION_TYPE,
        "request": current.id.hex,
        "verdict": verdict,
        "actor": actor,
        "at": now,
        "reason": _reason(reason),
    }
    ref = _ref(current.id, "decision")
    with repo.transaction() as tx:
        oid = _put_record(tx, record)
        try:
            _create_ref(repo, tx, ref, oid, f"approval {verdict}", now)
        except RefUpdateRejected:
            raise ApprovalDecided(current.id.hex, "answered concurrently") from None
        tx.emit(
            f"approval.{verdict}",
            {"id": current.id.hex, "digest": current.request.digest.hex, "reason": reason},
            run_id=current.request.run,
        )
    return find(repo, current.id.hex, now=now)


def mark_used(
    repo: Repo, tx: RepoTransaction, approval_id: str, *, now: int, actor: str
) -> None:
    """Record, in ``tx``, the one use of the granted approval ``approval_id``
    (ApprovalUsed if another use committed first)."""
    oid = ObjectId.from_hex(approval_id)
    record = {"type": USE_TYPE, "request": oid.hex, "actor": actor, "at": now}
    used = _put_record(tx, record)
    try:
        _create_ref(repo, tx, _ref(oid, "used"), used, "approval used", now)
    except RefUpdateRejected:
        raise ApprovalUsed(oid.hex) from None
    tx.emit("approval.used", {"id": oid.hex})


def _create_ref(
    repo: Repo, tx: RepoTransaction, name: str, oid: ObjectId, message: str, now: int
) -> None:
    target, _ = repo.refs.update(
        name, oid, None, who=repo.identity, message=message, now=now, tx=tx
    )
    # every ref change has its ref event (fsck --events reconciles refs with them)
    tx.emit("ref.updated", {"ref": target, "old": None, "new": oid.hex})


def check_usable(repo: Repo, approval_id: str, *, now: int) -> Approval:
    """The approval ``approval_id`` if it may be used now (else a typed error)."""
    try:
        found = find(repo, approval_id, now=now)
    except ObjectNotFound as exc:
        raise ApprovalNotFound(approval_id, exc.detail) from exc
    if found.state is State.USED:
        raise ApprovalUsed(found.id.hex)
    if found.state is State.EXPIRED:
        raise ApprovalExpired(found.id.hex, found.request.expires_at)
    if found.state is not State.APPROVED:
        raise ApprovalDecided(found.id.hex, found.state.value)
    return found


__all__ = [
    "Answer",
    "Approval",
    "Request",
    "State",
    "answer",
    "check_usable",
    "find",
    "granted",
    "list_approvals",
    "mark_used",
    "request",
]
