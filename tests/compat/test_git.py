"""Compatibility with the real git binary: rev-parse syntax, cat-file --batch framing,
hash-object --stdin-paths.  Judged by exit codes and parsed output only."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from steve.cli.main import cli
from steve.objects.model import Manifest, ObjectType
from steve.objects.oid import ObjectId
from steve.repo import Repo
from steve.store.base import ANY

from .conftest import PASSPHRASE, GitRun, SteveRun

# The history, the same shape on both sides: node -> parents (first parent first).
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
# main is moved through these, one reflog entry each (HEAD -> main meanwhile)
MAIN_STEPS = ["n0", "n1", "n2", "n5", "n6"]
BRANCHES = {"side": "n4", "octo": "n7", "dup": "n1"}
LIGHT_TAGS = {"light": "n2", "dup": "n3"}  # refs/tags/dup shadows refs/heads/dup
ANNOTATED = {"v0": "n0", "v1": "n5"}  # tag name -> node
# finally HEAD is switched to side (a HEAD reflog entry of its own)

RESOLVE = [
    "HEAD",
    "@",
    "main",
    "refs/heads/main",
    "heads/main",
    "main~2",
    "main~1^2",
    "main^^",
    "main^^2",
    "main^0",
    "main^{}",
    "main~1^2~1",
    "main^^2^",
    "octo^3",
    "octo^2~1",
    "octo~3",
    "side~2",
    "side^",
    "dup",
    "heads/dup",
    "tags/dup",
    "refs/heads/dup",
    "light",
    "light^{}",
    "light~2",
    "v1",
    "v1^{}",
    "v1^0",
    "v1^",
    "v1^2",
    "v1~2",
    "v1^{tag}",
    "v1-again",
    "v1-again^{}",
    "v1-again^{tag}",
    "v1-again^{tag}^{}",
    "v1-again^0",
    "v0^{}",
    "main@{0}",
    "main@{1}",
    "main@{4}",
    "main@{1}^",
    "refs/heads/main@{2}",
    "HEAD@{0}",
    "HEAD@{1}",
    "HEAD@{5}",
    "@{0}",
    "side@{0}",
    "{n0:8}",
    "{n5:12}",
    "{n7:40}",
    "{n6:6}~1",
    "{v1tag:10}^{}",
]
REJECT = [
    "nosuch",
    "refs/heads/nosuch",
    "main~7",
    "main^3",
    "side^2",
    "n0",  # node names are not refs on either side
    "{n0}^",
    "v0^",
    "v0~1",
    "main@{5}",
    "HEAD@{6}",
    "@{1}",
    "nosuch@{0}",
    "main@{-1}",
    "main^{nosuchtype}",
    "main~x",
    "main^^^^^^^^^^",
    "^",
    "~1",
    "main^{",
    "{absent}",
    "abc",
]


def manifest_for(node: str, parents: list[ObjectId]) -> Manifest:
    return Manifest(
        kind=ObjectType.DESIGN,
        version=1,
        parents=tuple(parents),
        links=(),
        time=1_700_000_000,
        tz=0,
        body={"node": node},
    )


def build_git(git: GitRun) -> dict[str, str]:
    """Build the history in git; return {git object id: node or tag name}."""
    empty_tree = git("mktree", input=b"").stdout.decode().strip()
    ids: dict[str, str] = {}
    for node, parents in SHAPE.items():
        args = ["commit-tree", "-m", node, empty_tree]
        for p in parents:
            args += ["-p", ids[p]]
        ids[node] = git(*args).stdout.decode().strip()
    for node in MAIN_STEPS:
        git("update-ref", "-m", f"to {node}", "refs/heads/main", ids[node])
    for name, node in BRANCHES.items():
        git("update-ref", f"refs/heads/{name}", ids[node])
    for name, node in LIGHT_TAGS.items():
        git("update-ref", f"refs/tags/{name}", ids[node])
    for name, node in ANNOTATED.items():
        git("tag", "-a", "-m", f"tag {name}", name, ids[node])
    v1tag = git("rev-parse", "refs/tags/v1").stdout.decode().strip()
    git("tag", "-a", "-m", "tag of a tag", "v1-again", v1tag)
    git("symbolic-ref", "-m", "switch", "HEAD", "refs/heads/side")
    names = {oid: node for node, oid in ids.items()}
    for name in [*ANNOTATED, "v1-again"]:
        names[git("rev-parse", f"refs/tags/{name}").stdout.decode().strip()] = f"tag:{name}"
    names["v1tag"] = v1tag
    return names


def build_steve(repo: Repo) -> dict[str, str]:
    """The same history in STEVE; return {STEVE object id: node or tag name}."""
    ids: dict[str, ObjectId] = {}
    for node, parents in SHAPE.items():
        ids[node] = repo.write(manifest_for(node, [ids[p] for p in parents]))
    for node in MAIN_STEPS:
        repo.update_ref("refs/heads/main", ids[node], ANY, message=f"to {node}")
    for name, node in BRANCHES.items():
        repo.update_ref(f"refs/heads/{name}", ids[node], None)
    for name, node in LIGHT_TAGS.items():
        repo.update_ref(f"refs/tags/{name}", ids[node], None)
    tags = {}
    for name, node in ANNOTATED.items():
        tags[name] = repo.create_tag(name, ids[node], message=f"tag {name}")
    tags["v1-again"] = repo.create_tag("v1-again", tags["v1"], message="tag of a tag")
    repo.set_symbolic_ref("HEAD", "refs/heads/side", "switch")
    names = {oid.hex: node for node, oid in ids.items()}
    names.update({oid.hex: f"tag:{name}" for name, oid in tags.items()})
    names["v1tag"] = tags["v1"].hex
    return names


def expand(expr: str, names: dict[str, str]) -> str:
    """Replace ``{node:N}`` with the first N hex digits of that node's id on this side."""
    if not expr.startswith("{") or expr.startswith("{absent"):
        if expr == "{absent}":
            taken = {oid[:4] for oid in names}
            return next(f"{n:04x}" for n in range(65536) if f"{n:04x}" not in taken)
        return expr
    key, rest = expr[1:].split("}", 1)
    node, _, digits = key.partition(":")
    full = names["v1tag"] if node == "v1tag" else next(o for o, n in names.items() if n == node)
    return (full[: int(digits)] if digits else full) + rest


