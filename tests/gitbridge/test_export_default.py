"""A bare ``export-git`` in the normal workflow (HEAD's branch unborn, the work on
the current run's refs) exports the run and the branches, and the mirror's HEAD
is something a plain ``git log`` can show."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from steve.cli.main import cli
from steve.errors import NothingToExport
from steve.gitbridge import export_git
from steve.objects.model import ObjectType
from steve.porcelain.runs import new_run, run_ref
from steve.repo import Repo
from steve.store.kdf import KdfParams

from .conftest import PASSPHRASE, Git
from .helpers import BASE_TIME, write_manifest


def start_run(repo: Repo) -> tuple[str, dict[ObjectType, str]]:
    run = new_run(repo, name="first", now=BASE_TIME, actor="test")
    design = write_manifest(repo, ObjectType.DESIGN, "d", [], time=BASE_TIME)
    plan = write_manifest(repo, ObjectType.PLAN, "p", [design], time=BASE_TIME + 60)
    repo.update_ref(run_ref(run.id, ObjectType.DESIGN), design)
    repo.update_ref(run_ref(run.id, ObjectType.PLAN), plan)
    return run.id, {ObjectType.DESIGN: design.hex, ObjectType.PLAN: plan.hex}


def test_bare_export_git_on_an_unborn_head_exports_the_current_run(
    tmp_path: Path, fast_kdf: KdfParams, git: Git
) -> None:
    root = tmp_path / "project"
    with Repo.init(root, passphrase=PASSPHRASE, kdf=fast_kdf) as repo:
        assert repo.head() is not None and repo.head().target is None  # type: ignore[union-attr]
        run_id, ids = start_run(repo)
    out = tmp_path / "mirror"
    env = {"STEVE_PASSPHRASE": PASSPHRASE, "STEVE_KEY_FILE": None, "STEVE_DIR": None}
    result = CliRunner().invoke(cli, ["--repo", str(root), "export-git", str(out)], env=env)
    assert result.exit_code == 0, result.output
    refs = git(out, "for-each-ref", "--format=%(refname)").stdout.decode().split()
    assert refs == [f"refs/heads/runs/{run_id}/design", f"refs/heads/runs/{run_id}/plan"]
    # a plain git log works, and shows the run's newest stage
    log = git(out, "log", "--format=%(trailers:key=Steve-Object,valueonly)")
    objects = [line for line in log.stdout.decode().split("\n") if line]
    assert objects == [ids[ObjectType.PLAN], ids[ObjectType.DESIGN]]
    head = git(out, "symbolic-ref", "HEAD").stdout.decode().strip()
    assert head == f"refs/heads/runs/{run_id}/plan"
    assert git(out, "fsck", "--strict", "--full").returncode == 0


def test_branches_are_exported_and_an_existing_head_is_kept(
    steve_repo: Repo, tmp_path: Path, git: Git
) -> None:
    run_id, _ = start_run(steve_repo)
    a = write_manifest(steve_repo, ObjectType.DESIGN, "a", [], time=BASE_TIME + 500)
    steve_repo.update_ref("refs/heads/main", a)
    steve_repo.update_ref("refs/heads/topic", a)
    steve_repo.update_ref("refs/imports/tree", steve_repo.write_tree(Path(__file__).parent))
    out = tmp_path / "mirror"
    report = export_git(steve_repo, out, run=run_id)
    assert {r.git_ref for r in report.refs} == {
        "refs/heads/main",
        "refs/heads/topic",
        f"refs/heads/runs/{run_id}/design",
        f"refs/heads/runs/{run_id}/plan",
    }
    assert report.head is None  # HEAD -> main, which now exists
    assert git(out, "symbolic-ref", "HEAD").stdout.decode().strip() == "refs/heads/main"
    assert git(out, "log", "--oneline").returncode == 0


def test_an_existing_mirror_with_an_unborn_head_gets_one(
    steve_repo: Repo, tmp_path: Path, git: Git
) -> None:
    out = tmp_path / "mirror"
    os.makedirs(out)
    git(out, "init", "-q", "-b", "trunk")
    run_id, _ = start_run(steve_repo)
    report = export_git(steve_repo, out, run=run_id)
    assert report.head == f"refs/heads/runs/{run_id}/plan"
    assert git(out, "log", "--oneline").returncode == 0


def test_nothing_to_export_is_a_typed_error(steve_repo: Repo, tmp_path: Path) -> None:
    with pytest.raises(NothingToExport):
        export_git(steve_repo, tmp_path / "mirror")
    run = new_run(steve_repo, now=BASE_TIME, actor="test")  # a run with no refs yet
    with pytest.raises(NothingToExport):
        export_git(steve_repo, tmp_path / "mirror", run=run.id)
