"""The commit layout's pure parts: path quoting, trailers, attachments vs the schemas."""

from __future__ import annotations

import json

from dulwich.objects import Commit as GitCommit
from dulwich.objects import Tree as GitTree
from dulwich.objects import sha_to_hex
from hypothesis import given
from hypothesis import strategies as st

from steve.gitbridge.convert import build_commit, build_tree
from steve.gitbridge.layout import (
    EXPORT_IDENTITY,
    attachments,
    commit_message,
    dumps_indented,
    git_ref_name,
    parse_trailers,
    quote_component,
)
from steve.objects.model import Manifest, ObjectType
from steve.objects.oid import ObjectId
from steve.objects.schemas import schema_for_version

A, B, C = (ObjectId.of(x) for x in (b"a", b"b", b"c"))


def manifest(kind: ObjectType, body: dict[str, object], links: list[ObjectId]) -> Manifest:
    return Manifest(kind, 1, (), tuple(sorted(links)), 1_700_000_000, 0, body)


@given(st.text(min_size=0, max_size=20), st.text(min_size=0, max_size=20))
def test_quoting_is_injective_and_safe(a: str, b: str) -> None:
    qa, qb = quote_component(a), quote_component(b)
    assert (qa == qb) == (a == b)
    for q in (qa, qb):
        assert q and "/" not in q and "\x00" not in q and not q.startswith(".")
        assert all(ord(ch) >= 0x20 and ch != "\x7f" for ch in q)
    assert quote_component("manifest.json", top=True) == "manifest%2Ejson"
    assert quote_component("manifest.json") == "manifest.json"


def test_trailers_round_trip_and_control_characters_leave_the_subject() -> None:
    m = manifest(ObjectType.DESIGN, {"name": "a\x00b\rc", "intent": {"summary": "s"}}, [])
    message = commit_message(A, m)
    assert message.split(b"\n", 1)[0] == "a\ufffdb\ufffdc: s".encode()
    parsed = parse_trailers(message)
    assert parsed is not None and (parsed.oid, parsed.kind) == (A, "design")
    assert parse_trailers(b"by hand\n") is None
    assert parse_trailers(message + b"more\n") is None


def test_ref_names() -> None:
    assert git_ref_name("refs/heads/main") == "refs/heads/main"
    assert git_ref_name("refs/tags/v1") == "refs/tags/v1"
    assert git_ref_name("refs/runs/R/plan") == "refs/heads/runs/R/plan"


def test_attachments_are_exactly_the_ids_the_schemas_reference() -> None:
    """The bridge finds links by walking the body; the schemas' ID_FIELDS must agree."""
    receipt = {
        "plan": A.hex,
        "node": "n",
        "action_key": "cd" * 32,  # id-shaped, but not a link: stays out
        "input_trees": [B.hex],
        "inputs": {"src/main": B.hex},
        "outputs": {"bin": C.hex, ".hidden": A.hex},
        "logs": [A.hex, B.hex],
        "image": "sha256:" + "1" * 64,
        "command": ["make"],
        "exit_status": 0,
        "started_at": 1,
        "finished_at": 2,
    }
    model = schema_for_version("build_receipt", 1)  # a v1 receipt: unlabelled logs
    assert model is not None
    body = model.model_validate(receipt)
    from_schema = sorted((path, ObjectId.from_hex(h)) for _, path, h in body.referenced_ids())
    links = [A, B, C]
    m = manifest(ObjectType.BUILD_RECEIPT, body.model_dump(mode="python"), links)
    found = list(attachments(m))
    assert sorted(oid for _, oid in found) == sorted(oid for _, oid in from_schema)
    assert ("outputs", "%2Ehidden") in [p for p, _ in found]
    assert ("inputs", "src%2Fmain") in [p for p, _ in found]
    assert ("logs", "1") in [p for p, _ in found]
    assert not any(p[0] == "action_key" for p, _ in found)
    assert list(attachments(manifest(ObjectType.BUILD_RECEIPT, receipt, []))) == []


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=30,
)


@given(json_values)
def test_fast_json_is_json_dumps(value: object) -> None:
    assert dumps_indented(value) == json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


def test_fast_json_leaves_other_values_to_the_json_module() -> None:
    for odd in ({1: "int key"}, [1.5], {"a": [2.0e10]}):
        assert dumps_indented(odd) == json.dumps(odd, indent=2, sort_keys=True, ensure_ascii=False)


names = st.binary(min_size=1, max_size=8).filter(lambda b: b"/" not in b and b"\0" not in b)
modes = st.sampled_from([0o100644, 0o100755, 0o120000, 0o040000])
shas = st.binary(min_size=20, max_size=20)


@given(st.dictionaries(names, st.tuples(modes, shas), max_size=8))
def test_tree_bytes_are_dulwichs(entries: dict[bytes, tuple[int, bytes]]) -> None:
    items = [(name, mode, sha) for name, (mode, sha) in entries.items()]
    tree = GitTree()
    for name, mode, sha in items:
        tree.add(name, mode, sha_to_hex(sha))  # type: ignore[arg-type]
    assert build_tree(items) == tree.as_raw_string()


@given(
    shas,
    st.lists(shas, max_size=3),
    st.integers(0, 2**40),
    st.integers(-1439, 1439),
    st.text(max_size=30),
)
def test_commit_bytes_are_dulwichs(
    tree: bytes, parents: list[bytes], time: int, tz: int, name: str
) -> None:
    m = Manifest(ObjectType.DESIGN, 1, (), (), time, tz, {"name": name})
    c = GitCommit()
    c.tree = sha_to_hex(tree)  # type: ignore[arg-type]
    c.parents = [sha_to_hex(p) for p in parents]  # type: ignore[arg-type]
    c.author = c.committer = EXPORT_IDENTITY
    c.author_time = c.commit_time = time
    c.author_timezone = c.commit_timezone = tz * 60
    c.message = commit_message(A, m)
    assert build_commit(tree, parents, A, m) == c.as_raw_string()