def steve_rev_parse(root: Path, expr: str) -> tuple[int, str]:
    res = CliRunner().invoke(
        cli,
        ["--repo", str(root), "rev-parse", "--verify", "--", expr]
        if expr.startswith("-")
        else ["--repo", str(root), "rev-parse", "--verify", expr],
        env={"STEVE_PASSPHRASE": PASSPHRASE, "STEVE_KEY_FILE": None, "STEVE_DIR": None},
    )
    return res.exit_code, res.stdout.strip()


@pytest.fixture
def both(git: GitRun, steve_repo: Repo) -> tuple[dict[str, str], dict[str, str], Path]:
    git_names = build_git(git)
    steve_names = build_steve(steve_repo)
    assert steve_repo.root is not None
    return git_names, steve_names, steve_repo.root


def test_rev_parse_table_resolves_to_the_same_nodes(
    git: GitRun, both: tuple[dict[str, str], dict[str, str], Path]
) -> None:
    git_names, steve_names, root = both
    for expr in RESOLVE:
        g = git("rev-parse", "--verify", "-q", expand(expr, git_names), check=False)
        assert g.returncode == 0, f"git rejects {expr!r}: {g.stderr!r}"
        code, out = steve_rev_parse(root, expand(expr, steve_names))
        assert code == 0, f"STEVE rejects {expr!r} (exit {code})"
        git_node = git_names[g.stdout.decode().strip()]
        steve_node = steve_names[out]
        assert git_node == steve_node, expr


def test_rev_parse_table_rejected_by_both(
    git: GitRun, both: tuple[dict[str, str], dict[str, str], Path]
) -> None:
    git_names, steve_names, root = both
    for expr in REJECT:
        g = git("rev-parse", "--verify", "-q", expand(expr, git_names), check=False)
        assert g.returncode != 0, f"git accepts {expr!r}"
        code, _ = steve_rev_parse(root, expand(expr, steve_names))
        assert code in (5, 6), f"STEVE gives exit {code} for {expr!r}"


