"""Cited summaries: the model answers each research question from excerpts only.

For each question of the run's draft (:mod:`steve.research.notebook`) that
has excerpts, the model gets the question and those excerpts, ids included,
and nothing else (no page, no URL it could fetch, no design), and answers
with one JSON object::

    {"question": "RQ-001",
     "status": "answered" | "partial" | "open",
     "answer": "one paragraph",
     "claims": [{"text": "a claim",
                 "cites": [{"excerpt": "E-002", "quote": "words copied exactly"}]}]}

as text (a fenced ``json`` block or the bare object) or as the input of the
tool ``submit_summary``.  STEVE checks every citation mechanically
(:func:`check_answer`): the cited excerpt was given for this question, the
quote occurs in it, and the excerpt is the text at its locator in the source
re-extracted from the mirrored bytes.  When something fails the model gets
one repair round that lists exactly the failing citations; a second failure
rejects the question's summary (STEVE-CITE-002) and it is never stored.
Accepted summaries are kept in the draft with the exchanges as the
manifest's ``provenance``.  Every exchange goes through
:class:`~steve.llm.session.LLMSession` (redacted, budgeted, recorded,
replayable).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from steve.errors import InvalidInput, NoResearchDraft, SummaryRejected, UnknownResearchQuestion
from steve.llm.record import Exchange
from steve.llm.session import TextCallback
from steve.llm.types import Message, TextBlock, Tool, ToolResultBlock
from steve.objects.schemas.common import Problem
from steve.objects.schemas.research import ResearchManifest
from steve.porcelain.modelio import ModelTarget, draft_from_text, provenance
from steve.porcelain.runs import find_run
from steve.repo import Repo
from steve.research.cite import SourceTexts
from steve.research.excerpts import check_span
from steve.research.notebook import load_draft, save_draft

__all__ = ["SUMMARY_TOOL", "SYSTEM", "Summarized", "check_answer", "prompt_for", "summarize"]

SUMMARY_TOOL = "submit_summary"
STATUSES = ("answered", "partial", "open")

SYSTEM = """\
You are the research summariser of STEVE.  Answer the research question below \
from the numbered excerpts only: use nothing you know from elsewhere.  Reply with \
one JSON object and nothing else: {"question": the question id, "status": \
"answered", "partial" or "open", "answer": one short paragraph, "claims": \
[{"text": a claim, "cites": [{"excerpt": an excerpt id such as E-001, "quote": \
words copied exactly from that excerpt}]}]}.  Every claim cites at least one \
excerpt, and every quote is an exact, contiguous copy of part of the excerpt it \
cites.  If the excerpts do not answer the question, say so with status "open" \
and no claims.  You may instead call the tool submit_summary with that object."""

_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["question", "status", "answer", "claims"],
    "properties": {
        "question": {"type": "string"},
        "status": {"enum": list(STATUSES)},
        "answer": {"type": "string"},
        "claims": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["text", "cites"],
                "properties": {
                    "text": {"type": "string"},
                    "cites": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "required": ["excerpt", "quote"],
                            "properties": {
                                "excerpt": {"type": "string"},
                                "quote": {"type": "string"},
                            },
                        },
                    },
                },
            },
        },
    },
}
TOOL = Tool.of(SUMMARY_TOOL, "Submit the cited summary of one research question.", _SCHEMA)


def prompt_for(question: Mapping[str, Any], excerpts: Sequence[Mapping[str, Any]]) -> str:
    """The user message: the question and its excerpts (ids and text), nothing else."""
    parts = [f"Question {question['id']}: {question['question']}\n\nExcerpts:\n"]
    for e in excerpts:
        parts.append(f"\n[{e['id']}] (from {e['source']})\n{e['text']}\n")
    return "".join(parts)


def _is_text(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip())


def check_answer(
    answer: object,
    qid: str,
    given: Mapping[str, Mapping[str, Any]],
    located: Mapping[str, str | None],
) -> tuple[dict[str, Any] | None, list[Problem]]:
    """The summary (schema form: ``{question, claims}``, or None for an open question
    without claims) and the answer's problems.  ``given``: the excerpts the prompt
    held, by id; ``located``: why each one is not at its locator (None: it is)."""
    problems: list[Problem] = []
    if not isinstance(answer, dict):
        return None, [("", "shape: the answer must be one JSON object")]
    if answer.get("question") != qid:
        problems.append(("question", f"shape: must be {qid!r}"))
    status = answer.get("status")
    if status not in STATUSES:
        problems.append(("status", f"shape: one of {', '.join(STATUSES)}"))
    if not isinstance(answer.get("answer"), str):
        problems.append(("answer", "shape: a string"))
    claims = answer.get("claims")
    if not isinstance(claims, list):
        return None, [*problems, ("claims", "shape: a list of claims")]
    if status in ("answered", "partial") and not claims:
        problems.append(("claims", f"shape: a {status} question needs at least one claim"))
    out_claims = []
    for j, claim in enumerate(claims):
        path = f"claims[{j}]"
        if not isinstance(claim, dict) or not _is_text(claim.get("text")):
            problems.append((path, "shape: a claim is {text, cites}"))
            continue
        cites = claim.get("cites")
        if not isinstance(cites, list) or not cites:
            problems.append((f"{path}.cites", "citation: a claim cites at least one excerpt"))
            continue
        out_cites = []
        for k, cite in enumerate(cites):
            cpath = f"{path}.cites[{k}]"
            if not isinstance(cite, dict) or not _is_text(cite.get("quote")):
                problems.append((cpath, "shape: a citation is {excerpt, quote}"))
                continue
            eid, quote = cite.get("excerpt"), cite["quote"]
            excerpt = given.get(eid) if isinstance(eid, str) else None
            if excerpt is None:
                known = ", ".join(sorted(given))
                problems.append((cpath, f"citation: excerpt {eid!r} was not given ({known})"))
            elif quote not in excerpt["text"]:
                problems.append(
                    (cpath, f"citation: the quote {_clip(quote)!r} does not occur in {eid}")
                )
            elif (why := located.get(str(eid))) is not None:
                problems.append((cpath, f"citation: {eid} is not in its source: {why}"))
            else:
                out_cites.append({"excerpt": eid, "quote": quote})
        out_claims.append({"text": claim["text"], "cites": out_cites})
    if problems:
        return None, problems
    if not out_claims:
        return None, []
    return {"question": qid, "claims": out_claims}, []


def _clip(value: str, width: int = 80) -> str:
    return value if len(value) <= width else value[: width - 3] + "..."


def _feedback(qid: str, problems: Sequence[Problem]) -> str:
    lines = "\n".join(f"- {path or '(root)'}: {rule}" for path, rule in problems[:50])
    return (
        f"These citations of the summary for {qid} do not check out:\n{lines}\n"
        "Answer again with the same JSON object, citing only the excerpts given and "
        "quoting their words exactly."
    )


def _answer_of(ex: Exchange) -> tuple[object, str | None]:
    calls = [u for u in ex.response.tool_uses if u.name == SUMMARY_TOOL]
    if calls:
        return calls[0].input, calls[0].id
    try:
        return draft_from_text(ex.response.text), None
    except InvalidInput:
        return None, None


@dataclass(slots=True)
class Summarized:
    """What :func:`summarize` did."""

    run_id: str
    draft: Any = None  # the new draft's id
    answered: dict[str, str] = field(default_factory=dict)  # question id -> status
    repairs: dict[str, int] = field(default_factory=dict)  # question id -> repair rounds
    exchanges: list[Exchange] = field(default_factory=list)
    rejected: list[SummaryRejected] = field(default_factory=list)


def _ask(
    target: ModelTarget,
    question: Mapping[str, Any],
    excerpts: Sequence[Mapping[str, Any]],
    located: Mapping[str, str | None],
    *,
    run_id: str,
    exchanges: list[Exchange],
    on_text: TextCallback | None,
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """One question's (status/answer, summary); SummaryRejected after the repair round."""
    qid = str(question["id"])
    given = {str(e["id"]): e for e in excerpts}
    messages: list[Message] = [Message.user(prompt_for(question, excerpts))]
    problems: list[Problem] = []
    responses: list[str] = []
    for _ in range(2):  # the answer, then one repair round
        request = target.request(messages, system=SYSTEM, tools=(TOOL,))
        ex = target.session.complete(request, run_id=run_id, stage="RESEARCH", on_text=on_text)
        exchanges.append(ex)
        responses.append(ex.response_oid.hex)
        answer, call_id = _answer_of(ex)
        if answer is None:
            problems = [("", "shape: no JSON object in the answer")]
        else:
            summary, problems = check_answer(answer, qid, given, located)
            if not problems:
                assert isinstance(answer, dict)
                status = answer["status"] if summary is not None else "open"
                qa = {"id": qid, "question": question["question"], "status": status}
                if str(answer.get("answer", "")).strip():
                    qa["answer"] = str(answer["answer"])
                elif status == "answered":
                    qa["status"] = "partial"
                return qa, summary
        text = _feedback(qid, problems)
        messages.append(Message("assistant", ex.response.content))
        if call_id is not None:
            content: tuple[TextBlock | ToolResultBlock, ...] = (
                ToolResultBlock(call_id, text, is_error=True),
                TextBlock(text),
            )
            messages.append(Message("user", content))
        else:
            messages.append(Message.user(text))
    raise SummaryRejected(qid, problems, responses)


