"""The request log: every exchange as objects, indexed by its request.

An exchange is stored as three objects:

* the request, a blob whose bytes are the canonical CBOR of the (redacted)
  :class:`~steve.llm.types.Request`;
* the response, a blob holding the canonical CBOR of the (redacted)
  :class:`~steve.llm.types.Response`;
* the exchange, a tree with the entries ``request`` and ``response``.

The index is a ref per request: ``refs/llm/<request blob id>`` points at the
exchange tree.  The request blob's id is BLAKE3-256 of the canonical
encoding of the blob object wrapping the request's canonical CBOR, so it is
a pure function of the redacted request (provider, model, system, messages,
tools, parameters) and the index needs no second hash.  Being refs, the
exchanges are kept by gc, checked by fsck and ``steve verify``, and their
history is in the reflog (the same request asked twice keeps the newest
answer in the ref, both in the reflog).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from steve.errors import CorruptObject, MalformedObject
from steve.llm.types import Request, Response
from steve.objects.model import Blob, Mode, ObjectType, Tree, TreeEntry, hash_object, object_size
from steve.objects.oid import ObjectId
from steve.repo import Repo, RepoTransaction

REF_PREFIX = "refs/llm/"


@dataclass(frozen=True, slots=True)
class Exchange:
    """One request and its answer, as recorded (or replayed) by STEVE.

    ``request_oid`` / ``response_oid`` are the blob ids a manifest, receipt
    or patch names to say which prompt produced it; ``exchange_oid`` is the
    tree holding both.  ``replayed``: answered from the record, not by a model.
    """

    request: Request
    response: Response
    request_oid: ObjectId
    response_oid: ObjectId
    exchange_oid: ObjectId
    provider: str
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class Encoded:
    """An exchange's three objects, hashed and encoded, ready to store."""

    request_oid: ObjectId
    response_oid: ObjectId
    exchange_oid: ObjectId
    rows: tuple[tuple[ObjectId, ObjectType, int, bytes], ...]


def request_blob(request: Request) -> tuple[ObjectId, bytes, int]:
    """(id, stored bytes, size) of ``request``'s blob (the index key is the id)."""
    blob = Blob(request.canonical())
    oid, data = hash_object(blob)
    return oid, data, object_size(blob)


def request_oid(request: Request) -> ObjectId:
    return request_blob(request)[0]


def ref_name(request_oid: ObjectId) -> str:
    return f"{REF_PREFIX}{request_oid.hex}"


def encode(request: Request, response: Response) -> Encoded:
    req_oid, req_data, req_size = request_blob(request)
    resp = Blob(response.canonical())
    resp_oid, resp_data = hash_object(resp)
    tree = Tree.from_entries(
        [TreeEntry("request", Mode.FILE, req_oid), TreeEntry("response", Mode.FILE, resp_oid)]
    )
    tree_oid, tree_data = hash_object(tree)
    return Encoded(
        req_oid,
        resp_oid,
        tree_oid,
        (
            (req_oid, ObjectType.BLOB, req_size, req_data),
            (resp_oid, ObjectType.BLOB, object_size(resp), resp_data),
            (tree_oid, ObjectType.TREE, object_size(tree), tree_data),
        ),
    )


def store(repo: Repo, tx: RepoTransaction, encoded: Encoded) -> None:
    """Put the objects and point the request's ref at the exchange, inside ``tx``."""
    tx.put_many(encoded.rows)
    target, previous = repo.refs.update(
        ref_name(encoded.request_oid),
        encoded.exchange_oid,
        who=repo.identity,
        message="llm exchange",
        tx=tx,
    )
    # every ref change has its ref event (fsck --events reconciles refs with them)
    tx.emit(
        "ref.updated",
        {
            "ref": target,
            "old": previous.hex if previous is not None else None,
            "new": encoded.exchange_oid.hex,
        },
    )


def _entries(repo: Repo, exchange_oid: ObjectId) -> tuple[ObjectId, ObjectId]:
    tree = repo.read_typed(exchange_oid, ObjectType.TREE)
    assert isinstance(tree, Tree)
    names = {e.name: e.oid for e in tree.entries}
    if set(names) != {"request", "response"}:
        raise CorruptObject(exchange_oid.hex, "an exchange tree holds request and response")
    return names["request"], names["response"]


def load(repo: Repo, exchange_oid: ObjectId, provider: str = "replay") -> Exchange:
    """The exchange stored in tree ``exchange_oid``."""
    req_oid, resp_oid = _entries(repo, exchange_oid)
    try:
        request = Request.from_canonical(repo.read_blob(req_oid))
        response = Response.from_canonical(repo.read_blob(resp_oid))
    except MalformedObject as exc:
        raise CorruptObject(exchange_oid.hex, f"not an LLM exchange: {exc.detail}") from exc
    return Exchange(request, response, req_oid, resp_oid, exchange_oid, provider, replayed=True)


def find(repo: Repo, request_oid: ObjectId, provider: str = "replay") -> Exchange | None:
    """The recorded exchange of the request whose blob id is ``request_oid``, if any."""
    record = repo.read_ref_record(ref_name(request_oid))
    if record is None or record.target is None:
        return None
    return load(repo, record.target, provider)


def iter_exchanges(repo: Repo) -> Iterator[tuple[ObjectId, ObjectId]]:
    """(request id, exchange tree id) of every recorded exchange, by request id."""
    for ref in repo.list_refs(REF_PREFIX):
        if ref.target is not None:
            yield ObjectId.from_hex(ref.name[len(REF_PREFIX) :]), ref.target
