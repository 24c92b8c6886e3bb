"""The research of a run between its steps: extract, summarise, freeze, show.

A run's research is worked on in a *draft*: a canonical-CBOR blob holding a
research manifest draft (schema v2), in a tree with the objects it cites,
named by ``refs/research/draft/<run>`` (its reflog is the draft's history).
Each step reads the draft, changes it and moves the ref in one transaction
with its ``ref.updated`` event:

* :func:`extract` proposes excerpts for each of the design's research
  questions from every mirrored source (or the URLs given): the source's
  extracted text is stored as a blob, the excerpts are spans of it with
  locators (:mod:`steve.research.excerpts`).  Summaries are dropped (they
  cite the old excerpt ids).
* :mod:`steve.research.summarize` adds the model's cited summaries.
* :func:`freeze` re-checks every citation against the mirrored bytes
  (:func:`steve.research.cite.check_research`, strict) and freezes the draft
  as the run's research manifest through :func:`steve.porcelain.stages.record`
  (the run moves to RESEARCH, or stays there); a broken citation freezes
  nothing (STEVE-CITE-001).
* :func:`view` is what ``steve research show`` prints.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from steve.errors import (
    CitationsBroken,
    ManifestInvalid,
    NoResearch,
    NoResearchDraft,
    NoResearchQuestions,
    NothingToExcerpt,
    SourceNotMirrored,
    UnknownResearchQuestion,
)
from steve.objects import cbor
from steve.objects.model import Blob, Mode, ObjectType, Tree, TreeEntry, hash_object, object_size
from steve.objects.oid import ObjectId
from steve.objects.schemas import read_body, validate
from steve.objects.schemas.design import DesignManifest
from steve.objects.schemas.research import ResearchManifest
from steve.porcelain.records import read_manifest_body
from steve.porcelain.runs import find_run, run_manifests
from steve.porcelain.stages import Recorded, record
from steve.repo import Repo, RepoTransaction, write_blob_stream
from steve.research.cite import check_research
from steve.research.excerpts import DEFAULT_SPANS, propose_spans
from steve.research.extract import extract_text
from steve.research.records import SourceRecord, lookup, mirrored

__all__ = [
    "DRAFT_PREFIX",
    "DRAFT_TYPE",
    "Draft",
    "draft_ref",
    "extract",
    "freeze",
    "load_draft",
    "save_draft",
    "view",
]

DRAFT_PREFIX = "refs/research/draft/"
DRAFT_TYPE = "research.draft"
DRAFT_ENTRY = "draft"


def draft_ref(run_id: str) -> str:
    return DRAFT_PREFIX + run_id


@dataclass(frozen=True, slots=True)
class Draft:
    """A run's research draft: the blob it is stored as and its manifest draft."""

    oid: ObjectId
    run_id: str
    body: dict[str, Any]


def load_draft(repo: Repo, run_id: str) -> Draft | None:
    ref = repo.refs.resolve(draft_ref(run_id))
    if ref is None or ref.target is None:
        return None
    tree = repo.read_object(ref.target)
    entries = tree.entries if isinstance(tree, Tree) else ()
    entry = next((e for e in entries if e.name == DRAFT_ENTRY), None)
    if entry is None:
        return None
    value = cbor.decode(repo.read_blob(entry.oid))
    if not isinstance(value, dict) or value.get("type") != DRAFT_TYPE:
        return None
    body = value.get("body")
    return Draft(ref.target, run_id, dict(body) if isinstance(body, dict) else {})


def save_draft(
    repo: Repo,
    tx: RepoTransaction,
    run_id: str,
    body: Mapping[str, Any],
    *,
    old: ObjectId | None,
    message: str,
    now: int,
) -> ObjectId:
    """Store ``body`` as the run's draft and move its ref (in ``tx``, with the event).

    The ref names a tree: ``draft`` (the CBOR blob of the body) and, for each
    source, ``S-nnn.record``, ``.content`` and ``.text``, so the objects the
    draft cites are reachable (``steve gc`` keeps them) before it is frozen."""
    blob = Blob(cbor.encode({"type": DRAFT_TYPE, "run": run_id, "body": dict(body)}))
    blob_id, data = hash_object(blob)
    tx.put(blob_id, ObjectType.BLOB, object_size(blob), data)
    entries = [TreeEntry(DRAFT_ENTRY, Mode.FILE, blob_id)]
    for source in body.get("sources", []):
        for part in ("record", "content", "text"):
            if isinstance(source, dict) and isinstance(source.get(part), str):
                name = f"{source['id']}.{part}"
                entries.append(TreeEntry(name, Mode.FILE, ObjectId.from_hex(source[part])))
    tree = Tree.from_entries(entries)
    oid, data = hash_object(tree)
    tx.put(oid, ObjectType.TREE, object_size(tree), data)
    if oid != old:
        name, previous = repo.refs.update(
            draft_ref(run_id), oid, old, who=repo.identity, message=message, now=now, tx=tx
        )
        tx.emit(
            "ref.updated",
            {"ref": name, "old": None if previous is None else previous.hex, "new": oid.hex},
            run_id,
        )
    return oid


