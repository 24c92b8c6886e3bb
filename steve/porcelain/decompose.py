"""PLAN decomposition: a task graph drafted by a model from the run's design.

    >>> proposal = propose_plan(repo, target, images={"busybox": "sha256:..."},
    ...                         inputs={"src": tree_id}, now=t)
    >>> approve_plan(repo, proposal, now=t, tz=0, actor=who)

:func:`propose_plan` gives the model the run's design (and its research,
when there is one), the images and the pinned inputs the user offers, and
asks for a plan through the plan's JSON Schema (tool use, repair rounds with
the validation errors: the DAG rules, pinned images, grants, budgets).  The
model names images and pinned inputs by the names offered (``image:
busybox``, ``pinned: src``); :func:`resolve_names` replaces them with the
ids before validation, so the frozen plan pins images by digest and inputs
by object id, and a model cannot pin anything the user did not offer (an
image that is not offered is a validation error the model is told about).
A node without an image gets the only image offered, when there is one.

:func:`revise_plan` validates a plan the user edited (``--edit``), and
:func:`approve_plan` freezes the result through
:func:`steve.porcelain.stages.record` (the run moves to PLAN, or in
BUILD/TEST the plan is amended) with its ``provenance``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from steve.errors import ManifestInvalid, NothingToDecompose
from steve.llm.session import TextCallback
from steve.objects.model import ObjectType
from steve.objects.oid import ObjectId
from steve.objects.schemas import PlanManifest, json_schema, validate
from steve.porcelain.freeze import load_draft
from steve.porcelain.modelio import (
    DEFAULT_ROUNDS,
    ModelTarget,
    ask_for_draft,
    dump_yaml,
    provenance,
    schema_without,
    tool_for,
)
from steve.porcelain.records import read_manifest_body
from steve.porcelain.runs import STAGE_OF_KIND, check_transition, find_run, run_manifests
from steve.porcelain.stages import AMEND_IN, Recorded, record
from steve.repo import Repo

__all__ = [
    "PLAN_TOOL",
    "PlanProposal",
    "approve_plan",
    "propose_plan",
    "resolve_names",
    "revise_plan",
]

PLAN_TOOL = "submit_plan"
OWNED = ("amends", "provenance", "research")
MAX_LISTED_PATHS = 200
EDITED_NOTE = "edited by hand after decomposition"

SYSTEM = """\
You are the planner of STEVE.  Decompose the approved design below into a plan: \
a directed acyclic graph of nodes that run in containers.  Each node has an id, a \
kind (run, test, generate or gate), a command (an argv list run in the node's \
work directory, where each input is a directory named after it), its inputs \
(pinned by name from the inputs offered, or {node, output} of an upstream node), \
its declared outputs (relative paths it leaves in its work directory) and \
budgets (time_ms, tokens).  Edges order the nodes.  Use only the images offered, \
by name.  Nodes get no network.  A generate node asks a model to patch its one \
input; give it a description of the change and one output.  test nodes check the \
acceptance criteria and may write a JUnit XML report as a declared output named \
*.xml.  Submit the plan by calling the tool submit_plan exactly once."""


@dataclass(frozen=True, slots=True)
class PlanProposal:
    """A validated plan draft (names resolved to ids) and the exchanges behind it."""

    run_id: str
    draft: dict[str, Any]
    target: ModelTarget
    exchanges: tuple[Any, ...]
    edited: bool = False
    research: ObjectId | None = None  # the run's research the model was given


def resolve_names(
    draft: Mapping[str, Any], images: Mapping[str, str], inputs: Mapping[str, ObjectId]
) -> dict[str, Any]:
    """``draft`` with offered image and input names replaced by their ids (a copy)."""
    out: dict[str, Any] = json.loads(json.dumps(draft))
    nodes = out.get("nodes")
    if not isinstance(nodes, list):
        return out
    only = next(iter(images.values())) if len(images) == 1 else None
    for node in nodes:
        if not isinstance(node, dict):
            continue
        image = node.get("image")
        if image is None and only is not None:
            node["image"] = only
        elif isinstance(image, str) and image in images:
            node["image"] = images[image]
        for inp in node.get("inputs") or []:
            pinned = inp.get("pinned") if isinstance(inp, dict) else None
            if isinstance(pinned, str) and pinned in inputs:
                inp["pinned"] = inputs[pinned].hex
    return out


def _check(
    draft: Mapping[str, Any], images: Mapping[str, str], inputs: Mapping[str, ObjectId]
) -> tuple[PlanManifest, dict[str, Any]]:
    resolved = resolve_names({k: v for k, v in draft.items() if k not in OWNED}, images, inputs)
    body = validate("plan", resolved)
    assert isinstance(body, PlanManifest)
    offered = set(images.values())
    pinned = {oid.hex for oid in inputs.values()}
    problems = []
    for i, node in enumerate(body.nodes):
        if offered and node.image not in offered:
            names = ", ".join(sorted(images))
            problems.append((f"nodes[{i}].image", f"offered: use an offered image ({names})"))
        for j, inp in enumerate(node.inputs):
            if inp.pinned is not None and inp.pinned not in pinned:
                names = ", ".join(sorted(inputs)) or "none"
                problems.append(
                    (f"nodes[{i}].inputs[{j}].pinned", f"offered: pin an offered input ({names})")
                )
    if problems:
        raise ManifestInvalid("plan", problems)
    return body, resolved


def _input_listing(repo: Repo, name: str, oid: ObjectId) -> str:
    if repo.object_type(oid) is not ObjectType.TREE:
        return f"- {name}: a file"
    paths = []
    for n, entry in enumerate(repo.ls_tree(oid, recursive=True)):
        if n == MAX_LISTED_PATHS:
            paths.append(f"  ... (more than {MAX_LISTED_PATHS} files; the rest left out)")
            break
        paths.append(f"  {entry.path}")
    return f"- {name}: a directory with the files\n" + "\n".join(paths)


def _prompt(
    repo: Repo,
    design: Mapping[str, Any],
    research: Mapping[str, Any] | None,
    images: Mapping[str, str],
    inputs: Mapping[str, ObjectId],
    hint: str | None,
) -> str:
    parts = ["The approved design:\n", dump_yaml(dict(design))]
    if research is not None:
        parts += ["\nThe research for it:\n", dump_yaml(dict(research))]
    parts.append("\nImages offered (name the one a node runs in):\n")
    parts += [f"- {name}\n" for name in sorted(images)] or ["- (none)\n"]
    parts.append("\nInputs offered (pin them by name):\n")
    parts += [_input_listing(repo, n, inputs[n]) + "\n" for n in sorted(inputs)] or ["- (none)\n"]
    if hint:
        parts += ["\nThe user adds:\n", hint.strip(), "\n"]
    return "".join(parts)


def _body(repo: Repo, oid: ObjectId, kind: ObjectType) -> dict[str, Any]:
    body = dict(read_manifest_body(repo, oid, kind).body)
    # what the model needs: no provenance ids or approval bookkeeping
    for key in ("provenance", "intake_session_id", "approved_by", "amends"):
        body.pop(key, None)
    return body


def propose_plan(
    repo: Repo,
    target: ModelTarget,
    *,
    images: Mapping[str, str],
    inputs: Mapping[str, ObjectId],
    run_id: str | None = None,
    hint: str | None = None,
    rounds: int = DEFAULT_ROUNDS,
    on_text: TextCallback | None = None,
) -> PlanProposal:
    """Ask the model for a plan of the run's design (see the module docstring)."""
    run = find_run(repo, run_id)
    latest = run_manifests(repo, run.id)
    design = latest.get(ObjectType.DESIGN)
    if design is None:
        raise NothingToDecompose(run.id)
    stage = STAGE_OF_KIND[ObjectType.PLAN]
    if run.stage is not stage and run.stage not in AMEND_IN[ObjectType.PLAN]:
        check_transition(run.id, run.stage, stage)
    research = latest.get(ObjectType.RESEARCH)
    prompt = _prompt(
        repo,
        _body(repo, design, ObjectType.DESIGN),
        None if research is None else _body(repo, research, ObjectType.RESEARCH),
        images,
        inputs,
        hint,
    )
    schema = schema_without(json.loads(json_schema("plan")), OWNED)
    schema.pop("$id", None)
    tool = tool_for(PLAN_TOOL, "Submit the plan (a STEVE plan manifest).", schema)
    got = ask_for_draft(
        target,
        kind="plan",
        system=SYSTEM,
        prompt=prompt,
        tool=tool,
        validate=lambda d: _check(d, images, inputs),
        rounds=rounds,
        run_id=run.id,
        stage=stage.value,
        on_text=on_text,
    )
    _, resolved = got.value
    return PlanProposal(run.id, resolved, target, got.exchanges, research=research)


def revise_plan(
    proposal: PlanProposal,
    edited: bytes,
    *,
    images: Mapping[str, str],
    inputs: Mapping[str, ObjectId],
) -> PlanProposal:
    """The proposal with the user's edit of its YAML (validated the same way; the plan's
    notes then say it was edited by hand).  An unchanged text changes nothing."""
    draft = load_draft(edited, "the edited plan")
    _, resolved = _check(draft, images, inputs)
    if resolved == proposal.draft:
        return proposal
    notes = resolved.get("notes")
    if not (isinstance(notes, str) and EDITED_NOTE in notes):
        resolved["notes"] = f"{notes}\n({EDITED_NOTE})" if notes else f"({EDITED_NOTE})"
    _check(resolved, images, inputs)
    return replace(proposal, draft=resolved, edited=True)


def approve_plan(repo: Repo, proposal: PlanProposal, *, now: int, tz: int, actor: str) -> Recorded:
    """Freeze the approved proposal as the run's plan, with its provenance."""
    draft = {
        **proposal.draft,
        "provenance": provenance(proposal.target, proposal.exchanges).model_dump(),
    }
    if proposal.research is not None:  # the plan names the research it used
        draft["research"] = proposal.research.hex
    return record(repo, "plan", draft, run_id=proposal.run_id, now=now, tz=tz, actor=actor)


def render_plan(proposal: PlanProposal) -> str:
    """The plan draft as YAML (what the user reviews and edits)."""
    return dump_yaml(proposal.draft)
