"""The container policy: what a step's container may do.  ONE set of rules for freeze and run.

A plan freezes only if every node's policy (:meth:`Node.container_policy
<steve.objects.schemas.plan.Node.container_policy>`) passes
:meth:`ContainerPolicy.refusals` given the plan's grants, and the runner refuses
a step whose policy does not pass the same method, so a plan that freezes is
a plan that may run.

The defaults (:class:`ContainerPolicy` with no arguments) lock a container
down: no network, every capability dropped, ``no-new-privileges`` and the
engine's default seccomp profile, a read-only root with a small ``/tmp``
tmpfs, pid, memory (no swap) and CPU limits, the non-root user
``65534:65534``, no host mounts, no host namespaces, not privileged.
Anything beyond that is a *capability* that needs a grant; a user or group
id 0 is root (``1000:0`` needs ``root_user``).  Some things no grant allows:
mounting the container engine's socket (or a directory holding it) hands a
step the whole host, so it is refused outright (:func:`engine_socket_problem`).
"""

from __future__ import annotations

import posixpath
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from steve.errors import MalformedObject
from steve.objects.model import check_entry_name

# What a node may ask for beyond the default container policy; each needs a grant.
Capability = Literal[
    "network",
    "host_network",
    "privileged",
    "host_mount",
    "writable_root",
    "memory",
    "pids",
    "cpu",
    "cap_add",
    "root_user",
    "host_pid",
    "host_ipc",
    "secrets",
]
CAPABILITIES: tuple[str, ...] = Capability.__args__  # type: ignore[attr-defined]

# The default container limits a node gets without a grant.
DEFAULT_MEMORY_BYTES = 1 << 30
DEFAULT_PIDS = 256
DEFAULT_CPU_MILLIS = 1000
DEFAULT_USER = "65534:65534"
DEFAULT_TMPFS = {"/tmp": "rw,nosuid,nodev,size=64m"}
DEFAULT_NANO_CPUS = DEFAULT_CPU_MILLIS * 1_000_000
NO_NEW_PRIVILEGES = "no-new-privileges"
USER_PATTERN = r"^([0-9]{1,10}):([0-9]{1,10})$"
MAX_USER_ID = 2**31 - 1
"""The largest uid or gid the engine accepts (it refuses larger ones at creation)."""


def checked_user(user: str) -> str:
    """``user`` (``uid:gid``, already matching USER_PATTERN) if the engine accepts both
    ids; ValueError otherwise, so freeze refuses what the runtime would."""
    if any(int(part) > MAX_USER_ID for part in user.split(":")):
        raise ValueError(f"uid and gid are 0..{MAX_USER_ID} (the engine refuses larger ids)")
    return user


MIN_MEMORY_BYTES = 6 << 20
"""The smallest memory limit the engine accepts (0 is no limit)."""
MIN_CPU_MILLIS = 10
"""The smallest CPU limit, in 1/1000 CPU, the runtime accepts (a CFS quota of 1 ms per
100 ms period; 0 is no limit)."""


def checked_memory(value: int) -> int:
    """``value`` (bytes) if the engine accepts it as a memory limit; ValueError if not."""
    if 0 < value < MIN_MEMORY_BYTES:
        raise ValueError(
            f"a memory limit is 0 or at least {MIN_MEMORY_BYTES} bytes (the engine refuses less)"
        )
    return value


def checked_cpu_millis(value: int) -> int:
    """``value`` (1/1000 CPU) if the runtime accepts it as a CPU limit; ValueError if not."""
    if 0 < value < MIN_CPU_MILLIS:
        raise ValueError(
            f"a CPU limit is 0 or at least {MIN_CPU_MILLIS}/1000 CPU (the engine refuses less)"
        )
    return value


