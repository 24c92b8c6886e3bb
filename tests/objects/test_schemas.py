"""Manifest schemas: valid drafts validate to CBOR-model bodies; malformed drafts are
rejected with a field path and a rule (ManifestInvalid), never another exception."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from steve.errors import ManifestInvalid
from steve.objects import cbor
from steve.objects.schemas import SCHEMAS, DeployReceipt, json_schema, read_body, validate
from tests.porcelain.strategies import (
    DIGEST,
    POOL,
    any_draft,
    design_drafts,
    json_values,
    plan_drafts,
)


def _no_floats(value: Any) -> bool:
    if isinstance(value, float):
        return False
    if isinstance(value, dict):
        return all(_no_floats(v) for v in value.values())
    if isinstance(value, list):
        return all(_no_floats(v) for v in value)
    return True


def paths(exc: ManifestInvalid) -> list[str]:
    return [p for p, _ in exc.problems]


def rules(exc: ManifestInvalid) -> str:
    return " ".join(r for _, r in exc.problems)


@given(any_draft)
def test_valid_drafts_validate_to_cbor_bodies(kd: tuple[str, dict[str, Any]]) -> None:
    kind, draft = kd
    body = validate(kind, draft).model_dump(mode="python", by_alias=True)
    assert _no_floats(body)
    data = cbor.encode(body)
    assert cbor.decode(data) == body
    # the stored body is itself a valid draft of the same kind, and a fixed point
    again = validate(kind, body).model_dump(mode="python", by_alias=True)
    assert again == body


DESIGN = {
    "project_id": "p",
    "name": "n",
    "created_at": 1,
    "intent": {"summary": "s"},
    "constraints": [
        {"id": "C-001", "type": "Security", "description": "d", "hard": True},
        {"id": "C-002", "type": "Legal", "description": "d", "hard": False},
    ],
    "axioms": ["C-001"],
    "human_approved": False,
}


def _mutated(path: list[Any], value: Any, base: dict[str, Any] = DESIGN) -> dict[str, Any]:
    draft = copy.deepcopy(base)
    target: Any = draft
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return draft


@pytest.mark.parametrize(
    ("path", "value", "where", "rule"),
    [
        (["constraints", 1, "hard"], "yes", "constraints[1].hard", "bool_type"),
        (["constraints", 1, "hard"], 1, "constraints[1].hard", "bool_type"),
        (["created_at"], 1.0, "created_at", "int_type"),
        (["created_at"], "1", "created_at", "int_type"),
        (["created_at"], -1, "created_at", "greater_than_equal"),
        (["name"], KeyError, "name", "missing"),
        (["intent", "summary"], KeyError, "intent.summary", "missing"),
        (["constraints", 0, "id"], "C1", "constraints[0].id", "string_pattern_mismatch"),
        (["constraints", 0, "type"], "Vibes", "constraints[0].type", "literal_error"),
        (["axioms"], ["C-002"], "axioms[0]", "axiom_hard"),
        (["axioms"], ["C-009"], "axioms[0]", "axiom_reference"),
        (["axioms"], ["C-001", "C-001"], "axioms[1]", "unique"),
        (["constraints", 1, "id"], "C-001", "constraints[1].id", "unique"),
        (["human_approved"], True, "approval_timestamp", "required"),
        (["surprise"], 1, "surprise", "extra_forbidden"),
        (["intent", "summary"], "\ud800", "intent.summary", "string_unicode"),
    ],
)
def test_design_rules_name_path_and_rule(
    path: list[Any], value: Any, where: str, rule: str
) -> None:
    with pytest.raises(ManifestInvalid) as info:
        validate("design", _mutated(path, value))
    assert where in paths(info.value), info.value.problems
    assert rule in rules(info.value), info.value.problems
    assert info.value.code == "STEVE-MANIFEST-001"
    assert info.value.exit_code == 6


PLAN = {
    "title": "t",
    "nodes": [
        {"id": "a", "kind": "run", "command": ["make"], "image": DIGEST, "outputs": ["bin"]},
        {
            "id": "b",
            "kind": "test",
            "command": ["test"],
            "image": DIGEST,
            "inputs": [{"name": "x", "node": "a", "output": "bin"}],
        },
    ],
    "edges": [{"from_node": "a", "to_node": "b"}],
}


@pytest.mark.parametrize(
    ("path", "value", "where", "rule"),
    [
        (
            ["edges"],
            [{"from_node": "a", "to_node": "b"}, {"from_node": "b", "to_node": "a"}],
            "edges",
            "acyclic",
        ),
        (["edges"], [{"from_node": "a", "to_node": "a"}], "edges[0]", "acyclic"),
        (["edges"], [{"from_node": "a", "to_node": "zz"}], "edges[0].to_node", "edge_node"),
        (["edges"], [], "nodes[1].inputs[0].node", "upstream"),
        (["nodes", 1, "id"], "a", "nodes[1].id", "unique"),
        (["nodes", 0, "image"], "tool:latest", "nodes[0].image", "string_pattern_mismatch"),
        (["nodes", 0, "image"], "sha256:" + "A" * 64, "nodes[0].image", "string_pattern_mismatch"),
        (
            ["nodes", 1, "inputs", 0, "output"],
            "lib",
            "nodes[1].inputs[0].output",
            "declared_output",
        ),
        (["nodes", 1, "inputs", 0, "pinned"], POOL[0], "nodes[1].inputs[0]", "input_source"),
        (["nodes", 0, "budgets"], {"time_ms": 1.5}, "nodes[0].budgets.time_ms", "int_type"),
        (["nodes"], [], "nodes", "too_short"),
    ],
)
def test_plan_rules_name_path_and_rule(path: list[Any], value: Any, where: str, rule: str) -> None:
    with pytest.raises(ManifestInvalid) as info:
        validate("plan", _mutated(path, value, PLAN))
    assert where in paths(info.value), info.value.problems
    assert rule in rules(info.value), info.value.problems


def test_three_node_cycle_is_named() -> None:
    draft = _mutated(
        ["nodes"], [*PLAN["nodes"], {**PLAN["nodes"][0], "id": "c", "outputs": []}], PLAN
    )
    draft["edges"] = [
        {"from_node": "a", "to_node": "b"},
        {"from_node": "b", "to_node": "c"},
        {"from_node": "c", "to_node": "b"},
    ]
    with pytest.raises(ManifestInvalid) as info:
        validate("plan", draft)
    assert info.value.problems == [("edges", "acyclic: the graph has a cycle through b, c")]


RESEARCH = {
    "title": "r",
    "sources": [
        {
            "id": "S-001",
            "uri": "https://x",
            "retrieved_at": 1,
            "content": POOL[0],
            "media_type": "text/html",
        }
    ],
    "excerpts": [{"id": "E-001", "source": "S-001", "text": "a quote"}],
    "summaries": [{"claims": [{"text": "s", "cites": [{"excerpt": "E-001", "quote": "quote"}]}]}],
}


@pytest.mark.parametrize(
    ("path", "value", "where", "rule"),
    [
        (
            ["summaries", 0, "claims", 0, "cites"],
            [{"excerpt": "E-002", "quote": "q"}],
            "summaries[0].claims[0].cites[0]",
            "citation",
        ),
        (
            ["summaries", 0, "claims", 0, "cites"],
            [{"excerpt": "E-001", "quote": "not there"}],
            "summaries[0].claims[0].cites[0].quote",
            "citation",
        ),
        (["summaries", 0, "claims", 0, "cites"], [], "summaries[0].claims[0].cites", "citation"),
        (["summaries", 0, "claims"], [], "summaries[0].claims", "too_short"),
        (
            ["excerpts", 0, "locator"],
            {"start": 0, "end": 3},
            "excerpts[0].locator",
            "locator",
        ),
        (["excerpts", 0, "id"], "X-1", "excerpts[0].id", "string_pattern_mismatch"),
        (["excerpts", 0, "source"], "S-009", "excerpts[0].source", "citation"),
        (["excerpts", 0, "text"], "x" * 2001, "excerpts[0].text", "string_too_long"),
        (["sources", 0, "content"], "ABC", "sources[0].content", "string_pattern_mismatch"),
        (["sources", 0, "retrieved_at"], 1.0, "sources[0].retrieved_at", "int_type"),
    ],
)
def test_research_rules_name_path_and_rule(
    path: list[Any], value: Any, where: str, rule: str
) -> None:
    with pytest.raises(ManifestInvalid) as info:
        validate("research", _mutated(path, value, RESEARCH))
    assert where in paths(info.value), info.value.problems
    assert rule in rules(info.value), info.value.problems


def test_receipts_rules() -> None:
    cert = {"verdict": "fail", "policy": {"checked": 1, "passed": 1}}
    with pytest.raises(ManifestInvalid) as info:
        validate("test_certificate", cert)
    assert ("failures", "required: a failing certificate lists its failures") in info.value.problems
    failure = {"classification": "TestError.Timeout", "message": "slow"}
    with pytest.raises(ManifestInvalid) as info:
        validate("test_certificate", {**cert, "verdict": "pass", "failures": [failure]})
    assert paths(info.value) == ["override"]
    ok = validate(
        "test_certificate",
        {
            **cert,
            "verdict": "pass",
            "failures": [failure],
            "override": {"who": "me", "why": "flaky", "at": 5},
        },
    )
    assert ok.model_dump()["override"]["who"] == "me"
    with pytest.raises(ManifestInvalid) as info:
        validate("test_certificate", {**cert, "failures": [{**failure, "classification": "Oops"}]})
    assert paths(info.value) == ["failures[0].classification"]
    build = {
        "plan": POOL[0],
        "node": "a",
        "action_key": POOL[1],
        "image": DIGEST,
        "command": ["make"],
        "exit_status": 0,
        "started_at": 10,
        "finished_at": 9,
    }
    with pytest.raises(ManifestInvalid) as info:
        validate("build_receipt", build)
    assert paths(info.value) == ["finished_at"]
    deploy = {
        "certificate": POOL[0],
        "artifacts": [POOL[1]],
        "target": "prod",
        "dry_run_preview": POOL[2],
        "decision": {"decision": "approved", "via": "prompt", "actor": "me", "decided_at": 3},
    }
    assert validate("deploy_receipt", deploy).model_dump()["target"] == "prod"
    # a v1 receipt (no `via`) is still read, upgraded to the current model
    v1 = {**deploy, "decision": {"decision": "denied", "actor": "me", "decided_at": 3}}
    upgraded = read_body("deploy_receipt", 1, v1)
    assert isinstance(upgraded, DeployReceipt) and upgraded.decision.via == "prompt"
    # v2 rules: no certificate needs an override; nothing written unless approved
    with pytest.raises(ManifestInvalid) as info:
        validate("deploy_receipt", {**deploy, "certificate": None})
    assert paths(info.value) == ["override"]


@given(st.sampled_from(sorted(k.value for k in SCHEMAS)), json_values)
@example("design", {"project_id": 1.5})
@example("plan", {"nodes": [{"id": "a"}], "edges": [{"from_node": "a"}]})
@example("design", ["not", "a", "map"])
def test_garbage_is_rejected_with_typed_error_only(kind: str, value: Any) -> None:
    try:
        validate(kind, value)
    except ManifestInvalid as exc:
        assert exc.problems
        assert all(isinstance(p, str) and isinstance(r, str) and r for p, r in exc.problems)


@given(design_drafts(), st.data())
def test_any_float_anywhere_is_rejected(draft: dict[str, Any], data: st.DataObject) -> None:
    key = data.draw(st.sampled_from(sorted(draft)))
    draft[key] = 1.5
    with pytest.raises(ManifestInvalid) as info:
        validate("design", draft)
    assert any(p == key or p.startswith(key) for p in paths(info.value))


@given(plan_drafts())
def test_plan_drafts_survive_edge_reversal_only_if_acyclic(draft: dict[str, Any]) -> None:
    if not draft["edges"]:
        return
    e = draft["edges"][0]
    draft["edges"].append({"from_node": e["to_node"], "to_node": e["from_node"]})
    with pytest.raises(ManifestInvalid) as info:
        validate("plan", draft)
    assert "acyclic" in rules(info.value)


@pytest.mark.parametrize("kind", sorted(k.value for k in SCHEMAS))
def test_json_schema_is_json(kind: str) -> None:
    schema = json.loads(json_schema(kind))
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    # build receipts label their logs (v2); deploy receipts record the host decision (v2);
    # research cites excerpts by id with locators (v2)
    version = 2 if kind in ("build_receipt", "deploy_receipt", "research") else 1
    assert schema["$id"] == f"steve:{kind}/v{version}"


def test_plumbing_does_not_import_pydantic() -> None:
    code = "import sys, steve.objects, steve.repo, steve.cli.main; print('pydantic' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "False"


# --- validation output (issue 11 item 10) ------------------------------------------------


def test_field_errors_do_not_hide_cross_field_errors() -> None:
    """One round reports both: a broken field and an axiom naming no constraint."""
    draft = _mutated(["created_at"], "yesterday")
    draft["axioms"] = ["C-009"]
    draft["constraints"][1]["description"] = 7  # a broken item still takes part in checks
    draft["constraints"].append({"id": "C-001", "type": "Legal", "description": "d", "hard": 1})
    with pytest.raises(ManifestInvalid) as info:
        validate("design", draft)
    got = paths(info.value)
    assert "created_at" in got and "constraints[1].description" in got
    assert "constraints[2].hard" in got
    assert "axioms[0]" in got, info.value.problems  # cross-field, despite the field errors
    assert "constraints[2].id" in got, info.value.problems  # unique, at its own index
    # a cross-field rule never repeats a path a field error already names
    assert len(got) == len(set(got))


def test_one_problem_per_line_in_the_detail() -> None:
    draft = _mutated(["created_at"], "x")
    draft["name"] = 5
    with pytest.raises(ManifestInvalid) as info:
        validate("design", draft)
    lines = info.value.detail.splitlines()
    assert len(lines) == 2 and "; " not in info.value.detail
    assert lines[0].startswith("name: ") and lines[1].startswith("created_at: ")


@pytest.mark.parametrize(
    ("path", "value", "where", "hint"),
    [
        (["human_aproved"], True, "human_aproved", "did you mean 'human_approved'?"),
        (["constraints", 0, "hrad"], True, "constraints[0].hrad", "did you mean 'hard'?"),
        (["constraints", 0, "type"], "Secutiry", "constraints[0].type", "did you mean 'Security'?"),
        (["intent", "sumary"], "s", "intent.sumary", "did you mean 'summary'?"),
    ],
)
def test_unknown_fields_and_enum_values_suggest_the_near_name(
    path: list[Any], value: Any, where: str, hint: str
) -> None:
    with pytest.raises(ManifestInvalid) as info:
        validate("design", _mutated(path, value))
    rule = dict(info.value.problems)[where]
    assert rule.endswith(hint), info.value.problems


def test_a_date_for_an_integer_time_says_unix_seconds() -> None:
    import datetime

    for value, seconds in (
        ("2024-01-01T00:00:00Z", 1704067200),
        (datetime.date(2024, 1, 1), 1704067200),  # YAML's own date type
        (datetime.datetime(2024, 1, 1, 1, 0, tzinfo=datetime.UTC), 1704070800),
    ):
        with pytest.raises(ManifestInvalid) as info:
            validate("design", _mutated(["created_at"], value))
        rule = dict(info.value.problems)["created_at"]
        assert "unix seconds" in rule and f"write {seconds}" in rule, rule
    with pytest.raises(ManifestInvalid) as info:
        validate("design", _mutated(["created_at"], "soon"))
    assert "unix seconds" in dict(info.value.problems)["created_at"]
