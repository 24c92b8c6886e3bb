"""Engine access and images without a registry (real engine), plus the image CLI."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from steve.errors import (
    EngineUnavailable,
    ImageBuildFailed,
    ImageNotFound,
    ImageNotPinned,
    InvalidInput,
)
from steve.exec import DockerRunner, Engine, ImageRecord, check_pinned, connect
from steve.objects.schemas.failures import FailureClass
from steve.repo import Repo
from tests.docker_fixtures import BUSYBOX, BUSYBOX_TAG
from tests.exec.conftest import MakeSpec


def steve(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "steve", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )


@pytest.mark.parametrize("url", ["unix:///nonexistent/docker.sock", "tcp://127.0.0.1:1"])
def test_unreachable_engine_is_a_typed_error(url: str) -> None:
    with pytest.raises(EngineUnavailable) as info:
        connect(url, timeout=5)
    assert info.value.exit_code == 11
    assert url in info.value.detail


def test_cli_reports_an_unreachable_engine_without_traceback(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "DOCKER_HOST": "unix:///nonexistent/docker.sock"}
    proc = steve("image", "ls", env=env)
    assert proc.returncode == 11
    assert "[STEVE-CONT-001]" in proc.stderr
    assert "DOCKER_HOST" in proc.stderr  # the fix is named
    assert "Traceback" not in proc.stderr


def test_engine_info_reports_capabilities(engine: Engine) -> None:
    info = engine.info()
    assert info.server_version and info.api_version
    assert info.cgroup_version in ("1", "2")
    assert isinstance(info.memory_limit, bool) and isinstance(info.pids_limit, bool)
    # what is missing is reported, and only that
    assert len(info.missing_features()) == sum(
        not x
        for x in (
            info.memory_limit,
            info.swap_limit,
            info.pids_limit,
            info.cpu_cfs_quota,
            info.seccomp,
        )
    )


def same_image(a: ImageRecord, b: ImageRecord) -> bool:
    """The same image, whatever its tags: each xdist worker's session builds the
    test image and tags it, and the builds share the engine's cache (one id)."""
    return dataclasses.replace(a, tags=()) == dataclasses.replace(b, tags=())


def test_images_are_pinned_by_id(engine: Engine, busybox_image: ImageRecord) -> None:
    assert check_pinned(busybox_image.id) == busybox_image.id
    record = engine.images.get(busybox_image.id)
    assert same_image(record, busybox_image)
    assert BUSYBOX_TAG in record.tags
    assert len(record.diff_ids) == 2  # COPY and RUN layers
    for ref in (BUSYBOX_TAG, "busybox", busybox_image.id[:19], busybox_image.id[7:]):
        with pytest.raises(ImageNotPinned):
            engine.images.get(ref)
    with pytest.raises(ImageNotFound):
        engine.images.get("sha256:" + "0" * 64)
    assert busybox_image.id in {r.id for r in engine.images.list()}


def test_the_documented_name_at_id_form_resolves(
    engine: Engine, busybox_image: ImageRecord, repo: Repo, make_spec: MakeSpec
) -> None:
    named = f"steve-test-busybox@{busybox_image.id}"
    assert same_image(engine.images.get(named), busybox_image)
    other_name = f"docker.io/library/python@{busybox_image.id}"
    assert same_image(engine.images.get(other_name), busybox_image)
    result = DockerRunner(engine).run(repo, make_spec("echo named", image=named))
    assert result.ok, result.failure_detail
    assert repo.read_blob(result.stdout) == b"named\n"
    with pytest.raises(ImageNotFound):
        engine.images.get("steve-test-busybox@sha256:" + "0" * 64)
    with pytest.raises(ImageNotFound):  # an id prefix after the name is no pin either
        engine.images.get("x@sha256:" + busybox_image.id[7:20] + "0" * 51)


