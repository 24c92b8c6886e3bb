"""The Runner contract, run against every runner (Docker for now) and the real engine."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from steve.errors import InvalidInput, ObjectNotFound
from steve.exec import DockerRunner, Engine, FailureClass, Runner, StepResult
from steve.objects.model import CHUNK_SIZE, Mode
from steve.objects.oid import ObjectId
from steve.repo import Repo
from tests.docker_fixtures import labelled
from tests.exec.conftest import MakeSpec


@pytest.fixture(params=["docker"])
def runner(request: pytest.FixtureRequest, engine: Engine) -> Runner:
    return DockerRunner(engine)


def logs(repo: Repo, result: StepResult) -> tuple[bytes, bytes]:
    return repo.read_blob(result.stdout), repo.read_blob(result.stderr)


def make_source(root: Path) -> Path:
    src = root / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_bytes(b"hello\n")
    (src / "sub" / "run.sh").write_bytes(b"#!/bin/sh\necho ran\n")
    (src / "sub" / "run.sh").chmod(0o755)
    (src / "empty").mkdir()
    os.symlink("a.txt", src / "link")
    os.symlink("/etc/passwd", src / "abs-link")
    return src


def test_success_round_trips_inputs_to_outputs(
    runner: Runner, repo: Repo, make_spec: MakeSpec, tmp_path: Path, engine: Engine
) -> None:
    tree = repo.write_tree(make_source(tmp_path))
    spec = make_spec(
        'cp -a src out && sub=$(cat src/link) && echo "$sub" && ./src/sub/run.sh >&2 '
        "&& id -u > uid && echo $GREETING",
        inputs={"src": tree},
        outputs=("out", "uid"),
        env={"GREETING": "hi there"},
    )
    result = runner.run(repo, spec)
    assert result.failure is None, result.failure_detail
    assert result.exit_code == 0
    # the output tree is the input tree: modes, empty dirs, symlinks (not followed) kept
    assert result.outputs["out"] == tree
    assert {e.path: e.mode for e in repo.ls_tree(tree, recursive=True)}["link"] is Mode.SYMLINK
    assert repo.read_blob(result.outputs["uid"]) == b"65534\n"
    out, err = logs(repo, result)
    assert out == b"hello\nhi there\n"
    assert err == b"ran\n"
    assert result.image_diff_ids and all(d.startswith("sha256:") for d in result.image_diff_ids)
    assert result.started_at <= result.finished_at
    assert len(result.container_id) == 64
    # nothing left behind
    assert labelled(engine, f"steve.run={spec.run_id}") == ([], [])


def test_logs_stream_to_callback_in_bounded_chunks(
    runner: Runner, repo: Repo, make_spec: MakeSpec
) -> None:
    seen: list[tuple[str, int]] = []
    data: dict[str, bytearray] = {"stdout": bytearray(), "stderr": bytearray()}

    def on_log(stream: str, chunk: bytes) -> None:
        seen.append((stream, len(chunk)))
        data[stream] += chunk

    # 1.5 MiB on stdout: a chunked log blob; a little on stderr
    size = CHUNK_SIZE + CHUNK_SIZE // 2
    spec = make_spec(f"head -c {size} /dev/zero | tr '\\0' x; echo oops >&2")
    result = runner.run(repo, spec, on_log)
    assert result.failure is None
    assert all(n <= 64 << 10 for _, n in seen)
    out, err = logs(repo, result)
    assert out == b"x" * size == bytes(data["stdout"])
    assert err == b"oops\n" == bytes(data["stderr"])
    assert result.stdout == repo.write_blob(out)  # same id as any other blob of these bytes


def test_nonzero_exit_is_a_crash(runner: Runner, repo: Repo, make_spec: MakeSpec) -> None:
    result = runner.run(repo, make_spec("echo bad >&2; exit 3"))
    assert result.failure is FailureClass.EXITED_NONZERO
    assert result.exit_code == 3
    assert "exit status 3" in result.failure_detail
    assert logs(repo, result)[1] == b"bad\n"


def test_a_crash_keeps_the_outputs_it_produced(
    runner: Runner, repo: Repo, make_spec: MakeSpec
) -> None:
    """A failing test's report is evidence: collected although the step exited 1."""
    spec = make_spec("echo '<testsuite/>' > report.xml; exit 1", outputs=("report.xml", "nope"))
    result = runner.run(repo, spec)
    assert result.failure is FailureClass.EXITED_NONZERO  # not OutputMissing: the exit is the cause
    assert result.exit_code == 1
    assert set(result.outputs) == {"report.xml"}
    assert repo.read_blob(result.outputs["report.xml"]) == b"<testsuite/>\n"


