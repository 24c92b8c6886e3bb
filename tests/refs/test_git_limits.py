"""Refs git could not hold are refused when they would be created: a component or
name too long for a file, and directory/file conflicts (``ok`` and ``ok/sub``)."""

from __future__ import annotations

import pytest

from steve.errors import RefNameConflict, RefNameTooLong
from steve.objects.model import Blob
from steve.refs.names import MAX_REF_BYTES, MAX_REF_COMPONENT_BYTES
from steve.repo import Repo


def test_a_5000_character_name_is_refused(any_repo: Repo) -> None:
    oid = any_repo.write(Blob(b"x"))
    with pytest.raises(RefNameTooLong):
        any_repo.update_ref("refs/heads/" + "a" * 5000, oid)
    with pytest.raises(RefNameTooLong):  # many short components, too long in all
        any_repo.update_ref("refs/heads/" + "/".join(["abcdefgh"] * 120), oid)
    with pytest.raises(RefNameTooLong):  # bytes, not characters, count
        any_repo.update_ref("refs/tags/" + "\u00e9" * (MAX_REF_COMPONENT_BYTES // 2 + 1), oid)
    with pytest.raises(RefNameTooLong):
        any_repo.set_symbolic_ref("refs/heads/" + "s" * 300, "refs/heads/main")
    assert any_repo.list_refs("refs/") == []
    # at the limits, fine
    longest = "refs/heads/" + "b" * MAX_REF_COMPONENT_BYTES
    any_repo.update_ref(longest, oid)
    deep = "refs/x/" + "/".join(["c" * 99] * ((MAX_REF_BYTES - 7) // 100))
    assert len(deep) <= MAX_REF_BYTES
    any_repo.update_ref(deep, oid)
    assert {r.name for r in any_repo.list_refs("refs/")} == {longest, deep}


def test_directory_file_conflicts_are_refused(any_repo: Repo) -> None:
    oid = any_repo.write(Blob(b"x"))
    any_repo.update_ref("refs/heads/ok", oid)
    with pytest.raises(RefNameConflict):
        any_repo.update_ref("refs/heads/ok/sub", oid)
    any_repo.update_ref("refs/heads/dir/leaf", oid)
    with pytest.raises(RefNameConflict):
        any_repo.update_ref("refs/heads/dir", oid)
    with pytest.raises(RefNameConflict):
        any_repo.set_symbolic_ref("refs/heads/dir", "refs/heads/ok")
    # moving an existing ref, siblings and similar prefixes are fine
    any_repo.update_ref("refs/heads/ok", any_repo.write(Blob(b"y")))
    any_repo.update_ref("refs/heads/ok2", oid)
    any_repo.update_ref("refs/heads/dir2/sub", oid)
    # once the other one is gone, the name is free
    any_repo.delete_ref("refs/heads/ok")
    any_repo.update_ref("refs/heads/ok/sub", oid)
    assert {r.name for r in any_repo.list_refs("refs/")} == {
        "refs/heads/ok/sub",
        "refs/heads/ok2",
        "refs/heads/dir/leaf",
        "refs/heads/dir2/sub",
    }
