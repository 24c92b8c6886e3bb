"""export-git against the real git binary: fsck, log, show, incremental, refs."""

from __future__ import annotations

import json
from pathlib import Path

import blake3
import pytest
from click.testing import CliRunner

from steve.cli.main import cli
from steve.errors import NonFastForward, NotAGitRepository, NotRepresentable, RefNotFound
from steve.gitbridge import RefStatus, export_git
from steve.gitbridge.layout import GIT_MAP
from steve.objects.model import ObjectType
from steve.objects.oid import ObjectId
from steve.porcelain.history import walk
from steve.repo import Repo

from .conftest import PASSPHRASE, Git
from .helpers import LARGE, build_receipt, make_history, trailer_ids, write_manifest

SHAPE: dict[str, list[str]] = {
    "n0": [],
    "n1": ["n0"],
    "n2": ["n1"],
    "n3": ["n0"],
    "n4": ["n3"],
    "n5": ["n2", "n4"],  # a merge
    "n6": ["n5"],
    "n7": ["n6", "n3", "n1"],  # an octopus
}


def files(path: Path) -> dict[str, float]:
    """Every file under ``path`` (relative name -> mtime)."""
    return {str(p.relative_to(path)): p.stat().st_mtime for p in path.rglob("*") if p.is_file()}


def packs(git_dir: Path) -> list[str]:
    return sorted(p.name for p in (git_dir / "objects" / "pack").glob("*.pack"))


def show(git: Git, where: Path, spec: str) -> bytes:
    return git(where, "cat-file", "blob", spec).stdout


@pytest.fixture
def history(steve_repo: Repo) -> dict[str, ObjectId]:
    ids = make_history(steve_repo, SHAPE, tz=-330)
    receipt = build_receipt(steve_repo, ids["n7"], time=1_800_000_000, large=True)
    ids["receipt"] = receipt
    steve_repo.update_ref("refs/heads/main", receipt)
    steve_repo.update_ref("refs/heads/side", ids["n4"])
    steve_repo.create_tag("v1", ids["n5"], message="release 1\n\nnotes", now=1_750_000_000, tz=60)
    steve_repo.create_tag("light", ids["n2"])
    return ids


def test_export_passes_fsck_and_log_lists_every_manifest_in_order(
    steve_repo: Repo, history: dict[str, ObjectId], tmp_path: Path, git: Git
) -> None:
    out = tmp_path / "out.git"
    report = export_git(steve_repo, out, ["main", "side", "v1", "light"], bare=True)
    assert report.created
    assert report.commits == len(history)  # every manifest once, shared history included
    assert report.tags == 1
    assert len(packs(out)) == 1 and report.pack is not None
    assert git(out, "fsck", "--strict", "--full", "--no-dangling").returncode == 0
    assert not list((out / "objects").glob("??/*")), "objects go into the pack, not loose"

    expected = list(walk(steve_repo, [history["receipt"]]))
    lines = git(out, "log", "--format=%H%x09%s", "main").stdout.decode().splitlines()
    assert [line.split("\t", 1)[1] for line in lines] == [e.summary for e in expected]
    ids = trailer_ids(git(out, "log", "--format=%B%x00", "main").stdout)
    assert ids == [e.oid for e in expected]
    # the map remembers every manifest's commit, and refs point where STEVE's do
    for line, entry in zip(lines, expected, strict=True):
        assert steve_repo.get_derived(GIT_MAP, entry.oid.raw) == bytes.fromhex(line[:40])
    refs = dict(
        reversed(line.split(" ", 1)) for line in git(out, "show-ref").stdout.decode().splitlines()
    )
    assert refs["refs/heads/main"] == lines[0][:40]
    assert refs["refs/heads/side"] == git(out, "rev-parse", "main~3^2").stdout.decode().strip()
    # the annotated tag is an annotated git tag of the manifest's commit
    assert git(out, "cat-file", "-t", "v1").stdout == b"tag\n"
    assert git(out, "rev-parse", "v1^{commit}").stdout == git(out, "rev-parse", "main~3").stdout
    tag_text = git(out, "cat-file", "-p", "v1").stdout.decode()
    assert "\ntag v1\ntagger steve <steve@localhost> 1750000000 +0100\n" in tag_text
    assert tag_text.split("\n\n", 1)[1].startswith("release 1\n\nnotes\n\nSteve-Object: ")
    assert git(out, "cat-file", "-t", "light").stdout == b"commit\n"
    # author/committer: the fixed identity at the manifest's own time and offset
    who = git(out, "log", "-1", "--format=%an <%ae> %at %ai|%cn <%ce> %ct", "main~1").stdout
    assert who.decode().strip() == (
        "STEVE <steve@localhost> 1700000420 2023-11-14 16:50:20 -0530"
        "|STEVE <steve@localhost> 1700000420"
    )
    raw = git(out, "cat-file", "commit", "main").stdout
    assert b"\nencoding " not in raw and b"\ngpgsig" not in raw


