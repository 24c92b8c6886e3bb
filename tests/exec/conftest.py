"""Fixtures for the steve.exec tests: the shared Docker fixtures and a step factory."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from steve.exec import ContainerPolicy, ImageRecord, StepSpec
from steve.objects.oid import ObjectId
from tests.docker_fixtures import busybox_image, engine  # noqa: F401

MakeSpec = Callable[..., StepSpec]


@pytest.fixture
def run_id() -> str:
    """A run id unique to the test, so label filters see only its containers."""
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def make_spec(busybox_image: ImageRecord, run_id: str) -> MakeSpec:  # noqa: F811
    """``make_spec("echo hi", outputs=("out",), ...)``: a busybox ``sh -c`` step."""

    def make(
        script: str,
        *,
        inputs: Mapping[str, ObjectId] | None = None,
        outputs: tuple[str, ...] = (),
        env: Mapping[str, str] | None = None,
        timeout_s: float | None = 30.0,
        step_id: str = "step",
        image: str | None = None,
        **policy: Any,
    ) -> StepSpec:
        return StepSpec(
            run_id=run_id,
            step_id=step_id,
            image=image or busybox_image.id,
            command=("/bin/sh", "-c", script),
            env=dict(env or {}),
            inputs=dict(inputs or {}),
            outputs=outputs,
            policy=ContainerPolicy(**policy),
            timeout_s=timeout_s,
        )

    return make
