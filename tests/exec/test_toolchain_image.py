"""tools/toolchain-image.sh: a real toolchain image (the host's Python, from its Debian
packages, with the libraries ldd names) made offline and imported with `steve image
import`, then run as a plan step runs: the default-deny container (uid 65534,
read-only root, no network), an input under /work/<name>, a declared output."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from steve.exec import ContainerPolicy, DockerRunner, Engine, StepSpec
from steve.repo import Repo
from tests.docker_fixtures import remove_tag

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tools" / "toolchain-image.sh"


def owning_package(path: str) -> str:
    proc = subprocess.run(["dpkg", "-S", path], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        pytest.fail(f"{path} comes from no Debian package here; the test needs a Debian host")
    return proc.stdout.split(":")[0].strip()


def test_python_toolchain_image_runs_a_program_in_a_step(
    engine: Engine, repo: Repo, tmp_path: Path
) -> None:
    python = os.path.realpath("/usr/bin/python3")
    version = Path(python).name  # python3.11
    packages = [owning_package(python), owning_package(f"/usr/lib/{version}/os.py")]
    tag = f"steve-test-toolchain:session-{os.getpid()}"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    assert shutil.which("steve", path=env["PATH"]), "the steve console script is not installed"
    proc = subprocess.run(
        ["bash", str(SCRIPT), "--tag", tag, *packages],
        capture_output=True, text=True, env=env, timeout=600, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    image = proc.stdout.strip().splitlines()[-1]
    try:
        assert image.startswith("sha256:") and tag in engine.images.get(image).tags
        src = tmp_path / "src"
        src.mkdir()
        (src / "main.py").write_text("import os\nprint(6 * 7, os.getuid())\n")
        script = (
            "import contextlib, os, runpy\n"
            "os.makedirs('/work/out')\n"
            "with open('/work/out/answer.txt', 'w') as f, contextlib.redirect_stdout(f):\n"
            "    runpy.run_path('/work/src/main.py')\n"
        )
        spec = StepSpec(
            run_id=f"toolchain-{os.getpid()}",
            step_id="py",
            image=image,
            command=(f"/usr/bin/{version}", "-c", script),
            env={},
            inputs={"src": repo.write_tree(src)},
            outputs=("out",),
            policy=ContainerPolicy(),
            timeout_s=120,
        )  # fmt: skip
        result = DockerRunner(engine).run(repo, spec)
        assert result.ok, (result.failure, repo.read_blob(result.stderr))
        files = {e.path: e.oid for e in repo.ls_tree(result.outputs["out"], recursive=True)}
        assert repo.read_blob(files["answer.txt"]) == b"42 65534\n"  # run as nobody
    finally:
        remove_tag(engine, tag)
    assert tag not in {t for i in engine.api.images() for t in i["RepoTags"] or []}