def test_commit_tree_holds_cat_manifest_output_and_the_stored_bytes(
    steve_repo: Repo, history: dict[str, ObjectId], tmp_path: Path, git: Git
) -> None:
    out = tmp_path / "work"
    export_git(steve_repo, out, ["main"])
    assert (out / ".git").is_dir()
    runner = CliRunner()
    commits = git(out, "rev-list", "main").stdout.decode().split()
    assert len(commits) == len(history)
    root = steve_repo.root
    assert root is not None
    for commit in commits:
        stored = show(git, out, f"{commit}:manifest.cbor")
        oid = ObjectId.of(stored)  # BLAKE3 of the exact stored bytes
        assert blake3.blake3(stored).hexdigest() == oid.hex
        message = git(out, "log", "-1", "--format=%B", commit).stdout.decode()
        assert f"\n\nSteve-Object: {oid.hex}\nSteve-Kind: " in message
        assert steve_repo.read_raw(oid) == stored
        result = runner.invoke(
            cli,
            ["--repo", str(root), "cat-manifest", oid.hex],
            env={"STEVE_PASSPHRASE": PASSPHRASE},
        )
        assert result.exit_code == 0, result.output
        assert show(git, out, f"{commit}:manifest.json") == result.stdout_bytes
        assert json.loads(result.stdout_bytes)["id"] == oid.hex


def test_receipt_attachments_keep_names_modes_and_bytes(
    steve_repo: Repo, history: dict[str, ObjectId], tmp_path: Path, git: Git
) -> None:
    out = tmp_path / "out.git"
    export_git(steve_repo, out, ["main"], bare=True)
    listing = git(out, "ls-tree", "-r", "--full-tree", "main").stdout.decode().splitlines()
    entries = {line.split("\t")[1]: line.split("\t")[0].split() for line in listing}
    assert set(entries) >= {
        "manifest.json",
        "manifest.cbor",
        "outputs/bin/README",
        "outputs/bin/run.sh",
        "outputs/bin/latest",
        "outputs/bin/doc/notes.txt",
        '"outputs/bin/\\303\\251t\\303\\251 .txt"',
        "outputs/manifest.json",
        "logs/0",
        "input_trees/0/README",
        "inputs/src%2Fmain/README",
        "plan",  # the plan is a manifest: a symlink that names it
    }
    assert entries["outputs/bin/run.sh"][0] == "100755"
    assert entries["outputs/bin/latest"][0] == "120000"
    assert entries["plan"][0] == "120000"
    assert show(git, out, "main:plan") == history["n7"].hex.encode()
    assert show(git, out, "main:outputs/bin/latest") == b"run.sh"
    assert show(git, out, "main:logs/0") == LARGE  # a chunked blob, joined
    assert "action_key" not in {p.split("/")[0] for p in entries}  # a digest, not a link
    # a git tree per STEVE tree: same tree, same id, wherever it appears
    bin_tree = git(out, "rev-parse", "main:outputs/bin").stdout
    assert git(out, "rev-parse", "main:input_trees/0").stdout != bin_tree
    assert (
        git(out, "rev-parse", "main:inputs/src%2Fmain").stdout
        == git(out, "rev-parse", "main:input_trees/0").stdout
    )
    # a later manifest attaching the same large blob: streamed, found present, cut off
    log = steve_repo.write_blob(LARGE)
    later = write_manifest(
        steve_repo,
        ObjectType.TEST_CERTIFICATE,
        "t",
        [history["receipt"]],
        time=1_800_000_100,
        body={"verdict": "pass", "evidence": [log.hex]},
        links=[log],
    )
    steve_repo.update_ref("refs/heads/main", later)
    report = export_git(steve_repo, out)
    # commit, root tree, json, cbor: evidence/ equals the receipt's logs/ tree {0: LARGE}
    assert (report.commits, report.objects) == (1, 4)
    assert show(git, out, "main:evidence/0") == LARGE
    assert git(out, "fsck", "--strict", "--full").returncode == 0


