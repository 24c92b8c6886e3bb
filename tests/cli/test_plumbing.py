"""Every plumbing command through click's CliRunner; results checked through the library."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import blake3
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from steve.cli.app import load_commands
from steve.cli.main import cli
from steve.objects.model import (
    Blob,
    Manifest,
    Mode,
    ObjectType,
    Tag,
    Tree,
    TreeEntry,
    encode_object,
    hash_object,
)
from steve.objects.oid import ObjectId
from steve.repo import Repo

from .conftest import PASSPHRASE, Invoke

OpenRepo = Callable[[], AbstractContextManager[Repo]]
ZERO = "0" * 64


def manifest(parents: tuple[ObjectId, ...] = (), n: int = 0) -> Manifest:
    return Manifest(ObjectType.DESIGN, 1, parents, (), 1_700_000_000 + n, 0, {"n": n})


def history(open_repo: OpenRepo, n: int = 3) -> list[ObjectId]:
    """A linear history of ``n`` manifests on refs/heads/main (one update per commit)."""
    ids: list[ObjectId] = []
    with open_repo() as repo:
        for i in range(n):
            ids.append(repo.write(manifest(tuple(ids[-1:]), i)))
            repo.update_ref("refs/heads/main", ids[-1], message=f"step {i}")
    return ids


# --- init ---------------------------------------------------------------------------------


def test_init_creates_an_encrypted_repository(tmp_path: Path, invoke: Invoke) -> None:
    target = tmp_path / "fresh"
    res = invoke("init", str(target), repo=None)
    assert res.exit_code == 0, res.stderr
    assert res.lines == [f"Initialized empty STEVE repository in {target / '.steve'}"]
    with Repo.open(target, passphrase=PASSPHRASE) as repo:
        assert repo.read_symbolic_ref("HEAD") == "refs/heads/main"
        assert list(repo.iter_objects()) == []
    invoke("init", str(target), repo=None).assert_error(3, "STEVE-REPO-002")


def test_init_without_passphrase_fails_cleanly(tmp_path: Path, invoke: Invoke) -> None:
    invoke("init", str(tmp_path / "x"), repo=None, passphrase=None).assert_error(4, "STEVE-KEY-002")
    assert not (tmp_path / "x" / ".steve").exists()


# --- hash-object --------------------------------------------------------------------------


def test_hash_object_stdin_without_w_stores_nothing(invoke: Invoke, open_repo: OpenRepo) -> None:
    data = b"hello\nworld\n"
    res = invoke("hash-object", "--stdin", input=data)
    assert res.exit_code == 0, res.stderr
    oid = ObjectId.from_hex(res.lines[0])
    assert oid == hash_object(Blob(data))[0]
    with open_repo() as repo:
        assert not repo.has_object(oid)


def test_hash_object_w_files_and_stdin_paths(
    tmp_path: Path, invoke: Invoke, open_repo: OpenRepo
) -> None:
    contents = [b"", b"one", b"\x00\xff binary\n\n", b"x" * 5000]
    paths = []
    for i, data in enumerate(contents):
        p = tmp_path / f"f{i}"
        p.write_bytes(data)
        paths.append(p)
    res = invoke("hash-object", "-w", *map(str, paths))
    assert res.exit_code == 0, res.stderr
    ids = [ObjectId.from_hex(line) for line in res.lines]
    assert len(ids) == len(contents)
    res2 = invoke("hash-object", "-w", "--stdin-paths", input="".join(f"{p}\n" for p in paths))
    assert res2.exit_code == 0, res2.stderr
    assert res2.lines == res.lines
    with open_repo() as repo:
        for oid, data in zip(ids, contents, strict=True):
            assert repo.read_blob(oid) == data
            assert repo.object_type(oid) is ObjectType.BLOB


def test_hash_object_typed_input(invoke: Invoke, open_repo: OpenRepo) -> None:
    blob_id = hash_object(Blob(b"x"))[0]
    tree = Tree.from_entries([TreeEntry("x", Mode.FILE, blob_id)])
    res = invoke("hash-object", "-w", "-t", "tree", "--stdin", input=encode_object(tree))
    assert res.exit_code == 0, res.stderr
    with open_repo() as repo:
        assert repo.read_object(ObjectId.from_hex(res.lines[0])) == tree
    # a blob's encoding is not a tree; garbage is not an object; unknown types are refused
    invoke("hash-object", "-t", "tree", "--stdin", input=encode_object(Blob(b"x"))).assert_error(
        6, "STEVE-INPUT-001"
    )
    invoke("hash-object", "-t", "tree", "--stdin", input=b"\xff\x00junk").assert_error(
        6, "STEVE-OBJ-002"
    )
    invoke("hash-object", "-t", "commit", "--stdin", input=b"x").assert_error(6, "STEVE-OBJ-002")


def test_hash_object_missing_file(tmp_path: Path, invoke: Invoke) -> None:
    invoke("hash-object", str(tmp_path / "nope")).assert_error(6, "STEVE-INPUT-001")
    invoke("hash-object", "--stdin-paths", input=f"{tmp_path / 'nope'}\n").assert_error(
        6, "STEVE-INPUT-001"
    )


# --- cat-file -----------------------------------------------------------------------------


def test_cat_file_modes(invoke: Invoke, open_repo: OpenRepo) -> None:
    ids = history(open_repo, 2)
    with open_repo() as repo:
        blob = repo.write_blob(b"payload\n")
        tag = repo.create_tag("v1", ids[1], message="release", now=1_700_000_000, tz=120)
        raw_manifest = repo.read_raw(ids[1])
    assert invoke("cat-file", "-t", blob.hex).lines == ["blob"]
    assert invoke("cat-file", "-t", "main").lines == ["design"]
    assert invoke("cat-file", "-t", "v1").lines == ["tag"]
    assert invoke("cat-file", "-s", blob.hex).lines == ["8"]
    assert invoke("cat-file", "-s", "main").lines == [str(len(raw_manifest))]
    assert invoke("cat-file", "-p", blob.hex[:10]).stdout == b"payload\n"
    shown = json.loads(invoke("cat-file", "-p", "main").stdout)
    assert shown["parents"] == [ids[0].hex] and shown["body"] == {"n": 1}
    tag_lines = invoke("cat-file", "-p", "v1").lines
    assert tag_lines[:3] == [f"object {ids[1].hex}", "type design", "tag v1"]
    assert tag_lines[3].endswith("1700000000 +0200") and tag_lines[-1] == "release"
    for oid in (blob, ids[1], tag):
        raw = invoke("cat-file", "--raw", oid.hex).stdout
        assert blake3.blake3(raw).hexdigest() == oid.hex  # `--raw | b3sum` == id
    assert invoke("cat-file", "-e", blob.hex).exit_code == 0
    missing = invoke("cat-file", "-e", ObjectId.of(b"nothing").hex)
    assert missing.exit_code == 1 and missing.stdout == b""
    invoke("cat-file", "-t", ObjectId.of(b"nothing").hex).assert_error(5, "STEVE-REV-001")
    invoke("cat-file", "-p", "nosuchref").assert_error(5, "STEVE-REV-001")
    assert invoke("cat-file", "-t", "-s", blob.hex).exit_code == 2


def parse_batch(out: bytes, content: bool) -> list[tuple[str, str, int | None, bytes | None]]:
    """Parse git's framing: '<id> <type> <size>\\n[<content>\\n]' or '<name> missing\\n'."""
    records = []
    pos = 0
    while pos < len(out):
        end = out.index(b"\n", pos)
        header = out[pos:end].decode().split(" ")
        pos = end + 1
        if header[-1] in ("missing", "ambiguous"):
            records.append((" ".join(header[:-1]), header[-1], None, None))
            continue
        oid, kind, size = header[0], header[1], int(header[2])
        body = None
        if content:
            body = out[pos : pos + size]
            assert out[pos + size : pos + size + 1] == b"\n"
            pos += size + 1
        records.append((oid, kind, size, body))
    return records


