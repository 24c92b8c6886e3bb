"""Context assembly within a token budget, streamed from the database (F-LLM-006).

A prompt's context is built from *sources*, each an iterator of
:class:`Piece` objects, newest first: the run's design, research excerpts,
earlier receipts and logs.  :func:`assemble` takes the sources in order and
the pieces of each in order, loads a piece's text only when it may still
fit, keeps it when its tokens fit what is left of the budget, and otherwise
records it as left out, by label and size, without loading it.  It never
holds more than the kept text and one piece: the history is never
materialised.  Listing what was left out stops after ``report_limit``
pieces (``more_left_out`` then says there was more).

Sources over the repository:

* :func:`manifest_history` walks a manifest's first-parent chain through the
  manifest index (bounded batches of index rows; a body is read only for a
  piece that is loaded);
* :func:`blob_tail` gives the end of a blob (a step log), read chunk by chunk
  from the end, newest text first.

Token counts are the same documented upper estimate the budgets use (UTF-8
bytes; :func:`steve.llm.provider.estimate_tokens`), unless ``count`` is given.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from steve.llm.provider import BYTES_PER_TOKEN_BOUND
from steve.objects.model import ChunkedBlob, Manifest, ObjectType
from steve.objects.oid import ObjectId
from steve.repo import Repo

CHAIN_BATCH = 64
"""Manifest index rows read per step of a history walk."""


def upper_tokens(text: str) -> int:
    """The upper estimate of ``text``'s tokens (its UTF-8 bytes)."""
    return len(text.encode("utf-8")) // BYTES_PER_TOKEN_BOUND


@dataclass(frozen=True, slots=True)
class Piece:
    """One candidate part of the context: a label, a size hint (bytes, for what is
    left out without loading it) and a loader of its text."""

    label: str
    size: int
    load: Callable[[], str]

    @classmethod
    def of(cls, label: str, text: str) -> Piece:
        return cls(label, len(text.encode("utf-8")), lambda: text)


@dataclass(frozen=True, slots=True)
class LeftOut:
    label: str
    tokens: int  # estimated from the size hint


@dataclass
class Assembled:
    """The context that fits, and what did not."""

    budget: int
    parts: list[tuple[str, str]] = field(default_factory=list)  # (label, text), in order
    tokens: int = 0
    left_out: list[LeftOut] = field(default_factory=list)
    more_left_out: bool = False

    @property
    def text(self) -> str:
        return "\n\n".join(f"## {label}\n{text}" for label, text in self.parts)

    @property
    def included(self) -> list[str]:
        return [label for label, _ in self.parts]


def assemble(
    sources: Sequence[Iterable[Piece]],
    budget: int,
    *,
    count: Callable[[str], int] = upper_tokens,
    report_limit: int = 1000,
) -> Assembled:
    """Fill ``budget`` tokens from ``sources`` (see the module doc)."""
    out = Assembled(budget)
    reported = 0
    for source in sources:
        for piece in source:
            room = budget - out.tokens
            hint = piece.size // BYTES_PER_TOKEN_BOUND
            if room > 0 and (count is not upper_tokens or hint <= room):
                text = piece.load()
                tokens = count(text)
                if tokens <= room:
                    out.parts.append((piece.label, text))
                    out.tokens += tokens
                    continue
                hint = tokens
            if reported < report_limit:
                out.left_out.append(LeftOut(piece.label, hint))
                reported += 1
            else:
                out.more_left_out = True
                break  # stop walking this source: nothing more will be read from it
    return out


# --- sources over the repository --------------------------------------------------------


def manifest_text(repo: Repo, oid: ObjectId) -> str:
    """A manifest as context: its kind, id and body as sorted JSON."""
    obj = repo.read_object(oid)
    assert isinstance(obj, Manifest)
    body = json.dumps(obj.body, sort_keys=True, indent=1, default=str, ensure_ascii=False)
    return f"{obj.kind.value} {oid.hex}\n{body}"


