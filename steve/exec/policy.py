"""Container policy: what a step's container may do, checked before it is created.

The defaults (:class:`ContainerPolicy` with no arguments) lock a container
down: no network (``network_mode="none"``), every capability dropped,
``no-new-privileges`` and the engine's default seccomp profile, a read-only
root with a small ``/tmp`` tmpfs, pid, memory (no swap) and CPU limits, the
non-root user ``65534:65534``, no host mounts, no host namespaces, not
privileged.  Anything beyond that is a *capability*
(:data:`~steve.objects.schemas.plan.Capability`); a policy that uses one
must list it in ``granted`` or :func:`check` refuses it.  Plans grant
capabilities per node, with a reason, and :func:`policy_for` derives a
node's policy from the frozen plan.
"""

from __future__ import annotations

import re
from typing import Any, Literal

import docker.types
from pydantic import BaseModel, ConfigDict, Field

from steve.errors import PolicyViolation
from steve.objects.schemas.plan import (
    CAPABILITIES,
    DEFAULT_CPU_MILLIS,
    DEFAULT_MEMORY_BYTES,
    DEFAULT_PIDS,
    DEFAULT_USER,
    Capability,
    Grant,
    Node,
    PlanManifest,
)

DEFAULT_TMPFS = {"/tmp": "rw,nosuid,nodev,size=64m"}
DEFAULT_NANO_CPUS = DEFAULT_CPU_MILLIS * 1_000_000
NO_NEW_PRIVILEGES = "no-new-privileges"
_USER = re.compile(r"^([0-9]{1,10}):([0-9]{1,10})$")

__all__ = [
    "CAPABILITIES",
    "Capability",
    "ContainerPolicy",
    "Grant",
    "HostMountSpec",
    "check",
    "create_kwargs",
    "policy_for",
    "require_allowed",
]


class HostMountSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    source: str = Field(pattern=r"^/")
    target: str = Field(pattern=r"^/")
    read_only: bool = True


