"""Hypothesis strategies for valid manifest drafts, plus a pool of stored blobs.

Drafts reference objects only from :data:`POOL` (blobs whose ids are known
in advance); tests write the pool into each repository with
:func:`write_pool` so that freeze's existence checks pass.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from steve.objects.model import Blob, hash_object
from steve.repo import Repo

POOL_DATA = [f"pool blob {i}".encode() for i in range(8)]
POOL = [hash_object(Blob(d))[0].hex for d in POOL_DATA]
DIGEST = "registry.example/tool@sha256:" + "ab" * 32


def write_pool(repo: Repo) -> None:
    with repo.writer() as w:
        for d in POOL_DATA:
            w.add(Blob(d))


text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)
name = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=20)
stamp = st.integers(0, 2**40)
pool_id = st.sampled_from(POOL)


def _ids(prefix: str, n: int) -> st.SearchStrategy[list[str]]:
    return st.lists(st.integers(1, 9999), min_size=n, max_size=n, unique=True).map(
        lambda xs: [f"{prefix}-{x:03d}" for x in xs]
    )


@st.composite
def design_drafts(draw: st.DrawFn) -> dict[str, Any]:
    n_ac, n_c, n_rq = draw(st.integers(0, 4)), draw(st.integers(0, 5)), draw(st.integers(0, 3))
    ac_ids, c_ids, rq_ids = draw(_ids("AC", n_ac)), draw(_ids("C", n_c)), draw(_ids("RQ", n_rq))
    constraints = [
        {
            "id": cid,
            "type": draw(
                st.sampled_from(["Functional", "Performance", "Security", "Legal", "Resource"])
            ),
            "description": draw(name),
            "hard": draw(st.booleans()),
        }
        for cid in c_ids
    ]
    hard = [c["id"] for c in constraints if c["hard"]]
    axioms = draw(st.lists(st.sampled_from(hard), unique=True)) if hard else []
    approved = draw(st.booleans())
    draft: dict[str, Any] = {
        "project_id": draw(name),
        "name": draw(name),
        "created_at": draw(stamp),
        "intent": {
            "summary": draw(name),
            "user_stories": draw(
                st.lists(st.fixed_dictionaries({"role": name, "want": text}), max_size=2)
            ),
        },
        "acceptance_criteria": [
            {"id": a, "description": draw(name), "testable": draw(st.booleans())} for a in ac_ids
        ],
        "constraints": constraints,
        "axioms": axioms,
        "research_questions": [
            {
                "id": q,
                "question": draw(name),
                "priority": draw(st.sampled_from(["Must", "Should", "Could"])),
            }
            for q in rq_ids
        ],
        "human_approved": approved,
    }
    if approved:
        draft["approval_timestamp"] = draw(stamp)
    if draw(st.booleans()):
        draft["intent"]["detailed"] = draw(text)
    if draw(st.booleans()):
        draft["interfaces"] = [{"name": "cli", "type": "CLI", "schema": draw(text)}]
        draft["declared_dependencies"] = [{"name": "click", "rationale": draw(text)}]
    return draft


@st.composite
def research_drafts(draw: st.DrawFn) -> dict[str, Any]:
    n_s = draw(st.integers(0, 4))
    s_ids = draw(_ids("S", n_s))
    q_ids = draw(_ids("RQ", draw(st.integers(0, 3))))
    sources = [
        {
            "id": s,
            "uri": f"https://example.org/{i}",
            "retrieved_at": draw(stamp),
            "content": draw(pool_id),
            "media_type": draw(st.sampled_from(["text/html", "application/pdf", "text/plain"])),
        }
        for i, s in enumerate(s_ids)
    ]
    draft: dict[str, Any] = {
        "title": draw(name),
        "questions": [
            {"id": q, "question": draw(name), "status": "answered", "answer": draw(name)}
            for q in q_ids
        ],
        "sources": sources,
    }
    if s_ids:
        excerpts = [
            {"id": f"E-{i + 1:03d}", "source": draw(st.sampled_from(s_ids)), "text": draw(name)}
            for i in range(draw(st.integers(1, 3)))
        ]
        draft["excerpts"] = excerpts
        asked = draw(st.lists(st.sampled_from(q_ids), unique=True)) if q_ids else []
        summaries = [{"question": q} for q in asked] or [{} for _ in range(draw(st.integers(0, 2)))]
        for summary in summaries:
            cited = draw(st.lists(st.sampled_from(excerpts), min_size=1, max_size=3))
            summary["claims"] = [
                {
                    "text": draw(name),
                    "cites": [{"excerpt": e["id"], "quote": e["text"]} for e in cited],
                }
            ]
        draft["summaries"] = summaries
    return draft


@st.composite
def plan_drafts(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(1, 6))
    ids = [f"n{i}" for i in range(n)]
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    chosen = draw(st.lists(st.sampled_from(pairs), unique=True, max_size=8)) if pairs else []
    chosen = sorted(chosen)
    ancestors: dict[int, set[int]] = {i: set() for i in range(n)}
    for i, j in chosen:  # i < j, sorted by i: ancestors of i are final before use
        ancestors[j] |= ancestors[i] | {i}
    nodes = []
    for i in range(n):
        inputs = []
        for k in range(draw(st.integers(0, 2))):
            if ancestors[i] and draw(st.booleans()):
                src = draw(st.sampled_from(sorted(ancestors[i])))
                inputs.append({"name": f"in{k}", "node": ids[src], "output": "out"})
            else:
                inputs.append({"name": f"in{k}", "pinned": draw(pool_id)})
        nodes.append(
            {
                "id": ids[i],
                "kind": draw(st.sampled_from(["run", "test", "generate", "gate"])),
                "command": draw(st.lists(name, min_size=1, max_size=3)),
                "image": DIGEST,
                "env": draw(st.dictionaries(st.sampled_from(["A", "B", "PATH"]), text, max_size=2)),
                "inputs": inputs,
                "outputs": ["out"],
                "network": draw(st.booleans()),
                "budgets": {
                    "tokens": draw(st.integers(0, 10**6)),
                    "time_ms": draw(st.integers(0, 10**7)),
                },
            }
        )
    return {
        "title": draw(name),
        "nodes": nodes,
        "edges": [{"from_node": ids[i], "to_node": ids[j]} for i, j in chosen],
        # a node asking for network needs an explicit grant (steve.exec policy)
        "grants": [
            {"node": n["id"], "capability": "network", "reason": "fetches sources"}
            for n in nodes
            if n["network"]
        ],
        "policies": [{"name": "network", "value": draw(st.sampled_from(["deny", 1, True]))}],
        "environment": {"python": "3.12.4"},
    }


DRAFTS = {"design": design_drafts(), "research": research_drafts(), "plan": plan_drafts()}
any_draft = st.sampled_from(sorted(DRAFTS)).flatmap(lambda k: DRAFTS[k].map(lambda d, k=k: (k, d)))

# JSON/YAML-like garbage, floats included.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | text,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(text, children, max_size=3),
    max_leaves=12,
)
