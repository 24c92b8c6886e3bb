"""Trees <-> tar streams: round trips, modes, symlinks, owners, and refused archives."""

from __future__ import annotations

import io
import os
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from steve.errors import InvalidInput, UnsafeArchive
from steve.exec import store_tar, tar_stream
from steve.objects.model import CHUNK_SIZE, Mode
from steve.repo import Repo

names = st.text(alphabet="abcXYZ019._- ", min_size=1, max_size=8).filter(
    lambda n: n not in (".", "..", ".steve")
)
files = st.tuples(st.binary(max_size=300), st.booleans())
trees = st.recursive(
    st.dictionaries(names, files, max_size=4),
    lambda children: st.dictionaries(names, files | children, max_size=4),
    max_leaves=12,
)


def materialise(root: Path, spec: dict[str, object]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for name, value in spec.items():
        if isinstance(value, dict):
            materialise(root / name, value)
        else:
            assert isinstance(value, tuple)
            data, executable = value
            (root / name).write_bytes(data)
            (root / name).chmod(0o755 if executable else 0o644)


def without_root_entry(chunks: Iterator[bytes]) -> list[bytes]:
    """tar_stream's output as get_archive gives it: the same members, minus ``/``."""
    out = io.BytesIO()
    with (
        tarfile.open(fileobj=io.BytesIO(b"".join(chunks)), mode="r:") as src,
        tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as dst,
    ):
        for m in src.getmembers():
            if m.name not in ("/", ""):  # tarfile reads the root entry "/" as ""
                dst.addfile(m, src.extractfile(m) if m.isreg() else None)
    return [out.getvalue()[i : i + 1000] for i in range(0, len(out.getvalue()), 1000)]


@settings(max_examples=40)
@given(trees)
def test_tree_tar_tree_round_trip(spec: dict[str, object]) -> None:
    repo = Repo.memory()
    with tempfile.TemporaryDirectory() as tmp:
        materialise(Path(tmp) / "d", spec)
        os.symlink("../elsewhere", Path(tmp) / "d" / "zz-link")
        tree = repo.write_tree(Path(tmp) / "d")
    name, back = store_tar(repo, without_root_entry(tar_stream(repo, {"out": tree}, uid=7, gid=8)))
    assert name == "out"
    assert back == tree


def test_tar_stream_entries_owners_and_modes(repo: Repo, tmp_path: Path) -> None:
    materialise(tmp_path / "d", {"x": (b"exe", True), "s": {"f": (b"data", False)}})
    os.symlink("x", tmp_path / "d" / "l")
    tree = repo.write_tree(tmp_path / "d")
    blob = repo.write_blob(b"plain")
    data = b"".join(tar_stream(repo, {"in": tree, "a/b": blob}, uid=5, gid=6))
    tar = tarfile.open(fileobj=io.BytesIO(data))  # noqa: SIM115 (read below, in memory)
    members = {m.name: m for m in tar.getmembers()}
    # the root entry "/" (tarfile strips a directory's trailing slash: "")
    assert list(members) == ["", "a", "a/b", "in", "in/l", "in/s", "in/s/f", "in/x"]
    assert all((m.uid, m.gid, m.mtime) == (5, 6, 0) for m in members.values())
    assert members[""].isdir()
    assert members["in/x"].mode == 0o755 and members["in/s/f"].mode == 0o644
    assert members["in/l"].issym() and members["in/l"].linkname == "x"
    f = tar.extractfile(members["a/b"])
    assert f is not None and f.read() == b"plain"


def test_large_blobs_stream_in_chunks(repo: Repo) -> None:
    data = os.urandom(2 * CHUNK_SIZE + 5)
    blob = repo.write_blob(data)
    chunks = list(tar_stream(repo, {"big": blob}, uid=0, gid=0))
    assert max(len(c) for c in chunks) <= CHUNK_SIZE
    _, back = store_tar(repo, without_root_entry(iter(chunks)))
    assert back == blob


@pytest.mark.parametrize("bad", ["/abs", "../up", "a/../b", "", "a//b", "./a"])
def test_tar_stream_refuses_bad_input_names(repo: Repo, bad: str) -> None:
    blob = repo.write_blob(b"")
    with pytest.raises(InvalidInput):
        list(tar_stream(repo, {bad: blob}, uid=0, gid=0))


def archive(*members: tuple[tarfile.TarInfo, bytes | None]) -> list[bytes]:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return [out.getvalue()]


def entry(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    return info


@pytest.mark.parametrize(
    ("members", "why"),
    [
        ([(entry("/etc/passwd"), b"x")], "absolute"),
        ([(entry("out", tarfile.DIRTYPE), None), (entry("out/../../x"), b"x")], "escapes"),
        (
            [(entry("out", tarfile.DIRTYPE), None), (entry("out/dev", tarfile.CHRTYPE), None)],
            "device",
        ),
        ([(entry("out", tarfile.DIRTYPE), None), (entry("out/p", tarfile.FIFOTYPE), None)], "fifo"),
        (
            [
                (entry("out", tarfile.DIRTYPE), None),
                (entry("out/h", tarfile.LNKTYPE, "/etc/x"), None),
            ],
            "hard link",
        ),
        (
            [
                (entry("out", tarfile.DIRTYPE), None),
                (entry("out/h", tarfile.LNKTYPE, "out/nope"), None),
            ],
            "unknown",
        ),
        ([(entry("a"), b"1"), (entry("b"), b"2")], "top-level"),
        ([(entry("out", tarfile.SYMTYPE, "/etc"), None)], "file or directory"),
        ([(entry("out", tarfile.DIRTYPE), None), (entry("out/.steve"), b"x")], "invalid"),
        ([], "empty"),
    ],
)
def test_unsafe_archives_are_refused(
    repo: Repo, members: list[tuple[tarfile.TarInfo, bytes | None]], why: str
) -> None:
    before = repo.backend.count()
    with pytest.raises(UnsafeArchive) as info:
        store_tar(repo, archive(*members))
    assert why in str(info.value)
    assert repo.backend.count() == before  # nothing of a refused archive is stored


def test_symlinks_are_kept_and_hard_links_share_content(repo: Repo) -> None:
    name, oid = store_tar(
        repo,
        archive(
            (entry("out", tarfile.DIRTYPE), None),
            (entry("out/f"), b"content"),
            (entry("out/h", tarfile.LNKTYPE, "out/f"), None),
            (entry("out/s", tarfile.SYMTYPE, "/etc/shadow"), None),
        ),
    )
    assert name == "out"
    listing = {e.path: e for e in repo.ls_tree(oid)}
    assert listing["h"].oid == listing["f"].oid
    assert repo.read_blob(listing["s"].oid) == b"/etc/shadow"
    assert listing["s"].mode.git == "120000"


def test_a_single_file_output_is_a_blob(repo: Repo) -> None:
    name, oid = store_tar(repo, archive((entry("result.txt"), b"42\n")))
    assert name == "result.txt"
    assert repo.read_blob(oid) == b"42\n"


def test_garbage_is_refused(repo: Repo) -> None:
    with pytest.raises(UnsafeArchive):
        store_tar(repo, [b"not a tar at all" * 100])


def deep_archive(depth: int) -> list[bytes]:
    """``out/d/d/.../d/leaf``: ``depth`` directories below ``out``."""
    members: list[tuple[tarfile.TarInfo, bytes | None]] = [(entry("out/", tarfile.DIRTYPE), None)]
    path = "out"
    for _ in range(depth):
        path += "/d"
        members.append((entry(path + "/", tarfile.DIRTYPE), None))
    members.append((entry(path + "/leaf"), b"deep\n"))
    return archive(*members)


def test_a_deeply_nested_output_is_stored_and_streamed_back_without_recursion(
    repo: Repo,
) -> None:
    # 1,200 levels gave RecursionError (issue 12 item 8); no recursion limit is raised
    name, tree = store_tar(repo, deep_archive(1200))
    assert name == "out"
    node, levels = tree, 0
    while True:  # walk down by hand (Repo.ls_tree(recursive=True) recurses)
        (only,) = repo.ls_tree(node)
        if only.path == "leaf":
            assert repo.read_blob(only.oid) == b"deep\n"
            break
        node, levels = only.oid, levels + 1
    assert levels == 1200
    stream = b"".join(tar_stream(repo, {"in": tree}, uid=1, gid=1))
    with tarfile.open(fileobj=io.BytesIO(stream)) as members:
        assert sum(m.isdir() for m in members.getmembers()) == 1 + 1 + 1200  # "/", in/, d...


def test_a_deeply_nested_output_is_listed_recursively_without_recursion(
    repo: Repo,
) -> None:
    """`steve ls-tree -r` (and replay, which lists a step's outputs) of a 1,200-deep
    output gave RecursionError, exit 10."""
    _, tree = store_tar(repo, deep_archive(1200))
    deep = "/".join(["d"] * 1200)
    shallow = store_tar(
        repo,
        archive(
            (entry("out/", tarfile.DIRTYPE), None),
            (entry("out/a/", tarfile.DIRTYPE), None),
            (entry("out/a/x"), b"1"),
            (entry("out/b"), b"2"),
            (entry("out/c/", tarfile.DIRTYPE), None),
            (entry("out/c/y"), b"3"),
        ),
    )[1]
    assert [(e.path, e.mode) for e in repo.ls_tree(tree, recursive=True)] == [
        (f"{deep}/leaf", Mode.FILE)
    ]
    assert [e.path for e in repo.ls_tree(shallow, recursive=True, prefix="p/")] == [
        "p/a/x",
        "p/b",
        "p/c/y",
    ]


def test_nesting_beyond_the_depth_limit_is_a_typed_error(repo: Repo) -> None:
    with pytest.raises(UnsafeArchive, match="nested deeper than 100 directory levels"):
        store_tar(repo, deep_archive(101), max_depth=100)
    name, _ = store_tar(repo, deep_archive(99), max_depth=100)
    assert name == "out"