def test_cat_file_batch_and_batch_check(invoke: Invoke, open_repo: OpenRepo) -> None:
    ids = history(open_repo, 2)
    with open_repo() as repo:
        blobs = [repo.write_blob(d) for d in (b"", b"a\nb\n", b"\x00\n\xff")]
        expected = {o: (repo.object_type(o).value, b"".join(repo.iter_content(o))) for o in blobs}
        expected[ids[0]] = ("design", repo.read_raw(ids[0]))
    ghost = ObjectId.of(b"ghost").hex
    query = [*(o.hex for o in blobs), "main~1", ghost, "no-such-ref", ""]
    res = invoke("cat-file", "--batch", input="\n".join(query) + "\n")
    assert res.exit_code == 0, res.stderr
    records = parse_batch(res.stdout, content=True)
    assert [r[0] for r in records] == [*(o.hex for o in blobs), ids[0].hex, ghost, "no-such-ref"]
    for oid_hex, kind, size, body in records[:4]:
        want_kind, want_body = expected[ObjectId.from_hex(oid_hex)]
        assert (kind, size, body) == (want_kind, len(want_body), want_body)
    assert records[4][1:] == ("missing", None, None)
    assert records[5][1:] == ("missing", None, None)
    check = parse_batch(invoke("cat-file", "--batch-check", input="\n".join(query)).stdout, False)
    assert [(r[0], r[1], r[2]) for r in check] == [(r[0], r[1], r[2]) for r in records]


