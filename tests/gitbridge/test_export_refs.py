"""export-git never stops halfway: every ref is checked before any is written
(names git cannot hold next to each other or the target's refs), and a killed
export's temporary pack is removed by the next run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from steve.errors import GitFailure, NotRepresentable
from steve.gitbridge import export_git
from steve.repo import Repo
from steve.store.kdf import KdfParams

from .conftest import PASSPHRASE, Git
from .helpers import make_history


def git_refs(git: Git, where: Path) -> dict[str, str]:
    out = git(where, "for-each-ref", "--format=%(refname) %(objectname)").stdout.decode()
    return dict(line.split(" ") for line in out.splitlines())


def pack_files(where: Path) -> list[str]:
    return sorted(p.name for p in (where / ".git" / "objects" / "pack").iterdir())


def test_refs_that_clash_in_git_are_checked_before_anything_is_written(
    steve_repo: Repo, tmp_path: Path, git: Git
) -> None:
    ids = make_history(steve_repo, {"a": [], "b": ["a"]})
    steve_repo.update_ref("refs/heads/main", ids["b"])
    # fine in STEVE, but both become git branches: refs/heads/runs and refs/heads/runs/R1/plan
    steve_repo.update_ref("refs/heads/runs", ids["a"])
    steve_repo.update_ref("refs/runs/R1/plan", ids["b"])
    # one byte under STEVE's limit, six over once it is a git branch
    long_name = "refs/x/" + "/".join(["n" * 99] * 10) + "/" + "m" * 16
    assert 1018 <= len(long_name) <= 1024
    steve_repo.update_ref(long_name, ids["a"])

    out = tmp_path / "named"
    with pytest.raises(NotRepresentable, match="directory/file"):
        export_git(steve_repo, out, ["refs/heads/runs", "refs/runs/R1/plan"])
    assert git_refs(git, out) == {}  # not a single ref written
    assert pack_files(out) == []  # nor a pack
    with pytest.raises(NotRepresentable, match="too long"):
        export_git(steve_repo, out, ["main", long_name])
    assert git_refs(git, out) == {}

    report = export_git(steve_repo, out, all_refs=True)
    assert {s.steve_ref for s in report.skipped} == {"refs/runs/R1/plan", long_name}
    assert set(git_refs(git, out)) == {"refs/heads/main", "refs/heads/runs"}
    assert git(out, "fsck", "--strict", "--full").returncode == 0


def test_a_ref_clashing_with_the_targets_own_refs_is_refused_first(
    steve_repo: Repo, tmp_path: Path, git: Git
) -> None:
    ids = make_history(steve_repo, {"a": []})
    steve_repo.update_ref("refs/heads/main", ids["a"])
    steve_repo.update_ref("refs/heads/topic/one", ids["a"])
    out = tmp_path / "mirror"
    export_git(steve_repo, out, ["main"])
    main = git(out, "rev-parse", "main").stdout.decode().strip()
    git(out, "update-ref", "refs/heads/topic", main)  # someone made a branch "topic"
    before = (git_refs(git, out), pack_files(out))
    with pytest.raises(NotRepresentable, match="refs/heads/topic"):
        export_git(steve_repo, out, ["main", "topic/one"])
    assert (git_refs(git, out), pack_files(out)) == before


@pytest.mark.slow
def test_a_killed_exports_temporary_pack_is_removed_by_the_next_run(
    tmp_path: Path, fast_kdf: KdfParams, git: Git
) -> None:
    path = tmp_path / "steve"
    with Repo.init(path, passphrase=PASSPHRASE, kdf=fast_kdf) as repo:
        blob = repo.write_blob(os.urandom(48 << 20))  # slow enough to kill mid-export
        repo.update_ref("refs/tags/big", blob)
    out = tmp_path / "mirror"
    code = (
        "import sys\nfrom pathlib import Path\nfrom steve.repo import Repo\n"
        "from steve.gitbridge import export_git\n"
        "with Repo.open(Path(sys.argv[1]), passphrase=sys.argv[3]) as r:\n"
        "    export_git(r, Path(sys.argv[2]), ['refs/tags/big'])\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(path), str(out), PASSPHRASE])
    pack_dir = out / ".git" / "objects" / "pack"
    deadline = time.monotonic() + 60
    try:
        while not (pack_dir.is_dir() and any(pack_dir.glob("tmp-steve-*.pack"))):
            assert proc.poll() is None, "the export ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.002)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert list(pack_dir.glob("tmp-steve-*")), "the killed export left its temporary pack"
    with Repo.open(path, passphrase=PASSPHRASE) as repo:
        report = export_git(repo, out, ["refs/tags/big"])
    assert report.pack is not None
    assert not list(pack_dir.glob("tmp-steve-*"))
    assert git(out, "fsck", "--strict", "--full").returncode == 0


@pytest.mark.parametrize(
    "lock", ["refs/heads/zz.lock", "refs/heads/mm.lock", "refs/steve/checkpoints.lock"]
)
def test_a_stale_git_lock_refuses_the_export_before_any_ref_is_written(
    steve_repo: Repo, tmp_path: Path, git: Git, lock: str
) -> None:
    """A lock file a killed git left behind: the export used to write the refs before
    the locked one, then stop with a traceback (dulwich's FileLocked)."""
    ids = make_history(steve_repo, {"a": []})
    for name in ("refs/heads/aa", "refs/heads/mm", "refs/heads/zz"):
        steve_repo.update_ref(name, ids["a"])
    out = tmp_path / "locked"
    git(tmp_path, "init", "-q", str(out))
    (out / ".git" / lock).parent.mkdir(parents=True, exist_ok=True)
    (out / ".git" / lock).write_bytes(b"")
    with pytest.raises(GitFailure, match=r"\.lock"):
        export_git(steve_repo, out, all_refs=True)
    assert git_refs(git, out) == {}  # not a single ref written
    assert pack_files(out) == []
    (out / ".git" / lock).unlink()  # once the lock is gone, the same export succeeds
    export_git(steve_repo, out, all_refs=True)
    assert set(git_refs(git, out)) == {"refs/heads/aa", "refs/heads/mm", "refs/heads/zz"}


def test_an_empty_directory_where_a_ref_goes_is_cleared_as_git_does(
    steve_repo: Repo, tmp_path: Path, git: Git
) -> None:
    """Empty directories left in refs/ (git removes them when it needs the name): the
    export used to write the refs before, then stop at that one."""
    ids = make_history(steve_repo, {"a": []})
    for name in ("refs/heads/aa", "refs/heads/zz"):
        steve_repo.update_ref(name, ids["a"])
    out = tmp_path / "dirs"
    git(tmp_path, "init", "-q", str(out))
    (out / ".git" / "refs" / "heads" / "zz" / "empty" / "below").mkdir(parents=True)
    export_git(steve_repo, out, all_refs=True)
    assert set(git_refs(git, out)) == {"refs/heads/aa", "refs/heads/zz"}


def test_a_stray_file_in_the_way_of_a_ref_refuses_before_anything_is_written(
    steve_repo: Repo, tmp_path: Path, git: Git
) -> None:
    """A file git does not list as a ref (another ref's lock) where a ref's directory
    is: no ref can be written there, so nothing is written at all."""
    ids = make_history(steve_repo, {"a": []})
    for name in ("refs/heads/aa", "refs/heads/mm"):
        steve_repo.update_ref(name, ids["a"])
    out = tmp_path / "stray"
    git(tmp_path, "init", "-q", str(out))
    (out / ".git" / "refs" / "heads" / "mm").mkdir()
    (out / ".git" / "refs" / "heads" / "mm" / "x.lock").write_text("")
    with pytest.raises(GitFailure, match="in the way"):
        export_git(steve_repo, out, all_refs=True)
    assert git_refs(git, out) == {}
    assert pack_files(out) == []
