"""Typed records shared by build, test and replay: receipts and certificates as models.

Build (:mod:`~steve.porcelain.build`), test (:mod:`~steve.porcelain.testing`)
and replay (:mod:`~steve.porcelain.replay`) all stand on this module and on
nothing of each other's:

* reading back: :func:`read_manifest_body`, :func:`load_plan`,
  :func:`read_receipt` (any stored version, as the current
  :class:`~steve.objects.schemas.receipts.BuildReceipt`),
  :func:`find_receipt`, :func:`read_certificate`;
* judging a step: :func:`classify_result` (the runner's class, from the one
  taxonomy in :mod:`steve.objects.schemas.failures`), :func:`junit_evidence`
  (every JUnit report a node declared, parsed once) and :func:`judge` (the
  class and detail recorded for a node);
* writing: :func:`step_receipt` (the receipt of one executed step, built as a
  model), :func:`environment_receipt` (a step the environment could not
  start) and :func:`freeze_record` (a model frozen, optionally moving a ref).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from steve.errors import CorruptObject, MalformedObject, ManifestInvalid, WrongObjectType
from steve.exec import ContainerPolicy, StepResult, StepSpec
from steve.objects.model import Manifest, ObjectType
from steve.objects.oid import ObjectId
from steve.objects.schemas import ManifestBody, read_body
from steve.objects.schemas.failures import FailureClass
from steve.objects.schemas.plan import Grant, PlanManifest
from steve.objects.schemas.receipts import (
    BuildReceipt,
    LogRef,
    PolicyDecision,
    ReceiptPolicy,
    TestCertificate,
)
from steve.porcelain.freeze import body_value, build_manifest, store_manifest
from steve.porcelain.junit import JUnitError, JUnitReport, junit_outputs, parse_junit
from steve.refs.names import format_problem
from steve.repo import Repo
from steve.store.base import ANY, Transaction, Unset

RECEIPT_REF_PREFIX = "refs/receipts/"

__all__ = [
    "RECEIPT_REF_PREFIX",
    "JUnitEvidence",
    "classify_result",
    "environment_receipt",
    "find_receipt",
    "freeze_record",
    "judge",
    "junit_evidence",
    "load_plan",
    "read_certificate",
    "read_manifest_body",
    "read_receipt",
    "receipt_ref",
    "step_receipt",
]


# --- names ----------------------------------------------------------------------------


def receipt_ref(run_id: str, node_id: str) -> str:
    """``refs/receipts/<run>/<node>``; a node id that is not a valid ref component
    (``..``, ``.lock``, a trailing dot) is spelled ``x-<hex>`` of its UTF-8 bytes."""
    name = f"{RECEIPT_REF_PREFIX}{run_id}/{node_id}"
    if format_problem(name) is None:
        return name
    return f"{RECEIPT_REF_PREFIX}{run_id}/x-{node_id.encode().hex()}"


# --- reading back ---------------------------------------------------------------------


def read_manifest_body(repo: Repo, oid: ObjectId, kind: ObjectType) -> Manifest:
    """The stored manifest ``oid``, which must be a ``kind`` (else WrongObjectType)."""
    obj = repo.read_typed(oid, kind)
    if not isinstance(obj, Manifest):  # read_typed checked the kind; a manifest it is
        raise WrongObjectType(oid.hex, kind.value, obj.type.value)
    return obj


def load_plan(repo: Repo, plan_id: ObjectId) -> PlanManifest:
    manifest = read_manifest_body(repo, plan_id, ObjectType.PLAN)
    plan = read_body(ObjectType.PLAN, manifest.version, manifest.body)
    assert isinstance(plan, PlanManifest)
    return plan


def read_receipt(repo: Repo, oid: ObjectId) -> BuildReceipt:
    """The build receipt ``oid`` in the current schema (a v1 receipt is upgraded)."""
    manifest = read_manifest_body(repo, oid, ObjectType.BUILD_RECEIPT)
    body = read_body(ObjectType.BUILD_RECEIPT, manifest.version, manifest.body)
    assert isinstance(body, BuildReceipt)
    return body


def find_receipt(repo: Repo, oid: ObjectId) -> BuildReceipt | None:
    """The build receipt ``oid``, or None if it is missing, damaged or not one."""
    if not repo.has_object(oid):
        return None
    try:
        return read_receipt(repo, oid)
    except (CorruptObject, MalformedObject, ManifestInvalid, WrongObjectType):
        return None


def read_certificate(repo: Repo, oid: ObjectId) -> TestCertificate:
    manifest = read_manifest_body(repo, oid, ObjectType.TEST_CERTIFICATE)
    body = read_body(ObjectType.TEST_CERTIFICATE, manifest.version, manifest.body)
    assert isinstance(body, TestCertificate)
    return body


# --- judging a step -------------------------------------------------------------------


def classify_result(result: StepResult) -> FailureClass | None:
    """The failure class of a step result (None: success): the runner's class as it
    is, the same in a build node and a test node (a plain non-zero exit is
    ``StepError.ExitedNonZero``; a test node's JUnit reports may say more, see
    :func:`judge`)."""
    return result.failure


@dataclass(frozen=True, slots=True)
class JUnitEvidence:
    """One JUnit report a test node declared: the blob and what it says."""

    output: str
    report: ObjectId
    parsed: JUnitReport | None
    problem: str = ""  # why it is not a usable report (parsed is None then)


def junit_evidence(
    repo: Repo, declared: Sequence[str], outputs: Mapping[str, ObjectId]
) -> list[JUnitEvidence]:
    """Every declared JUnit report (:func:`~steve.porcelain.junit.junit_outputs`) the
    step produced as a blob, parsed."""
    out: list[JUnitEvidence] = []
    for name in junit_outputs(declared):
        oid = outputs.get(name)
        if oid is None or repo.object_type(oid) is not ObjectType.BLOB:
            continue
        try:
            out.append(JUnitEvidence(name, oid, parse_junit(repo.read_blob(oid))))
        except JUnitError as exc:
            out.append(JUnitEvidence(name, oid, None, f"not a usable JUnit report: {exc}"))
    return out


def judge(
    kind: str, result: StepResult, evidence: Sequence[JUnitEvidence]
) -> tuple[FailureClass | None, str]:
    """The class and detail recorded for a node's step.

    A test node whose report counts a failed or erroneous case is
    ``TestError.AssertionFailed`` (whether it exited 0 or not: the report
    says what failed); one that exited 0 with an unusable report is
    ``TestError.ReportUnusable``; otherwise the runner's class stands."""
    failure, detail = classify_result(result), result.failure_detail
    if kind != "test" or failure not in (None, FailureClass.EXITED_NONZERO):
        return failure, detail
    failed = [
        f"{e.output}: {e.parsed.failures} failed, {e.parsed.errors} errors "
        f"({', '.join(e.parsed.failed_cases[:5])})"
        for e in evidence
        if e.parsed is not None and not e.parsed.ok
    ]
    unusable = [f"{e.output}: {e.problem}" for e in evidence if e.parsed is None]
    if failed:
        parts = [detail, *failed, *unusable] if detail else [*failed, *unusable]
        return FailureClass.ASSERTION_FAILED, "; ".join(parts)
    if unusable and failure is None:
        return FailureClass.REPORT_UNUSABLE, "; ".join(unusable)
    return failure, detail