def test_cat_file_batch_all_objects(invoke: Invoke, open_repo: OpenRepo) -> None:
    history(open_repo, 3)
    with open_repo() as repo:
        repo.write_blob(b"loose")
        infos = {i.oid.hex: (i.type.value, i.size) for i in repo.iter_objects()}
    res = invoke("cat-file", "--batch-check", "--batch-all-objects")
    assert res.exit_code == 0, res.stderr
    got = {r[0]: (r[1], r[2]) for r in parse_batch(res.stdout, content=False)}
    assert got == infos
    full = parse_batch(invoke("cat-file", "--batch", "--batch-all-objects").stdout, True)
    assert {r[0] for r in full} == set(infos)
    assert invoke("cat-file", "--batch-all-objects").exit_code == 2


# --- trees ----------------------------------------------------------------------------------


def test_write_tree_and_ls_tree(tmp_path: Path, invoke: Invoke, open_repo: OpenRepo) -> None:
    src = tmp_path / "src"
    (src / "sub" / "deeper").mkdir(parents=True)
    (src / "a.txt").write_bytes(b"A\n")
    (src / "run.sh").write_bytes(b"#!/bin/sh\n")
    (src / "run.sh").chmod(0o755)
    (src / "sub" / "b.bin").write_bytes(b"\x00\x01")
    (src / "sub" / "deeper" / "c").write_bytes(b"")
    os.symlink("a.txt", src / "link")
    res = invoke("write-tree", str(src))
    assert res.exit_code == 0, res.stderr
    tree_id = ObjectId.from_hex(res.lines[0])
    with open_repo() as repo:
        listed = {e.path: (e.mode, e.oid) for e in repo.ls_tree(tree_id, recursive=True)}
        assert set(listed) == {"a.txt", "run.sh", "link", "sub/b.bin", "sub/deeper/c"}
        assert listed["run.sh"][0] is Mode.EXECUTABLE and listed["link"][0] is Mode.SYMLINK
        assert repo.read_blob(listed["sub/b.bin"][1]) == b"\x00\x01"
        assert repo.read_blob(listed["link"][1]) == b"a.txt"
        top = repo.read_object(tree_id)
        assert isinstance(top, Tree)
    flat = invoke("ls-tree", tree_id.hex)
    assert [line.split("\t")[1] for line in flat.lines] == [e.name for e in top.entries]
    for line, e in zip(flat.lines, top.entries, strict=True):
        meta, _ = line.split("\t")
        assert meta.split(" ") == [e.mode.git, e.mode.object_type.value, e.oid.hex]
    rec = invoke("ls-tree", "-r", tree_id.hex)
    assert {line.split("\t")[1] for line in rec.lines} == set(listed)
    names = invoke("ls-tree", "-r", "--name-only", "-z", tree_id.hex).stdout
    assert names.endswith(b"\0") and set(names[:-1].decode().split("\0")) == set(listed)
    invoke("ls-tree", listed["a.txt"][1].hex).assert_error(6, "STEVE-OBJ-004")


# --- refs -------------------------------------------------------------------------------------


