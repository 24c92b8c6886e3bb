"""freeze / read_manifest: round trips, stable ids, amendments, refs, and nothing stored
on any failure."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from steve.errors import InvalidInput, ManifestInvalid, RefUpdateRejected
from steve.objects.model import Manifest, ObjectType
from steve.objects.oid import ObjectId
from steve.objects.schemas import schema_for, validate
from steve.porcelain.freeze import body_value, freeze, freeze_many, load_draft
from steve.porcelain.show import read_manifest
from steve.repo import Repo
from steve.store.kdf import KdfParams
from tests.porcelain.strategies import POOL, any_draft, design_drafts, json_values, write_pool

T0 = 1_700_000_000


def fresh() -> Repo:
    repo = Repo.memory()
    write_pool(repo)
    return repo


@given(any_draft)
def test_freeze_round_trips_and_id_is_stable(kd: tuple[str, dict[str, Any]]) -> None:
    kind, draft = kd
    a, b = fresh(), fresh()
    oid = freeze(a, kind, draft, now=T0, tz=60)
    assert freeze(b, kind, draft, now=T0, tz=60) == oid  # another repository, same id
    got = read_manifest(a, oid).to_dict()
    assert got["id"] == oid.hex
    assert got["kind"] == kind
    assert got["schema_version"] == schema_for(kind).SCHEMA_VERSION
    assert got["frozen_at"] == T0 and got["tz"] == 60
    assert got["body"] == body_value(validate(kind, draft))
    # freezing what cat-manifest printed gives the same object back
    assert freeze(a, kind, got["body"], now=T0, tz=60) == oid
    refs = sorted({ObjectId.from_hex(h) for h in _ids(got["body"])})
    assert [link.hex for link in refs] == got["links"]


def _ids(value: Any) -> list[str]:
    if isinstance(value, str) and value in POOL:
        return [value]
    if isinstance(value, dict):
        return [i for v in value.values() for i in _ids(v)]
    if isinstance(value, list):
        return [i for v in value for i in _ids(v)]
    return []


@given(st.sampled_from(["design", "research", "plan"]), json_values)
def test_malformed_drafts_store_nothing(kind: str, garbage: Any) -> None:
    repo = fresh()
    before = repo.backend.count()
    try:
        freeze(repo, kind, garbage, now=T0, tz=0)
    except ManifestInvalid as exc:
        assert exc.problems
    else:  # pragma: no cover - garbage is never a valid draft
        pytest.fail("garbage was accepted")
    assert repo.backend.count() == before


@given(design_drafts())
def test_defaults_are_filled_so_equivalent_drafts_share_an_id(draft: dict[str, Any]) -> None:
    repo = fresh()
    explicit = body_value(validate("design", draft))
    assert freeze(repo, "design", draft, now=T0, tz=0) == freeze(
        repo, "design", explicit, now=T0, tz=0
    )


def test_time_changes_id_and_schema_version_is_checked() -> None:
    repo = fresh()
    draft = {"title": "t", "sources": []}
    assert freeze(repo, "research", draft, now=T0, tz=0) != freeze(
        repo, "research", draft, now=T0 + 1, tz=0
    )
    assert freeze(repo, "research", {**draft, "schema_version": 1}, now=T0, tz=0) == freeze(
        repo, "research", draft, now=T0, tz=0
    )
    with pytest.raises(ManifestInvalid) as info:
        freeze(repo, "research", {**draft, "schema_version": 3}, now=T0, tz=0)
    assert info.value.problems[0][0] == "schema_version"
    with pytest.raises(InvalidInput):
        freeze(repo, "research", draft, now=T0, tz=24 * 60)


def test_references_must_exist_and_have_the_right_type() -> None:
    repo = Repo.memory()
    before = repo.backend.count()
    draft = {
        "title": "r",
        "sources": [
            {
                "id": "S-001",
                "uri": "u",
                "retrieved_at": 1,
                "content": POOL[0],
                "media_type": "text/plain",
            }
        ],
    }
    with pytest.raises(ManifestInvalid) as info:
        freeze(repo, "research", draft, now=T0, tz=0)
    assert info.value.problems[0][0] == "sources[0].content"
    assert "exists" in info.value.problems[0][1]
    assert repo.backend.count() == before
    write_pool(repo)
    rid = freeze(repo, "research", draft, now=T0, tz=0)
    build = {
        "plan": rid.hex,  # a research manifest, not a plan
        "node": "a",
        "action_key": POOL[1],
        "image": "sha256:" + "0" * 64,
        "command": ["x"],
        "exit_status": 0,
        "started_at": 1,
        "finished_at": 2,
    }
    with pytest.raises(ManifestInvalid) as info:
        freeze(repo, "build_receipt", build, now=T0, tz=0)
    assert info.value.problems == [
        ("plan", f"object_type: {rid.short()} is a research, not a plan")
    ]
    with pytest.raises(ManifestInvalid) as info:
        freeze(repo, "research", draft, parents=[ObjectId.from_hex(POOL[0])], now=T0, tz=0)
    assert info.value.problems[0][0] == "parents[0]"


def test_amendment_is_a_parent_and_recorded_in_the_body() -> None:
    repo = fresh()
    draft = {"title": "r", "sources": []}
    first = freeze(repo, "research", draft, now=T0, tz=0)
    other = freeze(repo, "research", {"title": "other"}, now=T0, tz=0)
    second = freeze(
        repo, "research", {**draft, "title": "r2"}, parents=[other], amends=first, now=T0 + 5, tz=0
    )
    m = read_manifest(repo, second).manifest
    assert m.parents == (other, first)
    assert m.body["amends"] == first.hex
    assert first in m.links
    assert repo.rev_parse(f"{second.hex}^2") == first
    plan_like = freeze(
        repo,
        "design",
        {
            "project_id": "p",
            "name": "n",
            "created_at": 1,
            "intent": {"summary": "s"},
            "human_approved": False,
        },
        now=T0,
        tz=0,
    )
    with pytest.raises(ManifestInvalid) as info:
        freeze(repo, "research", draft, amends=plan_like, now=T0, tz=0)
    assert info.value.problems[0][0] == "amends"


def test_ref_moves_by_compare_and_swap_in_the_same_transaction() -> None:
    repo = fresh()
    a = freeze(repo, "research", {"title": "a"}, now=T0, tz=0, ref="refs/heads/research")
    b = freeze(
        repo, "research", {"title": "b"}, parents=[a], now=T0 + 1, tz=0, ref="refs/heads/research"
    )
    assert repo.rev_parse("refs/heads/research") == b
    assert [e.new for e in repo.reflog("refs/heads/research")] == [b, a]
    from steve.porcelain.freeze import build_manifest, store_manifest

    m = build_manifest(repo, "research", {"title": "c"}, now=T0, tz=0)
    before = repo.backend.count()
    with pytest.raises(RefUpdateRejected):
        store_manifest(repo, m, ref="refs/heads/research", ref_old=a)  # stale expectation
    assert repo.backend.count() == before  # the object write rolled back too


def test_freeze_many_streams_ids_in_order() -> None:
    repo = fresh()
    drafts = [{"title": f"t{i}"} for i in range(50)]
    ids = list(freeze_many(repo, "research", drafts, now=T0, tz=0))
    assert ids == [freeze(fresh(), "research", d, now=T0, tz=0) for d in drafts]
    assert all(isinstance(repo.read_object(i), Manifest) for i in ids)


def test_freeze_many_yields_an_id_only_once_its_batch_committed() -> None:
    repo = fresh()
    drafts = ({"title": f"t{i}"} for i in range(10))
    for oid in freeze_many(repo, "research", drafts, now=T0, tz=0):
        assert repo.has_object(oid)  # already committed when the caller sees it


def test_freeze_many_commits_the_drafts_before_a_bad_one() -> None:
    repo = fresh()
    drafts = [{"title": "a"}, {"title": "b"}, {"bogus": 1}, {"title": "c"}]
    seen: list[ObjectId] = []
    with pytest.raises(ManifestInvalid):
        for oid in freeze_many(repo, "research", drafts, now=T0, tz=0):
            seen.append(oid)
    assert [read_manifest(repo, o).manifest.body["title"] for o in seen] == ["a", "b"]
    assert all(repo.has_object(o) for o in seen)


def test_encrypted_repository_round_trip(tmp_path: Path, fast_kdf: KdfParams) -> None:
    with Repo.init(tmp_path / "r", passphrase="pw", kdf=fast_kdf) as repo:
        write_pool(repo)
        oid = freeze(repo, "research", {"title": "enc"}, now=T0, tz=0)
    with Repo.open(tmp_path / "r", passphrase="pw") as repo:
        assert read_manifest(repo, oid.hex[:10]).manifest.kind is ObjectType.RESEARCH
        assert repo.fsck().ok


@pytest.mark.parametrize(
    ("text", "why"),
    [
        (b"a: 1\na: 2\n", "duplicate key"),
        (b'{"a": 1, "a": 2}', "duplicate key"),
        (b"- 1\n- 2\n", "must be a mapping"),
        (b"a: [", "not valid YAML"),
        (b"\xff\xfe", "not UTF-8"),
    ],
)
def test_load_draft_rejects_bad_input(text: bytes, why: str) -> None:
    with pytest.raises(InvalidInput) as info:
        load_draft(text)
    assert why in info.value.message


def test_load_draft_reads_yaml_and_json_alike() -> None:
    assert (
        load_draft(b"a: 1\nb: [x]\n") == load_draft(b'{"a": 1, "b": ["x"]}') == {"a": 1, "b": ["x"]}
    )


def test_verify_reports_an_invalid_body_on_one_line() -> None:
    """`steve verify` prints one problem per line: a body with several broken fields is
    one problem whose detail names them all without a line break."""
    from steve.porcelain.verify import verify

    repo = Repo.memory()
    body = {"title": 5, "questions": "no", "sources": [], "excerpts": [], "summaries": []}
    oid = repo.write(Manifest(ObjectType.RESEARCH, 1, (), (), 1, 0, body))
    report = verify(repo, oid)
    (problem,) = report.problems
    assert "\n" not in str(problem) and "title" in problem.detail and "questions" in problem.detail
