"""The porcelain CLI through click's CliRunner, results checked through the library;
plus the installed entry point in a subprocess (SOURCE_DATE_EPOCH reproducibility)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from steve.cli.main import cli
from steve.objects.model import ObjectType
from steve.objects.oid import ObjectId
from steve.porcelain import runs
from steve.porcelain.show import read_manifest
from steve.repo import Repo
from steve.store.kdf import KdfParams
from tests.porcelain.strategies import write_pool

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SDE = "1700000000"
EXAMPLE_SOURCE = b"Content-addressed storage: objects are named by the hash of their bytes.\n"

DESIGN_YAML = """\
project_id: demo
name: Demo
created_at: 1700000000
intent:
  summary: Ship the demo
constraints:
  - {id: C-001, type: Security, description: no network, hard: true}
  - {id: C-002, type: Performance, description: fast, hard: false}
axioms: [C-001]
human_approved: false
"""
RESEARCH_YAML = "title: Prior art\n"
PLAN_YAML = """\
title: Build it
nodes:
  - {id: build, kind: run, command: [make], image: "sha256:%s", outputs: [bin]}
""" % ("2" * 64)


@pytest.fixture
def env(repo_path: Path, fast_kdf: KdfParams) -> dict[str, str]:
    Repo.init(repo_path, passphrase="pw", kdf=fast_kdf).close()
    return {
        "STEVE_DIR": str(repo_path),
        "STEVE_PASSPHRASE": "pw",
        "SOURCE_DATE_EPOCH": SDE,
        "STEVE_AUTHOR_NAME": "Tess",
        "STEVE_AUTHOR_EMAIL": "tess@example",
        "STEVE_KEY_FILE": "",
    }


def run(env: dict[str, str], *args: str, input: str | bytes | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, input=input, catch_exceptions=False)


def open_repo(env: dict[str, str]) -> Repo:
    return Repo.open(env["STEVE_DIR"], passphrase="pw")


def test_freeze_cat_manifest_and_validation_errors(env: dict[str, str], tmp_path: Path) -> None:
    draft = tmp_path / "d.yaml"
    draft.write_text(DESIGN_YAML)
    res = run(env, "freeze", "design", str(draft), "--ref", "refs/heads/design")
    assert res.exit_code == 0, res.output
    oid = ObjectId.from_hex(res.stdout.strip())
    with open_repo(env) as repo:
        assert repo.rev_parse("refs/heads/design") == oid
        fm = read_manifest(repo, oid)
        assert fm.manifest.time == int(SDE) and fm.manifest.tz == 0
        count = repo.backend.count()
    shown = json.loads(run(env, "cat-manifest", oid.hex[:8]).stdout)
    assert shown == json.loads(json.dumps(fm.to_dict()))
    assert yaml.safe_load(run(env, "cat-manifest", "--format", "yaml", oid.hex).stdout) == shown
    # the same draft from stdin, as JSON: same id
    res = run(env, "freeze", "design", "-", input=json.dumps(yaml.safe_load(DESIGN_YAML)))
    assert res.stdout.strip() == oid.hex
    bad = DESIGN_YAML.replace("axioms: [C-001]", "axioms: [C-002]")
    res = run(env, "freeze", "design", "-", input=bad)
    assert res.exit_code == 6
    assert "axioms[0]: axiom_hard" in res.stderr and "STEVE-MANIFEST-001" in res.stderr
    with open_repo(env) as repo:
        assert repo.backend.count() == count


def test_amends_and_parent_flags(env: dict[str, str]) -> None:
    first = run(env, "freeze", "research", "-", input="title: one\n").stdout.strip()
    other = run(env, "freeze", "research", "-", input="title: other\n").stdout.strip()
    res = run(
        env,
        "freeze",
        "research",
        "-",
        "--amends",
        first[:10],
        "--parent",
        other,
        input="title: two\n",
    )
    assert res.exit_code == 0, res.output
    with open_repo(env) as repo:
        m = read_manifest(repo, res.stdout.strip()).manifest
        assert [p.hex for p in m.parents] == [other, first]
        assert m.body["amends"] == first
    out = run(env, "diff", first, res.stdout.strip()).stdout.splitlines()
    assert '~ title: "one" -> "two"' in out


def test_batch_freeze_jsonl(env: dict[str, str]) -> None:
    lines = "".join(json.dumps({"title": f"t{i}"}) + "\n" for i in range(20))
    res = run(env, "freeze", "research", "-", "--batch", input=lines)
    ids = res.stdout.split()
    assert len(ids) == 20 and len(set(ids)) == 20
    with open_repo(env) as repo:
        assert [read_manifest(repo, i).manifest.body["title"] for i in ids] == [
            f"t{i}" for i in range(20)
        ]
    res = run(env, "freeze", "research", "-", "--batch", input='{"title": "ok"}\nnot json\n')
    assert res.exit_code == 6


def test_stage_commands_runs_status_and_log(env: dict[str, str], tmp_path: Path) -> None:
    for name, text in (("d", DESIGN_YAML), ("r", RESEARCH_YAML), ("p", PLAN_YAML)):
        (tmp_path / f"{name}.yaml").write_text(text)
    res = run(env, "status")
    assert "no current run" in res.stdout
    run_id = run(env, "run", "new", "--name", "demo").stdout.strip()
    d = run(env, "design", str(tmp_path / "d.yaml")).stdout.strip()
    res = run(env, "plan", str(tmp_path / "p.yaml"))
    assert res.exit_code == 6 and "STEVE-STATE-001" in res.stderr
    r = run(env, "research", str(tmp_path / "r.yaml")).stdout.strip()
    p = run(env, "plan", str(tmp_path / "p.yaml")).stdout.strip()
    res = run(env, "run", "goto", "build", "--reason", "plan approved")
    assert res.exit_code == 0, res.output
    res = run(env, "run", "goto", "DESIGN")
    assert res.exit_code == 6
    with open_repo(env) as repo:
        found = runs.find_run(repo, "demo")
        assert found.id == run_id and found.stage is runs.Stage.BUILD
        assert runs.run_manifests(repo, run_id) == {
            ObjectType.DESIGN: ObjectId.from_hex(d),
            ObjectType.RESEARCH: ObjectId.from_hex(r),
            ObjectType.PLAN: ObjectId.from_hex(p),
        }
        ts = runs.transitions(repo, run_id)
        assert [t.to_stage.value for t in ts] == ["DESIGN", "RESEARCH", "PLAN", "BUILD"]
        assert ts[-1].trigger == "goto: plan approved" and ts[-1].actor == "Tess <tess@example>"
    status = run(env, "status").stdout
    assert f"run      {run_id} (demo)" in status and "stage    BUILD" in status
    assert f"plan             {p[:12]}  Build it (1 node)" in status
    oneline = run(env, "log", "--oneline").stdout.splitlines()
    assert oneline == [
        f"{p[:12]} plan Build it (1 node)",
        f"{r[:12]} research Prior art (0 sources)",
        f"{d[:12]} design Demo: Ship the demo",
    ]
    assert run(env, "log", "--format", "%k %H", "--kind", "design").stdout == f"design {d}\n"
    assert run(env, "log", "-n", "1", "--format=%h", p).stdout == f"{p[:12]}\n"
    assert run(env, "log", "--graph", "--oneline").stdout.startswith("* ")
    shown = run(env, "run", "show").stdout
    assert "stage    BUILD" in shown and "next     TEST" in shown
    assert len(run(env, "run", "transitions", run_id[:6]).stdout.splitlines()) == 4
    assert run(env, "run", "list").stdout.startswith(f"* {run_id} BUILD")
    assert run(env, "cat", d).stdout.startswith(f"design {d} (schema v1)\n")
    res = run(env, "run", "goto", "test")  # case-insensitive in, capitals out
    assert res.exit_code == 0 and "BUILD -> TEST" in res.stdout, res.output
    assert "test" not in res.stdout.replace("TEST", "")
    res = run(env, "run", "goto", "deploy")  # no deploy exists: DEPLOY would be a trap
    assert res.exit_code == 6 and "[STEVE-STATE-010]" in res.stderr, res.output
    assert "TEST -> DEPLOY" in res.stderr and "-> deploy" not in res.stderr
    assert "next     BUILD" in run(env, "run", "show").stdout
    res = run(env, "run", "goto", "build")
    assert res.exit_code == 0, res.output


def test_cat_shows_trees_blobs_tags(env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "f.txt").write_text("hello\n")
    with open_repo(env) as repo:
        tree = repo.write_tree(tmp_path / "dir")
        blob = repo.write_blob(b"raw \x00 bytes")
        write_pool(repo)
    assert run(env, "cat", blob.hex).stdout_bytes == b"raw \x00 bytes"
    assert run(env, "cat", tree.hex).stdout.startswith("100644 blob ")
    res = run(env, "schema", "plan")
    assert json.loads(res.stdout)["$id"] == "steve:plan/v1"
    assert run(env, "schema", "nope").exit_code == 6


def test_log_without_history_is_a_clear_error(env: dict[str, str]) -> None:
    res = run(env, "log")
    assert res.exit_code == 5 and "STEVE-REV-001" in res.stderr


def test_source_date_epoch_gives_the_same_id_in_two_repositories(
    tmp_path: Path, fast_kdf: KdfParams
) -> None:
    exe = shutil.which("steve")
    assert exe is not None
    ids = []
    for name in ("one", "two"):
        root = tmp_path / name
        Repo.init(root, passphrase="pw", kdf=KdfParams(os.urandom(16), 256, 1, 1)).close()
        env = {
            **os.environ,
            "STEVE_DIR": str(root),
            "STEVE_PASSPHRASE": "pw",
            "SOURCE_DATE_EPOCH": SDE,
        }
        env.pop("STEVE_KEY_FILE", None)
        proc = subprocess.run(
            [exe, "freeze", "design", "-"],
            input=DESIGN_YAML.encode(),
            env=env,
            capture_output=True,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        ids.append(proc.stdout.decode().strip())
    assert ids[0] == ids[1] and len(ids[0]) == 64
    with Repo.open(tmp_path / "two", passphrase="pw") as repo:
        assert read_manifest(repo, ids[0]).manifest.time == int(SDE)


@pytest.mark.parametrize("name", ["design", "research", "plan"])
def test_example_files_freeze(env: dict[str, str], name: str) -> None:
    with open_repo(env) as repo:
        repo.write_blob(EXAMPLE_SOURCE)
    res = run(env, "freeze", name, str(EXAMPLES / f"{name}.yaml"))
    assert res.exit_code == 0, res.output


def test_validation_errors_print_one_per_line(env: dict[str, str]) -> None:
    bad = (
        DESIGN_YAML.replace("created_at: 1700000000", "created_at: 2023-11-14")
        .replace("axioms: [C-001]", "axioms: [C-009]")
        .replace("human_approved: false", "human_aproved: false")
    )
    res = run(env, "freeze", "design", "-", input=bad)
    assert res.exit_code == 6 and "[STEVE-MANIFEST-001]" in res.stderr
    lines = res.stderr.splitlines()
    problems = [line.strip() for line in lines[1:-2]]
    assert any(p.startswith("created_at: ") and "unix seconds" in p for p in problems), lines
    assert any(p.startswith("axioms[0]: axiom_reference") for p in problems), lines
    assert any("did you mean 'human_approved'?" in p for p in problems), lines
    assert not any("; " in p for p in problems), lines


def test_json_output_of_status_log_and_run(env: dict[str, str], tmp_path: Path) -> None:
    """--json on status, log and run: the documented fields (docs/cli.md), one document per
    line, checked against the library."""
    for name, text in (("d", DESIGN_YAML), ("r", RESEARCH_YAML)):
        (tmp_path / f"{name}.yaml").write_text(text)
    empty = json.loads(run(env, "status", "--json").stdout)
    assert empty == {"head": empty["head"], "runs": 0, "run": None, "next": [], "manifests": []}
    made = json.loads(run(env, "run", "new", "--name", "demo", "--json").stdout)
    run_id = made["id"]
    assert made == {
        "id": run_id,
        "name": "demo",
        "stage": "DESIGN",
        "created": int(SDE),
        "updated": int(SDE),
        "current": True,
    }
    d = run(env, "design", str(tmp_path / "d.yaml")).stdout.strip()
    r = run(env, "research", str(tmp_path / "r.yaml")).stdout.strip()
    st = json.loads(run(env, "status", "--json").stdout)
    assert st["run"]["id"] == run_id and st["run"]["stage"] == "RESEARCH"
    assert st["next"] == ["DESIGN", "PLAN"] and st["runs"] == 1
    design_sum, research_sum = "Demo: Ship the demo", "Prior art (0 sources)"
    ref = f"refs/runs/{run_id}/"
    assert st["manifests"] == [
        {"kind": "design", "ref": ref + "design", "id": d, "summary": design_sum},
        {"kind": "research", "ref": ref + "research", "id": r, "summary": research_sum},
    ]
    rows = [json.loads(line) for line in run(env, "log", "--json").stdout.splitlines()]
    common = {"time": int(SDE), "tz": "+0000"}
    assert rows == [
        {"id": r, "kind": "research", "parents": [d], "summary": research_sum, **common},
        {"id": d, "kind": "design", "parents": [], "summary": design_sum, **common},
    ]
    assert run(env, "log", "--json", "--oneline").exit_code == 2
    shown = json.loads(run(env, "run", "show", "--json").stdout)
    assert shown["stage"] == "RESEARCH" and shown["next"] == ["DESIGN", "PLAN"]
    assert [m["kind"] for m in shown["manifests"]] == ["design", "research"]
    moved = json.loads(run(env, "run", "goto", "design", "--json").stdout)
    assert moved == {
        "run": run_id,
        "seq": 2,
        "from": "RESEARCH",
        "to": "DESIGN",
        "trigger": "goto",
        "time": int(SDE),
        "actor": "Tess <tess@example>",
    }
    ts = [json.loads(x) for x in run(env, "run", "transitions", "--json").stdout.splitlines()]
    with open_repo(env) as repo:
        assert [t["to"] for t in ts] == [t.to_stage.value for t in runs.transitions(repo, run_id)]
    listed = [json.loads(x) for x in run(env, "run", "list", "--json").stdout.splitlines()]
    assert [x["id"] for x in listed] == [run_id] and listed[0]["stage"] == "DESIGN"
    assert json.loads(run(env, "run", "switch", "demo", "--json").stdout)["id"] == run_id


def test_quiet_porcelain_prints_nothing_but_does_the_work(
    env: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "d.yaml").write_text(DESIGN_YAML)
    (tmp_path / "r.yaml").write_text(RESEARCH_YAML)
    for args in (
        ("run", "new", "--name", "q", "-q"),
        ("design", str(tmp_path / "d.yaml"), "--quiet"),
        ("research", str(tmp_path / "r.yaml"), "-q"),
        ("run", "goto", "DESIGN", "-q"),
        ("run", "switch", "q", "-q"),
        ("freeze", "research", str(tmp_path / "r.yaml"), "-q"),
    ):
        res = run(env, *args)
        assert res.exit_code == 0 and res.stdout == "" and res.stderr == "", (args, res.output)
    with open_repo(env) as repo:
        found = runs.find_run(repo, "q")
        assert found.stage is runs.Stage.DESIGN
        assert set(runs.run_manifests(repo, found.id)) == {ObjectType.DESIGN, ObjectType.RESEARCH}
    res = run(env, "run", "goto", "PLAN", "-q")  # errors still speak
    assert res.exit_code == 6 and "STEVE-STATE-001" in res.stderr


def test_diff_cli_body_first_json_quiet_and_trees(env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "d.yaml").write_text(DESIGN_YAML)
    a = run(env, "freeze", "design", str(tmp_path / "d.yaml")).stdout.strip()
    (tmp_path / "d.yaml").write_text(DESIGN_YAML.replace("fast, hard: false", "fast, hard: true"))
    b = run(env, "freeze", "design", str(tmp_path / "d.yaml"), "--amends", a).stdout.strip()
    lines = run(env, "diff", a, b).stdout.splitlines()
    assert lines[0] == f'~ amends: null -> "{a}"'
    assert lines[1] == "~ constraints[C-002].hard: false -> true"
    assert all(line[2:].startswith("envelope.") for line in lines[2:]) and len(lines) > 2
    assert run(env, "diff", "--no-envelope", a, b).stdout.splitlines() == lines[:2]
    rows = [json.loads(x) for x in run(env, "diff", "--json", a, b).stdout.splitlines()]
    assert rows[1] == {
        "op": "~",
        "section": "body",
        "path": "constraints[C-002].hard",
        "old": False,
        "new": True,
    }
    assert {r["section"] for r in rows[2:]} == {"envelope"}
    res = run(env, "diff", "-q", a, b)
    assert (res.exit_code, res.stdout) == (1, "")
    assert run(env, "diff", "--quiet", a, a).exit_code == 0
    (tmp_path / "t1").mkdir()
    (tmp_path / "t1" / "f").write_text("1\n")
    t1 = run(env, "write-tree", str(tmp_path / "t1")).stdout.strip()
    (tmp_path / "t1" / "f").write_text("2\n")
    (tmp_path / "t1" / "g").write_text("g\n")
    t2 = run(env, "write-tree", str(tmp_path / "t1")).stdout.strip()
    out = run(env, "diff", t1, t2).stdout.splitlines()
    assert [line.split(" ")[:2] for line in out] == [["~", "f"], ["+", "g"]]
    rows = [json.loads(x) for x in run(env, "diff", "--json", t1, t2).stdout.splitlines()]
    with open_repo(env) as repo:
        g = repo.write_blob(b"g\n")
    assert rows[1] == {
        "op": "+",
        "section": "tree",
        "path": "g",
        "old": None,
        "new": {"mode": "100644", "id": g.hex},
    }
    res = run(env, "diff", t1, a)
    assert res.exit_code == 6 and "STEVE-OBJ-004" in res.stderr


def test_log_run_all_and_run_revisions(env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "d.yaml").write_text(DESIGN_YAML)
    (tmp_path / "r.yaml").write_text(RESEARCH_YAML)
    run(env, "run", "new", "--name", "one")
    d1 = run(env, "design", str(tmp_path / "d.yaml")).stdout.strip()
    r1 = run(env, "research", str(tmp_path / "r.yaml")).stdout.strip()
    run(env, "run", "new", "--name", "two")
    (tmp_path / "d.yaml").write_text(DESIGN_YAML.replace("name: Demo", "name: Other"))
    d2 = run(env, "design", str(tmp_path / "d.yaml")).stdout.strip()
    with open_repo(env) as repo:
        tree = repo.write_tree(tmp_path)
        repo.update_ref("refs/heads/snapshot", tree, None)  # a ref to a tree: --all skips it
    ids = lambda *args: run(env, "log", "--format=%H", *args).stdout.split()  # noqa: E731
    assert ids() == [d2]  # the current run
    assert ids("--run", "one") == [r1, d1]
    assert sorted(ids("--run", "one", "--run", "two")) == sorted([d2, r1, d1])
    assert set(ids("--all")) == {d1, r1, d2}
    assert ids("run:one") == [r1, d1]  # run names are revisions
    assert ids("run:one/design") == [d1]
    assert run(env, "rev-parse", "run:two").stdout.strip() == d2
    res = run(env, "log", "run:nobody")
    assert res.exit_code == 5 and "STEVE-STATE-002" in res.stderr
    res = run(env, "log", "--run", "nobody")
    assert res.exit_code == 5 and "STEVE-STATE-002" in res.stderr
    # two runs sharing the design: the fork is drawn as git draws it
    run(env, "run", "new", "--name", "three")
    (tmp_path / "d.yaml").write_text(DESIGN_YAML)
    assert run(env, "design", str(tmp_path / "d.yaml")).stdout.strip() == d1
    (tmp_path / "r3.yaml").write_text("title: Third\n")
    r3 = run(env, "research", str(tmp_path / "r3.yaml")).stdout.strip()
    graph = run(env, "log", "--graph", "--format=%h", "run:one", "run:three").stdout
    assert graph.splitlines() == [f"* {r1[:12]}", f"| * {r3[:12]}", "|/", f"* {d1[:12]}"]
