"""Execution: run plan steps in containers under a checked policy (Docker Engine first).

The only package that imports ``docker``.  Start with :func:`connect`::

    engine = connect()                      # or connect("tcp://host:2375")
    image = engine.images.build(Path("ctx"))
    policy, grants = policy_for(plan, node)
    result = DockerRunner(engine).run(repo, StepSpec(...), on_log=print_chunk)

See docs/python-api.md, section "Containers (steve.exec)".
"""

from steve.exec.base import (
    LABEL_OWNER_HOST,
    LABEL_OWNER_PID,
    LABEL_OWNER_START,
    LABEL_REPO,
    LABEL_RUN,
    LABEL_STEP,
)
from steve.exec.engine import Engine, EngineInfo, connect
from steve.exec.images import ImageRecord, Images, check_pinned
from steve.exec.janitor import Janitor, JanitorReport, Leftover
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
from steve.exec.tarconv import store_tar, tar_stream
from steve.objects.schemas.failures import FailureClass

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