def test_an_image_given_by_name_is_told_the_accepted_forms(engine: Engine) -> None:
    with pytest.raises(ImageNotPinned) as info:
        engine.images.get("python:3.12")
    assert "name@sha256:<64 hex>" in info.value.detail and "sha256:<64 hex>" in info.value.action


def test_image_not_found_is_raised_by_the_runner(
    engine: Engine, repo: Repo, make_spec: MakeSpec
) -> None:
    with pytest.raises(ImageNotFound):
        DockerRunner(engine).run(repo, make_spec("true", image="sha256:" + "0" * 64))


def test_import_a_rootfs_tarball(
    engine: Engine, repo: Repo, make_spec: MakeSpec, tmp_path: Path
) -> None:
    tarball = tmp_path / "rootfs.tar"
    with tarfile.open(tarball, "w") as tar:
        tar.add(BUSYBOX, arcname="bin/busybox")
        link = tarfile.TarInfo("bin/sh")
        link.type, link.linkname = tarfile.SYMTYPE, "busybox"
        tar.addfile(link)
    record = engine.images.import_tarball(tarball, "steve-test-import:latest")
    try:
        assert record.id.startswith("sha256:") and len(record.diff_ids) == 1
        result = DockerRunner(engine).run(repo, make_spec("echo imported", image=record.id))
        assert result.failure is None, result.failure_detail
        assert repo.read_blob(result.stdout) == b"imported\n"
    finally:
        engine.api.remove_image(record.id, force=True)


def test_an_image_without_a_shell_is_told_plainly(
    engine: Engine, repo: Repo, make_spec: MakeSpec, tmp_path: Path
) -> None:
    tarball = tmp_path / "rootfs.tar"
    with tarfile.open(tarball, "w") as tar:
        tar.add(BUSYBOX, arcname="bin/busybox")  # a program, but no /bin/sh
    record = engine.images.import_tarball(tarball, "steve-test-noshell:latest")
    try:
        result = DockerRunner(engine).run(repo, make_spec("echo hi", image=record.id))
        assert result.failure is FailureClass.START_FAILED
        assert result.failure_detail.startswith("the image has no /bin/sh"), result.failure_detail
        assert "tools/toolchain-image.sh" in result.failure_detail
    finally:
        engine.api.remove_image(record.id, force=True)


def test_bad_inputs_and_failing_builds(engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput):
        engine.images.build(tmp_path)  # no Dockerfile
    with pytest.raises(InvalidInput):
        engine.images.import_tarball(tmp_path / "missing.tar", "x")
    with pytest.raises(InvalidInput):
        engine.images.import_tarball(tmp_path, "Bad Name")
    (tmp_path / "Dockerfile").write_text('FROM scratch\nRUN ["/nope"]\n')
    with pytest.raises(ImageBuildFailed) as info:
        engine.images.build(tmp_path)
    assert info.value.exit_code == 13
    # nothing is pulled: a base image that is not local fails
    (tmp_path / "Dockerfile").write_text("FROM steve-no-such-image:1\n")
    with pytest.raises(ImageBuildFailed):
        engine.images.build(tmp_path)


def test_image_cli(busybox_image: ImageRecord, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    shutil.copy2(BUSYBOX, ctx / "busybox")
    (ctx / "Dockerfile").write_text(
        'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\n'
    )
    built = steve("image", "build", str(ctx), "--tag", BUSYBOX_TAG)
    assert built.returncode == 0, built.stderr
    assert built.stdout.strip() == busybox_image.id  # the build cache: same id
    listed = steve("image", "ls", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    mine = next(r for r in rows if r["id"] == busybox_image.id)
    assert mine["diff_ids"] == list(busybox_image.diff_ids)
    plain = steve("image", "ls")
    assert any(line.startswith(busybox_image.id) for line in plain.stdout.splitlines())
    missing = steve("image", "import", str(tmp_path / "nope.tar"), "--name", "x")
    assert missing.returncode == 6 and "[STEVE-INPUT-001]" in missing.stderr
