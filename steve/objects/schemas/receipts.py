"""Build receipts, test certificates and deploy receipts, schema version 1.

A build receipt records what one plan node did (DEVPATH 1.6): its inputs,
image digest, command, environment, toolchain, outputs, logs, exit status,
policy decisions, host prompts and declared non-determinism (2.1).  A test
certificate (1.7) gives pass/fail, evidence and typed failures (the 4.8
taxonomy), and an override is loud: who, why and when.  A deploy receipt
names the certificate, the artifacts, the target, the dry-run preview and
the user's decision.

Receipts of issue 6 (``steve build``/``steve test``) record everything a
replay needs (:mod:`steve.porcelain.replay`): the inputs by name, the
declared outputs, the work directory, the timeout and the container policy
in its canonical form.  A receipt's parents are the plan and the receipts of
the upstream nodes whose outputs it consumed, so ``steve log`` walks the data
flow.  A *replay verdict* is a test certificate whose ``replay`` section
names the receipt replayed, the receipt of the re-execution and the paths
whose outputs differ.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from steve.objects.schemas.common import (
    PROVENANCE_ID_FIELDS,
    Absent,
    Count,
    ImageDigest,
    ManifestBody,
    ModelProvenance,
    Name,
    NodeId,
    Oid,
    OmitEmpty,
    Problem,
    Strict,
    Text,
    Timestamp,
)
from steve.objects.schemas.failures import FAILURE_CLASSES as FAILURE_CLASSES
from steve.objects.schemas.failures import FailureClass as FailureClass
from steve.objects.schemas.failures import FailureName
from steve.objects.schemas.plan import (
    DEFAULT_CPU_MILLIS,
    DEFAULT_MEMORY_BYTES,
    DEFAULT_PIDS,
    DEFAULT_USER,
    AbsPath,
    Capability,
    Grant,
    HostMount,
    SecretName,
    UserSpec,
)

ActionKey = Oid


class PolicyDecision(Strict):
    rule: Name
    decision: Literal["allow", "deny"]
    detail: Text | None = None


class HostPrompt(Strict):
    prompt: Text = Field(min_length=1)
    decision: Literal["approved", "denied"]
    actor: Name
    decided_at: Timestamp


class ReceiptPolicy(Strict):
    """The canonical form of the container policy a step ran under (steve.exec.policy)."""

    network_mode: Literal["none", "bridge", "host"] = "none"
    cap_drop: list[Name] = Field(default_factory=lambda: ["ALL"])
    cap_add: list[Name] = Field(default_factory=list)
    security_opt: list[Name] = Field(default_factory=lambda: ["no-new-privileges"])
    seccomp: Literal["default"] = "default"
    privileged: bool = False
    read_only_root: bool = True
    tmpfs: dict[str, str] = Field(default_factory=dict)
    pids_limit: Count = DEFAULT_PIDS
    memory_bytes: Count = DEFAULT_MEMORY_BYTES
    nano_cpus: Count = DEFAULT_CPU_MILLIS * 1_000_000
    user: UserSpec = DEFAULT_USER
    host_mounts: list[HostMount] = Field(default_factory=list)
    host_pid: bool = False
    host_ipc: bool = False
    host_userns: bool = False
    granted: list[Capability] = Field(default_factory=list)


LogStream = Literal["stdout", "stderr"]


class LogRef(Strict):
    """One labelled log object of a step (build receipt v2)."""

    stream: LogStream
    blob: Oid = Field(description="blob id of the bytes the step wrote to the stream")
    truncated: bool = Field(default=False, description="the output limit cut the log short")


class GeneratedPatch(Strict):
    """What a ``generate`` node's model answer did to its input tree (the exchanges are
    the receipt's ``provenance``): the diff as a blob, applied in Python to ``base``,
    giving ``result``, the tree the node's step then ran on."""

    key: Oid = Field(description="the generate key: BLAKE3 of the request and the base step")
    input: Name = Field(description="the input the patch applies to")
    base: Oid = Field(description="tree id of the input before the patch")
    diff: Oid | None = Field(default=None, description="blob id of the diff (None: no diff)")
    patch: Oid | None = Field(
        default=None, description="tree id of the patch record: diff, request, response"
    )
    result: Oid | None = Field(default=None, description="tree id after it (None: rejected)")
    changed: list[Text] = Field(default_factory=list, description="paths the patch changed")


