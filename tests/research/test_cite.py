"""Cited summaries, freeze and verify (steve.research.notebook, .summarize, .cite):
real SQLCipher repositories, the scripted provider, tampering with raw SQL and git."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from steve.errors import CitationsBroken, NoResearchDraft, NoResearchQuestions
from steve.gitbridge import export_git, verify_git
from steve.llm.budget import Budgets
from steve.llm.scripted import ScriptedProvider
from steve.llm.session import LLMSession
from steve.objects.model import Manifest, ObjectType
from steve.objects.oid import ObjectId
from steve.objects.schemas import read_body
from steve.objects.schemas.research import ResearchManifest
from steve.porcelain.modelio import ModelTarget
from steve.porcelain.runs import Stage, find_run, run_manifests
from steve.porcelain.stages import record
from steve.porcelain.verify import VerifyKind, verify
from steve.redact import Redactor
from steve.repo import Repo
from steve.research.notebook import extract, freeze, load_draft, save_draft, view
from steve.research.summarize import summarize
from tests.events.conftest import raw_connect
from tests.gitenv import make_git, scrubbed_git_env

from .helpers import NOW, design_draft, run_with_design, seed


def target(repo: Repo, provider: ScriptedProvider | None = None) -> ModelTarget:
    session = LLMSession(
        repo, provider or ScriptedProvider.default(), redactor=Redactor(), budgets=Budgets(repo)
    )
    return ModelTarget(session, "scripted", "scripted")


def researched(repo: Repo) -> tuple[str, ObjectId]:
    seed(repo)
    run_id = run_with_design(repo)
    extract(repo, run_id=run_id, now=NOW)
    done = summarize(repo, target(repo), run_id=run_id, now=NOW)
    assert done.rejected == [] and done.repairs == {"RQ-001": 0, "RQ-002": 1}
    return run_id, freeze(repo, run_id=run_id, now=NOW, tz=0, actor="t").oid


def body_of(repo: Repo, oid: ObjectId) -> ResearchManifest:
    m = repo.read_object(oid)
    assert isinstance(m, Manifest)
    body = read_body(m.kind, m.version, m.body)
    assert isinstance(body, ResearchManifest)
    return body


def test_extract_summarize_freeze_verify(repo: Repo) -> None:
    run_id, oid = researched(repo)
    m = repo.read_object(oid)
    assert isinstance(m, Manifest) and m.version == 2
    body = body_of(repo, oid)
    assert [q.status for q in body.questions] == ["answered", "answered"]
    assert [s.question for s in body.summaries] == ["RQ-001", "RQ-002"]
    assert body.provenance is not None and len(body.provenance.exchanges) == 3  # one repair
    links = {link.hex for link in m.links}
    for s in body.sources:  # the record, the bytes and the extracted text travel with it
        assert {s.record, s.content, s.text} <= links
    run = find_run(repo, run_id)
    assert run.stage is Stage.RESEARCH and run_manifests(repo, run_id)[ObjectType.RESEARCH] == oid
    assert verify(repo, oid).ok
    shown = view(repo, run_id=run_id)
    assert shown["manifest"] == oid.hex and shown["frozen"] is True
    cite = shown["questions"][0]["claims"][0]["cites"][0]
    assert cite["excerpt"] == "E-002" and cite["locator"] == {"start": 160, "end": 346}


def test_a_bad_citation_is_repaired_once_then_rejected(repo: Repo) -> None:
    seed(repo)
    run_id = run_with_design(repo)
    extract(repo, run_id=run_id, questions=["RQ-002"], now=NOW)
    bad = {
        "question": "RQ-002",
        "status": "answered",
        "answer": "mmap wins.",
        "claims": [{"text": "x", "cites": [{"excerpt": "E-001", "quote": "not in the source"}]}],
    }
    text = "```json\n" + json.dumps(bad) + "\n```"
    provider = ScriptedProvider.from_answers([{"text": text}, {"text": text}])
    done = summarize(repo, target(repo, provider), run_id=run_id, now=NOW)
    assert len(done.exchanges) == 2 and [r.qid for r in done.rejected] == ["RQ-002"]
    err = done.rejected[0]
    assert err.code == "STEVE-CITE-002" and "does not occur in E-001" in err.detail
    # the repair request told the model exactly which citation failed
    repair = done.exchanges[1]
    last = repair.request.messages[-1].text
    assert "claims[0].cites[0]" in last and "does not occur in E-001" in last
    draft = load_draft(repo, run_id)
    assert draft is not None and draft.body["summaries"] == []  # never kept
    assert draft.body["questions"][0]["status"] == "open"


def test_freeze_rechecks_every_locator_and_freezes_nothing_on_failure(repo: Repo) -> None:
    seed(repo)
    run_id = run_with_design(repo)
    extract(repo, run_id=run_id, now=NOW)
    summarize(repo, target(repo), run_id=run_id, now=NOW)
    draft = load_draft(repo, run_id)
    assert draft is not None
    body: dict[str, Any] = dict(draft.body)
    e = body["excerpts"][1]
    e["locator"] = {"start": e["locator"]["start"] + 1, "end": e["locator"]["end"] + 1}
    with repo.transaction() as tx:
        save_draft(repo, tx, run_id, body, old=draft.oid, message="edit", now=NOW)
    with pytest.raises(CitationsBroken) as info:
        freeze(repo, run_id=run_id, now=NOW, tz=0, actor="t")
    assert info.value.code == "STEVE-CITE-001"
    assert info.value.problems[0][0] == "excerpts[1].locator"
    assert ObjectType.RESEARCH not in run_manifests(repo, run_id)


def test_verify_catches_a_source_blob_altered_in_the_database(repo: Repo) -> None:
    _, oid = researched(repo)
    source = body_of(repo, oid).sources[1]
    assert repo.key is not None and repo.steve_dir is not None
    data = repo.read_blob(ObjectId.from_hex(source.content))
    forged = data.replace(b"POSIX tools define", b"POSIX tools decree")
    assert forged != data
    from steve.objects.model import Blob, hash_object

    _, stored = hash_object(Blob(forged))
    conn = raw_connect(repo.steve_dir / "steve.db", repo.key)
    conn.execute(
        "UPDATE objects SET data = ? WHERE oid = ?", (stored, bytes.fromhex(source.content))
    )
    conn.close()
    report = verify(repo, oid)
    kinds = {(p.kind, p.oid.hex) for p in report.problems}
    assert (VerifyKind.CORRUPT, source.content) in kinds
    invalid = [p.detail for p in report.problems if p.kind is VerifyKind.INVALID]
    assert any("sources[1]: source: S-002" in d for d in invalid), report.problems
    with pytest.raises(CitationsBroken):  # and nothing more is frozen from it
        freeze(repo, run_id=None, now=NOW, tz=0, actor="t")


def test_verify_catches_a_source_blob_altered_in_the_export(repo: Repo, tmp_path: Path) -> None:
    _, oid = researched(repo)
    repo.update_ref("refs/heads/research", oid)
    out = tmp_path / "out.git"
    export_git(repo, out, ["research"], bare=True)
    assert verify_git(out).ok
    git_env = scrubbed_git_env(tmp_path / "home")
    git = make_git(git_env)
    files = git(out, "ls-tree", "-r", "--name-only", "research").stdout.decode().split()
    assert {"sources/1/content", "sources/1/record", "sources/1/text"} <= set(files)
    text = git(out, "cat-file", "blob", "research:sources/1/text").stdout
    assert b"POSIX tools define a word" in text  # a reviewer reads the extracted text
    forged = text.replace(b"define", b"decree")
    blob = git(out, "hash-object", "-w", "--stdin", input=forged).stdout.decode().strip()
    env = {**git_env, "GIT_INDEX_FILE": str(tmp_path / "index")}

    def run(*a: str) -> str:
        proc = subprocess.run(["git", "-C", str(out), *a], env=env, check=True, capture_output=True)
        return proc.stdout.decode().strip()

    run("read-tree", "research")
    run("update-index", "--cacheinfo", f"100644,{blob},sources/1/text")
    tree = run("write-tree")
    fmt = "%an%x00%ae%x00%ad%x00%cn%x00%ce%x00%cd"
    an, ae, ad, cn, ce, cd = run("log", "-1", f"--format={fmt}", "--date=raw").split("\0")
    message = run("log", "-1", "--format=%B", "research")
    parents = [a for p in run("log", "-1", "--format=%P", "research").split() for a in ("-p", p)]
    commit = (
        subprocess.run(
            ["git", "-C", str(out), "commit-tree", tree, *parents, "-m", message],
            env={
                **env,
                "GIT_AUTHOR_NAME": an,
                "GIT_AUTHOR_EMAIL": ae,
                "GIT_AUTHOR_DATE": ad,
                "GIT_COMMITTER_NAME": cn,
                "GIT_COMMITTER_EMAIL": ce,
                "GIT_COMMITTER_DATE": cd,
            },
            check=True,
            capture_output=True,
        )
        .stdout.decode()
        .strip()
    )
    run("update-ref", "refs/heads/research", commit)
    found = [p.what for p in verify_git(out).problems]
    assert any("sources/1/text" in w for w in found), found


def test_design_cites_research_and_plan_names_it(repo: Repo) -> None:
    run_id, research = researched(repo)
    amended = design_draft()
    for q in amended["research_questions"]:
        q["answered_by"] = research.hex
    back = record(repo, "design", amended, run_id=run_id, now=NOW + 1, tz=0, actor="t")
    assert back.run.stage is Stage.DESIGN  # the DESIGN<->RESEARCH loop
    again = freeze(repo, run_id=run_id, now=NOW + 2, tz=0, actor="t")
    assert again.run.stage is Stage.RESEARCH
    m = repo.read_object(again.oid)
    assert isinstance(m, Manifest) and back.oid in m.parents
    plan = {
        "title": "p",
        "research": again.oid.hex,
        "nodes": [{"id": "a", "kind": "run", "command": ["true"], "image": "sha256:" + "0" * 64}],
    }
    planned = record(repo, "plan", plan, run_id=run_id, now=NOW + 3, tz=0, actor="t")
    p = repo.read_object(planned.oid)
    assert isinstance(p, Manifest) and again.oid in p.links and p.body["research"] == again.oid.hex
    assert planned.run.stage is Stage.PLAN
    third = freeze(repo, run_id=run_id, now=NOW + 4, tz=0, actor="t")  # PLAN -> RESEARCH
    assert third.transition is not None and third.transition.from_stage is Stage.PLAN
    t = repo.read_object(third.oid)
    assert isinstance(t, Manifest) and {again.oid, planned.oid} <= set(t.parents)
    with pytest.raises(Exception, match="research"):
        record(
            repo,
            "plan",
            {**plan, "research": back.oid.hex},
            run_id=run_id,
            now=NOW,
            tz=0,
            actor="t",
        )


def test_a_version_1_manifest_reads_as_version_2_and_verifies(repo: Repo) -> None:
    content = repo.write_blob(b"Words are runs of non-space characters.\n")
    v1 = {
        "amends": None,
        "title": "old",
        "questions": [{"id": "RQ-001", "question": "q", "status": "open", "answer": None}],
        "sources": [
            {
                "id": "S-001",
                "uri": "https://x",
                "retrieved_at": 1,
                "content": content.hex,
                "media_type": "text/plain",
            }
        ],
        "excerpts": [{"source": "S-001", "text": "runs of non-space", "locator": "line 1"}],
        "summaries": [{"question": "RQ-001", "text": "runs", "cites": ["S-001"]}],
    }
    oid = repo.write(Manifest(ObjectType.RESEARCH, 1, (), (content,), NOW, 0, v1))
    assert verify(repo, oid).ok
    body = body_of(repo, oid)
    assert body.excerpts[0].id == "E-001" and body.excerpts[0].note == "line 1"
    (claim,) = body.summaries[0].claims
    assert claim.cites[0].excerpt == "E-001" and claim.cites[0].quote == "runs of non-space"


def test_clear_errors_without_questions_or_draft(repo: Repo) -> None:
    seed(repo)
    draft = design_draft()
    draft["research_questions"] = []
    run_id = run_with_design(repo, draft)
    with pytest.raises(NoResearchQuestions):
        extract(repo, run_id=run_id, now=NOW)
    with pytest.raises(NoResearchDraft):
        freeze(repo, run_id=run_id, now=NOW, tz=0, actor="t")


def test_gc_keeps_what_the_draft_cites(repo: Repo) -> None:
    seed(repo)
    run_id = run_with_design(repo)
    extract(repo, run_id=run_id, now=NOW)
    draft = load_draft(repo, run_id)
    assert draft is not None
    report = repo.gc(prune_before=2**40, dry_run=True)
    cited = [
        ObjectId.from_hex(s[p])
        for s in draft.body["sources"]
        for p in ("record", "content", "text")
    ]
    assert all(repo.has_object(oid) for oid in cited)
    assert report.dry_run
    repo.gc(prune_before=2**40)
    assert all(repo.has_object(oid) for oid in cited)
    assert load_draft(repo, run_id) == draft


def test_verify_and_verify_git_recheck_locators_of_a_forged_manifest(
    repo: Repo, tmp_path: Path
) -> None:
    _, oid = researched(repo)
    good = repo.read_object(oid)
    assert isinstance(good, Manifest)
    body = json.loads(json.dumps(good.body))
    loc = body["excerpts"][1]["locator"]
    body["excerpts"][1]["locator"] = {"start": loc["start"] + 1, "end": loc["end"] + 1}
    forged = repo.write(
        Manifest(good.kind, good.version, good.parents, good.links, good.time, good.tz, body)
    )
    report = verify(repo, forged)
    assert [p.kind for p in report.problems] == [VerifyKind.INVALID]
    assert report.problems[0].detail.startswith("excerpts[1].locator: citation: E-002")
    repo.update_ref("refs/heads/forged", forged)
    out = tmp_path / "forged.git"
    export_git(repo, out, ["forged"], bare=True)
    found = [p.what for p in verify_git(out).problems]
    assert found and all(w.startswith("citation: excerpts[1].locator") for w in found), found
    repo.update_ref("refs/heads/good", oid)
    export_git(repo, tmp_path / "good.git", ["good"], bare=True)
    assert verify_git(tmp_path / "good.git").ok