def summarize(
    repo: Repo,
    target: ModelTarget,
    *,
    run_id: str | None = None,
    questions: Sequence[str] = (),
    now: int,
    on_text: TextCallback | None = None,
) -> Summarized:
    """Ask for a cited summary of each question of the run's draft (all, or
    ``questions``) that has excerpts, and keep the accepted ones in the draft.
    Rejected questions are listed in :attr:`Summarized.rejected` (the caller
    raises the first); their earlier summary, if any, is dropped."""
    run = find_run(repo, run_id)
    draft = load_draft(repo, run.id)
    if draft is None:
        raise NoResearchDraft(run.id)
    body = json.loads(json.dumps(draft.body))
    model = ResearchManifest.model_validate(body)
    known = [q.id for q in model.questions]
    for qid in questions:
        if qid not in known:
            raise UnknownResearchQuestion(qid, known)
    texts = SourceTexts(repo)
    sources = {s.id: s for s in model.sources}
    located: dict[str, str | None] = {}
    for e in model.excerpts:
        text = texts.text(sources[e.source])
        if text is None or e.locator is None:
            located[e.id] = "its source text cannot be re-derived"
        else:
            located[e.id] = check_span(text, e.locator.start, e.locator.end, e.text)
    done = Summarized(run.id)
    summaries = {s["question"]: s for s in body.get("summaries", []) if isinstance(s, dict)}
    for i, q in enumerate(body["questions"]):
        if questions and q["id"] not in questions:
            continue
        mine = [e for e in body["excerpts"] if q["id"] in e.get("questions", [])]
        summaries.pop(q["id"], None)
        if not mine:
            body["questions"][i] = {"id": q["id"], "question": q["question"], "status": "open"}
            done.answered[q["id"]] = "open"
            continue
        before = len(done.exchanges)
        try:
            qa, summary = _ask(
                target,
                q,
                mine,
                located,
                run_id=run.id,
                exchanges=done.exchanges,
                on_text=on_text,
            )
        except SummaryRejected as exc:
            done.rejected.append(exc)
            body["questions"][i] = {"id": q["id"], "question": q["question"], "status": "open"}
            continue
        body["questions"][i] = qa
        done.answered[q["id"]] = qa["status"]
        done.repairs[q["id"]] = len(done.exchanges) - before - 1
        if summary is not None:
            summaries[q["id"]] = summary
    order = [q["id"] for q in body["questions"]]
    body["summaries"] = [summaries[qid] for qid in order if qid in summaries]
    if done.exchanges:
        old = body.get("provenance")
        mine_prov = provenance(target, done.exchanges).model_dump()
        if isinstance(old, dict) and (old.get("provider"), old.get("model")) == (
            mine_prov["provider"],
            mine_prov["model"],
        ):
            mine_prov["exchanges"] = old["exchanges"] + mine_prov["exchanges"]
        body["provenance"] = mine_prov
    with repo.transaction() as tx:
        done.draft = save_draft(
            repo,
            tx,
            run.id,
            body,
            old=draft.oid,
            message=f"research summarize (run {run.id})",
            now=now,
        )
        tx.emit(
            "research.summarized",
            {
                "draft": done.draft.hex,
                "answered": dict(done.answered),
                "rejected": [r.qid for r in done.rejected],
                "responses": [e.response_oid.hex for e in done.exchanges],
            },
            run.id,
        )
    return done
