"""Field-level diffs of manifests, by path."""

from __future__ import annotations

import pytest

from steve.errors import WrongObjectType
from steve.porcelain.diff import Change, FieldChange, diff, flatten
from steve.porcelain.freeze import freeze
from steve.repo import Repo

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


def test_diff_names_changed_added_and_removed_paths() -> None:
    repo = Repo.memory()
    a = freeze(repo, "design", DESIGN, now=100, tz=0)
    changed = {
        **DESIGN,
        "constraints": [DESIGN["constraints"][0], {**DESIGN["constraints"][1], "hard": True}],
        "axioms": ["C-001", "C-002"],
        "intent": {"summary": "s", "detailed": "more"},
    }
    b = freeze(repo, "design", changed, amends=a, now=200, tz=0)
    got = diff(repo, a, b)
    assert [str(c) for c in got] == [
        "~ envelope.frozen_at: 100 -> 200",
        "- envelope.links: []",
        f'+ envelope.links[0]: "{a.hex}"',
        "- envelope.parents: []",
        f'+ envelope.parents[0]: "{a.hex}"',
        f'~ amends: null -> "{a.hex}"',
        '+ axioms[1]: "C-002"',
        "~ constraints[1].hard: false -> true",
        '~ intent.detailed: null -> "more"',
    ]
    assert diff(repo, a, a) == []
    assert FieldChange("x", Change.REMOVED, old=1).__str__() == "- x: 1"


def test_list_indexes_sort_numerically() -> None:
    repo = Repo.memory()
    many = {
        **DESIGN,
        "axioms": [],
        "constraints": [
            {"id": f"C-{i:03d}", "type": "Legal", "description": "d", "hard": False}
            for i in range(12)
        ],
    }
    a = freeze(repo, "design", many, now=1, tz=0)
    many2 = {
        **many,
        "constraints": [*many["constraints"][:11], {**many["constraints"][11], "hard": True}],
    }
    many2["constraints"][2] = {**many["constraints"][2], "hard": True}
    b = freeze(repo, "design", many2, now=1, tz=0)
    assert [c.path for c in diff(repo, a, b)] == ["constraints[2].hard", "constraints[11].hard"]


def test_kinds_must_match() -> None:
    repo = Repo.memory()
    a = freeze(repo, "design", DESIGN, now=1, tz=0)
    r = freeze(repo, "research", {"title": "t"}, now=1, tz=0)
    with pytest.raises(WrongObjectType):
        diff(repo, a, r)


def test_flatten_keeps_empty_containers_as_leaves() -> None:
    assert list(flatten({"a": [], "b": {"c": [1, {}]}})) == [
        ("a", []),
        ("b.c[0]", 1),
        ("b.c[1]", {}),
    ]