class _ReceiptFields(ManifestBody):
    """The fields every build receipt version has (all but ``logs``)."""

    KIND: ClassVar[str] = "build_receipt"

    plan: Oid = Field(description="id of the frozen plan")
    node: NodeId
    action_key: ActionKey = Field(
        description="BLAKE3 of image digest + command + env + inputs + outputs + policy"
    )
    input_trees: list[Oid] = Field(default_factory=list)
    inputs: dict[str, Oid] = Field(
        default_factory=dict, description="input name (path under workdir) -> tree/blob id"
    )
    declared_outputs: list[Name] = Field(default_factory=list)
    workdir: AbsPath = "/work"
    timeout_ms: Count | None = None
    policy: ReceiptPolicy | None = Field(
        default=None, description="the container policy, canonical form"
    )
    grants: list[Grant] = Field(default_factory=list, description="plan grants applied")
    image_diff_ids: list[Name] = Field(default_factory=list)
    failure: FailureName | None = None
    failure_detail: Text | None = None
    notes: list[Text] = Field(
        default_factory=list, description="e.g. host features the engine lacks"
    )
    image: ImageDigest
    command: list[str] = Field(min_length=1)
    env: dict[str, str] = Field(default_factory=dict)
    toolchain: dict[str, str] = Field(default_factory=dict)
    outputs: dict[str, Oid] = Field(default_factory=dict, description="output name -> tree id")
    exit_status: int = Field(ge=-255, le=255)
    policy_decisions: list[PolicyDecision] = Field(default_factory=list)
    host_prompts: list[HostPrompt] = Field(default_factory=list)
    started_at: Timestamp
    finished_at: Timestamp
    duration_ms: Count | None = None
    nondeterminism: list[Text] = Field(
        default_factory=list, description="declared non-deterministic aspects"
    )

    def problems(self) -> list[Problem]:
        out: list[Problem] = []
        if self.finished_at < self.started_at:
            out.append(("finished_at", "order: finished_at is before started_at"))
        if self.inputs and sorted(self.inputs.values()) != sorted(self.input_trees):
            out.append(("input_trees", "inputs: input_trees must list the ids of inputs"))
        if self.failure is None and self.exit_status != 0:
            out.append(("failure", "required: a non-zero exit_status needs a failure class"))
        unknown = sorted(set(self.outputs) - set(self.declared_outputs))
        if self.declared_outputs and unknown:
            out.append(("outputs", f"declared: undeclared outputs {unknown}"))
        return out


class BuildReceipt(_ReceiptFields):
    """A build receipt, schema version 2: its log objects are labelled."""

    SCHEMA_VERSION: ClassVar[int] = 2
    ID_FIELDS: ClassVar[tuple[str, ...]] = (
        "plan",
        "input_trees",
        "inputs",
        "outputs",
        "logs.blob",
        *PROVENANCE_ID_FIELDS,
        "generated.base",
        "generated.diff",
        "generated.patch",
        "generated.result",
    )

    logs: list[LogRef] = Field(
        default_factory=list, description="the step's log objects, labelled by stream"
    )
    provenance: ModelProvenance | None = Absent(
        "the model exchanges of a generate node (absent for other nodes)"
    )
    generated: GeneratedPatch | None = Absent(
        "a generate node's patch: diff, base tree and result (absent for other nodes)"
    )
    secrets: dict[SecretName, Annotated[int, Field(ge=1)]] = OmitEmpty(
        dict,
        "the vault secrets the step was given: name -> version (never a value); "
        "omitted when empty",
    )

    def log(self, stream: LogStream) -> LogRef | None:
        """The log object of ``stream`` (``stdout`` or ``stderr``), if recorded."""
        return next((ref for ref in self.logs if ref.stream == stream), None)

    def problems(self) -> list[Problem]:
        out = super().problems()
        streams = [ref.stream for ref in self.logs]
        if len(set(streams)) != len(streams):
            out.append(("logs", "unique: one log object per stream"))
        if (self.generated is None) != (self.provenance is None):
            out.append(("generated", "together: a generated patch names its model exchanges"))
        if self.generated is not None and self.generated.result is None and self.failure is None:
            out.append(("failure", "required: a rejected patch is a failure"))
        return out


