"""steve inspect: golden --json output validated against docs/schemas/inspect, the
DAG's DOT and Mermaid forms, the library on a built run, and error counting through
real failing subprocess commands."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from steve.events import EventLog
from steve.porcelain import dag as dagmod
from steve.porcelain import inspect as ins
from steve.porcelain.build import build
from steve.repo import Repo
from tests.stages.fakes import FakeRunner
from tests.stages.helpers import chain_plan, run_with_plan

SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "schemas" / "inspect"


def validate(name: str, doc: Any) -> None:
    schema = json.loads((SCHEMAS / f"{name}.json").read_text())
    try:
        import jsonschema
    except ImportError:  # structural fallback: the required keys, recursively
        _required(schema, doc)
        return
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(doc, schema, cls=jsonschema.Draft202012Validator)


def _required(schema: dict[str, Any], doc: Any) -> None:
    if schema.get("type") == "object":
        assert isinstance(doc, dict)
        assert set(schema["required"]) <= set(doc), schema["required"]
        for key, sub in schema.get("properties", {}).items():
            if key in doc and isinstance(sub, dict):
                _required(sub, doc[key])
    if schema.get("type") == "array":
        assert isinstance(doc, list)
        for item in doc:
            _required(schema["items"], item)


@pytest.fixture
def built(repo: Repo) -> tuple[Repo, str]:
    """A run in BUILD whose plan gen -> asm -> check was built with asm failing."""
    src = repo.write_blob(b"src")
    run_id, _ = run_with_plan(repo, chain_plan(src))
    log = EventLog.for_repo(repo)
    repo.events.sink = log
    try:
        build(repo, FakeRunner(fail={"asm"}), events=log)
        log.flush()
    finally:
        repo.events.sink = None
        log.close()
    return repo, run_id


def steve(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "steve", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_every_subcommand_json_matches_its_schema(
    built: tuple[Repo, str], steve_env: dict[str, str]
) -> None:
    repo, run_id = built
    repo.close()
    for name in ("state", "manifests", "dag", "decisions", "errors"):
        doc = json.loads(steve(steve_env, "inspect", name, "--json").stdout)
        validate(name, doc)
    state = json.loads(steve(steve_env, "inspect", "state", "--json").stdout)
    assert state["run"]["id"] == run_id and state["run"]["stage"] == "BUILD"
    [nxt] = state["next"]
    assert nxt["stage"] == "TEST" and not nxt["ready"]
    assert [b["kind"] for b in nxt["blockers"]] == ["failed_build"]
    res = json.loads(steve(steve_env, "inspect", "resources", "--no-containers", "--json").stdout)
    validate("resources", res)
    assert res["containers"]["available"] is False
    assert {k["kind"] for k in res["objects"]["by_kind"]} >= {"blob", "plan", "build_receipt"}
    assert res["events"]["count"] > 0
    lines = steve(steve_env, "inspect", "logs", "-n", "100", "--json").stdout.splitlines()
    assert lines
    for line in lines:
        validate("logs", json.loads(line))
    man = json.loads(steve(steve_env, "inspect", "manifests", "--json").stdout)
    assert [m["kind"] for m in man["manifests"]] == ["plan", "build_receipt"]
    assert sorted(r["title"] for r in man["receipts"]) == ["node asm: exit 1", "node gen: exit 0"]


def test_resources_without_an_engine_says_so_and_still_answers(
    built: tuple[Repo, str], steve_env: dict[str, str], tmp_path: Path
) -> None:
    built[0].close()
    env = {**steve_env, "DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"}
    doc = json.loads(steve(env, "inspect", "resources", "--json").stdout)
    validate("resources", doc)
    assert doc["containers"]["available"] is False
    assert doc["containers"]["unavailable"].startswith("engine unavailable")
    text = steve(env, "inspect", "resources").stdout
    assert "engine unavailable" in text and "objects" in text


def test_dag_library_statuses_depths_and_running(built: tuple[Repo, str]) -> None:
    repo, run_id = built
    log = EventLog.for_repo(repo)
    try:
        d = dagmod.plan_dag(repo, None, log)
        assert [(n.id, n.depth, n.state.value) for n in d.nodes] == [
            ("gen", 0, "passed"),
            ("asm", 1, "failed"),
            ("check", 2, "not run"),
        ]
        assert d.edges == [("gen", "asm"), ("asm", "check")]
        assert dagmod.running_nodes(log, run_id) == set()
        # a build that started gen and has not finished: gen is running
        log.append("build.started", {"plan": d.plan.hex}, run_id=run_id)
        log.append(
            "step.started", {"node": "gen", "kind": "run", "status": "started"}, run_id=run_id
        )
        log.flush()
        running = dagmod.plan_dag(repo, None, log)
        assert running.nodes[0].state is dagmod.NodeState.RUNNING
        text = "\n".join(dagmod.draw(running))
        assert "▶ gen" in text and "✘ asm" in text and "· check" in text
        plain = "\n".join(dagmod.draw(running, ascii=True))
        assert plain.isascii() and ">> gen" in plain and "FAIL asm" in plain
    finally:
        log.close()


_DOT_TOKEN = re.compile(r'\s*("(?:[^"\\]|\\.)*"|->|[{}\[\];,=]|[A-Za-z_][A-Za-z0-9_]*)')


def _dot_structure(text: str) -> tuple[set[str], set[tuple[str, str]]]:
    """Tokenise DOT (strings, ids, punctuation; anything else fails) and collect the
    node statements and the edges."""
    tokens, pos = [], 0
    while pos < len(text.rstrip()):
        m = _DOT_TOKEN.match(text, pos)
        assert m is not None, text[pos : pos + 40]
        tokens.append(m.group(1))
        pos = m.end()
    assert tokens[0] == "digraph" and tokens[2] == "{" and tokens[-1] == "}"
    assert tokens.count("[") == tokens.count("]")
    nodes, edges = set(), set()
    statements: list[list[str]] = [[]]
    for t in tokens[3:-1]:
        if t == ";":
            statements.append([])
        else:
            statements[-1].append(t)
    for st in statements:
        if len(st) >= 3 and st[1] == "->":
            edges.add((json.loads(st[0]), json.loads(st[2])))
        elif st and st[0].startswith('"'):
            nodes.add(json.loads(st[0]))
    return nodes, edges


def _graphviz(text: str) -> tuple[set[str], set[tuple[str, str]]] | None:
    """(nodes, edges) as Graphviz's own parser reads ``text`` (``dot -Tplain``, no
    warning allowed), or None when Graphviz is not installed."""
    dot = shutil.which("dot")
    if dot is None:
        return None
    out = subprocess.run([dot, "-Tplain"], input=text, capture_output=True, text=True, check=True)
    assert out.stderr == ""
    nodes, edges = set(), set()
    for line in out.stdout.splitlines():
        fields = shlex.split(line)
        if fields[0] == "node":
            nodes.add(fields[1])
        elif fields[0] == "edge":
            edges.add((fields[1], fields[2]))
    return nodes, edges


def test_dot_output_parses(
    built: tuple[Repo, str], steve_env: dict[str, str], tmp_path: Path
) -> None:
    built[0].close()
    text = steve(steve_env, "inspect", "dag", "--format", "dot").stdout
    nodes, edges = _dot_structure(text)
    assert nodes == {"gen", "asm", "check"}
    assert edges == {("gen", "asm"), ("asm", "check")}
    assert _graphviz(text) in (None, (nodes, edges))


def test_mermaid_output_is_a_flowchart(built: tuple[Repo, str], steve_env: dict[str, str]) -> None:
    built[0].close()
    text = steve(steve_env, "inspect", "dag", "--format", "mermaid").stdout
    lines = text.splitlines()
    assert lines[0] == "flowchart TD"
    labels = {}
    for line in lines[1:]:
        s = line.strip()
        if m := re.fullmatch(r'(n\d+)\["([^"]*)"\]', s):
            labels[m.group(1)] = m.group(2)
        else:
            assert re.fullmatch(
                r"n\d+ --> n\d+|classDef \w+ fill:\w+|class n\d+ (passed|failed|not_run|running)", s
            ), s
    assert sorted(labels.values()) == [
        "asm (run): failed", "check (test): not run", "gen (run): passed"
    ]  # fmt: skip
    arrows = [s.strip() for s in lines if "-->" in s]
    by_label = {v.split(" ")[0]: k for k, v in labels.items()}
    assert f"{by_label['gen']} --> {by_label['asm']}" in arrows


def test_node_ids_dot_and_mermaid_could_misread_are_quoted(repo: Repo) -> None:
    from tests.stages.helpers import from_node, node, pinned, plan_draft

    src = repo.write_blob(b"s")
    draft = plan_draft(
        [
            node("a.b-1", inputs=[pinned("src", src)], outputs=["o"]),
            node("9c", inputs=[from_node("i", "a.b-1", "o")]),
        ]
    )
    run_with_plan(repo, draft)
    d = dagmod.plan_dag(repo)
    nodes, edges = _dot_structure(dagmod.to_dot(d))
    assert nodes == {"a.b-1", "9c"} and edges == {("a.b-1", "9c")}
    assert _graphviz(dagmod.to_dot(d)) in (None, (nodes, edges))
    mermaid = dagmod.to_mermaid(d)
    assert 'n0["a.b-1 (run): not run"]' in mermaid and "n0 --> n1" in mermaid


def test_state_without_a_run_and_blockers_of_deploy(repo: Repo) -> None:
    state = ins.run_state(repo, now=0)
    assert state.run is None and state.next == ()


def test_decisions_list_transitions_and_gate_verdicts(built: tuple[Repo, str]) -> None:
    repo, run_id = built
    log = EventLog.for_repo(repo)
    try:
        log.append(
            "gate.decision",
            {"kind": "network", "subject": "gen", "decision": "denied", "via": "rule",
             "actor": "ana", "reason": "no grant"},
            run_id=run_id,
        )  # fmt: skip
        log.flush()
        found, items = ins.decisions(repo, log, now=0)
    finally:
        log.close()
    assert found is not None and found.id == run_id
    kinds = [d.kind.value for d in items]
    assert kinds.count("transition") == 4 and "gate" in kinds
    gate = next(d for d in items if d.kind is ins.DecisionKind.GATE)
    assert gate.reason == "no grant" and gate.actor == "ana" and "denied network gen" in gate.what


def test_logs_tail_filters_by_node_type_and_follows(built: tuple[Repo, str]) -> None:
    repo, run_id = built
    log = EventLog.for_repo(repo)
    try:
        every = ins.tail(log, ins.LogFilter(run_id=run_id), limit=1000)
        assert [e.seq for e in every] == sorted(e.seq for e in every)
        asm = ins.tail(log, ins.LogFilter(node="asm"), limit=1000)
        assert asm and all(ins.LogFilter(node="asm").matches_node(e) for e in asm)
        steps = ins.tail(log, ins.LogFilter(event_type="step.*"), limit=2)
        assert len(steps) == 2 and all(e.event_type.startswith("step.") for e in steps)
        head = log.head().seq
        log.append("step.started", {"node": "asm"}, run_id=run_id)
        log.flush()
        seen = list(
            ins.follow(log, ins.LogFilter(node="asm"), from_seq=head + 1, stop=lambda: True)
        )
        assert [e.event_type for e in seen] == ["step.started"]
    finally:
        log.close()


def test_failing_commands_are_counted_per_code(repo: Repo, steve_env: dict[str, str]) -> None:
    repo.close()
    for _ in range(3):
        proc = steve(steve_env, "cat-file", "-p", "deadbeefdead", check=False)
        assert proc.returncode == 5 and "[STEVE-REV-001]" in proc.stderr
    proc = steve(steve_env, "run", "goto", "BUILD", check=False)
    assert proc.returncode != 0
    code = re.search(r"\[(STEVE-[A-Z]+-\d+)\]", proc.stderr)
    assert code is not None
    doc = json.loads(steve(steve_env, "inspect", "errors", "--json").stdout)
    validate("errors", doc)
    counts = {e["code"]: e for e in doc["errors"]}
    assert counts["STEVE-REV-001"]["count"] == 3
    assert counts["STEVE-REV-001"]["message"] == "unknown revision"
    assert counts["STEVE-REV-001"]["first"] <= counts["STEVE-REV-001"]["last"]
    assert counts[code.group(1)]["count"] == 1
    assert doc["errors"][0]["code"] == "STEVE-REV-001"  # most frequent first
    only = json.loads(steve(steve_env, "inspect", "errors", "--min", "2", "--json").stdout)
    assert [e["code"] for e in only["errors"]] == ["STEVE-REV-001"]


def test_key_and_database_errors_are_not_counted_and_reporting_is_unchanged(
    repo: Repo, steve_env: dict[str, str]
) -> None:
    repo.close()
    bad = {**steve_env, "STEVE_PASSPHRASE": "wrong"}
    proc = steve(bad, "cat-file", "-p", "deadbeefdead", check=False)
    assert proc.returncode == 4 and "[STEVE-KEY-001]" in proc.stderr
    doc = json.loads(steve(steve_env, "inspect", "errors", "--json").stdout)
    assert doc == {"errors": []}


def test_a_busy_database_does_not_hang_or_mask_the_error(
    repo: Repo, steve_env: dict[str, str]
) -> None:
    """A writer holds steve.db's write lock: the failing command still reports its own
    error promptly (the count gives up after its short wait)."""
    with repo.backend.transaction():
        proc = steve(steve_env, "cat-file", "-p", "deadbeefdead", check=False)
    assert proc.returncode == 5 and "[STEVE-REV-001]" in proc.stderr
    repo.close()
    doc = json.loads(steve(steve_env, "inspect", "errors", "--json").stdout)
    assert doc == {"errors": []}


def test_error_counts_contract_on_both_backends(backend: Any) -> None:
    backend.count_error("STEVE-X-001", "one", 10, 0.1)
    backend.count_error("STEVE-X-002", "two", 11, 0.1)
    backend.count_error("STEVE-X-002", "two again", 12, 0.1)
    rows = backend.error_counts()
    assert [(e.code, e.count, e.first, e.last, e.message) for e in rows] == [
        ("STEVE-X-002", 2, 11, 12, "two again"),
        ("STEVE-X-001", 1, 10, 10, "one"),
    ]


def test_deploy_is_blocked_by_a_failing_certificate_then_ready(repo: Repo) -> None:
    from steve.porcelain.runs import Stage, goto
    from steve.porcelain.testing import run_tests

    src = repo.write_blob(b"src")
    run_id, _ = run_with_plan(repo, chain_plan(src))
    build(repo, FakeRunner())
    run_tests(repo, FakeRunner(junit_fail={"check"}))  # a failing test: back to BUILD
    state = ins.run_state(repo, now=0)
    assert state.run is not None and state.run.stage is Stage.BUILD
    assert state.next[0].ready  # TEST again: the build passed
    goto(repo, run_id, Stage.TEST, now=0, actor="t")  # by hand, with the failing certificate
    state = ins.run_state(repo, now=0)
    deploy = next(n for n in state.next if n.stage.value == "DEPLOY")
    assert [b.kind for b in deploy.blockers] == [ins.BlockerKind.FAILING_CERTIFICATE]
    back = next(n for n in state.next if n.stage.value == "BUILD")
    assert back.ready
    run_tests(repo, FakeRunner())
    deploy = next(n for n in ins.run_state(repo, now=0).next if n.stage.value == "DEPLOY")
    assert deploy.ready and deploy.command == "steve deploy TARGET"
    kinds = [m.kind.value for m in ins.manifests(repo).manifests]
    assert kinds == ["plan", "build_receipt", "test_certificate"]


def test_a_pending_approval_blocks_deploy_and_its_answer_is_a_decision(repo: Repo) -> None:
    from steve.porcelain import approvals
    from steve.porcelain.gate import Action, ActionKind
    from steve.porcelain.runs import Stage
    from steve.porcelain.testing import run_tests

    src = repo.write_blob(b"src")
    run_id, _ = run_with_plan(repo, chain_plan(src))
    build(repo, FakeRunner())
    run_tests(repo, FakeRunner())
    assert ins.run_state(repo, now=0).run is not None
    action = Action.of(ActionKind.DEPLOY, "/srv/site", {"files": 1})
    req, _ = approvals.request(repo, action, now=100, actor="ci", ttl=3600, run_id=run_id)
    state = ins.run_state(repo, now=200)
    assert state.run is not None and state.run.stage is Stage.TEST  # a passing test
    deploy = next(n for n in state.next if n.stage is Stage.DEPLOY)
    assert [b.kind for b in deploy.blockers] == [ins.BlockerKind.PENDING_APPROVAL]
    assert [a.id for a in state.pending_approvals] == [req.id]
    approvals.answer(repo, req.id.hex, approve=False, now=300, actor="ana", reason="not today")
    assert ins.run_state(repo, now=400).pending_approvals == ()
    log = EventLog.for_repo(repo)
    try:
        _, items = ins.decisions(repo, log, now=400)
    finally:
        log.close()
    answers = [d for d in items if d.kind is ins.DecisionKind.APPROVAL]
    assert [(d.actor, d.reason) for d in answers] == [("ci", None), ("ana", "not today")]
    assert answers[1].what == "denied deploy /srv/site" and answers[1].ref == req.id.hex


def test_text_outputs(built: tuple[Repo, str], steve_env: dict[str, str]) -> None:
    built[0].close()
    lines = steve(steve_env, "inspect", "logs", "--type", "log.chunk").stdout.splitlines()
    assert [line.split(" ", 2)[2] for line in lines] == [
        "gen/stdout | ran gen",
        "asm/stdout | ran asm",
    ]
    one = steve(steve_env, "inspect", "logs", "--type", "log.chunk", "-n", "1").stdout
    assert one.count("\n") == 1 and "asm/stdout" in one
    state = steve(steve_env, "inspect", "state").stdout
    assert "-> TEST" in state and "blocked: 1 failed step(s): asm" in state
    drawing = steve(steve_env, "inspect", "dag").stdout
    assert "✔ gen" in drawing and "✘ asm" in drawing and "◀ gen" in drawing
    plain = steve({**steve_env, "PYTHONIOENCODING": "ascii"}, "inspect", "dag").stdout
    assert plain.isascii() and "FAIL asm" in plain
    decisions = steve(steve_env, "inspect", "decisions").stdout
    assert "PLAN -> BUILD" in decisions and "(steve build)" in decisions


def test_dag_shows_the_node_a_running_build_is_on(repo: Repo, repo_path: Path) -> None:
    """A build runs on its own connection (as another process would); a second
    repository handle reads the DAG while it runs."""
    import threading
    import time

    from tests.conftest import PASSPHRASE

    src = repo.write_blob(b"src")
    run_with_plan(repo, chain_plan(src))
    log = EventLog.for_repo(repo)
    repo.events.sink = log
    runner = FakeRunner(delay=1.0)
    builder = threading.Thread(target=build, args=(repo, runner), kwargs={"events": log})
    reader = Repo.open(repo_path, passphrase=PASSPHRASE)
    events = EventLog.for_repo(reader)
    seen: set[str] = set()
    builder.start()
    try:
        deadline = time.monotonic() + 60
        while builder.is_alive() and time.monotonic() < deadline:
            d = dagmod.plan_dag(reader, None, events)
            seen.update(n.id for n in d.nodes if n.state is dagmod.NodeState.RUNNING)
            time.sleep(0.05)
    finally:
        builder.join(120)
        repo.events.sink = None
        log.close()
    try:
        final = dagmod.plan_dag(reader, None, events)
    finally:
        events.close()
        reader.close()
    assert {"gen", "asm"} <= seen  # each was seen running while the build ran it
    assert {n.id: n.state.value for n in final.nodes} == {
        "gen": "passed", "asm": "passed", "check": "not run"
    }  # fmt: skip


def test_a_failed_test_node_does_not_block_testing_again(repo: Repo) -> None:
    """After a failing `steve test` the run is back in BUILD; the test node's failed
    receipt is TEST's own business, not a failed build."""
    from steve.porcelain.build import split_nodes
    from steve.porcelain.records import load_plan
    from steve.porcelain.testing import run_tests

    src = repo.write_blob(b"src")
    _, plan = run_with_plan(repo, chain_plan(src))
    build(repo, FakeRunner())
    run_tests(repo, FakeRunner(fail={"check"}))
    d = dagmod.plan_dag(repo)
    assert {n.id: n.state.value for n in d.nodes}["check"] == "failed"
    build_ids, test_ids = split_nodes(load_plan(repo, plan))
    assert dagmod.tested_nodes(d) == set(test_ids) and set(build_ids).isdisjoint(test_ids)
    state = ins.run_state(repo, now=0)
    assert state.run is not None and state.run.stage.value == "BUILD"
    assert [(n.stage.value, n.ready) for n in state.next] == [("TEST", True)]