def manifest_history(
    repo: Repo, head: ObjectId, *, kinds: Iterable[ObjectType] | None = None
) -> Iterator[Piece]:
    """Pieces for ``head`` and its first-parent ancestors, newest first, read from the
    manifest index in batches of :data:`CHAIN_BATCH` rows; bodies load lazily."""
    wanted = set(kinds) if kinds is not None else None
    nxt: ObjectId | None = head
    while nxt is not None:
        chain = repo.manifest_chain(nxt, CHAIN_BATCH)
        if not chain:
            return
        for oid, row in chain:
            if wanted is None or row.kind in wanted:
                info = repo.find_object(oid)
                size = info.size if info is not None else 0

                def load(oid: ObjectId = oid) -> str:
                    return manifest_text(repo, oid)

                yield Piece(f"{row.kind.value} {oid.short()}: {row.summary}", size, load)
        last = chain[-1][1]
        nxt = last.parents[0] if last.parents else None


def blob_tail(repo: Repo, oid: ObjectId, label: str, *, max_bytes: int = 64 << 10) -> Piece:
    """The last ``max_bytes`` of blob ``oid`` (a step log) as one piece, reading only
    the chunks that hold them."""
    info = repo.object_info(oid)
    size = min(info.size, max_bytes)

    def load() -> str:
        obj = repo.read_typed(oid, ObjectType.BLOB)
        if not isinstance(obj, ChunkedBlob):
            data = repo.read_blob(oid)[-max_bytes:]
        else:
            parts: list[bytes] = []
            held = 0
            for chunk_id, length in reversed(obj.chunks):
                if held >= max_bytes:
                    break
                parts.append(repo.read_blob(chunk_id))
                held += length
            data = b"".join(reversed(parts))[-max_bytes:]
        return data.decode("utf-8", "replace")

    return Piece(label, size, load)


RUN_KINDS = (
    ObjectType.DESIGN,
    ObjectType.RESEARCH,
    ObjectType.PLAN,
    ObjectType.TEST_CERTIFICATE,
    ObjectType.BUILD_RECEIPT,
)
"""The order :func:`run_sources` offers a run's records in (most needed first)."""


def run_sources(
    repo: Repo, run_id: str, *, logs: bool = True, log_bytes: int = 16 << 10
) -> list[Iterator[Piece]]:
    """Sources for a prompt about run ``run_id``: its design, research, plan, test
    certificates and build receipts, each kind's history newest first (from the
    ``refs/runs/<run>/<kind>`` refs), then the tails of the newest receipts' logs."""
    sources: list[Iterator[Piece]] = []
    heads: dict[ObjectType, ObjectId] = {}
    for kind in RUN_KINDS:
        record = repo.read_ref_record(f"refs/runs/{run_id}/{kind.value}")
        if record is not None and record.target is not None:
            heads[kind] = record.target
            sources.append(manifest_history(repo, record.target, kinds=[kind]))
    receipt = heads.get(ObjectType.BUILD_RECEIPT)
    if logs and receipt is not None:
        sources.append(receipt_log_tails(repo, receipt, log_bytes))
    return sources


def receipt_log_tails(repo: Repo, head: ObjectId, max_bytes: int) -> Iterator[Piece]:
    """The tails of the logs each build receipt names, newest receipt first; a
    receipt is read (and validated by its schema) only when the walk reaches it."""
    from steve.objects.schemas import read_body
    from steve.objects.schemas.receipts import BuildReceipt

    nxt: ObjectId | None = head
    while nxt is not None:
        obj = repo.read_object(nxt)
        if not isinstance(obj, Manifest) or obj.kind is not ObjectType.BUILD_RECEIPT:
            return
        receipt = read_body(obj.kind, obj.version, obj.body)
        assert isinstance(receipt, BuildReceipt)
        for log in receipt.logs:
            label = f"{log.stream} of {nxt.short()}"
            yield blob_tail(repo, ObjectId.from_hex(str(log.blob)), label, max_bytes=max_bytes)
        nxt = obj.parents[0] if obj.parents else None