class BuildReceiptV1(_ReceiptFields):
    """A build receipt, schema version 1 (read only): ``logs`` lists the stdout and the
    stderr blob ids, in that order, without labels."""

    SCHEMA_VERSION: ClassVar[int] = 1
    ID_FIELDS: ClassVar[tuple[str, ...]] = ("plan", "input_trees", "inputs", "outputs", "logs")

    logs: list[Oid] = Field(default_factory=list)

    def upgraded(self) -> BuildReceipt:
        """The same record in the current version (logs labelled stdout, stderr)."""
        fields = {name: getattr(self, name) for name in _ReceiptFields.model_fields}
        streams: tuple[LogStream, ...] = ("stdout", "stderr")
        logs = [LogRef(stream=s, blob=b) for s, b in zip(streams, self.logs, strict=False)]
        return BuildReceipt(**fields, logs=logs)


class Failure(Strict):
    classification: FailureName
    message: Text = Field(min_length=1)
    evidence: Oid | None = None
    node: NodeId | None = None


class JUnitSummary(Strict):
    """Counts parsed from a JUnit XML report a test node declared as an output."""

    report: Oid = Field(description="blob id of the report")
    tests: Count = 0
    failures: Count = 0
    errors: Count = 0
    skipped: Count = 0
    failed_cases: list[Text] = Field(default_factory=list)


class TestResult(Strict):
    __test__ = False  # not a pytest class

    node: NodeId
    receipt: Oid
    status: Literal["pass", "fail"]
    cached: bool = False
    junit: JUnitSummary | None = None


class DifferingPath(Strict):
    path: Text = Field(min_length=1)
    expected: Oid | None = None
    actual: Oid | None = None


class ReplayVerdict(Strict):
    receipt: Oid = Field(description="the build receipt replayed")
    replayed: Oid = Field(description="the build receipt of the re-execution")
    verdict: Literal["match", "mismatch", "nondeterministic"]
    differing: list[DifferingPath] = Field(default_factory=list)
    declared: list[Text] = Field(
        default_factory=list, description="the receipt's declared non-determinism"
    )


class PolicyVerdict(Strict):
    checked: Count
    passed: Count
    violations: list[Text] = Field(default_factory=list)


class Override(Strict):
    who: Name
    why: Text = Field(min_length=1)
    at: Timestamp


class TestCertificate(ManifestBody):
    __test__ = False  # not a pytest class

    KIND: ClassVar[str] = "test_certificate"
    SCHEMA_VERSION: ClassVar[int] = 1
    ID_FIELDS: ClassVar[tuple[str, ...]] = (
        "builds",
        "evidence",
        "failures.evidence",
        "results.receipt",
        "replay.receipt",
        "replay.replayed",
    )

    verdict: Literal["pass", "fail"]
    builds: list[Oid] = Field(default_factory=list, description="build receipts tested")
    evidence: list[Oid] = Field(default_factory=list)
    failures: list[Failure] = Field(default_factory=list)
    policy: PolicyVerdict
    override: Override | None = None
    results: list[TestResult] = Field(default_factory=list, description="one per test node")
    replay: ReplayVerdict | None = Field(
        default=None, description="set when this certificate is a replay verdict"
    )

    def problems(self) -> list[Problem]:
        out: list[Problem] = []
        if self.verdict == "fail" and not self.failures:
            out.append(("failures", "required: a failing certificate lists its failures"))
        if self.verdict == "pass" and self.failures and self.override is None:
            out.append(("override", "required: pass with failures needs an explicit override"))
        if self.override is not None and not self.failures and not self.policy.violations:
            out.append(("override", "forbidden: nothing to override"))
        if self.policy.passed > self.policy.checked:
            out.append(("policy.passed", "range: more policies passed than checked"))
        if self.replay is not None:
            r = self.replay
            if (r.verdict == "match") == bool(r.differing):
                out.append(("replay.differing", "required: differing paths exactly when no match"))
            if r.verdict == "nondeterministic" and not r.declared:
                out.append(("replay.declared", "required: nondeterministic needs a declaration"))
            if (r.verdict == "mismatch") != (self.verdict == "fail"):
                out.append(("verdict", "replay: a replay verdict fails exactly on a mismatch"))
        return out