def test_symbolic_full_name_matches(
    git: GitRun, both: tuple[dict[str, str], dict[str, str], Path]
) -> None:
    _, _, root = both

    def steve_full(expr: str) -> list[str]:
        res = CliRunner().invoke(
            cli,
            ["--repo", str(root), "rev-parse", "--symbolic-full-name", expr],
            env={"STEVE_PASSPHRASE": PASSPHRASE, "STEVE_KEY_FILE": None, "STEVE_DIR": None},
        )
        assert res.exit_code == 0
        return res.stdout.splitlines()

    for expr in ["main", "heads/dup", "tags/dup", "light", "v1", "HEAD", "side", "main~1"]:
        g = git("rev-parse", "--symbolic-full-name", expr)
        assert steve_full(expr) == g.stdout.decode().splitlines(), expr
    # On purpose: for a name that is both a tag and a branch git prints nothing (and
    # warns "ambiguous"); STEVE prints the ref it actually resolved through.
    assert git("rev-parse", "--symbolic-full-name", "dup").stdout == b""
    assert steve_full("dup") == ["refs/tags/dup"]


# --- cat-file --batch framing -------------------------------------------------------------------

CONTENTS = [
    b"",
    b"one line\n",
    b"no newline at end",
    b"\n\n\n",
    b"\x00\n\xff\xfe binary \r\n with newlines \n\x00",
    os.urandom(64 * 1024),
    bytes(range(256)) * 5000,  # 1.28 MB: a chunked blob in STEVE
]


def parse_batch(out: bytes, content: bool) -> list[tuple[str, str, int | None, bytes | None]]:
    """git's framing: '<id> <type> <size>\\n<content>\\n' or '<name> missing\\n'."""
    records: list[tuple[str, str, int | None, bytes | None]] = []
    pos = 0
    while pos < len(out):
        end = out.index(b"\n", pos)
        header = out[pos:end].decode("utf-8", "surrogateescape")
        pos = end + 1
        name, _, tail = header.rpartition(" ")
        if tail in ("missing", "ambiguous"):
            records.append((name, tail, None, None))
            continue
        oid, kind, size_text = header.split(" ")
        size = int(size_text)
        body = None
        if content:
            body = out[pos : pos + size]
            assert out[pos + size : pos + size + 1] == b"\n", "content not followed by LF"
            pos += size + 1
        records.append((oid, kind, size, body))
    return records


@pytest.mark.parametrize("mode", ["--batch", "--batch-check"])
def test_cat_file_batch_framing_matches_git(
    mode: str, git: GitRun, steve_cmd: SteveRun, tmp_path: Path
) -> None:
    git_ids = [
        git("hash-object", "-w", "--stdin", input=c).stdout.decode().strip() for c in CONTENTS
    ]
    wrote = steve_cmd("hash-object", "-w", "--stdin-paths", input=_files(tmp_path, CONTENTS))
    assert wrote.returncode == 0, wrote.stderr
    steve_ids = wrote.stdout.decode().split()
    assert len(steve_ids) == len(CONTENTS)

    def query(ids: list[str], zero: str) -> bytes:
        names = [ids[0], "no-such-object", *ids[1:4], zero, ids[4], ids[5], ids[6], ids[1]]
        return ("\n".join(names) + "\n").encode()

    g = git("cat-file", mode, input=query(git_ids, "0" * 40))
    s = steve_cmd("cat-file", mode, input=query(steve_ids, "0" * 64))
    assert g.returncode == 0 and s.returncode == 0, s.stderr
    content = mode == "--batch"
    g_rec, s_rec = parse_batch(g.stdout, content), parse_batch(s.stdout, content)
    assert len(g_rec) == len(s_rec) == 10
    for (g_name, g_kind, g_size, g_body), (s_name, s_kind, s_size, s_body) in zip(
        g_rec, s_rec, strict=True
    ):
        if g_kind == "missing":
            assert s_kind == "missing"
            assert (g_name == "no-such-object") == (s_name == "no-such-object")
            assert s_name in ("no-such-object", "0" * 64)
            continue
        assert (g_kind, g_size, g_body) == (s_kind, s_size, s_body)
        assert git_ids.index(g_name) == steve_ids.index(s_name)  # the same content's ids


