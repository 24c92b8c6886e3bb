"""Tree entries git cannot hold (``.git`` in any case and its NTFS/HFS aliases,
a ``.gitmodules`` symlink) cross the bridge escaped, and come back unescaped:
export, the real git's fsck, verify-git and import-git all agree."""

from __future__ import annotations

from pathlib import Path

import pytest

from steve.errors import NotRepresentable
from steve.gitbridge import export_git, import_git, verify_git
from steve.gitbridge.layout import ESCAPE_PREFIX, escape_entry_name, unescape_entry_name
from steve.objects.model import Blob, Mode, ObjectType, Tree, TreeEntry
from steve.objects.oid import ObjectId
from steve.repo import Repo

from .conftest import Git
from .helpers import write_manifest

REFUSED = [".git", ".GIT", ".Git", ".git.", ".git ", "git~1", "GIT~1", ".g\u200cit"]
LOOKS_ESCAPED = [ESCAPE_PREFIX + ".git", ESCAPE_PREFIX + "plain", ESCAPE_PREFIX]


def hostile_tree(repo: Repo) -> ObjectId:
    blob = repo.write(Blob(b"content\n"))
    link = repo.write(Blob(b"elsewhere"))
    inner = repo.write(Tree.from_entries([TreeEntry("HEAD", Mode.FILE, blob)]))
    entries = [TreeEntry(name, Mode.FILE, blob) for name in REFUSED[1:]]
    entries += [TreeEntry(name, Mode.FILE, blob) for name in LOOKS_ESCAPED]
    entries += [
        TreeEntry(".git", Mode.TREE, inner),  # a whole .git directory, pinned by a build
        TreeEntry(".gitmodules", Mode.SYMLINK, link),
        TreeEntry(".gitignore", Mode.SYMLINK, link),  # fine in git: left alone
        TreeEntry("ok.txt", Mode.FILE, blob),
    ]
    sub = repo.write(Tree.from_entries(entries))
    return repo.write(Tree.from_entries([*entries, TreeEntry("sub", Mode.TREE, sub)]))


def test_escape_is_reversible_and_canonical() -> None:
    for name in [*REFUSED, *LOOKS_ESCAPED, "ok", ".gitignore", ".github", "git~2"]:
        escaped = escape_entry_name(name, link=False)
        assert unescape_entry_name(escaped, link=False) == name
    assert escape_entry_name(".gitignore", link=False) == ".gitignore"
    assert escape_entry_name(".gitmodules", link=False) == ".gitmodules"
    assert escape_entry_name(".gitmodules", link=True) == ESCAPE_PREFIX + ".gitmodules"
    # two different names never escape to the same name
    names = [*REFUSED, *LOOKS_ESCAPED, "plain", ".git2"]
    assert len({escape_entry_name(n, link=False) for n in names}) == len(names)
    # what an export never writes is refused on the way back
    with pytest.raises(NotRepresentable):
        unescape_entry_name(ESCAPE_PREFIX + "plain-name", link=False)  # needless escape
    with pytest.raises(NotRepresentable):
        unescape_entry_name(".GIT", link=False)  # git itself would refuse it


def test_a_pinned_tree_with_git_directories_exports_verifies_and_imports(
    steve_repo: Repo, tmp_path: Path, git: Git
) -> None:
    tree = hostile_tree(steve_repo)
    receipt = write_manifest(
        steve_repo,
        ObjectType.BUILD_RECEIPT,
        "r",
        [],
        time=1_700_000_000,
        body={"node": "build", "outputs": {"out": tree.hex}},
        links=[tree],
    )
    steve_repo.update_ref("refs/heads/main", receipt)
    steve_repo.update_ref("refs/tags/tree", tree)
    out = tmp_path / "mirror"
    export_git(steve_repo, out, ["main", "refs/tags/tree"])
    assert git(out, "fsck", "--strict", "--full").returncode == 0
    listing = git(out, "ls-tree", "--name-only", "main:outputs/out").stdout.decode().split("\n")
    assert ESCAPE_PREFIX + ".git" in listing
    assert ESCAPE_PREFIX + ESCAPE_PREFIX + ".git" in listing
    assert ".git" not in listing and ".GIT" not in listing
    assert ".gitignore" in listing
    report = verify_git(out)
    assert report.ok, report.problems
    assert report.commits == 1
    # the attachment and the lightweight tag both import as the very same STEVE tree
    assert import_git(steve_repo, out, "main:outputs/out").tree == tree
    assert import_git(steve_repo, out, "tree").tree == tree


def test_a_needless_escape_in_a_mirror_is_caught(
    steve_repo: Repo, tmp_path: Path, git: Git
) -> None:
    blob = steve_repo.write(Blob(b"x"))
    tree = steve_repo.write(Tree.from_entries([TreeEntry("name", Mode.FILE, blob)]))
    receipt = write_manifest(
        steve_repo,
        ObjectType.BUILD_RECEIPT,
        "r",
        [],
        time=1_700_000_000,
        body={"node": "build", "outputs": {"out": tree.hex}},
        links=[tree],
    )
    steve_repo.update_ref("refs/heads/main", receipt)
    out = tmp_path / "mirror"
    export_git(steve_repo, out, ["main"])
    blob_sha = git(out, "rev-parse", "main:outputs/out/name").stdout.decode().strip()
    forged = git(
        out, "mktree", input=f"100644 blob {blob_sha}\t{ESCAPE_PREFIX}name\n".encode()
    ).stdout.decode().strip()
    with pytest.raises(NotRepresentable):
        import_git(steve_repo, out, forged)