def _design(repo: Repo, run_id: str) -> DesignManifest:
    design_id = run_manifests(repo, run_id).get(ObjectType.DESIGN)
    if design_id is None:
        raise NoResearchQuestions(run_id, "no design frozen")
    m = read_manifest_body(repo, design_id, ObjectType.DESIGN)
    design = read_body(ObjectType.DESIGN, m.version, m.body)
    assert isinstance(design, DesignManifest)
    if not design.research_questions:
        raise NoResearchQuestions(run_id, "the design lists no research_questions")
    return design


@dataclass(frozen=True, slots=True)
class Extracted:
    """What :func:`extract` did: the draft, and excerpts per question."""

    draft: ObjectId
    run_id: str
    sources: int
    excerpts: int
    per_question: dict[str, int]


def _sources(repo: Repo, urls: Sequence[str]) -> list[tuple[ObjectId, SourceRecord]]:
    if not urls:
        return sorted(mirrored(repo), key=lambda item: (item[1].url, item[0].hex))
    out = []
    for url in urls:
        found = lookup(repo, url)
        if found is None:
            raise SourceNotMirrored(url)
        out.append(found)
    return out


def extract(
    repo: Repo,
    *,
    run_id: str | None = None,
    questions: Sequence[str] = (),
    urls: Sequence[str] = (),
    count: int = DEFAULT_SPANS,
    now: int,
) -> Extracted:
    """Propose excerpts for the run's research questions (all, or ``questions``) from
    the mirrored sources (all, or ``urls``), and store them as the run's draft."""
    run = find_run(repo, run_id)
    design = _design(repo, run.id)
    known = [q.id for q in design.research_questions]
    for qid in questions:
        if qid not in known:
            raise UnknownResearchQuestion(qid, known)
    asked = [q for q in design.research_questions if not questions or q.id in questions]
    rows: list[tuple[ObjectId, ObjectType, int, bytes]] = []

    def add(obj: Any) -> ObjectId:
        oid, data = hash_object(obj)
        rows.append((oid, obj.type, object_size(obj), data))
        return oid

    sources: list[dict[str, Any]] = []
    spans: dict[tuple[str, int, int], dict[str, Any]] = {}
    with_text = 0
    for rec_id, rec in _sources(repo, urls):
        ex = extract_text(repo.read_blob(rec.content), rec.media_type, rec.charset)
        if ex is None:
            continue
        with_text += 1
        sid = f"S-{len(sources) + 1:03d}"
        found = []
        for q in asked:
            for sp in propose_spans(ex.text, q.question, count=count):
                key = (sid, sp.start, sp.end)
                if key not in spans:
                    spans[key] = {"source": sid, "text": ex.text[sp.start : sp.end], "q": []}
                    found.append(key)
                spans[key]["q"].append(q.id)
        if not found:
            continue
        text_id = write_blob_stream(io.BytesIO(ex.text.encode("utf-8")), add)
        source: dict[str, Any] = {
            "id": sid,
            "uri": rec.final_url,
            "retrieved_at": rec.fetched_at,
            "content": rec.content.hex,
            "media_type": rec.media_type,
            "record": rec_id.hex,
            "text": text_id.hex,
            "extractor": ex.extractor,
        }
        if ex.title:
            source["title"] = ex.title[:200]
        sources.append(source)
    if with_text == 0:
        raise NothingToExcerpt("the mirror has no page with text" if not urls else ", ".join(urls))
    excerpts: list[dict[str, Any]] = []
    per_question = {q.id: 0 for q in asked}
    for (sid, start, end), item in sorted(spans.items()):
        if not any(s["id"] == sid for s in sources):
            continue
        excerpts.append(
            {
                "id": f"E-{len(excerpts) + 1:03d}",
                "source": sid,
                "text": item["text"],
                "locator": {"start": start, "end": end},
                "questions": item["q"],
            }
        )
        for q in item["q"]:
            per_question[q] += 1
    body: dict[str, Any] = {
        "title": f"Research for {design.name}"[:200],
        "questions": [{"id": q.id, "question": q.question, "status": "open"} for q in asked],
        "sources": sources,
        "excerpts": excerpts,
        "summaries": [],
    }
    validate("research", body)  # what extract stores always freezes
    old = load_draft(repo, run.id)
    with repo.transaction() as tx:
        tx.put_many(rows)
        oid = save_draft(
            repo,
            tx,
            run.id,
            body,
            old=None if old is None else old.oid,
            message=f"research extract (run {run.id})",
            now=now,
        )
        tx.emit(
            "research.extracted",
            {"draft": oid.hex, "sources": len(sources), "excerpts": len(excerpts)},
            run.id,
        )
    return Extracted(oid, run.id, len(sources), len(excerpts), per_question)


