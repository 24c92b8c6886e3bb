"""Who owns a container: the labels STEVE puts on every container and volume, the
owner test of the janitor, and what one leftover is.  No ``docker`` import: the
census of ``steve inspect resources`` (:mod:`steve.exec.census`) uses this too."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass

# Labels on every container and volume STEVE creates.
LABEL_RUN = "steve.run"
LABEL_STEP = "steve.step"
LABEL_OWNER_PID = "steve.owner-pid"
LABEL_OWNER_HOST = "steve.owner-host"
LABEL_OWNER_START = "steve.owner-start"
LABEL_REPO = "steve.repo"


def owner_labels() -> dict[str, str]:
    """Labels naming this process as the owner (the janitor's orphan test)."""
    pid = os.getpid()
    labels = {LABEL_OWNER_PID: str(pid), LABEL_OWNER_HOST: socket.gethostname()}
    start = process_start(pid)
    if start is not None:
        labels[LABEL_OWNER_START] = start
    return labels


def process_start(pid: int) -> str | None:
    """The start time of ``pid`` in clock ticks since boot (Linux), to tell pid reuse."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:  # noqa: PTH123
            raw = fh.read()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and ')'; fields after the last ')'
    fields = raw[raw.rfind(b")") + 2 :].split()
    return fields[19].decode() if len(fields) > 19 else None


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


def leftover(kind: str, ident: str, labels: Mapping[str, str], status: str, all_: bool) -> Leftover:
    """A labelled container or volume as the janitor sees it (``all_``: every one is
    an orphan)."""
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
