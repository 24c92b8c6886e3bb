"""The library's progress reports (steve.progress): each long call reports phases whose
counts only grow, never pass their total, and match what the call returns."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from steve.gitbridge import export_git, import_git
from steve.objects.model import Blob, Mode, Tree, TreeEntry
from steve.objects.oid import ObjectId
from steve.porcelain.backup import BACKUP_STEPS, RESTORE_STEPS, backup, restore
from steve.porcelain.verify import verify
from steve.progress import Progress, ProgressEvent, Recorder, tracked
from steve.repo import Repo
from tests.gitbridge.helpers import make_history


def well_formed(rec: Recorder) -> list[tuple[str, int | None, int]]:
    """Check the protocol (steve/progress.py) and return the phases."""
    started = False
    done = 0
    total: int | None = None
    for e in rec.events:
        if e.kind == "start":
            started, done, total = True, 0, e.total
            assert e.task and (e.total is None or e.total >= 0)
        elif e.kind == "advance":
            assert started, "an advance outside a phase"
            assert e.n >= 0, "counts never go down"
            done += e.n
            assert total is None or done <= total, f"{done} past the total {total}"
        else:
            assert started, "finish without a phase"
    assert rec.events and rec.events[-1].kind == "finish"
    return rec.phases()


def test_recorder_is_a_progress() -> None:
    assert isinstance(Recorder(), Progress)


def test_tracked_reports_one_unit_per_item_and_nothing_without_progress() -> None:
    rec = Recorder()
    assert list(tracked(range(5), rec, "t", 5, unit="items")) == [0, 1, 2, 3, 4]
    assert well_formed(rec) == [("t", 5, 5)]
    assert list(tracked(iter("ab"), None, "t")) == ["a", "b"]


def _populate(repo: Repo, chain: int, loose: int, shared: int) -> None:
    """A chain of ``chain`` manifests on refs/heads/main (one of them linking a tree
    of ``shared`` blobs) and ``loose`` unreachable blobs."""
    ids = make_history(repo, {f"m{i}": [f"m{i - 1}"] if i else [] for i in range(chain)})
    with repo.writer() as w:
        entries = [TreeEntry(f"f{i}", Mode.FILE, w.add(Blob(b"s%d" % i))) for i in range(shared)]
        tree = w.add(Tree.from_entries(entries))
        for i in range(loose):
            w.add(Blob(b"loose %d" % i))
    repo.update_ref("refs/heads/main", ids[f"m{chain - 1}"])
    repo.update_ref("refs/tags/files", tree)


@settings(max_examples=40)
@given(
    chain=st.integers(1, 12),
    loose=st.integers(0, 30),
    shared=st.integers(0, 20),
    dry_run=st.booleans(),
)
def test_gc_phases_count_what_gc_reports(
    chain: int, loose: int, shared: int, dry_run: bool
) -> None:
    repo, twin = Repo.memory(), Repo.memory()
    _populate(repo, chain, loose, shared)
    _populate(twin, chain, loose, shared)
    rec = Recorder()
    report = repo.gc(prune_before=2**40, dry_run=dry_run, progress=rec)
    assert report == twin.gc(prune_before=2**40, dry_run=dry_run)  # reporting changes nothing
    phases = well_formed(rec)
    assert phases[0] == ("gc: marking", None, report.reachable)
    assert phases[1][0] == "gc: scanning" and phases[1][2] == report.objects
    if dry_run or not report.pruned:
        assert len(phases) == 2
    else:
        assert phases[2] == ("gc: pruning", report.pruned, report.pruned)


@settings(max_examples=25)
@given(chain=st.integers(1, 10), shared=st.integers(0, 25))
def test_verify_counts_every_object_checked(chain: int, shared: int) -> None:
    repo = Repo.memory()
    _populate(repo, chain, 0, shared)
    for rev in ("refs/heads/main", "refs/tags/files"):
        rec = Recorder()
        report = verify(repo, rev, progress=rec)
        assert well_formed(rec) == [("verify", None, report.objects)]
        assert report.objects == verify(repo, rev).objects  # the same without one


def test_export_and_import_count_the_objects_written(repo: Repo, tmp_path: Path) -> None:
    _populate(repo, 6, 3, 10)
    rec = Recorder()
    exported = export_git(repo, tmp_path / "g", progress=rec)
    assert well_formed(rec) == [("export-git", None, exported.objects)]
    details = [e.detail for e in rec.events if e.kind == "advance" and e.detail]
    assert "refs/heads/main" in details
    again = Recorder()
    assert export_git(repo, tmp_path / "g", progress=again).objects == 0
    assert well_formed(again) == [("export-git", None, 0)]

    rec = Recorder()
    imported = import_git(repo, tmp_path / "g", "HEAD", progress=rec)
    assert well_formed(rec) == [("import-git", None, imported.written)]
    assert imported.tree == import_git(repo, tmp_path / "g", "HEAD").tree


def test_backup_and_restore_report_their_steps(repo: Repo, tmp_path: Path) -> None:
    _populate(repo, 3, 2, 2)
    rec = Recorder()
    backup(repo, tmp_path / "bk", progress=rec)
    assert well_formed(rec) == [("backup", len(BACKUP_STEPS), len(BACKUP_STEPS))]
    assert [e.detail for e in rec.events if e.detail] == list(BACKUP_STEPS)
    assert repo.key is not None
    rec = Recorder()
    restore(tmp_path / "bk", tmp_path / "restored", repo.key, progress=rec)
    assert well_formed(rec) == [("restore", len(RESTORE_STEPS), len(RESTORE_STEPS))]
    assert [e.detail for e in rec.events if e.detail] == list(RESTORE_STEPS)


def test_a_failed_call_reports_no_count_past_its_total(repo: Repo, tmp_path: Path) -> None:
    (tmp_path / "bk").mkdir()
    rec = Recorder()
    with pytest.raises(Exception, match="exists"):
        backup(repo, tmp_path / "bk", progress=rec)
    assert all(e.n >= 0 for e in rec.events)


def test_phases_of_a_recorder() -> None:
    rec = Recorder()
    rec.start("a", 2)
    rec.advance(1, "x")
    rec.advance(1)
    rec.start("b")
    rec.advance(3)
    rec.finish()
    assert rec.phases() == [("a", 2, 2), ("b", None, 3)]
    assert rec.events[1] == ProgressEvent("advance", n=1, detail="x")
    assert isinstance(ObjectId, type)