def _files(tmp_path: Path, contents: list[bytes]) -> bytes:
    folder = tmp_path / "files"
    folder.mkdir(exist_ok=True)
    lines = []
    for i, data in enumerate(contents):
        p = folder / f"file {i}.bin"
        p.write_bytes(data)
        lines.append(str(p))
    return ("\n".join(lines) + "\n").encode()


# --- hash-object --stdin-paths ------------------------------------------------------------------


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def test_hash_object_stdin_paths_matches_git(
    git: GitRun, steve_cmd: SteveRun, steve_repo: Repo, tmp_path: Path
) -> None:
    paths = _files(tmp_path, CONTENTS)
    g = git("hash-object", "--stdin-paths", input=paths, check=False)
    s = steve_cmd("hash-object", "--stdin-paths", input=paths)
    assert g.returncode == 0 and s.returncode == 0, s.stderr
    g_lines, s_lines = g.stdout.decode().splitlines(), s.stdout.decode().splitlines()
    assert len(g_lines) == len(s_lines) == len(CONTENTS)
    for data, g_id, s_id in zip(CONTENTS, g_lines, s_lines, strict=True):
        assert g_id == git_blob_id(data)  # git's line i is file i ...
        assert ObjectId.from_hex(s_id) == Repo.hash_stream(_bytes_io(data))  # ... and ours
    for s_id in s_lines:  # without -w nothing is stored
        assert not steve_repo.has_object(ObjectId.from_hex(s_id))
    s_w = steve_cmd("hash-object", "-w", "--stdin-paths", input=paths)
    assert s_w.returncode == 0 and s_w.stdout.decode().splitlines() == s_lines
    for data, s_id in zip(CONTENTS, s_lines, strict=True):
        assert steve_repo.read_blob(ObjectId.from_hex(s_id)) == data


def test_hash_object_stdin_paths_missing_file_fails_in_both(
    git: GitRun, steve_cmd: SteveRun, steve_repo: Repo, tmp_path: Path
) -> None:
    good = _files(tmp_path, [b"first", b"second"]).decode().splitlines()
    listing = f"{good[0]}\n{tmp_path / 'missing file'}\n{good[1]}\n".encode()
    g = git("hash-object", "--stdin-paths", input=listing, check=False)
    s = steve_cmd("hash-object", "--stdin-paths", input=listing)
    assert g.returncode != 0
    assert s.returncode == 6
    assert s.stderr.decode().splitlines()[-1].strip() == "[STEVE-INPUT-001]"
    # both answered the paths before the missing one, and none after it
    g_lines, s_lines = g.stdout.decode().splitlines(), s.stdout.decode().splitlines()
    assert len(g_lines) == len(s_lines) == 1
    assert g_lines[0] == git_blob_id(b"first")
    assert ObjectId.from_hex(s_lines[0]) == Repo.hash_stream(_bytes_io(b"first"))
    # with -w both fail the same way and keep what they wrote before the failure
    g_w = git("hash-object", "-w", "--stdin-paths", input=listing, check=False)
    s_w = steve_cmd("hash-object", "-w", "--stdin-paths", input=listing)
    assert g_w.returncode != 0 and s_w.returncode == 6
    assert git("cat-file", "-e", g_lines[0], check=False).returncode == 0
    assert steve_repo.has_object(ObjectId.from_hex(s_lines[0]))
    second = Repo.hash_stream(_bytes_io(b"second"))
    assert not steve_repo.has_object(second)
    assert git("cat-file", "-e", git_blob_id(b"second"), check=False).returncode != 0


def _bytes_io(data: bytes) -> io.BytesIO:
    return io.BytesIO(data)
