"""JUnit parsing and the receipt/certificate/replay-verdict schemas of issue 6."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from steve.errors import ManifestInvalid
from steve.exec import ContainerPolicy, HostMountSpec
from steve.objects.schemas import validate
from steve.objects.schemas.receipts import BuildReceipt, BuildReceiptV1, ReceiptPolicy
from steve.porcelain.freeze import body_value, freeze
from steve.porcelain.junit import JUnitError, junit_outputs, parse_junit
from steve.repo import Repo
from tests.stages.helpers import node, plan_draft

OID = "ab" * 32


@st.composite
def suites(draw: st.DrawFn) -> tuple[bytes, list[str]]:
    cases = draw(st.lists(st.sampled_from(["pass", "failure", "error", "skipped"]), max_size=12))
    body = []
    for i, c in enumerate(cases):
        inner = "" if c == "pass" else f"<{c} message='m'/>"
        body.append(f'<testcase classname="k" name="c{i}">{inner}</testcase>')
    root = draw(st.sampled_from(["testsuite", "testsuites"]))
    xml = f"<{root}>{''.join(body)}</{root}>"
    if root == "testsuites":
        xml = f"<testsuites><testsuite>{''.join(body)}</testsuite></testsuites>"
    return xml.encode(), cases


@given(suites())
def test_junit_counts_come_from_the_test_cases(suite: tuple[bytes, list[str]]) -> None:
    data, cases = suite
    report = parse_junit(data)
    assert report.tests == len(cases)
    assert report.failures == cases.count("failure")
    assert report.errors == cases.count("error")
    assert report.skipped == cases.count("skipped")
    assert report.ok == (report.failures == 0 and report.errors == 0)
    failed = [f"k.c{i}" for i, c in enumerate(cases) if c in ("failure", "error")]
    assert list(report.failed_cases) == failed


@pytest.mark.parametrize(
    "data",
    [
        b'<!DOCTYPE x [<!ENTITY a "aaaa">]><testsuite>&a;</testsuite>',
        b'<?xml version="1.0"?><!doctype testsuite SYSTEM "http://example.invalid/x.dtd">'
        b"<testsuite/>",
        '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE t [<!ENTITY a "b">]><testsuite/>'.encode(
            "utf-16"
        ),
        b"<testsuite><testcase>",
        b"<html/>",
        b"",
    ],
)
def test_junit_refuses_declarations_and_non_reports(data: bytes) -> None:
    with pytest.raises(JUnitError):
        parse_junit(data)


@given(st.binary(max_size=200))
def test_junit_raises_only_junit_errors_on_garbage(data: bytes) -> None:
    try:
        report = parse_junit(data)
    except JUnitError as exc:
        assert str(exc)  # a reason, never another exception type
    else:
        assert report.tests >= report.failures + report.errors + report.skipped


def test_junit_outputs_are_the_xml_files() -> None:
    assert junit_outputs(["junit.xml", "out", "reports/T.XML", "xml"]) == [
        "junit.xml",
        "reports/T.XML",
    ]


@pytest.mark.parametrize(
    "policy",
    [
        ContainerPolicy(),
        ContainerPolicy(
            network_mode="bridge",
            host_mounts=(HostMountSpec(source="/srv", target="/data"),),
            pids_limit=0,
            granted=("host_mount", "network", "pids"),
        ),
    ],
)
def test_the_canonical_policy_is_a_valid_receipt_policy(policy: ContainerPolicy) -> None:
    canonical = policy.canonical()
    assert ReceiptPolicy.model_validate(canonical).model_dump() == canonical


def receipt(**extra: object) -> dict[str, object]:
    return {
        "plan": OID,
        "node": "a",
        "action_key": OID,
        "image": "sha256:" + "cd" * 32,
        "command": ["true"],
        "exit_status": 0,
        "started_at": 1,
        "finished_at": 2,
        **extra,
    }


def test_receipt_rules() -> None:
    with pytest.raises(ManifestInvalid) as info:
        validate("build_receipt", receipt(exit_status=2))
    assert info.value.problems == [
        ("failure", "required: a non-zero exit_status needs a failure class")
    ]
    ok = validate("build_receipt", receipt(exit_status=2, failure="BuildError.CompileError"))
    assert ok.model_dump()["failure"] == "BuildError.CompileError"
    with pytest.raises(ManifestInvalid) as info:
        validate("build_receipt", receipt(inputs={"src": OID}, input_trees=[]))
    assert info.value.problems[0][0] == "input_trees"
    with pytest.raises(ManifestInvalid) as info:
        validate("build_receipt", receipt(declared_outputs=["a"], outputs={"b": OID}))
    assert info.value.problems[0][0] == "outputs"


def verdict(
    verdict: str, differing: list[dict[str, str]], declared: list[str]
) -> dict[str, object]:
    failing = verdict == "mismatch"
    return {
        "verdict": "fail" if failing else "pass",
        "failures": [{"classification": "TestError.AssertionFailed", "message": "x"}]
        if failing
        else [],
        "policy": {"checked": 1, "passed": 1},
        "replay": {
            "receipt": OID,
            "replayed": OID,
            "verdict": verdict,
            "differing": differing,
            "declared": declared,
        },
    }


def test_replay_verdict_rules() -> None:
    diff = [{"path": "out/a"}]
    for good in (
        verdict("match", [], []),
        verdict("mismatch", diff, []),
        verdict("nondeterministic", diff, ["time"]),
    ):
        validate("test_certificate", good)
    for bad, where in (
        (verdict("match", diff, []), "replay.differing"),
        (verdict("mismatch", [], []), "replay.differing"),
        (verdict("nondeterministic", diff, []), "replay.declared"),
        ({**verdict("match", [], []), "verdict": "fail"}, "failures"),
    ):
        with pytest.raises(ManifestInvalid) as info:
            validate("test_certificate", bad)
        assert where in [p for p, _ in info.value.problems], info.value.problems


# --- receipt schema v2: labelled logs; v1 receipts stay readable ------------------------


def test_a_v1_receipt_is_still_valid_readable_and_usable_from_the_cache(repo: Repo) -> None:
    from steve.objects.model import Manifest, ObjectType
    from steve.objects.oid import ObjectId
    from steve.porcelain import actioncache
    from steve.porcelain.records import read_receipt
    from steve.porcelain.verify import check_manifest, verify

    plan = freeze(repo, "plan", plan_draft([node("a")]), now=1, tz=0)
    out, err = repo.write_blob(b"hello\n"), repo.write_blob(b"oops\n")
    key = "cd" * 32
    v1_body = BuildReceiptV1.model_validate(
        receipt(plan=plan.hex, logs=[out.hex, err.hex], action_key=key)
    )
    old = Manifest(
        kind=ObjectType.BUILD_RECEIPT,
        version=1,
        parents=(plan,),
        links=tuple(sorted({plan, out, err})),
        time=3,
        tz=0,
        body=body_value(v1_body),
    )
    oid = repo.write(old)
    assert check_manifest(old) is None  # fsck/verify accept the older version
    assert verify(repo, oid).ok
    body = read_receipt(repo, oid)
    assert isinstance(body, BuildReceipt) and body.SCHEMA_VERSION == 2
    assert [(ref.stream, ref.blob) for ref in body.logs] == [
        ("stdout", out.hex),
        ("stderr", err.hex),
    ]
    actioncache.record(repo, ObjectId.from_hex(key), oid)
    assert isinstance(actioncache.lookup(repo, ObjectId.from_hex(key)), actioncache.CachedAction)
    # a v1 body is not a v2 body: freeze writes v2 only
    with pytest.raises(ManifestInvalid):
        validate("build_receipt", receipt(logs=[out.hex]))


def test_v2_logs_are_labelled_once_per_stream() -> None:
    logs = [{"stream": "stdout", "blob": OID}, {"stream": "stdout", "blob": OID}]
    with pytest.raises(ManifestInvalid) as info:
        validate("build_receipt", receipt(logs=logs))
    assert ("logs", "unique: one log object per stream") in info.value.problems
    ok = validate("build_receipt", receipt(logs=logs[:1]))
    assert (
        isinstance(ok, BuildReceipt) and ok.log("stdout") is not None and ok.log("stderr") is None
    )


def test_junit_keeps_each_failed_case_message() -> None:
    data = (
        b'<testsuite><testcase classname="k" name="a"><failure message="1 != 2">trace'
        b'</failure></testcase><testcase classname="k" name="b"><error>boom\nline 2'
        b'</error></testcase><testcase name="c"/></testsuite>'
    )
    report = parse_junit(data)
    assert [(c.name, c.outcome, c.message) for c in report.failed] == [
        ("k.a", "failure", "1 != 2"),
        ("k.b", "error", "boom\nline 2"),
    ]
    assert report.failed_cases == ("k.a", "k.b")