def test_incremental_export_writes_only_what_is_new(
    steve_repo: Repo, tmp_path: Path, git: Git
) -> None:
    ids = make_history(steve_repo, {"a": [], "b": ["a"], "c": ["b"]})
    steve_repo.update_ref("refs/heads/main", ids["c"])
    out = tmp_path / "out.git"
    first = export_git(steve_repo, out, bare=True)
    assert (first.commits, [r.status for r in first.refs]) == (3, [RefStatus.CREATED])
    before_map = dict(steve_repo.iter_derived(GIT_MAP))

    d = write_manifest(steve_repo, ObjectType.PLAN, "d", [ids["c"]], time=1_700_001_000)
    e = write_manifest(steve_repo, ObjectType.PLAN, "e", [d], time=1_700_002_000)
    steve_repo.update_ref("refs/heads/main", e)
    second = export_git(steve_repo, out)
    assert second.commits == 2
    assert second.objects == 2 * 4  # per manifest: commit, tree, manifest.json, manifest.cbor
    assert [(r.status, r.old) for r in second.refs] == [(RefStatus.UPDATED, first.refs[0].new)]
    assert len(packs(out)) == 2
    assert git(out, "rev-list", "--count", "main").stdout == b"5\n"
    assert git(out, "rev-list", f"{first.refs[0].new}..main").stdout.decode().split() == [
        second.refs[0].new,
        git(out, "rev-parse", "main~1").stdout.decode().strip(),
    ]
    new_map = dict(steve_repo.iter_derived(GIT_MAP))
    assert set(new_map) - set(before_map) == {d.raw, e.raw}
    assert git(out, "fsck", "--strict", "--full").returncode == 0

    snapshot = files(out)
    third = export_git(steve_repo, out)
    assert (third.commits, third.objects, third.pack) == (0, 0, None)
    assert [r.status for r in third.refs] == [RefStatus.UNCHANGED]
    assert files(out) == snapshot  # not a byte written, not even a ref or a temp file
    assert dict(steve_repo.iter_derived(GIT_MAP)) == new_map


def test_a_new_target_gets_everything_although_the_map_knows_it(
    steve_repo: Repo, tmp_path: Path, git: Git
) -> None:
    ids = make_history(steve_repo, {"a": [], "b": ["a"]})
    steve_repo.update_ref("refs/heads/main", ids["b"])
    one = export_git(steve_repo, tmp_path / "one.git", bare=True)
    two = export_git(steve_repo, tmp_path / "two.git", bare=True)
    assert two.commits == 2 and two.refs[0].new == one.refs[0].new
    assert git(tmp_path / "two.git", "fsck", "--strict", "--full").returncode == 0


def test_non_fast_forward_is_refused_and_writes_nothing(
    steve_repo: Repo, tmp_path: Path, git: Git
) -> None:
    ids = make_history(steve_repo, {"a": [], "b": ["a"], "c": ["a"]})
    steve_repo.update_ref("refs/heads/main", ids["b"])
    out = tmp_path / "out.git"
    first = export_git(steve_repo, out, bare=True)
    steve_repo.update_ref("refs/heads/main", ids["c"])  # main moves sideways
    snapshot = files(out)
    with pytest.raises(NonFastForward) as err:
        export_git(steve_repo, out)
    assert err.value.old == first.refs[0].new
    assert files(out) == snapshot
    forced = export_git(steve_repo, out, force=True)
    assert [(r.status, r.old) for r in forced.refs] == [(RefStatus.FORCED, first.refs[0].new)]
    assert git(out, "rev-list", "--count", "main").stdout == b"2\n"


