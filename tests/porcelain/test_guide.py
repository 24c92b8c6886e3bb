"""The guided first run's steps as data (steve/porcelain/guide.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from steve.objects.model import ObjectType
from steve.porcelain import guide
from steve.porcelain.guide import Facts
from steve.porcelain.runs import Stage, new_run
from steve.repo import Repo

WORDS = re.compile(r"\b(dag|manifests?|receipts?)\b", re.IGNORECASE)
KEYS = [
    "init", "describe", "run", "switch", "design", "research", "example", "image",
    "snapshot", "planfile", "plan", "build", "test",
]  # fmt: skip


def test_steps_in_order_and_plain_words_until_asked() -> None:
    steps = guide.guide_steps()
    assert [s.key for s in steps] == KEYS
    for s in steps:
        assert not WORDS.search(s.title + s.explain), s.key  # never before asked
        assert s.more and s.explain and s.title
    # the longer answers are where the words are explained
    assert any(WORDS.search(s.more) for s in steps)
    words = {w for w, _ in guide.GLOSSARY}
    assert set(guide.TERMS) <= words


def test_commands_are_ordinary_steve_commands() -> None:
    steps = {s.key: s for s in guide.guide_steps()}
    assert steps["init"].command({}) == ("init", ".")
    assert steps["design"].command({}) == ("design", "design.yaml")
    assert steps["image"].capture == "image" and steps["snapshot"].capture == "src"
    assert steps["plan"].command({}) == ("plan", "example/plan.yaml")
    tag = guide.image_tag(Path("/home/ada/hello"))
    assert re.fullmatch(r"steve-first-steps:[0-9a-f]{8}", tag)
    assert tag != guide.image_tag(Path("/home/ada/other"))
    assert steps["image"].command({"tag": tag})[-2:] == (tag, "--no-sign")
    intake = {s.key: s for s in guide.guide_steps(intake="a word tool", yes=True)}
    assert intake["design"].command({}) == ("design", "--intake", "a word tool", "--yes")
    assert intake["describe"].files == ()
    lines = guide.commands_to_type(guide.guide_steps())
    assert lines[0] == "steve init ."
    assert "steve write-tree example/src" in lines
    assert lines[-2:] == ["steve build", "steve test"]
    assert "# write example/plan.yaml" in lines
    assert not any("switch" in line for line in lines)


def _facts(**kw: object) -> Facts:
    return Facts(Path("/nowhere"), **kw)  # type: ignore[arg-type]


def _todo(facts: Facts, **kw: object) -> list[str]:
    return [s.key for s in guide.pending(guide.guide_steps(**kw), facts)]  # type: ignore[arg-type]


def test_pending_follows_what_exists() -> None:
    assert _todo(_facts()) == KEYS
    assert _todo(_facts(has_repo=True))[0] == "describe"
    design = frozenset({"design.yaml"})
    assert _todo(_facts(has_repo=True, files=design))[0] == "run"
    # with a model the questions are asked again until the design is recorded
    assert _todo(_facts(has_repo=True, files=design), intake="x")[0] == "describe"
    run = {"has_repo": True, "files": design, "run_id": "R", "stage": Stage.DESIGN}
    assert _todo(_facts(**run))[0] == "switch"  # another run is current
    assert _todo(_facts(**run, current=True))[0] == "design"
    kinds = frozenset({ObjectType.DESIGN})
    after = {**run, "current": True, "kinds": kinds}
    assert _todo(_facts(**after))[0] == "research"
    research = {**after, "stage": Stage.RESEARCH}
    assert _todo(_facts(**research))[0] == "example"
    example = frozenset(
        {"example/src/words.txt", "example/image/Dockerfile", "example/image/busybox"}
    )
    assert _todo(_facts(**{**research, "files": design | example}))[0] == "image"
    planned = {**research, "files": design | {"example/plan.yaml"}}
    assert _todo(_facts(**planned))[0] == "plan"  # the ids are in the file already
    kinds = frozenset({ObjectType.DESIGN, ObjectType.PLAN, ObjectType.BUILD_RECEIPT})
    built = {**planned, "stage": Stage.BUILD, "kinds": kinds}
    assert _todo(_facts(**built)) == ["test"]
    assert _todo(_facts(**built, verdict="fail")) == ["test"]
    assert _todo(_facts(**built, verdict="pass")) == []


def test_design_from_plain_words_is_valid_once_approved() -> None:
    text = guide.design_yaml("A tool: it greets", ("It says hello.", "It exits 0."), now=1700000000)
    assert "human_approved: false" in text and text.startswith("#")
    assert not WORDS.search(text)
    approved = guide.approve_design_yaml(text, now=1700000100)
    assert guide.design_problems(approved) == []
    assert approved.count("human_approved") == 1
    assert "approval_timestamp: 1700000100" in approved
    assert "AC-002" in approved and "It exits 0." in approved
    again = guide.approve_design_yaml(approved, now=1700000200)  # approving twice: one approval
    assert again.count("approval_timestamp") == 1
    assert guide.design_problems("name: [unclosed")
    assert guide.design_problems("- a list\n")
    assert any("summary" in p or "intent" in p for p in guide.design_problems("name: x\n"))


def test_intake_text_carries_the_checks() -> None:
    assert guide.intake_text(" A tool ", ("a", "b")) == "A tool\nIt works when:\n- a\n- b"
    assert guide.intake_text("A tool", ()) == "A tool"


def test_example_files_and_atomic_writes(tmp_path: Path) -> None:
    steps = {s.key: s for s in guide.guide_steps()}
    fake = tmp_path / "busybox"
    fake.write_bytes(b"\x7fELF")
    files = guide.example_files(steps["example"], {}, busybox=fake)
    assert set(files) == set(steps["example"].files)
    assert files["example/image/busybox"] == (b"\x7fELF", 0o755)
    assert b"FROM scratch" in files["example/image/Dockerfile"][0]
    plan = guide.example_files(steps["planfile"], {"image": "sha256:" + "a" * 64, "src": "b" * 64})
    text = plan["example/plan.yaml"][0].decode()
    assert f'image: "sha256:{"a" * 64}"' in text and f'pinned: "{"b" * 64}"' in text
    with pytest.raises(KeyError):
        guide.example_files(steps["planfile"], {})
    root = tmp_path / "proj"
    path = guide.write_new_file(root, "example/image/busybox", b"x", 0o755)
    assert path.read_bytes() == b"x" and path.stat().st_mode & 0o777 == 0o755
    assert sorted(p.name for p in path.parent.iterdir()) == ["busybox"]  # no temporary left


def test_gather_reads_the_repository(repo: Repo, repo_path: Path) -> None:
    facts = guide.gather(repo_path, repo)
    assert facts.has_repo and facts.run_id is None and facts.kinds == frozenset()
    run = new_run(repo, name=guide.GUIDED_RUN, now=1700000000, actor="t")
    (repo_path / "design.yaml").write_text("x")
    facts = guide.gather(repo_path, repo)
    assert facts.run_id == run.id and facts.stage is Stage.DESIGN and facts.current
    assert facts.files == frozenset({"design.yaml"}) and facts.verdict is None
    other = new_run(repo, name="other", now=1700000001, actor="t")
    assert other.id != run.id
    assert not guide.gather(repo_path, repo).current
    assert not guide.gather(repo_path / "missing", None).has_repo
