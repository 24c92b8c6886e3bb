"""The janitor (F-MNT-002): remove containers and volumes left by dead STEVE processes.

Every container and volume STEVE creates carries the owner's pid, host name
and process start time as labels.  One is an orphan when its owner ran on
this host and that process is gone (or the pid now belongs to a process
that started at another time).  Owners on other hosts are left alone unless
``all`` is given.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import docker.errors

from steve.exec.base import (
    LABEL_OWNER_HOST,
    LABEL_OWNER_PID,
    LABEL_OWNER_START,
    LABEL_REPO,
    LABEL_RUN,
    LABEL_STEP,
    TRANSPORT_ERRORS,
    engine_call,
    process_start,
)

if TYPE_CHECKING:
    from steve.exec.engine import Engine


@dataclass(frozen=True, slots=True)
class Leftover:
    """A container or volume STEVE created."""

    kind: str  # "container" or "volume"
    id: str
    run: str
    step: str
    owner_pid: int | None
    owner_host: str
    status: str  # container state, or "" for volumes
    orphan: bool


@dataclass(frozen=True, slots=True)
class JanitorReport:
    found: tuple[Leftover, ...]
    removed: tuple[Leftover, ...]
    dry_run: bool


def owner_alive(labels: Mapping[str, str], host: str | None = None) -> bool:
    """Whether the process named by ``labels`` still runs (unknown hosts count as alive)."""
    if labels.get(LABEL_OWNER_HOST, "") != (host or socket.gethostname()):
        return True
    try:
        pid = int(labels.get(LABEL_OWNER_PID, ""))
    except ValueError:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    started = labels.get(LABEL_OWNER_START)
    return started is None or process_start(pid) in (None, started)


class Janitor:
    """``engine.janitor``: list and remove STEVE's leftovers."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def scan(self, *, all: bool = False) -> list[Leftover]:
        """Every labelled container and volume; ``orphan`` says whether it would be removed."""
        api, where = self._engine.api, self._engine.where
        flt = {"label": LABEL_OWNER_PID}
        with engine_call(where, "list containers"):
            containers: list[dict[str, Any]] = api.containers(all=True, filters=flt)
        with engine_call(where, "list volumes"):
            volumes: list[dict[str, Any]] = api.volumes(filters=flt).get("Volumes") or []
        out = []
        for c in containers:
            out.append(
                _leftover(
                    "container", str(c["Id"]), c.get("Labels") or {}, str(c.get("State", "")), all
                )
            )
        for v in volumes:
            out.append(_leftover("volume", str(v["Name"]), v.get("Labels") or {}, "", all))
        return out

    def clean(self, *, all: bool = False, dry_run: bool = False) -> JanitorReport:
        """Stop and remove orphans (containers first, then their volumes)."""
        found = self.scan(all=all)
        removed = []
        api, where = self._engine.api, self._engine.where
        for item in found:
            if not item.orphan:
                continue
            if not dry_run:
                try:
                    with engine_call(where, f"remove {item.kind}"):
                        if item.kind == "container":
                            api.remove_container(item.id, force=True)
                        else:
                            api.remove_volume(item.id, force=True)
                except docker.errors.NotFound:
                    continue  # someone else removed it first
            removed.append(item)
        return JanitorReport(tuple(found), tuple(removed), dry_run)


    def stop_running(self, repository_id: str) -> list[str]:
        """Kill every running STEVE container of the repository ``repository_id`` (the
        kill switch); returns their ids.  Their owners see the step killed and record it;
        ``clean`` removes what an owner that died leaves behind."""
        api, where = self._engine.api, self._engine.where
        flt = {"label": f"{LABEL_REPO}={repository_id}", "status": "running"}
        with engine_call(where, "list containers"):
            running: list[dict[str, Any]] = api.containers(filters=flt)
        stopped = []
        for c in running:
            try:
                api.kill(str(c["Id"]))
            except docker.errors.NotFound:
                continue  # it ended and was removed meanwhile
            except docker.errors.APIError as exc:
                if exc.status_code == 409:  # no longer running
                    continue
                with engine_call(where, "kill container"):
                    raise exc
            except TRANSPORT_ERRORS as exc:
                with engine_call(where, "kill container"):
                    raise exc
            stopped.append(str(c["Id"]))
        return stopped


def _leftover(kind: str, ident: str, labels: dict[str, str], status: str, all_: bool) -> Leftover:
    try:
        pid: int | None = int(labels.get(LABEL_OWNER_PID, ""))
    except ValueError:
        pid = None
    return Leftover(
        kind=kind,
        id=ident,
        run=labels.get(LABEL_RUN, ""),
        step=labels.get(LABEL_STEP, ""),
        owner_pid=pid,
        owner_host=labels.get(LABEL_OWNER_HOST, ""),
        status=status,
        orphan=all_ or not owner_alive(labels),
    )