def test_timeout_kills_the_container(
    runner: Runner, repo: Repo, make_spec: MakeSpec, engine: Engine
) -> None:
    spec = make_spec("echo started; sleep 60", timeout_s=1.0)
    result = runner.run(repo, spec)
    assert result.failure is FailureClass.TIMEOUT
    assert (result.finished_at - result.started_at) < 15e9
    assert logs(repo, result)[0] == b"started\n"
    assert labelled(engine, f"steve.run={spec.run_id}") == ([], [])


def test_missing_output_is_a_failure(runner: Runner, repo: Repo, make_spec: MakeSpec) -> None:
    result = runner.run(repo, make_spec("echo made > a", outputs=("a", "b/c")))
    assert result.failure is FailureClass.OUTPUT_MISSING
    assert "b/c" in result.failure_detail
    assert repo.read_blob(result.outputs["a"]) == b"made\n"


def test_missing_executable_fails_to_start(
    runner: Runner, repo: Repo, make_spec: MakeSpec, engine: Engine
) -> None:
    spec = make_spec("true")
    spec = type(spec)(**{**spec.__dict__, "command": ("/no/such/binary",)})
    result = runner.run(repo, spec)
    assert result.failure is FailureClass.START_FAILED
    assert result.exit_code is None or result.exit_code != 0
    assert labelled(engine, f"steve.run={spec.run_id}") == ([], [])


def test_output_device_node_is_rejected(runner: Runner, repo: Repo, make_spec: MakeSpec) -> None:
    # a fifo is the special file an unprivileged step can make
    result = runner.run(repo, make_spec("mkdir out && mkfifo out/pipe", outputs=("out",)))
    assert result.failure is FailureClass.OUTPUT_REJECTED
    assert "pipe" in result.failure_detail


def test_large_input_and_output_stream_through(
    runner: Runner, repo: Repo, make_spec: MakeSpec
) -> None:
    big = os.urandom(2 * CHUNK_SIZE + 123)
    blob = repo.write_blob(big)
    result = runner.run(repo, make_spec("cp big copy", inputs={"big": blob}, outputs=("copy",)))
    assert result.failure is None, result.failure_detail
    assert result.outputs["copy"] == blob


def test_bad_paths_and_missing_inputs_raise_before_create(
    runner: Runner, repo: Repo, make_spec: MakeSpec, engine: Engine
) -> None:
    absent = ObjectId(bytes(32))
    spec = make_spec("true", inputs={"src": absent})
    with pytest.raises(ObjectNotFound):
        runner.run(repo, spec)
    for outputs in (("/etc/passwd",), ("../up",)):
        with pytest.raises(InvalidInput):
            runner.run(repo, make_spec("true", outputs=outputs))
    assert labelled(engine, f"steve.run={spec.run_id}") == ([], [])


def test_an_output_nested_1200_deep_is_stored(
    runner: Runner, repo: Repo, make_spec: MakeSpec
) -> None:
    script = (
        "p=out; i=0; while [ $i -lt 1200 ]; do p=$p/d; i=$((i+1)); done; "
        "mkdir -p $p && echo deep > $p/leaf"
    )
    result = runner.run(repo, make_spec(script, outputs=("out",)))
    assert result.failure is None, result.failure_detail
    node, levels = result.outputs["out"], 0
    while True:
        (only,) = repo.ls_tree(node)
        if only.path == "leaf":
            break
        node, levels = only.oid, levels + 1
    assert levels == 1200