def test_update_ref_compare_and_swap(invoke: Invoke, open_repo: OpenRepo) -> None:
    with open_repo() as repo:
        a, b, c = (repo.write(manifest((), i)) for i in range(3))
    ok = invoke("update-ref", "refs/heads/x", a.hex, "")  # "" = must not exist
    assert ok.exit_code == 0, ok.stderr
    invoke("update-ref", "refs/heads/x", b.hex, "").assert_error(7, "STEVE-REF-003")
    assert invoke("update-ref", "refs/heads/y", b.hex, ZERO).exit_code == 0
    invoke("update-ref", "refs/heads/y", c.hex, ZERO).assert_error(7, "STEVE-REF-003")
    invoke("update-ref", "refs/heads/x", c.hex, b.hex).assert_error(7, "STEVE-REF-003")
    assert invoke("update-ref", "-m", "move", "refs/heads/x", c.hex, a.hex).exit_code == 0
    assert invoke("update-ref", "refs/heads/z", "x").exit_code == 0  # NEW is a revision
    with open_repo() as repo:
        assert repo.rev_parse("refs/heads/x") == c
        assert repo.rev_parse("refs/heads/y") == b
        assert repo.rev_parse("refs/heads/z") == c
        assert repo.reflog("refs/heads/x")[0].message == "move"
    invoke("update-ref", "-d", "refs/heads/x", b.hex).assert_error(7, "STEVE-REF-003")
    assert invoke("update-ref", "-d", "refs/heads/x", c.hex).exit_code == 0
    assert invoke("update-ref", "-d", "refs/heads/y").exit_code == 0
    with open_repo() as repo:
        assert {r.name for r in repo.list_refs()} == {"refs/heads/z"}
    invoke("update-ref", "-d", "refs/heads/y").assert_error(5, "STEVE-REF-002")
    invoke("update-ref", "refs/heads/a..b", a.hex).assert_error(6, "STEVE-REF-001")
    invoke("update-ref", "main", a.hex).assert_error(6, "STEVE-REF-001")
    invoke("update-ref", "refs/heads/q", "nosuch").assert_error(5, "STEVE-REV-001")
    invoke("update-ref", "refs/heads/q", ObjectId.of(b"?").hex).assert_error(5, "STEVE-REV-001")


def test_symbolic_ref(invoke: Invoke, open_repo: OpenRepo) -> None:
    ids = history(open_repo, 1)
    assert invoke("symbolic-ref", "HEAD").lines == ["refs/heads/main"]
    assert invoke("symbolic-ref", "--short", "HEAD").lines == ["main"]
    assert invoke("symbolic-ref", "HEAD", "refs/heads/dev").exit_code == 0
    with open_repo() as repo:
        assert repo.read_symbolic_ref("HEAD") == "refs/heads/dev"
        head = repo.head()
        assert head is not None and head.target is None  # unborn branch
    not_sym = invoke("symbolic-ref", "refs/heads/main")
    assert not_sym.exit_code == 1 and "Traceback" not in not_sym.stderr
    assert invoke("symbolic-ref", "-q", "refs/heads/main").stderr == ""
    invoke("symbolic-ref", "HEAD", "bad..name").assert_error(6, "STEVE-REF-001")
    assert invoke("symbolic-ref", "refs/alias", "refs/heads/main").exit_code == 0
    with open_repo() as repo:
        assert repo.rev_parse("refs/alias") == ids[0]
    assert invoke("symbolic-ref", "-d", "refs/alias").exit_code == 0
    with open_repo() as repo:
        assert repo.refs.read("refs/alias") is None


