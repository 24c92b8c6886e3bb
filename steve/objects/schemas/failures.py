"""The failure taxonomy (DEVPATH 4.8): one list, used by the runner, the executor and
the receipt and certificate schemas.

Each class claims only what STEVE observed.  A step whose process exits with
a non-zero status is ``StepError.ExitedNonZero``: STEVE does not know whether
a compiler failed or an assertion did, so it does not say.  A test node is
``TestError.AssertionFailed`` only when a JUnit report it declared counts a
failed or erroneous case.

Who produces which class:

* the runner (:mod:`steve.exec.runner`), from what the engine reports:
  ``StepError.ExitedNonZero``, ``StepError.Timeout``, ``StepError.Interrupted``
  (stopped by the user's Ctrl-C or SIGTERM), ``StepError.OutputLimitExceeded``
  (output or log size limit), ``ContainerError.*`` (out of memory or pids,
  network denied by policy, policy refusal, the container did not start, an
  unsafe output archive) and ``BuildError.OutputMissing``;
* the executor (:mod:`steve.porcelain.records`): ``TestError.AssertionFailed``
  and ``TestError.ReportUnusable`` from a test node's JUnit reports,
  ``StepError.UpstreamFailed`` for a test that did not run because a node it
  needs failed, ``TestError.ReplayMismatch`` for a replay whose outputs differ,
  and ``ContainerError.ImageMissing`` / ``ContainerError.EngineFailed`` for a
  step the environment could not start.

A ``generate`` node whose model answer holds no diff, or a diff that does not
apply to its input tree, is ``LLMError.PatchRejected`` (the detail carries the
``STEVE-PATCH-*`` error, which the node's next attempt gets as feedback); a
model call refused by a budget or a provider is ``LLMError.TokenBudgetExceeded``
or ``LLMError.ProviderUnavailable``.

The other classes are part of the taxonomy (later stages produce them) and
stay valid in records written by older versions of STEVE (which recorded
``BuildError.CompileError`` for any failing build step and
``TestError.CrashError`` for a test that did not run).
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Literal


class FailureClass(StrEnum):
    """A typed failure; the value is the dotted DEVPATH 4.8 name recorded in manifests."""

    # what a step did, as the runner saw it
    EXITED_NONZERO = "StepError.ExitedNonZero"
    TIMEOUT = "StepError.Timeout"
    INTERRUPTED = "StepError.Interrupted"
    OUTPUT_LIMIT_EXCEEDED = "StepError.OutputLimitExceeded"
    UPSTREAM_FAILED = "StepError.UpstreamFailed"
    # the container and its policy
    RESOURCE_LIMIT = "ContainerError.ResourceLimitHit"
    NETWORK_DENIED = "ContainerError.NetworkDenied"
    POLICY_DENIED = "ContainerError.PolicyDenied"
    START_FAILED = "ContainerError.StartFailed"
    OUTPUT_REJECTED = "ContainerError.OutputRejected"
    IMAGE_MISSING = "ContainerError.ImageMissing"
    ENGINE_FAILED = "ContainerError.EngineFailed"
    IMAGE_PULL_FAILED = "ContainerError.ImagePullFailed"
    # builds
    OUTPUT_MISSING = "BuildError.OutputMissing"
    COMPILE_ERROR = "BuildError.CompileError"
    LINK_ERROR = "BuildError.LinkError"
    DEPENDENCY_ERROR = "BuildError.DependencyError"
    RESOURCE_EXHAUSTED = "BuildError.ResourceExhausted"
    # tests
    ASSERTION_FAILED = "TestError.AssertionFailed"
    REPORT_UNUSABLE = "TestError.ReportUnusable"
    REPLAY_MISMATCH = "TestError.ReplayMismatch"
    TEST_TIMEOUT = "TestError.Timeout"
    TEST_CRASH = "TestError.CrashError"
    # later stages
    STATE = "StateError"
    FETCH_FAILED = "ResearchError.FetchFailed"
    PARSE_ERROR = "ResearchError.ParseError"
    QUOTA_EXCEEDED = "ResearchError.QuotaExceeded"
    PROVIDER_UNAVAILABLE = "LLMError.ProviderUnavailable"
    TOKEN_BUDGET_EXCEEDED = "LLMError.TokenBudgetExceeded"
    RESPONSE_INVALID = "LLMError.ResponseInvalid"
    RATE_LIMITED = "LLMError.RateLimited"
    PATCH_REJECTED = "LLMError.PatchRejected"
    INTERNAL = "InternalError"

    @property
    def qualified(self) -> str:
        """The dotted name (the value), e.g. ``ContainerError.ResourceLimitHit``."""
        return self.value

    @property
    def group(self) -> str:
        """``StepError``, ``ContainerError``, ``BuildError``, ``TestError``, ..."""
        return self.value.partition(".")[0]


FAILURE_CLASSES: tuple[str, ...] = tuple(f.value for f in FailureClass)

# The type of a manifest field holding a failure class: a Literal of the values above
# (pydantic validates it and lists the values in the JSON schema).
if TYPE_CHECKING:
    FailureName = str
else:
    FailureName = Literal[FAILURE_CLASSES]

__all__ = ["FAILURE_CLASSES", "FailureClass", "FailureName"]