class Decision(Strict):
    """A deploy receipt v1's decision (read only; v2 records :class:`HostDecision`)."""

    decision: Literal["approved", "denied"]
    actor: Name
    decided_at: Timestamp
    reason: Text | None = None


class HostDecision(Strict):
    """What was decided about a host action (DEVPATH 1.9, 4.7): the outcome, how it was
    reached (a person at the prompt, a recorded approval, a rule of the policy gate),
    who, when and why."""

    decision: Literal["approved", "denied", "timed_out"]
    via: Literal["prompt", "approval", "rule", "kill_switch"]
    actor: Name
    decided_at: Timestamp
    reason: Text | None = None
    rule: Name | None = Field(default=None, description="the gate rule that decided")
    approval: Oid | None = Field(default=None, description="the approval request honoured")
    action_digest: Oid | None = Field(
        default=None, description="BLAKE3 of the canonical action description"
    )


class DeployedFile(Strict):
    path: Text = Field(min_length=1, description="relative to the target, / separated")
    blob: Oid
    size: Count
    executable: bool = False


class WrittenFile(Strict):
    path: Text = Field(min_length=1)
    blob: Oid = Field(description="the blob id of the bytes read back after writing")


class DeployOverride(Strict):
    """A deploy of artifacts no passing certificate of the current build covers."""

    who: Name
    why: Text = Field(min_length=1)
    at: Timestamp
    unverified: Text = Field(min_length=1, description="what was missing or wrong")


class _DeployFields(ManifestBody):
    KIND: ClassVar[str] = "deploy_receipt"


class DeployReceipt(_DeployFields):
    """A deploy receipt, schema version 2: the decision, the files and what was written."""

    SCHEMA_VERSION: ClassVar[int] = 2
    ID_FIELDS: ClassVar[tuple[str, ...]] = (
        "certificate",
        "builds",
        "artifacts",
        "dry_run_preview",
        "files.blob",
        "written.blob",
        "decision.approval",
    )

    certificate: Oid | None = Field(description="the test certificate (None: overridden)")
    builds: list[Oid] = Field(default_factory=list, description="build receipts deployed")
    artifacts: list[Oid] = Field(min_length=1, description="the outputs deployed (tree/blob)")
    files: list[DeployedFile] = Field(default_factory=list)
    target: Text = Field(min_length=1, description="the folder deployed to (absolute)")
    dry_run_preview: Oid = Field(description="blob: the preview shown before deciding")
    decision: HostDecision
    written: list[WrittenFile] = Field(
        default_factory=list, description="files written, re-hashed after writing"
    )
    override: DeployOverride | None = None

    def problems(self) -> list[Problem]:
        out: list[Problem] = []
        if self.certificate is None and self.override is None:
            out.append(("override", "required: a deploy without a certificate is an override"))
        if self.written and self.decision.decision != "approved":
            out.append(("written", "forbidden: nothing is written unless approved"))
        files = {f.path: f.blob for f in self.files}
        if len(files) != len(self.files):
            out.append(("files", "unique: one entry per path"))
        if any(files.get(w.path) != w.blob for w in self.written):
            out.append(("written", "match: a written file must match its artifact"))
        if self.written and len(self.written) != len(self.files):
            out.append(("written", "complete: every file is written or none"))
        return out


class DeployReceiptV1(_DeployFields):
    """A deploy receipt, schema version 1 (read only)."""

    SCHEMA_VERSION: ClassVar[int] = 1
    ID_FIELDS: ClassVar[tuple[str, ...]] = ("certificate", "artifacts", "dry_run_preview")

    certificate: Oid = Field(description="id of the test certificate")
    artifacts: list[Oid] = Field(min_length=1)
    target: Name
    dry_run_preview: Oid
    decision: Decision

    def upgraded(self) -> DeployReceipt:
        d = self.decision
        return DeployReceipt(
            amends=self.amends,
            certificate=self.certificate,
            artifacts=list(self.artifacts),
            target=self.target,
            dry_run_preview=self.dry_run_preview,
            decision=HostDecision(
                decision=d.decision,
                via="prompt",
                actor=d.actor,
                decided_at=d.decided_at,
                reason=d.reason,
            ),
        )
