"""The Research Manifest, schema version 1.

Evidence gathered for a design's research questions: each source is cached
in the object store (``content`` is the id of the fetched bytes), excerpts
are bounded and cite a source, and every summary cites at least one source
by id (DEVPATH 2.2: research outputs are cached and referenced by hash).
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from steve.objects.schemas.common import (
    ManifestBody,
    Name,
    Oid,
    Problem,
    Strict,
    Text,
    Timestamp,
    unique_ids,
)
from steve.objects.schemas.design import RQ_ID

S_ID = r"^S-[0-9]{3,}$"
MAX_EXCERPT = 2000

Status = Literal["answered", "partial", "open"]


class QuestionAnswer(Strict):
    id: str = Field(pattern=RQ_ID, description="the design's research question id (RQ-nnn)")
    question: Text = Field(min_length=1)
    status: Status
    answer: Text | None = None


class Source(Strict):
    id: str = Field(pattern=S_ID, description="S-001, S-002, ...")
    uri: str = Field(min_length=1, max_length=4096)
    retrieved_at: Timestamp
    content: Oid = Field(description="object id of the cached content")
    media_type: str = Field(pattern=r"^[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+$")


class Excerpt(Strict):
    source: str = Field(pattern=S_ID)
    text: str = Field(min_length=1, max_length=MAX_EXCERPT)
    locator: Name | None = Field(default=None, description="page, section, line range, ...")


class Summary(Strict):
    question: str | None = Field(default=None, pattern=RQ_ID)
    text: Text = Field(min_length=1)
    cites: list[str] = Field(min_length=1, description="source ids (S-nnn)")


class ResearchManifest(ManifestBody):
    KIND: ClassVar[str] = "research"
    SCHEMA_VERSION: ClassVar[int] = 1
    ID_FIELDS: ClassVar[tuple[str, ...]] = ("sources.content",)

    title: Name
    questions: list[QuestionAnswer] = Field(default_factory=list)
    sources: list[Source] = Field(default_factory=list)
    excerpts: list[Excerpt] = Field(default_factory=list)
    summaries: list[Summary] = Field(default_factory=list)

    def problems(self) -> list[Problem]:
        out: list[Problem] = []
        out += unique_ids(list(self.questions), "questions")
        out += unique_ids(list(self.sources), "sources")
        known = {s.id for s in self.sources}
        qids = {q.id for q in self.questions}
        for i, q in enumerate(self.questions):
            if q.status == "answered" and not q.answer:
                out.append((f"questions[{i}].answer", "required: status answered needs an answer"))
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
