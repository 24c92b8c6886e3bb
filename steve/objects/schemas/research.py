"""The Research Manifest, schema version 2 (version 1 stays readable).

Evidence gathered for a design's research questions (DEVPATH 2.2: research
outputs are cached and referenced by hash).  Each source names the mirrored
page it came from: the source record (``steve.research.records``), the
content blob, the blob of its extracted text and the extractor that made it.
Each excerpt has an id (``E-001``) and a locator: character offsets
``[start, end)`` into that extracted text, so anyone re-derives the excerpt
from the mirrored bytes.  Summaries are per question and made of claims;
each claim cites excerpts by id with the exact span it quotes
(docs/research-citations.md).

Version 1 (``ResearchManifestV1``: sources by content id only, excerpts
without ids, summaries citing whole sources) is read and upgraded: its
excerpts get ids in order and no locator, and each summary becomes one
claim citing the excerpts of the sources it named (the whole excerpt as the
quote), or the sources themselves when they have none.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from steve.objects.schemas.common import (
    PROVENANCE_ID_FIELDS,
    Absent,
    Count,
    ManifestBody,
    ModelProvenance,
    Name,
    Oid,
    OmitEmpty,
    Problem,
    Strict,
    Text,
    Timestamp,
    unique_ids,
)
from steve.objects.schemas.design import RQ_ID

S_ID = r"^S-[0-9]{3,}$"
E_ID = r"^E-[0-9]{3,}$"
MAX_EXCERPT = 2000
MEDIA_TYPE = r"^[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+$"

Status = Literal["answered", "partial", "open"]


class QuestionAnswer(Strict):
    id: str = Field(pattern=RQ_ID, description="the design's research question id (RQ-nnn)")
    question: Text = Field(min_length=1)
    status: Status
    answer: Text | None = None


# --- version 2 ------------------------------------------------------------------------


class Source(Strict):
    id: str = Field(pattern=S_ID, description="S-001, S-002, ...")
    uri: str = Field(min_length=1, max_length=4096)
    retrieved_at: Timestamp
    content: Oid = Field(description="object id of the mirrored bytes")
    media_type: str = Field(pattern=MEDIA_TYPE)
    record: Oid | None = Absent("the source record (steve.research.records) it was mirrored as")
    text: Oid | None = Absent("blob of the extracted text (UTF-8) that excerpt locators index")
    extractor: Name | None = Absent("the extractor and its version, e.g. trafilatura/2.3.1")
    title: Name | None = Absent("the page's title, as the extractor found it")


class Locator(Strict):
    start: Count = Field(description="first character (code point) of the extracted text")
    end: Count = Field(description="one past the last character: [start, end)")


class Excerpt(Strict):
    id: str = Field(pattern=E_ID, description="E-001, E-002, ...")
    source: str = Field(pattern=S_ID)
    text: str = Field(min_length=1, max_length=MAX_EXCERPT)
    locator: Locator | None = Absent("offsets into the source's extracted text")
    questions: list[str] = OmitEmpty(list, "the questions (RQ-nnn) it was proposed for")
    note: Name | None = Absent("a free-form locator (page, section; version 1's locator)")


class Citation(Strict):
    excerpt: str = Field(pattern=E_ID)
    quote: str = Field(min_length=1, max_length=MAX_EXCERPT, description="the span it quotes")


class Claim(Strict):
    text: Text = Field(min_length=1)
    cites: list[Citation] = Field(default_factory=list)
    sources: list[str] = OmitEmpty(list, "sources cited without a quoted span (version 1)")


class Summary(Strict):
    question: str | None = Field(default=None, pattern=RQ_ID)
    claims: list[Claim] = Field(min_length=1)


class ResearchManifest(ManifestBody):
    KIND: ClassVar[str] = "research"
    SCHEMA_VERSION: ClassVar[int] = 2
    ID_FIELDS: ClassVar[tuple[str, ...]] = (
        "scope",
        "sources.content",
        "sources.record",
        "sources.text",
        *PROVENANCE_ID_FIELDS,
    )

    title: Name
    scope: Oid | None = Absent("the scope record the research followed")
    questions: list[QuestionAnswer] = Field(default_factory=list)
    sources: list[Source] = Field(default_factory=list)
    excerpts: list[Excerpt] = Field(default_factory=list)
    summaries: list[Summary] = Field(default_factory=list)
    provenance: ModelProvenance | None = Absent(
        "the model exchanges the summaries came from (absent: written by hand)"
    )

    def problems(self) -> list[Problem]:
        out: list[Problem] = []
        out += unique_ids(list(self.questions), "questions")
        out += unique_ids(list(self.sources), "sources")
        out += unique_ids(list(self.excerpts), "excerpts")
        out += unique_ids(list(self.summaries), "summaries", "question")
        known = {s.id for s in self.sources}
        with_text = {s.id for s in self.sources if s.text is not None}
        qids = {q.id for q in self.questions}
        excerpts = {e.id: e for e in self.excerpts}
        out += _answered(self.questions)
        for i, e in enumerate(self.excerpts):
            if e.source not in known:
                out.append((f"excerpts[{i}].source", f"citation: no source {e.source!r}"))
            loc = e.locator
            if loc is not None and e.source in known and e.source not in with_text:
                out.append(
                    (
                        f"excerpts[{i}].locator",
                        f"locator: source {e.source} has no extracted text to locate it in",
                    )
                )
            if loc is not None and loc.end - loc.start != len(e.text):
                out.append(
                    (
                        f"excerpts[{i}].locator",
                        f"locator: [{loc.start}, {loc.end}) spans {loc.end - loc.start} "
                        f"characters, the text has {len(e.text)}",
                    )
                )
            for j, q in enumerate(e.questions):
                if q not in qids:
                    out.append((f"excerpts[{i}].questions[{j}]", f"reference: no question {q!r}"))
        for i, s in enumerate(self.summaries):
            if s.question is not None and s.question not in qids:
                out.append((f"summaries[{i}].question", f"reference: no question {s.question!r}"))
            for j, claim in enumerate(s.claims):
                path = f"summaries[{i}].claims[{j}]"
                if not claim.cites and not claim.sources:
                    out.append((f"{path}.cites", "citation: a claim cites at least one excerpt"))
                for k, c in enumerate(claim.cites):
                    cited = excerpts.get(c.excerpt)
                    if cited is None:
                        out.append((f"{path}.cites[{k}]", f"citation: no excerpt {c.excerpt!r}"))
                    elif c.quote not in cited.text:
                        out.append(
                            (
                                f"{path}.cites[{k}].quote",
                                f"citation: the quote is not in excerpt {c.excerpt}",
                            )
                        )
                for k, sid in enumerate(claim.sources):
                    if sid not in known:
                        out.append((f"{path}.sources[{k}]", f"citation: no source {sid!r}"))
        return out


def _answered(questions: list[QuestionAnswer]) -> list[Problem]:
    return [
        (f"questions[{i}].answer", "required: status answered needs an answer")
        for i, q in enumerate(questions)
        if q.status == "answered" and not q.answer
    ]


# --- version 1 (read only) ------------------------------------------------------------


class SourceV1(Strict):
    id: str = Field(pattern=S_ID, description="S-001, S-002, ...")
    uri: str = Field(min_length=1, max_length=4096)
    retrieved_at: Timestamp
    content: Oid = Field(description="object id of the cached content")
    media_type: str = Field(pattern=MEDIA_TYPE)


class ExcerptV1(Strict):
    source: str = Field(pattern=S_ID)
    text: str = Field(min_length=1, max_length=MAX_EXCERPT)
    locator: Name | None = Field(default=None, description="page, section, line range, ...")


class SummaryV1(Strict):
    question: str | None = Field(default=None, pattern=RQ_ID)
    text: Text = Field(min_length=1)
    cites: list[str] = Field(min_length=1, description="source ids (S-nnn)")


class ResearchManifestV1(ManifestBody):
    """A research manifest, schema version 1 (read only)."""

    KIND: ClassVar[str] = "research"
    SCHEMA_VERSION: ClassVar[int] = 1
    ID_FIELDS: ClassVar[tuple[str, ...]] = ("sources.content",)

    title: Name
    questions: list[QuestionAnswer] = Field(default_factory=list)
    sources: list[SourceV1] = Field(default_factory=list)
    excerpts: list[ExcerptV1] = Field(default_factory=list)
    summaries: list[SummaryV1] = Field(default_factory=list)

    def problems(self) -> list[Problem]:
        out: list[Problem] = []
        out += unique_ids(list(self.questions), "questions")
        out += unique_ids(list(self.sources), "sources")
        known = {s.id for s in self.sources}
        qids = {q.id for q in self.questions}
        out += _answered(self.questions)
        for i, e in enumerate(self.excerpts):
            if e.source not in known:
                out.append((f"excerpts[{i}].source", f"citation: no source {e.source!r}"))
        for i, s in enumerate(self.summaries):
            for j, c in enumerate(s.cites):
                if c not in known:
                    out.append((f"summaries[{i}].cites[{j}]", f"citation: no source {c!r}"))
            if s.question is not None and s.question not in qids:
                out.append((f"summaries[{i}].question", f"reference: no question {s.question!r}"))
        return out

    def upgraded(self) -> ResearchManifest:
        """The same record as version 2 (see the module docstring)."""
        excerpts = [
            Excerpt(id=f"E-{i + 1:03d}", source=e.source, text=e.text, note=e.locator)
            for i, e in enumerate(self.excerpts)
        ]
        summaries = []
        for s in self.summaries:
            cites = [Citation(excerpt=e.id, quote=e.text) for e in excerpts if e.source in s.cites]
            cited = {e.source for e in excerpts if e.source in s.cites}
            rest = [sid for sid in s.cites if sid not in cited]
            summaries.append(
                Summary(question=s.question, claims=[Claim(text=s.text, cites=cites, sources=rest)])
            )
        return ResearchManifest(
            amends=self.amends,
            title=self.title,
            questions=list(self.questions),
            sources=[Source(**s.model_dump()) for s in self.sources],
            excerpts=excerpts,
            summaries=summaries,
        )
