"""Shared Docker fixtures (import them in a conftest.py):

    from tests.docker_fixtures import busybox_image, engine  # noqa: F401

``engine``         a connected :class:`steve.exec.Engine` (session)
``busybox_image``  an :class:`steve.exec.ImageRecord` built offline with the
                   library's image build: ``FROM scratch`` + the static
                   ``/bin/busybox`` (Debian busybox-static) + ``busybox --install``
                   (session; the engine's build cache makes rebuilds instant).
                   Tagged ``steve-test-busybox:session-<pid>`` and untagged at the
                   end of the session, so the suite leaves no image behind (the
                   image itself goes with its last tag).
``labelled``       a helper: ids of containers / volumes carrying a label

Both depend on ``require_docker`` (tests/conftest.py): they fail rather than
skip when ``STEVE_REQUIRE_DOCKER=1``.

A missing ``/bin/busybox`` never skips anything: :func:`ensure_busybox` says it is
installing Debian's ``busybox-static`` and installs it with apt-get (as root, or
through passwordless sudo), or the tests fail naming the package and the command.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from steve.exec import Engine, ImageRecord, connect

BUSYBOX = Path("/bin/busybox")
BUSYBOX_PACKAGE = "busybox-static"
INSTALL_HINT = f"sudo apt-get install {BUSYBOX_PACKAGE}"
BUSYBOX_TAG = f"steve-test-busybox:session-{os.getpid()}"
DOCKERFILE = """FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
"""


@pytest.fixture(scope="session")
def engine(require_docker: str) -> Iterator[Engine]:
    eng = connect()
    try:
        yield eng
    finally:
        eng.close()


class MissingTool(Exception):
    """Something the tests need is missing and could not be installed."""


def ensure_busybox(
    path: Path = BUSYBOX,
    *,
    say: Callable[[str], None],
    env: Mapping[str, str] | None = None,
    root: bool | None = None,
) -> Path:
    """The static busybox the test image is built from.

    When ``path`` is missing, say so and that the system package
    ``busybox-static`` is being installed, then install it with apt-get (as
    root, else through ``sudo -n``).  MissingTool names the package and the
    command when that is impossible or fails."""
    if path.is_file():
        return path
    search = (env or os.environ).get("PATH")
    apt = shutil.which("apt-get", path=search)
    if apt is None:
        raise MissingTool(
            f"{path} is missing and there is no apt-get to install it: install Debian's "
            f"{BUSYBOX_PACKAGE} ({INSTALL_HINT}) or put a static busybox at {path}"
        )
    is_root = os.geteuid() == 0 if root is None else root
    sudo = shutil.which("sudo", path=search)
    if not is_root and sudo is None:
        raise MissingTool(f"{path} is missing: install Debian's {BUSYBOX_PACKAGE}: {INSTALL_HINT}")
    prefix = [] if is_root else [sudo or "sudo", "-n"]
    command = [*prefix, apt, "install", "-y", "-q", BUSYBOX_PACKAGE]
    say(
        f"tests: {path} is missing; installing the system package {BUSYBOX_PACKAGE} "
        f"for the offline container test image: {' '.join(command)}"
    )
    failure = ""
    for attempt in ([command], [[*prefix, apt, "update", "-q"], command]):
        failure = ""
        for step in attempt:
            proc = subprocess.run(
                step, env=env, capture_output=True, text=True, check=False, timeout=600
            )
            if proc.returncode != 0:
                said = (proc.stderr or proc.stdout).strip().splitlines()
                failure = said[-1] if said else f"exit status {proc.returncode}"
                break
        if not failure and path.is_file():
            return path
    raise MissingTool(
        f"{path} is missing and installing {BUSYBOX_PACKAGE} failed ({failure or 'no file'}): "
        f"run {INSTALL_HINT}"
    )


def _say_on_terminal(config: pytest.Config) -> Callable[[str], None]:
    """Print past pytest's output capture (a note the user must see at once)."""

    def say(text: str) -> None:
        capture = config.pluginmanager.getplugin("capturemanager")
        if capture is None:
            print(text, file=sys.stderr, flush=True)
            return
        with capture.global_and_fixture_disabled():
            print(f"\n{text}", file=sys.stderr, flush=True)

    return say


@pytest.fixture(scope="session")
def busybox_image(
    engine: Engine, tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> Iterator[ImageRecord]:
    try:
        busybox = ensure_busybox(say=_say_on_terminal(pytestconfig))
    except MissingTool as exc:
        pytest.fail(str(exc))  # never a silent skip
    ctx = tmp_path_factory.mktemp("busybox-ctx")
    shutil.copy2(busybox, ctx / "busybox")
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    record = engine.images.build(ctx, tag=BUSYBOX_TAG)
    try:
        yield record
    finally:
        remove_tag(engine, BUSYBOX_TAG)


def remove_tag(engine: Engine, tag: str) -> None:
    """Untag ``tag``; the image goes with its last tag (force: a leftover stopped
    container keeps the image, untagged, for the janitor, instead of failing)."""
    import docker.errors

    with contextlib.suppress(docker.errors.NotFound):
        engine.api.remove_image(tag, force=True)


def labelled(engine: Engine, label: str) -> tuple[list[str], list[str]]:
    """(container ids, volume names) carrying ``label`` (``key`` or ``key=value``)."""
    flt = {"label": label}
    containers = [c["Id"] for c in engine.api.containers(all=True, filters=flt)]
    volumes = [v["Name"] for v in engine.api.volumes(filters=flt).get("Volumes") or []]
    return containers, volumes
