"""Container policy on the engine: creation arguments, host-side checks, a plan node's policy.

The policy itself (:class:`ContainerPolicy`, its defaults and the rules of what
needs a grant or is refused outright) lives in
:mod:`steve.objects.schemas.container`, so freeze and the runner judge a step
by the same rules: a plan that freezes is a plan that may run.  This module
adds what needs the host or the engine: :func:`create_kwargs` (the ``docker``
SDK arguments that enforce a policy), :func:`check` (the shared rules plus the
engine socket as the host resolves each host mount's source) and
:func:`policy_for` (a plan node's policy and the grants it uses).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import docker.types

from steve.errors import EngineSocketMount, PolicyViolation, SecretNotGranted
from steve.objects.schemas.container import (
    CAPABILITIES,
    DEFAULT_NANO_CPUS,
    DEFAULT_TMPFS,
    ENGINE_SOCKETS,
    NO_NEW_PRIVILEGES,
    Capability,
    ContainerPolicy,
    HostMountSpec,
    engine_socket_problem,
)
from steve.objects.schemas.plan import Grant, Node, PlanManifest

__all__ = [
    "CAPABILITIES",
    "DEFAULT_NANO_CPUS",
    "DEFAULT_TMPFS",
    "NO_NEW_PRIVILEGES",
    "Capability",
    "ContainerPolicy",
    "Grant",
    "HostMountSpec",
    "check",
    "create_kwargs",
    "host_socket_problem",
    "policy_for",
    "require_allowed",
]


def host_socket_problem(source: str, engine_sockets: tuple[str, ...] = ()) -> str | None:
    """Why a host mount of ``source`` exposes a container engine, judged on this host:
    the path it resolves to (symlinks followed), and whether that is one of the
    engine sockets present (the well-known ones and ``engine_sockets``, e.g. the
    socket STEVE talks to), a hard link to one, or a directory holding one."""
    try:
        real = Path(source).resolve()
    except (OSError, RuntimeError, ValueError) as exc:
        return f"{source} cannot be resolved on this host ({exc})"
    why = engine_socket_problem(str(real))
    if why is not None:
        return f"{source} resolves to {real}: {why}"
    try:
        st = real.stat()
    except (OSError, ValueError):
        return None
    if _is_procfs(st):
        return f"{source} is a procfs mount, whose /proc/<pid>/root links reach the host's root"
    for sock in (*ENGINE_SOCKETS, *engine_sockets):
        path = Path(sock)
        try:
            sock_real = path.resolve()
            sock_st = sock_real.stat()
        except (OSError, ValueError):
            continue
        if (st.st_dev, st.st_ino) == (sock_st.st_dev, sock_st.st_ino):
            return f"{source} is the container engine's socket {sock}"
        if stat.S_ISDIR(st.st_mode) and real in sock_real.parents:
            return f"{source} holds the container engine's socket {sock}"
    if stat.S_ISDIR(st.st_mode):
        return _socket_inside(source, real, engine_sockets)
    return None


def _proc_device() -> int | None:
    try:
        return Path("/proc").stat().st_dev
    except OSError:
        return None


def _is_procfs(st: os.stat_result) -> bool:
    """Whether ``st`` is on the host's procfs (the same device as /proc)."""
    return st.st_dev == _proc_device()


MAX_MOUNT_SCAN = 1_000_000
"""Entries of a host-mounted directory searched for a hard link to an engine socket;
a directory holding more is refused (mount a smaller one)."""


def _socket_inside(source: str, root: Path, engine_sockets: tuple[str, ...]) -> str | None:
    """Why the directory ``root`` exposes an engine: a socket in it (at any depth,
    symlinks not followed: they resolve inside the container) that is the same inode
    as an engine socket (a hard link, or a socket bind-mounted there), a directory
    that cannot be searched, or more than MAX_MOUNT_SCAN entries. Walked iteratively."""
    engines: dict[tuple[int, int], str] = {}
    for sock in (*ENGINE_SOCKETS, *engine_sockets):
        try:
            sock_st = Path(sock).resolve().stat()
        except (OSError, ValueError):
            continue
        if stat.S_ISSOCK(sock_st.st_mode):
            engines[(sock_st.st_dev, sock_st.st_ino)] = sock
    if not engines:
        return None
    proc = _proc_device()
    seen = 0
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    seen += 1
                    if seen > MAX_MOUNT_SCAN:
                        return (
                            f"{source} holds more than {MAX_MOUNT_SCAN} entries, too many to "
                            "search for the container engine's socket"
                        )
                    if entry.is_dir(follow_symlinks=False):
                        if entry.stat(follow_symlinks=False).st_dev == proc:
                            return f"{source}: {entry.path} is a procfs mount"
                        stack.append(Path(entry.path))
                    elif not entry.is_file(follow_symlinks=False) and not entry.is_symlink():
                        st = entry.stat(follow_symlinks=False)
                        found = engines.get((st.st_dev, st.st_ino))
                        if found is not None:
                            inner = Path(entry.path).relative_to(root)
                            return f"{source}/{inner} is the container engine's socket {found}"
        except OSError as exc:
            return f"{source}: {folder} cannot be searched for the engine's socket ({exc})"
    return None


def check(
    policy: ContainerPolicy, engine_sockets: tuple[str, ...] = ()
) -> list[tuple[Capability | None, str]]:
    """Every reason ``policy`` may not run: the shared rules
    (:meth:`ContainerPolicy.refusals`) plus host mounts that this host resolves to an
    engine socket (:func:`host_socket_problem`)."""
    out = policy.refusals()
    for m in policy.host_mounts:
        if engine_socket_problem(m.source) is not None:
            continue  # already refused by the shared rules
        why = host_socket_problem(m.source, engine_sockets)
        if why is not None:
            out.insert(0, (None, f"host mount {m.source}:{m.target}: {why}; refused"))
    return out


def require_allowed(policy: ContainerPolicy) -> None:
    """Raise if ``policy`` may not run: :class:`~steve.errors.EngineSocketMount` for a
    mount of the engine's socket, :class:`~steve.errors.PolicyViolation` for a
    setting without its grant."""
    refused = check(policy)
    if not refused:
        return
    forbidden = [what for cap, what in refused if cap is None]
    if forbidden:
        raise EngineSocketMount("; ".join(forbidden))
    cap, _ = refused[0]
    raise PolicyViolation(str(cap), "; ".join(what for _, what in refused))


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

    Raises :class:`~steve.errors.SecretNotGranted` if the node lists
    ``secrets`` without a ``secrets`` grant,
    :class:`~steve.errors.PolicyViolation` if the node asks for a
    capability the plan does not grant, :class:`~steve.errors.EngineSocketMount`
    if it mounts the engine's socket (a plan that passed freeze does neither,
    unless a host path resolves to the socket on this host).
    """
    granted = plan.grants_for(node.id)
    if node.secrets and "secrets" not in granted:
        raise SecretNotGranted(node.id, node.secrets)
    policy = node.container_policy(tuple(granted))  # type: ignore[arg-type]
    require_allowed(policy)
    used = [granted[cap] for cap in dict.fromkeys(c for _, c in node.requested_capabilities())]
    return policy.model_copy(update={"granted": tuple(sorted(g.capability for g in used))}), used
