"""Execution: run plan steps in containers under a checked policy (Docker Engine first).

The only package that imports ``docker``.  Start with :func:`connect`::

    engine = connect()                      # or connect("tcp://host:2375")
    image = engine.images.build(Path("ctx"))
    policy, grants = policy_for(plan, node)
    result = DockerRunner(engine).run(repo, StepSpec(...), on_log=print_chunk)

See docs/python-api.md, section "Containers (steve.exec)".

The submodules are imported on first use of a name (PEP 562), so importing a
docker-free part (``steve.exec.owners``, ``steve.exec.census``) does not load
the SDK.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from steve.exec.base import (
        LABEL_OWNER_HOST,
        LABEL_OWNER_PID,
        LABEL_OWNER_START,
        LABEL_REPO,
        LABEL_RUN,
        LABEL_STEP,
    )
    from steve.exec.engine import (
        Engine,
        EngineInfo,
        connect,
    )
    from steve.exec.images import (
        ImageRecord,
        Images,
        check_pinned,
    )
    from steve.exec.janitor import (
        Janitor,
        JanitorReport,
        Leftover,
    )
    from steve.exec.policy import (
        ContainerPolicy,
        Grant,
        HostMountSpec,
        check,
        create_kwargs,
        policy_for,
        require_allowed,
    )
    from steve.exec.runner import (
        DockerRunner,
        LogCallback,
        Runner,
        StepResult,
        StepSpec,
        classify,
    )
    from steve.exec.tarconv import (
        store_tar,
        tar_stream,
    )
    from steve.objects.schemas.failures import (
        FailureClass,
    )

_WHERE: dict[str, str] = {
    "LABEL_OWNER_HOST": "steve.exec.base",
    "LABEL_OWNER_PID": "steve.exec.base",
    "LABEL_OWNER_START": "steve.exec.base",
    "LABEL_REPO": "steve.exec.base",
    "LABEL_RUN": "steve.exec.base",
    "LABEL_STEP": "steve.exec.base",
    "Engine": "steve.exec.engine",
    "EngineInfo": "steve.exec.engine",
    "connect": "steve.exec.engine",
    "ImageRecord": "steve.exec.images",
    "Images": "steve.exec.images",
    "check_pinned": "steve.exec.images",
    "Janitor": "steve.exec.janitor",
    "JanitorReport": "steve.exec.janitor",
    "Leftover": "steve.exec.janitor",
    "ContainerPolicy": "steve.exec.policy",
    "Grant": "steve.exec.policy",
    "HostMountSpec": "steve.exec.policy",
    "check": "steve.exec.policy",
    "create_kwargs": "steve.exec.policy",
    "policy_for": "steve.exec.policy",
    "require_allowed": "steve.exec.policy",
    "DockerRunner": "steve.exec.runner",
    "LogCallback": "steve.exec.runner",
    "Runner": "steve.exec.runner",
    "StepResult": "steve.exec.runner",
    "StepSpec": "steve.exec.runner",
    "classify": "steve.exec.runner",
    "store_tar": "steve.exec.tarconv",
    "tar_stream": "steve.exec.tarconv",
    "FailureClass": "steve.objects.schemas.failures",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'steve.exec' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "LABEL_OWNER_HOST",
    "LABEL_OWNER_PID",
    "LABEL_OWNER_START",
    "LABEL_REPO",
    "LABEL_RUN",
    "LABEL_STEP",
    "ContainerPolicy",
    "DockerRunner",
    "Engine",
    "EngineInfo",
    "FailureClass",
    "Grant",
    "HostMountSpec",
    "ImageRecord",
    "Images",
    "Janitor",
    "JanitorReport",
    "Leftover",
    "LogCallback",
    "Runner",
    "StepResult",
    "StepSpec",
    "check",
    "check_pinned",
    "classify",
    "connect",
    "create_kwargs",
    "policy_for",
    "require_allowed",
    "store_tar",
    "tar_stream",
]