class ContainerPolicy(BaseModel):
    """The settings a step's container is created with.  Defaults are the safe ones."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    network_mode: Literal["none", "bridge", "host"] = "none"
    cap_drop: tuple[str, ...] = ("ALL",)
    cap_add: tuple[str, ...] = ()
    security_opt: tuple[str, ...] = (NO_NEW_PRIVILEGES,)
    privileged: bool = False
    read_only_root: bool = True
    tmpfs: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_TMPFS))
    pids_limit: int = Field(default=DEFAULT_PIDS, ge=0)
    memory_bytes: int = Field(default=DEFAULT_MEMORY_BYTES, ge=0)
    nano_cpus: int = Field(default=DEFAULT_NANO_CPUS, ge=0)
    user: str = Field(default=DEFAULT_USER, pattern=_USER.pattern)
    host_mounts: tuple[HostMountSpec, ...] = ()
    host_pid: bool = False
    host_ipc: bool = False
    host_userns: bool = False
    granted: tuple[Capability, ...] = ()

    @property
    def uid(self) -> int:
        return int(self.user.split(":")[0])

    @property
    def gid(self) -> int:
        return int(self.user.split(":")[1])

    def canonical(self) -> dict[str, Any]:
        """Plain sorted values (lists, ints, strings, bools) for hashing and receipts."""
        return {
            "network_mode": self.network_mode,
            "cap_drop": sorted(self.cap_drop),
            "cap_add": sorted(self.cap_add),
            "security_opt": sorted(self.security_opt),
            "seccomp": "default",
            "privileged": self.privileged,
            "read_only_root": self.read_only_root,
            "tmpfs": dict(sorted(self.tmpfs.items())),
            "pids_limit": self.pids_limit,
            "memory_bytes": self.memory_bytes,
            "nano_cpus": self.nano_cpus,
            "user": self.user,
            "host_mounts": [
                {"source": m.source, "target": m.target, "read_only": m.read_only}
                for m in self.host_mounts
            ],
            "host_pid": self.host_pid,
            "host_ipc": self.host_ipc,
            "host_userns": self.host_userns,
            "granted": sorted(self.granted),
        }

    def used_capabilities(self) -> list[tuple[Capability, str]]:
        """(capability, what) for every setting beyond the defaults."""
        out: list[tuple[Capability, str]] = []
        if self.network_mode == "bridge":
            out.append(("network", "network_mode=bridge"))
        if self.network_mode == "host":
            out.append(("host_network", "network_mode=host"))
        if self.privileged:
            out.append(("privileged", "privileged=True"))
        if self.host_mounts:
            shown = ", ".join(f"{m.source}:{m.target}" for m in self.host_mounts)
            out.append(("host_mount", f"host mounts {shown}"))
        if not self.read_only_root:
            out.append(("writable_root", "read_only_root=False"))
        if self.memory_bytes == 0 or self.memory_bytes > DEFAULT_MEMORY_BYTES:
            out.append(("memory", f"memory_bytes={self.memory_bytes}"))
        if self.pids_limit == 0 or self.pids_limit > DEFAULT_PIDS:
            out.append(("pids", f"pids_limit={self.pids_limit}"))
        if self.nano_cpus == 0 or self.nano_cpus > DEFAULT_NANO_CPUS:
            out.append(("cpu", f"nano_cpus={self.nano_cpus}"))
        if self.cap_add or "ALL" not in self.cap_drop:
            out.append(("cap_add", f"cap_add={list(self.cap_add)} cap_drop={list(self.cap_drop)}"))
        if self.uid == 0 or self.gid == 0:
            out.append(("root_user", f"user={self.user}"))
        if self.host_pid:
            out.append(("host_pid", "pid namespace of the host"))
        if self.host_ipc:
            out.append(("host_ipc", "ipc namespace of the host"))
        if self.host_userns:
            out.append(("privileged", "user namespace of the host"))
        if NO_NEW_PRIVILEGES not in self.security_opt or any(
            o != NO_NEW_PRIVILEGES for o in self.security_opt
        ):
            out.append(("privileged", f"security_opt={list(self.security_opt)}"))
        for path in self.tmpfs:
            if path != "/tmp":
                out.append(("writable_root", f"tmpfs at {path}"))
        return out


def check(policy: ContainerPolicy) -> list[tuple[Capability, str]]:
    """The settings of ``policy`` that go beyond the defaults without a grant."""
    return [(cap, what) for cap, what in policy.used_capabilities() if cap not in policy.granted]


def require_allowed(policy: ContainerPolicy) -> None:
    """Raise :class:`~steve.errors.PolicyViolation` if ``policy`` is not allowed."""
    refused = check(policy)
    if refused:
        cap, _ = refused[0]
        detail = "; ".join(f"{what} needs a {c!r} grant" for c, what in refused)
        raise PolicyViolation(cap, detail)


def create_kwargs(policy: ContainerPolicy) -> dict[str, Any]:
    """``docker`` SDK ``containers.create`` keyword arguments enforcing ``policy``.

    Never passes ``seccomp=unconfined``: the engine's default profile applies.
    """
    kwargs: dict[str, Any] = {
        "network_mode": policy.network_mode,
        "network_disabled": policy.network_mode == "none",
        "cap_drop": list(policy.cap_drop),
        "security_opt": list(policy.security_opt),
        "privileged": policy.privileged,
        "read_only": policy.read_only_root,
        "tmpfs": dict(policy.tmpfs),
        "user": policy.user,
        "ipc_mode": "host" if policy.host_ipc else "private",
    }
    if policy.cap_add:
        kwargs["cap_add"] = list(policy.cap_add)
    if policy.pids_limit:
        kwargs["pids_limit"] = policy.pids_limit
    if policy.memory_bytes:
        kwargs["mem_limit"] = policy.memory_bytes
        kwargs["memswap_limit"] = policy.memory_bytes  # no swap on top
    if policy.nano_cpus:
        kwargs["nano_cpus"] = policy.nano_cpus
    if policy.host_pid:
        kwargs["pid_mode"] = "host"
    if policy.host_userns:
        kwargs["userns_mode"] = "host"
    if policy.host_mounts:
        kwargs["mounts"] = [
            docker.types.Mount(m.target, m.source, type="bind", read_only=m.read_only)
            for m in policy.host_mounts
        ]
    return kwargs


def policy_for(plan: PlanManifest, node: Node) -> tuple[ContainerPolicy, list[Grant]]:
    """The container policy of ``node`` in the frozen ``plan`` and the grants it uses.

    Raises :class:`~steve.errors.PolicyViolation` if the node asks for a
    capability the plan does not grant (a plan that passed freeze never does).
    """
    granted = plan.grants_for(node.id)
    used: list[Grant] = []
    for path, cap in node.requested_capabilities():
        grant = granted.get(cap)
        if grant is None:
            raise PolicyViolation(
                cap, f"node {node.id!r} asks for {cap!r} ({path}) without a grant"
            )
        if grant not in used:
            used.append(grant)
    r = node.requests
    network_mode: Literal["none", "bridge", "host"] = "none"
    if r.host_network:
        network_mode = "host"
    elif node.network:
        network_mode = "bridge"
    policy = ContainerPolicy(
        network_mode=network_mode,
        cap_add=tuple(r.cap_add),
        privileged=r.privileged,
        read_only_root=not r.writable_root,
        pids_limit=DEFAULT_PIDS if r.pids is None else r.pids,
        memory_bytes=node.budgets.memory_bytes or DEFAULT_MEMORY_BYTES,
        nano_cpus=DEFAULT_NANO_CPUS if r.cpu_millis is None else r.cpu_millis * 1_000_000,
        user=r.user or DEFAULT_USER,
        host_mounts=tuple(
            HostMountSpec(source=m.source, target=m.target, read_only=m.read_only)
            for m in r.host_mounts
        ),
        host_pid=r.host_pid,
        host_ipc=r.host_ipc,
        granted=tuple(sorted(g.capability for g in used)),
    )
    return policy, used
