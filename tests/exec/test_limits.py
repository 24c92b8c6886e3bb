"""Output and log size limits per step (issue 12 item 16), on the real engine with
lowered limits: logs are truncated and the truncation recorded; a work dir or outputs
past the limit fail the step with OutputLimitExceeded, a clear reason, nothing collected."""

from __future__ import annotations

from steve.exec import DockerRunner, Engine, FailureClass, classify
from steve.exec.policy import ContainerPolicy
from steve.repo import Repo
from tests.docker_fixtures import labelled
from tests.exec.conftest import MakeSpec

MB = 1 << 20


def limited(spec: object, **limits: int | None) -> object:
    return type(spec)(**{**spec.__dict__, **limits})


def test_logs_past_the_limit_are_truncated_and_the_truncation_recorded(
    engine: Engine, repo: Repo, make_spec: MakeSpec
) -> None:
    passed: dict[str, int] = {"stdout": 0, "stderr": 0}

    def on_log(stream: str, data: bytes) -> None:
        passed[stream] += len(data)

    spec = limited(
        make_spec("head -c 300000 /dev/zero | tr '\\0' x; echo small >&2"), log_limit=100_000
    )
    result = DockerRunner(engine).run(repo, spec, on_log)  # type: ignore[arg-type]
    assert result.ok, result.failure_detail
    assert repo.read_blob(result.stdout) == b"x" * 100_000
    assert repo.read_blob(result.stderr) == b"small\n"
    assert result.log_dropped == {"stdout": 200_000}
    assert any("stdout truncated" in n and "dropped 200000" in n for n in result.notes)
    assert passed == {"stdout": 100_000, "stderr": 6}  # the callback (and events) bounded too


def test_a_file_past_the_output_limit_fails_the_step_clearly(
    engine: Engine, repo: Repo, make_spec: MakeSpec
) -> None:
    spec = limited(
        make_spec("head -c 20000000 /dev/zero > big", outputs=("big",)), output_limit=5 * MB
    )
    result = DockerRunner(engine).run(repo, spec)  # type: ignore[arg-type]
    assert result.failure is FailureClass.OUTPUT_LIMIT_EXCEEDED, result.failure_detail
    assert f"output limit of {5 * MB} bytes" in result.failure_detail
    assert result.outputs == {}
    assert labelled(engine, f"steve.run={spec.run_id}") == ([], [])  # type: ignore[attr-defined]


def test_many_small_files_past_the_limit_are_stopped_while_running(
    engine: Engine, repo: Repo, make_spec: MakeSpec
) -> None:
    script = "for i in 1 2 3 4 5 6 7 8; do head -c 1000000 /dev/zero > f$i; done; sleep 60"
    spec = limited(make_spec(script, timeout_s=50), output_limit=4 * MB)
    result = DockerRunner(engine).run(repo, spec)  # type: ignore[arg-type]
    assert result.failure is FailureClass.OUTPUT_LIMIT_EXCEEDED, result.failure_detail
    assert "the work dir reached the output limit" in result.failure_detail
    assert (result.finished_at - result.started_at) / 1e9 < 40  # not the sleep, not the timeout


def test_outputs_past_the_limit_are_not_collected(
    engine: Engine, repo: Repo, make_spec: MakeSpec
) -> None:
    script = "mkdir out && for i in 1 2 3; do head -c 2000000 /dev/urandom > out/f$i; done"
    spec = limited(make_spec(script, outputs=("out",)), output_limit=5 * MB)
    result = DockerRunner(engine).run(repo, spec)  # type: ignore[arg-type]
    assert result.failure is FailureClass.OUTPUT_LIMIT_EXCEEDED, result.failure_detail
    assert "declared outputs hold more than the output limit" in result.failure_detail
    assert result.outputs == {}


def test_classify_names_a_file_size_signal() -> None:
    failure, detail = classify(
        exit_code=153,
        oom_killed=False,
        timed_out=False,
        stderr_tail=b"",
        policy=ContainerPolicy(),
        timeout_s=None,
        output_limit=1000,
    )
    assert failure is FailureClass.OUTPUT_LIMIT_EXCEEDED and "output limit of 1000 bytes" in detail
