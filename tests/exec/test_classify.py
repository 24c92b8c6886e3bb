"""Outcome classification (DEVPATH 4.8), without an engine."""

from __future__ import annotations

import pytest

from steve.exec import ContainerPolicy, FailureClass, classify
from steve.objects.schemas.failures import FailureClass as SchemaFailureClass
from steve.objects.schemas.receipts import FAILURE_CLASSES

DEFAULT = ContainerPolicy()


@pytest.mark.parametrize(
    ("exit_code", "oom", "timed_out", "stderr", "policy", "expected"),
    [
        (0, False, False, b"", DEFAULT, None),
        (0, False, False, b"can't fork", DEFAULT, None),  # tolerated: a note, not a failure
        (1, False, False, b"boom", DEFAULT, FailureClass.EXITED_NONZERO),
        (137, True, False, b"", DEFAULT, FailureClass.RESOURCE_LIMIT),
        (137, True, True, b"", DEFAULT, FailureClass.RESOURCE_LIMIT),
        (
            2,
            False,
            False,
            b"sh: can't fork: Resource temporarily unavailable",
            DEFAULT,
            FailureClass.RESOURCE_LIMIT,
        ),
        (
            137,
            False,
            True,
            b"fork: retry: Resource temporarily unavailable",
            DEFAULT,
            FailureClass.RESOURCE_LIMIT,
        ),
        (137, False, True, b"", DEFAULT, FailureClass.TIMEOUT),
        (1, False, False, b"nc: bad address 'example.com'", DEFAULT, FailureClass.NETWORK_DENIED),
        (1, False, False, b"Network is unreachable", DEFAULT, FailureClass.NETWORK_DENIED),
        # with network granted, a network error is the step's own crash
        (
            1,
            False,
            False,
            b"Network is unreachable",
            ContainerPolicy(network_mode="bridge", granted=("network",)),
            FailureClass.EXITED_NONZERO,
        ),
    ],
)
def test_classification(
    exit_code: int,
    oom: bool,
    timed_out: bool,
    stderr: bytes,
    policy: ContainerPolicy,
    expected: FailureClass | None,
) -> None:
    failure, detail = classify(
        exit_code=exit_code,
        oom_killed=oom,
        timed_out=timed_out,
        stderr_tail=stderr,
        policy=policy,
        timeout_s=5.0,
    )
    assert failure is expected
    assert bool(detail) == (expected is not None)


def test_qualified_names_follow_the_taxonomy() -> None:
    for fc in FailureClass:
        group, _, name = fc.qualified.partition(".")
        assert fc.group == group
        assert (
            group in ("ContainerError", "TestError", "BuildError", "StepError")
            or not name
            or (group in ("ResearchError", "LLMError"))
        )
        assert fc.qualified == fc.value
    # the classes the receipts schema already knows are spelled the same way
    known = {
        FailureClass.TIMEOUT,
        FailureClass.RESOURCE_LIMIT,
        FailureClass.NETWORK_DENIED,
        FailureClass.EXITED_NONZERO,
        FailureClass.START_FAILED,
    }
    assert {fc.qualified for fc in known} <= set(FAILURE_CLASSES)


def test_the_runner_uses_the_schema_taxonomy() -> None:
    """One taxonomy: the runner's classes are the schema's, and a plain non-zero exit
    claims no more than it knows (not a compile error, not a crash)."""
    assert FailureClass is SchemaFailureClass
    failure, detail = classify(
        exit_code=2,
        oom_killed=False,
        timed_out=False,
        stderr_tail=b"",
        policy=DEFAULT,
        timeout_s=None,
    )
    assert failure == "StepError.ExitedNonZero" and detail == "exit status 2"
    assert {"StepError.Interrupted", "StepError.OutputLimitExceeded"} <= set(FAILURE_CLASSES)


def test_every_runner_failure_class_can_be_recorded_in_a_receipt() -> None:
    """Each outcome the runner reports maps to a DEVPATH 4.8 class the schemas accept."""
    from steve.exec import FailureClass
    from steve.objects.schemas.receipts import FAILURE_CLASSES

    assert sorted(f.qualified for f in FailureClass if f.qualified not in FAILURE_CLASSES) == []