def test_commits_someone_added_in_the_target_are_not_lost(
    steve_repo: Repo, tmp_path: Path, git: Git
) -> None:
    ids = make_history(steve_repo, {"a": [], "b": ["a"]})
    steve_repo.update_ref("refs/heads/main", ids["a"])
    out = tmp_path / "work"
    export_git(steve_repo, out)
    tree = git(out, "rev-parse", "main^{tree}").stdout.decode().strip()
    extra = git(out, "commit-tree", tree, "-p", "main", "-m", "by hand").stdout.decode().strip()
    git(out, "update-ref", "refs/heads/main", extra)
    steve_repo.update_ref("refs/heads/main", ids["b"])
    with pytest.raises(NonFastForward):
        export_git(steve_repo, out)
    assert git(out, "rev-parse", "main").stdout.decode().strip() == extra
    # a tag that would move is refused too
    steve_repo.create_tag("t", ids["a"])
    export_git(steve_repo, out, ["t"])
    steve_repo.create_tag("t", ids["b"], force=True)
    with pytest.raises(NonFastForward):
        export_git(steve_repo, out, ["t"])


def test_ref_mapping_skips_and_refusals(steve_repo: Repo, tmp_path: Path, git: Git) -> None:
    ids = make_history(steve_repo, {"a": []})
    steve_repo.update_ref("refs/heads/main", ids["a"])
    steve_repo.update_ref("refs/runs/R1/design", ids["a"])
    tree = steve_repo.write_tree(Path(__file__).parent)
    steve_repo.update_ref("refs/heads/tree-branch", tree)
    steve_repo.create_tag("src", tree, message="the sources")
    out = tmp_path / "out.git"
    report = export_git(steve_repo, out, all_refs=True, bare=True)
    got = {r.steve_ref: r.git_ref for r in report.refs}
    assert got == {
        "refs/heads/main": "refs/heads/main",
        "refs/runs/R1/design": "refs/heads/runs/R1/design",
        "refs/tags/src": "refs/tags/src",
    }
    assert [s.steve_ref for s in report.skipped] == ["refs/heads/tree-branch"]
    assert git(out, "cat-file", "-t", "src^{}").stdout == b"tree\n"
    assert git(out, "fsck", "--strict", "--full").returncode == 0
    with pytest.raises(NotRepresentable):
        export_git(steve_repo, out, ["tree-branch"])
    with pytest.raises(RefNotFound):
        export_git(steve_repo, out, ["nope"])


def test_the_default_export_skips_a_branch_holding_a_tree(
    steve_repo: Repo, tmp_path: Path, git: Git
) -> None:
    # the README's tour points main at a tree (`steve update-ref refs/heads/main TREE`);
    # a plain `steve export-git` names no ref, so that branch is skipped and listed, and
    # the run's manifests are exported, as with --all
    ids = make_history(steve_repo, {"a": []})
    steve_repo.update_ref("refs/runs/R1/design", ids["a"])
    steve_repo.update_ref("refs/heads/main", steve_repo.write_tree(Path(__file__).parent))
    out = tmp_path / "out.git"
    report = export_git(steve_repo, out, bare=True, run="R1")
    assert [r.git_ref for r in report.refs] == ["refs/heads/runs/R1/design"]
    assert [s.steve_ref for s in report.skipped] == ["refs/heads/main"]
    assert git(out, "log", "--oneline").returncode == 0
    with pytest.raises(NotRepresentable):  # named, it is refused
        export_git(steve_repo, out, ["main"])


def test_target_that_is_not_a_git_repository(steve_repo: Repo, tmp_path: Path) -> None:
    ids = make_history(steve_repo, {"a": []})
    steve_repo.update_ref("refs/heads/main", ids["a"])
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "file").write_text("not git")
    with pytest.raises(NotAGitRepository):
        export_git(steve_repo, busy)
    with pytest.raises(NotAGitRepository):
        export_git(steve_repo, busy / "file")
    assert sorted(p.name for p in busy.iterdir()) == ["file"]