def test_show_ref_and_for_each_ref(invoke: Invoke, open_repo: OpenRepo) -> None:
    ids = history(open_repo, 2)
    with open_repo() as repo:
        repo.update_ref("refs/heads/dev", ids[0], None)
        tag = repo.create_tag("v1", ids[1], message="m")
        expected = {r.name: r.target for r in repo.list_refs()}
    assert set(expected) == {"refs/heads/main", "refs/heads/dev", "refs/tags/v1"}
    res = invoke("show-ref")
    got = {name: ObjectId.from_hex(oid) for oid, name in (line.split(" ") for line in res.lines)}
    assert got == expected
    assert [line.split(" ")[1] for line in invoke("show-ref", "--heads").lines] == sorted(
        n for n in expected if n.startswith("refs/heads/")
    )
    assert invoke("show-ref", "--tags", "--hash").lines == [tag.hex]
    assert invoke("show-ref", "main").lines == [f"{ids[1].hex} refs/heads/main"]
    assert invoke("show-ref", "--head", "main").lines[0] == f"{ids[1].hex} HEAD"
    assert invoke("show-ref", "nothing-matches").exit_code == 1
    fmt = invoke("for-each-ref", "--format", "%(refname:short)|%(objecttype)|%(objectname)")
    rows = [line.split("|") for line in fmt.lines]
    assert {r[0] for r in rows} == {"main", "dev", "v1"}
    with open_repo() as repo:
        for short, kind, oid in rows:
            assert repo.rev_parse(short).hex == oid
            assert repo.object_type(ObjectId.from_hex(oid)).value == kind
    only_tags = invoke("for-each-ref", "--format=%(refname)", "refs/tags")
    assert only_tags.lines == ["refs/tags/v1"]
    invoke("for-each-ref", "--format", "%(bogus)").assert_error(6, "STEVE-INPUT-001")
    # --json: one object per line, the documented fields (docs/cli.md)
    rows = [json.loads(line) for line in invoke("show-ref", "--json").lines]
    assert rows == [{"ref": n, "id": expected[n].hex} for n in sorted(expected)]
    rows = [json.loads(line) for line in invoke("for-each-ref", "--json", "refs/tags/").lines]
    assert rows == [
        {"ref": "refs/tags/v1", "short": "v1", "id": tag.hex, "type": "tag", "symref": None}
    ]
    assert invoke("for-each-ref", "--json", "--format", "%(refname)").exit_code == 2
    # whole path components only, as git
    assert invoke("for-each-ref", "--format=%(refname)", "refs/heads/ma").lines == []
    assert invoke("for-each-ref", "--format=%(refname)", "refs/heads/m*").lines == [
        "refs/heads/main"
    ]


def test_rev_parse(invoke: Invoke, open_repo: OpenRepo) -> None:
    ids = history(open_repo, 3)
    assert invoke("rev-parse", "main", "main~2", "HEAD^").lines == [
        ids[2].hex,
        ids[0].hex,
        ids[1].hex,
    ]
    assert invoke("rev-parse", "--verify", "main@{1}").lines == [ids[1].hex]
    assert invoke("rev-parse", "--short", "main").lines == [ids[2].hex[:12]]
    assert invoke("rev-parse", "--short=7", "main").lines == [ids[2].hex[:7]]
    assert invoke("rev-parse", "--symbolic-full-name", "main").lines == ["refs/heads/main"]
    assert invoke("rev-parse", "--symbolic-full-name", "HEAD").lines == ["refs/heads/main"]
    invoke("rev-parse", "nope").assert_error(5, "STEVE-REV-001")
    invoke("rev-parse", "main^{nonsense}").assert_error(6, "STEVE-REV-003")
    invoke("rev-parse", "main^{tree}").assert_error(6, "STEVE-OBJ-004")
    quiet = invoke("rev-parse", "--verify", "-q", "nope")
    assert quiet.exit_code == 1 and quiet.stderr == ""
    assert invoke("rev-parse", "--verify", "main", "main~1").exit_code == 2


def test_reflog(invoke: Invoke, open_repo: OpenRepo) -> None:
    ids = history(open_repo, 3)
    res = invoke("reflog", "main")
    assert res.lines == [f"{ids[2 - i].hex[:12]} main@{{{i}}}: step {2 - i}" for i in range(3)]
    rows = [json.loads(line) for line in invoke("reflog", "--json", "main").lines]
    with open_repo() as repo:
        entries = repo.reflog("refs/heads/main")
    assert [(r["new"], r["old"], r["message"]) for r in rows] == [
        (e.new.hex if e.new else None, e.old.hex if e.old else None, e.message) for e in entries
    ]
    assert rows[0]["who"] == "steve <steve@localhost>"  # written by the library's identity
    head_rows = invoke("reflog").lines
    assert len(head_rows) == 3 and head_rows[0].startswith(ids[2].hex[:12])


def test_tag(invoke: Invoke, open_repo: OpenRepo) -> None:
    ids = history(open_repo, 2)
    res = invoke("tag", "-a", "-m", "first release", "v1", "main~1")
    assert res.exit_code == 0, res.stderr
    tag_id = ObjectId.from_hex(res.lines[0])
    assert invoke("tag", "light").exit_code == 0  # HEAD
    with open_repo() as repo:
        obj = repo.read_object(tag_id)
        assert isinstance(obj, Tag)
        assert (obj.object, obj.name, obj.message) == (ids[0], "v1", "first release")
        assert obj.tagger.name == "Tess Ter" and obj.tagger.email == "tess@example.org"
        assert repo.rev_parse("refs/tags/v1") == tag_id
        assert repo.rev_parse("refs/tags/light") == ids[1]
    assert sorted(invoke("tag", "-l").lines) == ["light", "v1"]
    invoke("tag", "v1", "main").assert_error(7, "STEVE-REF-003")
    assert invoke("tag", "-f", "v1", "main").exit_code == 0
    assert invoke("tag", "-d", "light").exit_code == 0
    with open_repo() as repo:
        assert repo.rev_parse("refs/tags/v1") == ids[1]
        assert repo.refs.read("refs/tags/light") is None
    invoke("tag", "-d", "light").assert_error(5, "STEVE-REF-002")
    invoke("tag", "bad..name").assert_error(6, "STEVE-REF-001")
    assert invoke("tag", "-a", "nomessage").exit_code == 2


