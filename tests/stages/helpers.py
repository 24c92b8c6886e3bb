"""Making runs with plans for the build tests."""

from __future__ import annotations

from typing import Any

from steve.objects.oid import ObjectId
from steve.porcelain import runs, stages
from steve.porcelain.runs import Stage
from steve.repo import Repo

T0 = 1_700_000_000
IMAGE = "sha256:" + "ab" * 32


def node(
    nid: str,
    *,
    kind: str = "run",
    command: list[str] | None = None,
    inputs: list[dict[str, Any]] | None = None,
    outputs: list[str] | None = None,
    image: str = IMAGE,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "id": nid,
        "kind": kind,
        "command": command or ["sh", "-c", f"echo {nid}"],
        "image": image,
        "inputs": inputs or [],
        "outputs": outputs or [],
        **extra,
    }


def from_node(name: str, nid: str, output: str) -> dict[str, Any]:
    return {"name": name, "node": nid, "output": output}


def pinned(name: str, oid: ObjectId) -> dict[str, Any]:
    return {"name": name, "pinned": oid.hex}


def plan_draft(nodes: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """A plan draft; an edge is added for every input produced by another node."""
    edges = [
        {"from_node": i["node"], "to_node": n["id"]}
        for n in nodes
        for i in n.get("inputs", [])
        if "node" in i
    ]
    return {"title": "test plan", "nodes": nodes, "edges": edges, **extra}


def run_with_plan(repo: Repo, draft: dict[str, Any], name: str = "r") -> tuple[str, ObjectId]:
    """A new current run in PLAN with ``draft`` frozen as its plan."""
    run = runs.new_run(repo, name=name, now=T0, actor="t")
    runs.goto(repo, run.id, Stage.RESEARCH, now=T0, actor="t")
    runs.goto(repo, run.id, Stage.PLAN, now=T0, actor="t")
    rec = stages.record(repo, "plan", draft, run_id=run.id, now=T0, tz=0, actor="t")
    return run.id, rec.oid


def chain_plan(src: ObjectId, *, check: str = "ok") -> dict[str, Any]:
    """gen (pinned src) -> asm (gen's out) -> check (test, asm's out, junit.xml)."""
    return plan_draft(
        [
            node("gen", inputs=[pinned("src", src)], outputs=["out"]),
            node("asm", inputs=[from_node("in", "gen", "out")], outputs=["bin"]),
            node(
                "check",
                kind="test",
                command=["sh", "-c", check],
                inputs=[from_node("bin", "asm", "bin")],
                outputs=["junit.xml"],
            ),
        ]
    )
