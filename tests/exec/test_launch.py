"""A step's command and environment never reach the engine's configuration (issue 12
item 18): they come in ``/steve/cmd`` through the archive; the engine and containerd hold
neither, checked by inspecting the container and containerd's metadata database."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest

from steve.errors import InvalidInput
from steve.exec import DockerRunner, Engine, FailureClass
from steve.exec.launch import ENTRYPOINT, launch_script
from steve.repo import Repo
from tests.exec.conftest import MakeSpec

# where containerd keeps its metadata (bolt) database: Docker's bundled one, or a system one
CONTAINERD_ROOTS = (Path("/var/lib/docker/containerd"), Path("/var/lib/containerd"))

AWKWARD = ["it's", 'say "hi"', "$HOME `id` $(id)", "line\nbreak", "", "-n", "*"]


def test_the_script_quotes_every_word_for_a_real_shell(tmp_path: Path) -> None:
    script = tmp_path / "cmd"
    env = {"A": "x'y", "B_2": "$(false) `false`", "EMPTY": ""}
    script.write_bytes(launch_script(["printf", "[%s]\n", *AWKWARD], env))
    out = subprocess.run(["/bin/sh", str(script)], capture_output=True, check=True).stdout
    assert out.decode() == "".join(f"[{w}]\n" for w in AWKWARD)
    script.write_bytes(launch_script(["sh", "-c", 'printf "%s|%s|%s" "$A" "$B_2" "$EMPTY"'], env))
    out = subprocess.run(["/bin/sh", str(script)], capture_output=True, check=True).stdout
    assert out.decode() == "x'y|$(false) `false`|"


@pytest.mark.parametrize("name", ["A-B", "1X", "a.b", "", "X Y"])
def test_an_environment_name_that_is_not_a_shell_identifier_is_refused(name: str) -> None:
    with pytest.raises(InvalidInput):
        launch_script(["true"], {name: "v"})


def containerd_root() -> Path:
    for root in CONTAINERD_ROOTS:
        if root.is_dir():
            return root
    pytest.fail(f"containerd's state is in none of {[str(r) for r in CONTAINERD_ROOTS]}")


def holds(root: Path, marker: str) -> list[str]:
    found = subprocess.run(
        ["grep", "-rlaF", marker, str(root)], capture_output=True, text=True, check=False
    )
    return found.stdout.split()


def test_the_engine_holds_neither_command_nor_environment(
    engine: Engine, repo: Repo, make_spec: MakeSpec
) -> None:
    root = containerd_root()
    marker = f"steve-secret-{uuid.uuid4().hex}"
    spec = make_spec(f'echo "{marker}-cmd $TOKEN"', env={"TOKEN": f"{marker}-env"})
    seen: list[dict[str, object]] = []

    def on_log(stream: str, data: bytes) -> None:
        flt = {"label": f"steve.run={spec.run_id}"}
        for c in engine.api.containers(all=True, filters=flt):
            seen.append(engine.api.inspect_container(c["Id"]))

    result = DockerRunner(engine).run(repo, spec, on_log)
    assert result.ok, result.failure_detail
    assert repo.read_blob(result.stdout) == f"{marker}-cmd {marker}-env\n".encode()
    assert seen, "the container was never inspected while it ran"
    config = seen[0]["Config"]
    assert isinstance(config, dict)
    assert config["Entrypoint"] == list(ENTRYPOINT) and not config["Cmd"]
    assert marker not in repr(seen)  # nowhere in what the engine reports
    assert holds(root, marker) == []  # nor in containerd's metadata after removal


def test_a_missing_program_still_fails_to_start(
    engine: Engine, repo: Repo, make_spec: MakeSpec
) -> None:
    spec = make_spec("true")
    spec = type(spec)(**{**spec.__dict__, "command": ("no-such-program", "x")})
    result = DockerRunner(engine).run(repo, spec)
    assert result.failure is FailureClass.START_FAILED
    assert "no-such-program" in result.failure_detail