# --- writing ----------------------------------------------------------------------------


def clamp_exit(code: int | None) -> int:
    if code is None:
        return -1
    return max(-255, min(255, code))


def _policy_summary(policy: ContainerPolicy) -> str:
    return (
        f"network={policy.network_mode} read_only_root={policy.read_only_root} "
        f"user={policy.user} pids={policy.pids_limit} memory={policy.memory_bytes} "
        f"nano_cpus={policy.nano_cpus} cap_drop={','.join(policy.cap_drop)}"
    )


def step_receipt(
    *,
    plan: str,
    node: str,
    spec: StepSpec,
    action_key: str,
    result: StepResult,
    failure: FailureClass | None,
    detail: str,
    grants: Sequence[Grant],
    toolchain: Mapping[str, str],
    nondeterminism: Sequence[str],
    truncated: Sequence[str] = (),
) -> BuildReceipt:
    """The build receipt of one executed step (``truncated``: streams the output limit
    cut short)."""
    started = result.started_at // 1_000_000_000
    finished = max(started, result.finished_at // 1_000_000_000)
    denied = result.failure is FailureClass.POLICY_DENIED
    clean = spec.redactor.text if spec.redactor is not None else str  # text that lasts
    decision: Literal["allow", "deny"] = "deny" if denied else "allow"
    decisions = [
        PolicyDecision(rule="image-pinned", decision=decision, detail=spec.image),
        PolicyDecision(
            rule="container-policy",
            decision=decision,
            detail=clean(result.failure_detail) if denied else _policy_summary(spec.policy),
        ),
        *(
            PolicyDecision(rule=f"grant:{g.capability}", decision="allow", detail=g.reason)
            for g in grants
        ),
    ]
    return BuildReceipt(
        plan=plan,
        node=node,
        action_key=action_key,
        input_trees=[spec.inputs[name].hex for name in sorted(spec.inputs)],
        inputs={name: oid.hex for name, oid in spec.inputs.items()},
        declared_outputs=list(spec.outputs),
        workdir=spec.workdir,
        timeout_ms=None if spec.timeout_s is None else round(spec.timeout_s * 1000),
        policy=ReceiptPolicy.model_validate(spec.policy.canonical()),
        grants=list(grants),
        image_diff_ids=list(result.image_diff_ids),
        failure=None if failure is None else failure.value,
        failure_detail=clean(detail) or None,
        notes=[clean(note) for note in result.notes],
        image=spec.image,
        command=list(spec.command),
        env={name: clean(value) for name, value in spec.env.items()},
        toolchain=dict(toolchain),
        outputs={name: oid.hex for name, oid in result.outputs.items()},
        logs=[
            LogRef(stream="stdout", blob=result.stdout.hex, truncated="stdout" in truncated),
            LogRef(stream="stderr", blob=result.stderr.hex, truncated="stderr" in truncated),
        ],
        exit_status=clamp_exit(result.exit_code),
        policy_decisions=decisions,
        started_at=started,
        finished_at=finished,
        duration_ms=max(0, (result.finished_at - result.started_at) // 1_000_000),
        nondeterminism=list(nondeterminism),
        secrets=dict(sorted(spec.secret_versions.items())),
    )


def environment_receipt(
    *,
    plan: str,
    node: str,
    spec: StepSpec,
    action_key: str,
    failure: FailureClass,
    detail: str,
    empty_log: ObjectId,
    grants: Sequence[Grant],
    toolchain: Mapping[str, str],
    nondeterminism: Sequence[str],
    at_ns: int,
) -> BuildReceipt:
    """The receipt of a step the environment could not start (no image, an engine
    error): nothing ran, the failure and its reason are recorded."""
    result = StepResult(
        exit_code=None,
        failure=failure,
        failure_detail=detail,
        outputs={},
        stdout=empty_log,
        stderr=empty_log,
        started_at=at_ns,
        finished_at=at_ns,
        container_id="",
        image_diff_ids=(),
    )
    return step_receipt(
        plan=plan,
        node=node,
        spec=spec,
        action_key=action_key,
        result=result,
        failure=failure,
        detail=detail,
        grants=grants,
        toolchain=toolchain,
        nondeterminism=nondeterminism,
    )


def freeze_record(
    repo: Repo,
    body: ManifestBody,
    *,
    parents: Sequence[ObjectId],
    now: int,
    tz: int,
    ref: str | None = None,
    ref_old: ObjectId | Unset | None = ANY,
    message: str = "",
    tx: Transaction | None = None,
) -> ObjectId:
    """Freeze a record built as a model (checked like any draft: its references must
    exist) and optionally move ``ref`` to it in the same transaction."""
    manifest = envelope(repo, body, parents=parents, now=now, tz=tz)
    return store_manifest(repo, manifest, ref=ref, ref_old=ref_old, message=message, tx=tx)


def envelope(
    repo: Repo, body: ManifestBody, *, parents: Sequence[ObjectId], now: int, tz: int
) -> Manifest:
    """The manifest (not stored) that freezes ``body``."""
    return build_manifest(repo, body.KIND, body_value(body), parents=parents, now=now, tz=tz)
