"""The container tests' own set-up: a missing static busybox is installed (said first)
or named with the command that installs it, never skipped; the test image the
session builds is untagged when the session ends."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from steve.exec import Engine, ImageRecord
from tests.docker_fixtures import (
    BUSYBOX_PACKAGE,
    BUSYBOX_TAG,
    INSTALL_HINT,
    MissingTool,
    ensure_busybox,
)

ROOT = Path(__file__).resolve().parents[2]


def fake_apt(tmp_path: Path, target: Path, *, works: bool) -> dict[str, str]:
    """A PATH whose apt-get records its arguments and, if ``works``, creates ``target``
    (the package manager is the one part not run for real: the host's busybox stays)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "apt.log"
    body = f'echo "$*" >> {log}\n'
    body += (
        f'[ "$1" = install ] && touch {target}\n'
        if works
        else "echo 'E: no candidate' >&2; exit 100\n"
    )
    (bin_dir / "apt-get").write_text("#!/bin/sh\n" + body)
    (bin_dir / "apt-get").chmod(0o755)
    return {"PATH": f"{bin_dir}:/usr/bin:/bin"}


def test_present_busybox_is_used_as_is(tmp_path: Path) -> None:
    said: list[str] = []
    present = tmp_path / "busybox"
    present.write_bytes(b"")
    assert ensure_busybox(present, say=said.append) == present and said == []


def test_missing_busybox_is_announced_then_installed(tmp_path: Path) -> None:
    target = tmp_path / "busybox"
    said: list[str] = []
    env = fake_apt(tmp_path, target, works=True)
    assert ensure_busybox(target, say=said.append, env=env, root=True) == target
    assert len(said) == 1 and f"installing the system package {BUSYBOX_PACKAGE}" in said[0]
    assert (tmp_path / "apt.log").read_text().split("\n")[0] == f"install -y -q {BUSYBOX_PACKAGE}"


def test_missing_busybox_that_cannot_be_installed_names_package_and_command(
    tmp_path: Path,
) -> None:
    target = tmp_path / "busybox"
    env = fake_apt(tmp_path, target, works=False)
    with pytest.raises(MissingTool) as info:
        ensure_busybox(target, say=lambda _: None, env=env, root=True)
    assert BUSYBOX_PACKAGE in str(info.value) and INSTALL_HINT in str(info.value)
    assert "E: no candidate" in str(info.value)
    # tried as is, then after refreshing the package lists (which failed too)
    assert (tmp_path / "apt.log").read_text().splitlines() == [
        f"install -y -q {BUSYBOX_PACKAGE}",
        "update -q",
    ]
    with pytest.raises(MissingTool) as info:  # not root and no sudo on PATH
        ensure_busybox(target, say=lambda _: None, env=env, root=False)
    assert INSTALL_HINT in str(info.value)
    with pytest.raises(MissingTool) as info:  # no apt-get at all
        ensure_busybox(target, say=lambda _: None, env={"PATH": str(tmp_path)}, root=True)
    assert INSTALL_HINT in str(info.value)


def test_the_session_image_is_untagged_when_the_session_ends(
    engine: Engine, busybox_image: ImageRecord
) -> None:
    """A whole pytest session in a subprocess builds its busybox image (tagged for that
    session, as this session's is now) and leaves no tag of it behind."""
    assert f"steve-test-busybox:session-{os.getpid()}" == BUSYBOX_TAG
    assert BUSYBOX_TAG in engine.images.get(busybox_image.id).tags
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
            "tests/exec/test_engine.py::test_images_are_pinned_by_id",
        ],
        cwd=ROOT,
        env={**os.environ, "STEVE_REQUIRE_DOCKER": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    tag = f"steve-test-busybox:session-{proc.pid}"
    tags = {
        t for image in engine.api.images(name="steve-test-busybox") for t in image["RepoTags"] or []
    }
    assert tag not in tags, tags
