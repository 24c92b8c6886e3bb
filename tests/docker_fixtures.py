"""Shared Docker fixtures (import them in a conftest.py):

    from tests.docker_fixtures import busybox_image, engine  # noqa: F401

``engine``         a connected :class:`steve.exec.Engine` (session)
``busybox_image``  an :class:`steve.exec.ImageRecord` built offline with the
                   library's image build: ``FROM scratch`` + the static
                   ``/bin/busybox`` (Debian busybox-static) + ``busybox --install``
                   (session; the engine's build cache makes rebuilds instant)
``labelled``       a helper: ids of containers / volumes carrying a label

Both depend on ``require_docker`` (tests/conftest.py): they fail rather than
skip when ``STEVE_REQUIRE_DOCKER=1``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from steve.exec import Engine, ImageRecord, connect

BUSYBOX = Path("/bin/busybox")
BUSYBOX_TAG = "steve-test-busybox:latest"
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


@pytest.fixture(scope="session")
def busybox_image(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> ImageRecord:
    if not BUSYBOX.is_file():
        why = f"{BUSYBOX} is missing (install Debian's busybox-static)"
        if os.environ.get("STEVE_REQUIRE_DOCKER") == "1":
            pytest.fail(why)
        pytest.skip(why)
    ctx = tmp_path_factory.mktemp("busybox-ctx")
    shutil.copy2(BUSYBOX, ctx / "busybox")
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    return engine.images.build(ctx, tag=BUSYBOX_TAG)


def labelled(engine: Engine, label: str) -> tuple[list[str], list[str]]:
    """(container ids, volume names) carrying ``label`` (``key`` or ``key=value``)."""
    flt = {"label": label}
    containers = [c["Id"] for c in engine.api.containers(all=True, filters=flt)]
    volumes = [v["Name"] for v in engine.api.volumes(filters=flt).get("Volumes") or []]
    return containers, volumes