def test_annotated_tags_take_source_date_epoch(
    invoke: Invoke, open_repo: OpenRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    history(open_repo, 1)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    first = invoke("tag", "-a", "-m", "release", "v1", "main")
    assert invoke("tag", "-d", "v1").exit_code == 0
    again = invoke("tag", "-a", "-m", "release", "v1", "main")
    assert first.lines == again.lines  # the same tag object: a reproducible id
    with open_repo() as repo:
        obj = repo.read_object(ObjectId.from_hex(first.lines[0]))
        assert isinstance(obj, Tag) and (obj.time, obj.tz) == (1700000000, 0)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    invoke("tag", "-a", "-m", "release", "v2", "main").assert_error(6, "STEVE-INPUT-001")


# --- maintenance -------------------------------------------------------------------------------


def test_fsck_clean_and_broken(invoke: Invoke, open_repo: OpenRepo) -> None:
    history(open_repo, 2)
    clean = invoke("fsck")
    assert clean.exit_code == 0, clean.stderr
    summary = json.loads(invoke("fsck", "--json").lines[-1])
    assert summary["problems"] == {} and summary["objects"] == 2
    with open_repo() as repo:
        ghost = ObjectId.of(b"a parent that was never stored")
        repo.write(manifest((ghost,), 99))
    broken = invoke("fsck")
    broken.assert_error(9, "STEVE-FSCK-001")
    rows = [json.loads(line) for line in invoke("fsck", "--json").lines]
    assert any(r.get("problem") == "missing" and r.get("id") == ghost.hex for r in rows[:-1])
    assert rows[-1]["problems"] == {"missing": 1}


def test_gc_prune_and_dry_run(invoke: Invoke, open_repo: OpenRepo) -> None:
    ids = history(open_repo, 2)
    with open_repo() as repo:
        loose = repo.write_blob(b"unreachable")
    assert invoke("gc").exit_code == 0  # default grace period keeps the fresh object
    dry = invoke("gc", "--prune=now", "--dry-run")
    assert dry.exit_code == 0, dry.stderr
    assert "would prune 1" in dry.lines[0]
    with open_repo() as repo:
        assert repo.has_object(loose)
    assert invoke("gc", "--prune", "now").exit_code == 0
    with open_repo() as repo:
        assert not repo.has_object(loose)
        assert all(repo.has_object(o) for o in ids)
        assert repo.fsck().ok
    invoke("gc", "--prune", "whenever").assert_error(6, "STEVE-INPUT-001")


# --- keys and repository errors ------------------------------------------------------------------


def test_wrong_and_missing_passphrase(invoke: Invoke) -> None:
    invoke("show-ref", passphrase="not the passphrase").assert_error(4, "STEVE-KEY-001")
    invoke("show-ref", passphrase=None).assert_error(4, "STEVE-KEY-002")


def test_not_a_repository(tmp_path: Path, invoke: Invoke) -> None:
    invoke("rev-parse", "HEAD", repo=tmp_path / "empty").assert_error(3, "STEVE-REPO-001")


def test_unlock_and_lock_in_process(invoke: Invoke, open_repo: OpenRepo) -> None:
    ids = history(open_repo, 1)
    try:
        assert invoke("unlock", "--ttl", "60s").exit_code == 0
        res = invoke("cat-file", "-t", ids[0].hex, passphrase=None)
        assert res.exit_code == 0, res.stderr
        assert res.lines == ["design"]
    finally:
        assert invoke("lock").exit_code == 0
    invoke("cat-file", "-t", ids[0].hex, passphrase=None).assert_error(4, "STEVE-KEY-002")
    invoke("unlock", "--ttl", "soon").assert_error(6, "STEVE-INPUT-001")


def test_help_on_every_command() -> None:
    runner = CliRunner()
    top = runner.invoke(cli, ["--help"])
    assert top.exit_code == 0 and "Usage:" in top.output
    plumbing = {
        "init", "unlock", "lock", "hash-object", "cat-file", "write-tree", "ls-tree",
        "update-ref", "symbolic-ref", "show-ref", "for-each-ref", "rev-parse", "reflog",
        "tag", "fsck", "gc",
    }  # fmt: skip
    commands = load_commands()
    assert plumbing <= set(commands)
    for name in sorted(commands):
        res = runner.invoke(cli, [name, "--help"])
        assert res.exit_code == 0, (name, res.output)
        assert res.output.startswith(f"Usage: cli {name}") or f" {name} " in res.output


def test_unknown_command_is_a_usage_error(invoke: Invoke) -> None:
    res = invoke("frobnicate")
    assert res.exit_code == 2 and "Traceback" not in res.stderr


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rev=st.text(min_size=1, max_size=20).filter(lambda s: "\x00" not in s))
def test_rev_parse_of_any_text_is_a_clean_error_or_an_id(
    invoke: Invoke, open_repo: OpenRepo, rev: str
) -> None:
    res = invoke("rev-parse", "--verify", "--", rev)
    if res.exit_code == 0:
        with open_repo() as repo:
            assert repo.has_object(ObjectId.from_hex(res.lines[0]))
        return
    assert res.exit_code in (5, 6), (rev, res.exit_code, res.stderr)
    assert res.stderr.splitlines()[-1].strip().startswith("[STEVE-REV-")
    assert "Traceback" not in res.stderr


