"""Build receipts, test certificates and deploy receipts, schema version 1.

A build receipt records what one plan node did (DEVPATH 1.6): its inputs,
image digest, command, environment, toolchain, outputs, logs, exit status,
policy decisions, host prompts and declared non-determinism (2.1).  A test
certificate (1.7) gives pass/fail, evidence and typed failures (the 4.8
taxonomy), and an override is loud: who, why and when.  A deploy receipt
names the certificate, the artifacts, the target, the dry-run preview and
the user's decision.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from steve.objects.schemas.common import (
    Count,
    ImageDigest,
    ManifestBody,
    Name,
    NodeId,
    Oid,
    Problem,
    Strict,
    Text,
    Timestamp,
)

ActionKey = Oid

# DEVPATH 4.8: the typed failure classes a certificate may report.
FailureClass = Literal[
    "StateError",
    "BuildError.CompileError",
    "BuildError.LinkError",
    "BuildError.DependencyError",
    "BuildError.ResourceExhausted",
    "TestError.AssertionFailed",
    "TestError.Timeout",
    "TestError.CrashError",
    "ContainerError.ImagePullFailed",
    "ContainerError.StartFailed",
    "ContainerError.NetworkDenied",
    "ContainerError.ResourceLimitHit",
    "ResearchError.FetchFailed",
    "ResearchError.ParseError",
    "ResearchError.QuotaExceeded",
    "LLMError.ProviderUnavailable",
    "LLMError.TokenBudgetExceeded",
    "LLMError.ResponseInvalid",
    "LLMError.RateLimited",
    "InternalError",
]
FAILURE_CLASSES: tuple[str, ...] = FailureClass.__args__  # type: ignore[attr-defined]


class PolicyDecision(Strict):
    rule: Name
    decision: Literal["allow", "deny"]
    detail: Text | None = None


class HostPrompt(Strict):
    prompt: Text = Field(min_length=1)
    decision: Literal["approved", "denied"]
    actor: Name
    decided_at: Timestamp


class BuildReceipt(ManifestBody):
    KIND: ClassVar[str] = "build_receipt"
    SCHEMA_VERSION: ClassVar[int] = 1
    ID_FIELDS: ClassVar[tuple[str, ...]] = ("plan", "input_trees", "outputs", "logs")

    plan: Oid = Field(description="id of the frozen plan")
    node: NodeId
    action_key: ActionKey = Field(description="BLAKE3 of image digest + command + env + inputs")
    input_trees: list[Oid] = Field(default_factory=list)
    image: ImageDigest
    command: list[str] = Field(min_length=1)
    env: dict[str, str] = Field(default_factory=dict)
    toolchain: dict[str, str] = Field(default_factory=dict)
    outputs: dict[str, Oid] = Field(default_factory=dict, description="output name -> tree id")
    logs: list[Oid] = Field(default_factory=list)
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
        return out


class Failure(Strict):
    classification: FailureClass
    message: Text = Field(min_length=1)
    evidence: Oid | None = None


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
    ID_FIELDS: ClassVar[tuple[str, ...]] = ("builds", "evidence", "failures.evidence")

    verdict: Literal["pass", "fail"]
    builds: list[Oid] = Field(default_factory=list, description="build receipts tested")
    evidence: list[Oid] = Field(default_factory=list)
    failures: list[Failure] = Field(default_factory=list)
    policy: PolicyVerdict
    override: Override | None = None

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
        return out


class Decision(Strict):
    decision: Literal["approved", "denied"]
    actor: Name
    decided_at: Timestamp
    reason: Text | None = None


class DeployReceipt(ManifestBody):
    KIND: ClassVar[str] = "deploy_receipt"
    SCHEMA_VERSION: ClassVar[int] = 1
    ID_FIELDS: ClassVar[tuple[str, ...]] = ("certificate", "artifacts", "dry_run_preview")

    certificate: Oid = Field(description="id of the test certificate")
    artifacts: list[Oid] = Field(min_length=1)
    target: Name
    dry_run_preview: Oid
    decision: Decision