def checked_nano_cpus(value: int) -> int:
    checked_cpu_millis(-(-value // 1_000_000))
    return value


LINUX_CAPABILITIES = frozenset(
    (
        "CHOWN",
        "DAC_OVERRIDE",
        "DAC_READ_SEARCH",
        "FOWNER",
        "FSETID",
        "KILL",
        "SETGID",
        "SETUID",
        "SETPCAP",
        "LINUX_IMMUTABLE",
        "NET_BIND_SERVICE",
        "NET_BROADCAST",
        "NET_ADMIN",
        "NET_RAW",
        "IPC_LOCK",
        "IPC_OWNER",
        "SYS_MODULE",
        "SYS_RAWIO",
        "SYS_CHROOT",
        "SYS_PTRACE",
        "SYS_PACCT",
        "SYS_ADMIN",
        "SYS_BOOT",
        "SYS_NICE",
        "SYS_RESOURCE",
        "SYS_TIME",
        "SYS_TTY_CONFIG",
        "MKNOD",
        "LEASE",
        "AUDIT_WRITE",
        "AUDIT_CONTROL",
        "SETFCAP",
        "MAC_OVERRIDE",
        "MAC_ADMIN",
        "SYSLOG",
        "WAKE_ALARM",
        "BLOCK_SUSPEND",
        "AUDIT_READ",
        "PERFMON",
        "BPF",
        "CHECKPOINT_RESTORE",
    )
)
"""The capability names the engine knows (with or without ``CAP_``, any case), and
``ALL``."""


def checked_capability(name: str) -> str:
    """``name`` if the engine knows it as a capability; ValueError otherwise."""
    bare = name.upper().removeprefix("CAP_")
    if bare != "ALL" and bare not in LINUX_CAPABILITIES:
        raise ValueError(f"unknown capability {name!r} (the engine refuses it)")
    return name


CapabilityName = Annotated[str, AfterValidator(checked_capability)]

UserSpec = Annotated[
    str, Field(pattern=USER_PATTERN, description="uid:gid"), AfterValidator(checked_user)
]

# Where container engines listen (Docker, containerd, Podman, CRI-O; rootful and
# rootless).  A host mount of one of these, or of a directory above one, is refused.
ENGINE_SOCKETS = (
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/var/run/containerd/containerd.sock",
    "/run/containerd/containerd.sock",
    "/var/run/crio/crio.sock",
    "/run/crio/crio.sock",
    "/var/run/podman/podman.sock",
    "/run/podman/podman.sock",
)
_SOCKET_NAME = re.compile(r"(docker|containerd|crio|podman|dockershim)[^/]*\.sock$")
# run directories of engines (sockets, shims) and of rootless engines (/run/user/<uid>)
_RUN_DIRS = re.compile(r"^(/var)?/run/(docker|containerd|crio|podman|user/[0-9]+)(/|$)")


def engine_socket_problem(source: str) -> str | None:
    """Why a host mount of ``source`` would expose a container engine, or None.

    Judged on the normalised path: a known engine socket, a directory above one
    (``/run``, ``/var``, ``/``), anything in ``/proc`` (``/proc/<pid>/root`` is the
    host's root, socket included), a ``*.sock`` named after an engine, or anything
    in an engine's run directory (``/run/docker/...``, a rootless engine's
    ``/run/user/<uid>``).  The runner also judges the path the host resolves it to."""
    path = "/" + posixpath.normpath("/" + source).lstrip("/")
    if path == "/proc" or path.startswith("/proc/"):
        return f"{source} is in /proc, whose /proc/<pid>/root links reach the host's root"
    for sock in ENGINE_SOCKETS:
        if path == sock:
            return f"{source} is the container engine's socket"
        if path == "/" or sock.startswith(path + "/"):
            return f"{source} holds the container engine's socket {sock}"
    if _SOCKET_NAME.search(posixpath.basename(path)):
        return f"{source} is named like a container engine's socket"
    if _RUN_DIRS.match(path):
        return f"{source} is in a container engine's run directory"
    return None


def relative_path_problem(name: str) -> str | None:
    """Why ``name`` cannot be an input or output path under the work dir, or None."""
    parts = name.split("/")
    if not name or name.startswith("/") or any(p in ("", ".", "..") for p in parts):
        return f"{name!r} must be a relative path under the work dir, without . or .."
    for p in parts:
        try:
            check_entry_name(p)
        except MalformedObject as exc:
            return f"{name!r}: {exc.detail or exc.message}"
    return None


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
    cap_add: tuple[CapabilityName, ...] = ()
    security_opt: tuple[str, ...] = (NO_NEW_PRIVILEGES,)
    privileged: bool = False
    read_only_root: bool = True
    tmpfs: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_TMPFS))
    pids_limit: int = Field(default=DEFAULT_PIDS, ge=0)
    memory_bytes: Annotated[int, Field(ge=0), AfterValidator(checked_memory)] = DEFAULT_MEMORY_BYTES
    nano_cpus: Annotated[int, Field(ge=0), AfterValidator(checked_nano_cpus)] = DEFAULT_NANO_CPUS
    user: UserSpec = DEFAULT_USER
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
            out.append(("root_user", f"user={self.user} (uid or gid 0 is root)"))
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

    def forbidden(self) -> list[str]:
        """What no grant allows (a mount of the container engine's socket)."""
        out = []
        for m in self.host_mounts:
            why = engine_socket_problem(m.source)
            if why is not None:
                out.append(f"host mount {m.source}:{m.target}: {why}; refused even with a grant")
        return out

    def refusals(self) -> list[tuple[Capability | None, str]]:
        """Every reason this policy may not run: (capability, what) for a setting beyond
        the defaults that ``granted`` does not cover, (None, why) for a forbidden one."""
        out: list[tuple[Capability | None, str]] = [(None, why) for why in self.forbidden()]
        out.extend(
            (cap, f"{what} needs a {cap!r} grant")
            for cap, what in self.used_capabilities()
            if cap not in self.granted
        )
        return out
