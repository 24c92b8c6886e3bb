"""The Design Manifest, schema version 1 (DEVPATH section 1.4, field for field).

Fields DEVPATH lists that the envelope or freeze own instead of the body:
``schema_version`` (the envelope's ``v``), ``manifest_id`` (the object id,
which cannot be inside the bytes it hashes) and ``frozen_at`` (the
envelope's ``time``).  Timestamps are unix seconds.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from steve.objects.schemas.common import (
    PROVENANCE_ID_FIELDS,
    Absent,
    ManifestBody,
    ModelProvenance,
    Name,
    Oid,
    Problem,
    Strict,
    Text,
    Timestamp,
    unique_ids,
)

AC_ID = r"^AC-[0-9]{3,}$"
C_ID = r"^C-[0-9]{3,}$"
RQ_ID = r"^RQ-[0-9]{3,}$"

ConstraintType = Literal["Functional", "Performance", "Security", "Legal", "Resource"]
InterfaceType = Literal["CLI", "API", "Library", "File", "Stream"]
Priority = Literal["Must", "Should", "Could"]


class UserStory(Strict):
    role: Name
    want: Text
    so_that: Text | None = None


class IntentBlock(Strict):
    summary: Text = Field(min_length=1)
    detailed: Text | None = None
    user_stories: list[UserStory] = Field(default_factory=list)


class AcceptanceCriterion(Strict):
    id: str = Field(pattern=AC_ID, description="AC-001, AC-002, ...")
    description: Text = Field(min_length=1)
    testable: bool
    verification_hint: Text | None = None


class Constraint(Strict):
    id: str = Field(pattern=C_ID, description="C-001, C-002, ...")
    type: ConstraintType
    description: Text = Field(min_length=1)
    hard: bool = Field(description="true = axiom (non-violable), false = preference")


class InterfaceSpec(Strict):
    name: Name
    type: InterfaceType
    schema_: Text | None = Field(default=None, alias="schema")


class DeclaredDep(Strict):
    name: Name
    rationale: Text
    version_constraint: Name | None = None


class ResearchQuestion(Strict):
    id: str = Field(pattern=RQ_ID, description="RQ-001, RQ-002, ...")
    question: Text = Field(min_length=1)
    priority: Priority
    answered_by: Oid | None = Field(default=None, description="id of a research manifest")


class DesignManifest(ManifestBody):
    KIND: ClassVar[str] = "design"
    SCHEMA_VERSION: ClassVar[int] = 1
    ID_FIELDS: ClassVar[tuple[str, ...]] = (
        "research_questions.answered_by",
        *PROVENANCE_ID_FIELDS,
    )

    project_id: Name
    name: Name
    created_at: Timestamp
    intent: IntentBlock
    acceptance_criteria: list[AcceptanceCriterion] = Field(default_factory=list)
    constraints: list[Constraint] = Field(default_factory=list)
    axioms: list[Annotated[str, Field(pattern=C_ID)]] = Field(
        default_factory=list, description="ids of constraints with hard=true (C-nnn)"
    )
    interfaces: list[InterfaceSpec] = Field(default_factory=list)
    declared_dependencies: list[DeclaredDep] = Field(default_factory=list)
    research_questions: list[ResearchQuestion] = Field(default_factory=list)
    intake_session_id: Name | None = None
    human_approved: bool
    approval_timestamp: Timestamp | None = None
    approved_by: Literal["terminal", "yes-flag"] | None = Absent(
        "how the approval was given: an answer on a terminal, or --yes (absent: a "
        "hand-written draft, approved by whoever froze it)"
    )
    provenance: ModelProvenance | None = Absent(
        "the model exchanges the design came from (absent: written by hand)"
    )

    def problems(self) -> list[Problem]:
        out: list[Problem] = []
        out += unique_ids(list(self.acceptance_criteria), "acceptance_criteria")
        out += unique_ids(list(self.constraints), "constraints")
        out += unique_ids(list(self.research_questions), "research_questions")
        out += unique_ids(list(self.interfaces), "interfaces", "name")
        out += unique_ids(list(self.declared_dependencies), "declared_dependencies", "name")
        hard = {c.id: c.hard for c in self.constraints}
        seen: set[str] = set()
        for i, ref in enumerate(self.axioms):
            path = f"axioms[{i}]"
            if ref in seen:
                out.append((path, f"unique: axiom {ref!r} is listed more than once"))
            seen.add(ref)
            if ref not in hard:
                out.append((path, f"axiom_reference: {ref!r} names no constraint"))
            elif hard[ref] is False:
                out.append((path, f"axiom_hard: {ref!r} is a soft constraint (hard=false)"))
        if self.human_approved is True and self.approval_timestamp is None:
            out.append(("approval_timestamp", "required: human_approved=true needs a timestamp"))
        if self.approved_by is not None and self.human_approved is not True:
            out.append(("approved_by", "forbidden: set only when human_approved=true"))
        if self.human_approved is False and self.approval_timestamp is not None:
            out.append(("approval_timestamp", "forbidden: set only when human_approved=true"))
        return out