def freeze(
    repo: Repo,
    *,
    run_id: str | None = None,
    scope: ObjectId | None = None,
    now: int,
    tz: int,
    actor: str,
) -> Recorded:
    """Check every citation of the run's draft against the mirrored bytes and freeze
    it as the run's research manifest (CitationsBroken, nothing frozen, if one fails)."""
    run = find_run(repo, run_id)
    draft = load_draft(repo, run.id)
    if draft is None:
        raise NoResearchDraft(run.id)
    body = dict(draft.body)
    if scope is not None:
        body["scope"] = scope.hex
    try:
        model = validate("research", body)
    except ManifestInvalid as exc:
        raise CitationsBroken(list(exc.problems)) from None
    assert isinstance(model, ResearchManifest)
    problems = check_research(repo, model, strict=True)
    if problems:
        raise CitationsBroken(problems)
    return record(repo, "research", body, run_id=run.id, now=now, tz=tz, actor=actor)


# --- reading ------------------------------------------------------------------------


def _cite_view(body: ResearchManifest, excerpt_id: str, quote: str) -> dict[str, Any]:
    excerpt = next((e for e in body.excerpts if e.id == excerpt_id), None)
    source = (
        None if excerpt is None else next((s for s in body.sources if s.id == excerpt.source), None)
    )
    loc = None if excerpt is None or excerpt.locator is None else excerpt.locator
    return {
        "excerpt": excerpt_id,
        "quote": quote,
        "source": None if source is None else source.id,
        "uri": None if source is None else source.uri,
        "locator": None if loc is None else {"start": loc.start, "end": loc.end},
    }


def view_body(body: ResearchManifest) -> dict[str, Any]:
    """A research body as ``steve research show --json`` prints it (docs/cli.md)."""
    summaries = {s.question: s for s in body.summaries}
    questions = []
    for q in body.questions:
        s = summaries.get(q.id)
        claims = [] if s is None else s.claims
        questions.append(
            {
                "id": q.id,
                "question": q.question,
                "status": q.status,
                "answer": q.answer,
                "claims": [
                    {
                        "text": c.text,
                        "cites": [_cite_view(body, x.excerpt, x.quote) for x in c.cites],
                    }
                    for c in claims
                ],
            }
        )
    return {
        "title": body.title,
        "questions": questions,
        "sources": [
            {"id": s.id, "uri": s.uri, "title": s.title, "record": s.record, "content": s.content}
            for s in body.sources
        ],
        "excerpts": len(body.excerpts),
    }


def view(repo: Repo, *, run_id: str | None = None, rev: str | None = None) -> dict[str, Any]:
    """The research of a manifest (``rev``), else the run's frozen research, else its
    draft: :func:`view_body` plus ``manifest`` (id or None), ``run`` and ``frozen``."""
    if rev is not None:
        oid = repo.rev_parse(rev)
        m = read_manifest_body(repo, oid, ObjectType.RESEARCH)
        body = read_body(ObjectType.RESEARCH, m.version, m.body)
        assert isinstance(body, ResearchManifest)
        return {"manifest": oid.hex, "run": None, "frozen": True, **view_body(body)}
    run = find_run(repo, run_id)
    frozen = run_manifests(repo, run.id).get(ObjectType.RESEARCH)
    draft = load_draft(repo, run.id)
    if frozen is not None:
        m = read_manifest_body(repo, frozen, ObjectType.RESEARCH)
        body = read_body(ObjectType.RESEARCH, m.version, m.body)
        assert isinstance(body, ResearchManifest)
        return {"manifest": frozen.hex, "run": run.id, "frozen": True, **view_body(body)}
    if draft is None:
        raise NoResearch(run.id)
    model = ResearchManifest.model_validate(draft.body)
    return {"manifest": None, "run": run.id, "frozen": False, **view_body(model)}
