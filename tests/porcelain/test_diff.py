"""Field-level diffs of manifests, by path."""

from __future__ import annotations

from pathlib import Path

import pytest

from steve.errors import WrongObjectType
from steve.objects.model import Mode
from steve.porcelain.diff import Change, FieldChange, TreeChange, _path_key, diff, flatten
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
    assert [str(c) for c in got] == [  # the body first, the envelope after
        f'~ amends: null -> "{a.hex}"',
        '+ axioms[1]: "C-002"',
        "~ constraints[C-002].hard: false -> true",
        '~ intent.detailed: null -> "more"',
        "~ envelope.frozen_at: 100 -> 200",
        "- envelope.links: []",
        f'+ envelope.links[0]: "{a.hex}"',
        "- envelope.parents: []",
        f'+ envelope.parents[0]: "{a.hex}"',
    ]
    assert [c.section for c in got] == ["body"] * 4 + ["envelope"] * 5
    assert diff(repo, a, b, envelope=False) == got[:4]
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
    assert [c.path for c in diff(repo, a, b)] == [
        "constraints[C-002].hard",
        "constraints[C-011].hard",
    ]
    assert _path_key("x[10]") > _path_key("x[9]")  # positions sort numerically


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


def test_items_with_ids_are_keyed_by_id_not_position() -> None:
    """Inserting a criterion in the middle is one added item, not every later one changed."""
    repo = Repo.memory()
    ac = [{"id": f"AC-00{i}", "description": f"c{i}", "testable": True} for i in (1, 2, 3)]
    a = freeze(repo, "design", {**DESIGN, "acceptance_criteria": [ac[0], ac[2]]}, now=1, tz=0)
    b = freeze(repo, "design", {**DESIGN, "acceptance_criteria": ac}, now=1, tz=0)
    got = [str(c) for c in diff(repo, a, b)]
    assert got == [
        '+ acceptance_criteria[AC-002].description: "c2"',
        '+ acceptance_criteria[AC-002].id: "AC-002"',
        "+ acceptance_criteria[AC-002].testable: true",
        "+ acceptance_criteria[AC-002].verification_hint: null",
    ]
    # items without distinct ids stay positional
    assert [p for p, _ in flatten({"x": [{"id": "a"}, {"id": "a"}]})] == ["x[0].id", "x[1].id"]
    assert [p for p, _ in flatten({"x": [{"id": "a]b"}]})] == ["x[0].id"]


def test_tree_diff_lists_added_removed_and_changed_paths(tmp_path: Path) -> None:
    repo = Repo.memory()
    one, two = tmp_path / "one", tmp_path / "two"
    for root in (one, two):
        (root / "src" / "deep").mkdir(parents=True)
        (root / "same.txt").write_text("same\n")
        (root / "src" / "deep" / "keep.py").write_text("keep\n")
    (one / "gone.txt").write_text("bye\n")
    (one / "src" / "main.py").write_text("v1\n")
    (two / "src" / "main.py").write_text("v2\n")
    (two / "src" / "deep" / "new.py").write_text("new\n")
    (one / "becomes_dir").write_text("file\n")
    (two / "becomes_dir").mkdir()
    (two / "becomes_dir" / "inner").write_text("x\n")
    (two / "run.sh").write_text("#!/bin/sh\n")
    (two / "run.sh").chmod(0o755)
    (one / "run.sh").write_text("#!/bin/sh\n")
    a, b = repo.write_tree(one), repo.write_tree(two)
    got = diff(repo, a, b)
    assert all(isinstance(c, TreeChange) for c in got)
    assert [(c.change.value, c.path) for c in got] == [
        ("-", "becomes_dir"),
        ("+", "becomes_dir/inner"),
        ("-", "gone.txt"),
        ("~", "run.sh"),
        ("+", "src/deep/new.py"),
        ("~", "src/main.py"),
    ]
    mode_change = next(c for c in got if c.path == "run.sh")
    assert mode_change.new is not None and mode_change.new.mode is Mode.EXECUTABLE
    assert str(mode_change).startswith("~ run.sh (100644 -> 100755, ")
    assert diff(repo, a, a) == []
    assert [(c.change.value, c.path) for c in diff(repo, b, a)][:2] == [
        ("+", "becomes_dir"),
        ("-", "becomes_dir/inner"),
    ]
    design = freeze(repo, "design", DESIGN, now=1, tz=0)
    with pytest.raises(WrongObjectType):
        diff(repo, a, design)