def test_content_reads_refuse_bytes_that_do_not_hash_to_their_id(
    invoke: Invoke, open_repo: OpenRepo
) -> None:
    """A row whose bytes were swapped (with the key, under SQLCipher) is corrupt for
    every content read: -p, --raw, --batch and --batch-all-objects alike."""
    with open_repo() as repo:
        good = repo.write_blob(b"the real content\n")
        other = Blob(b"forged content!!\n")
        forged_bytes = encode_object(other)
        repo.backend._conn.execute(  # type: ignore[attr-defined]
            "UPDATE objects SET data = ? WHERE oid = ?", (forged_bytes, good.raw)
        )
    for args in (("cat-file", "-p", good.hex), ("cat-file", "--raw", good.hex)):
        invoke(*args).assert_error(9, "STEVE-OBJ-003")
    res = invoke("cat-file", "--batch", input=good.hex + "\n")
    res.assert_error(9, "STEVE-OBJ-003")
    assert b"forged" not in res.stdout
    res = invoke("cat-file", "--batch-all-objects", "--batch")
    res.assert_error(9, "STEVE-OBJ-003")
    assert b"forged" not in res.stdout
    # metadata-only reads still work, as in git; fsck names the object
    assert invoke("cat-file", "-t", good.hex).lines == ["blob"]
    res = invoke("fsck")
    assert res.exit_code == 9
    assert any(line.startswith(f"corrupt {good.hex}") for line in res.lines)


def test_help_lists_every_exit_code(invoke: Invoke) -> None:
    """`steve --help` names every exit code steve.errors defines (0-13 and 130 today)."""
    import re as _re

    from steve import errors

    text = " ".join(invoke("--help").stdout.decode().split())
    listed = text[text.index("Exit codes:") :]
    codes = {int(n) for n in _re.findall(r"(?<![\w-])(\d{1,3}) [a-z\"(]", listed)}
    defined = {v for k, v in vars(errors).items() if k.startswith("EXIT_") and isinstance(v, int)}
    assert codes == defined, sorted(defined ^ codes)


def test_mistyped_command_gets_a_suggestion(invoke: Invoke) -> None:
    import subprocess
    import sys as _sys

    # a fresh process: commands not yet loaded (lazily imported) are still suggested
    proc = subprocess.run(
        [_sys.executable, "-m", "steve.cli.main", "ststus"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 2 and "Did you mean 'status'?" in proc.stderr, proc.stderr
    res = invoke("for-each-rfe")
    assert "Did you mean 'for-each-ref'?" in res.stderr, res.stderr
    res = invoke("run", "gto", "BUILD")
    assert res.exit_code == 2 and "Did you mean 'goto'?" in res.stderr
