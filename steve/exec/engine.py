"""Access to the container engine (Docker Engine through the ``docker`` SDK).

:func:`connect` opens an :class:`Engine`; the library never reads
``DOCKER_HOST`` itself, the CLI passes it as ``base_url``.  Every failure to
reach the engine becomes :class:`~steve.errors.EngineUnavailable`.  The
engine's capabilities (cgroup version, which limits it can enforce) come
from ``docker info``; :meth:`Engine.notes_for` turns missing features into
notes recorded with each step's result instead of silently ignoring them.

This package is the only place that imports ``docker``.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import docker

from steve.errors import EngineUnavailable
from steve.exec.base import TRANSPORT_ERRORS, engine_call
from steve.exec.images import Images
from steve.exec.janitor import Janitor

if TYPE_CHECKING:
    from steve.exec.policy import ContainerPolicy

DEFAULT_TIMEOUT = 60.0
DEFAULT_SOCKET = "unix:///var/run/docker.sock"


@dataclass(frozen=True, slots=True)
class EngineInfo:
    """What the engine reports about itself and the host features it can use."""

    server_version: str
    api_version: str
    os: str
    architecture: str
    cgroup_version: str
    cgroup_driver: str
    storage_driver: str
    memory_limit: bool
    swap_limit: bool
    pids_limit: bool
    cpu_cfs_quota: bool
    seccomp: bool
    warnings: tuple[str, ...]

    @classmethod
    def from_info(cls, info: dict[str, Any], api_version: str) -> EngineInfo:
        security = [str(s) for s in info.get("SecurityOptions") or ()]
        return cls(
            server_version=str(info.get("ServerVersion", "")),
            api_version=api_version,
            os=str(info.get("OperatingSystem", "")),
            architecture=str(info.get("Architecture", "")),
            cgroup_version=str(info.get("CgroupVersion", "")),
            cgroup_driver=str(info.get("CgroupDriver", "")),
            storage_driver=str(info.get("Driver", "")),
            memory_limit=bool(info.get("MemoryLimit", False)),
            swap_limit=bool(info.get("SwapLimit", False)),
            pids_limit=bool(info.get("PidsLimit", False)),
            cpu_cfs_quota=bool(info.get("CpuCfsQuota", False)),
            seccomp=any("seccomp" in s for s in security),
            warnings=tuple(str(w) for w in info.get("Warnings") or ()),
        )

    def missing_features(self) -> list[str]:
        """Host features the default policy relies on that this engine lacks."""
        out = []
        if not self.memory_limit:
            out.append("engine has no memory limit support: memory limits are not enforced")
        if not self.swap_limit:
            out.append("engine has no swap limit support: memory+swap is not limited")
        if not self.pids_limit:
            out.append("engine has no pids limit support: fork bombs are not contained")
        if not self.cpu_cfs_quota:
            out.append("engine has no CPU quota support: CPU limits are not enforced")
        if not self.seccomp:
            out.append("engine has no seccomp support: the default profile is not applied")
        return out


class Engine:
    """A connected container engine.  Make one with :func:`connect`."""

    def __init__(self, client: docker.DockerClient, stream_api: docker.APIClient, where: str):
        self.client = client
        self.api: docker.APIClient = client.api
        # a second client without a read timeout, for attach streams of quiet steps
        self.stream_api = stream_api
        self.where = where
        self._info: EngineInfo | None = None

    @property
    def images(self) -> Images:
        """Local images: import, build, list, look up by id."""
        return Images(self)

    @property
    def janitor(self) -> Janitor:
        """Finds and removes containers and volumes left by dead STEVE processes."""
        return Janitor(self)

    def info(self) -> EngineInfo:
        """Engine facts and capabilities (cached after the first call)."""
        if self._info is None:
            with self.call("info"):
                raw = self.api.info()
            self._info = EngineInfo.from_info(raw, str(self.api.api_version))
        return self._info

    def notes_for(self, policy: ContainerPolicy) -> tuple[str, ...]:
        """Notes for limits ``policy`` sets that this engine cannot enforce."""
        info = self.info()
        notes = []
        if policy.memory_bytes and not info.memory_limit:
            notes.append("engine has no memory limit support: memory limit not enforced")
        if policy.memory_bytes and not info.swap_limit:
            notes.append("engine has no swap limit support: memory+swap not limited")
        if policy.pids_limit and not info.pids_limit:
            notes.append("engine has no pids limit support: pids limit not enforced")
        if policy.nano_cpus and not info.cpu_cfs_quota:
            notes.append("engine has no CPU quota support: CPU limit not enforced")
        if not info.seccomp:
            notes.append("engine has no seccomp support: default profile not applied")
        return tuple(notes)

    def call(self, operation: str) -> AbstractContextManager[None]:
        """Translate engine/transport errors of ``operation`` into STEVE errors."""
        return engine_call(self.where, operation)

    def close(self) -> None:
        self.client.close()
        self.stream_api.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(base_url: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> Engine:
    """Connect to the engine at ``base_url`` (default: the local unix socket).

    Raises :class:`~steve.errors.EngineUnavailable` if it does not answer.
    """
    url = base_url or DEFAULT_SOCKET
    try:
        client = docker.DockerClient(base_url=url, version="auto", timeout=int(timeout))
        version = str(client.api.api_version)
        stream_api = docker.APIClient(
            base_url=url,
            version=version,
            timeout=None,  # type: ignore[arg-type]
        )
        client.api.ping()
    except TRANSPORT_ERRORS as exc:
        raise EngineUnavailable(url, _why(exc)) from None
    return Engine(client, stream_api, url)


def _why(exc: BaseException) -> str:
    text = str(exc)
    if "Connection refused" in text or "No such file or directory" in text:
        return f"nothing listens there ({text.splitlines()[0][:200]})"
    if "Permission denied" in text:
        return "permission denied on the engine socket (join the docker group?)"
    return text.splitlines()[0][:300] if text else type(exc).__name__
