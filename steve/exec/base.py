"""Pieces shared by the engine modules: labels, owner identity, error translation."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager

import docker.errors
import requests.exceptions

from steve.errors import ContainerFailed, EngineUnavailable

# Labels on every container and volume STEVE creates.
LABEL_RUN = "steve.run"
LABEL_STEP = "steve.step"
LABEL_OWNER_PID = "steve.owner-pid"
LABEL_OWNER_HOST = "steve.owner-host"
LABEL_OWNER_START = "steve.owner-start"
LABEL_REPO = "steve.repo"

# Exceptions that mean "the engine did not answer as an engine".
TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    docker.errors.DockerException,
    requests.exceptions.RequestException,
    OSError,
)


@contextmanager
def engine_call(where: str, operation: str) -> Iterator[None]:
    """Translate engine and transport errors raised by ``operation`` into STEVE errors."""
    try:
        yield
    except docker.errors.APIError as exc:
        why = str(exc.explanation or exc)
        if exc.status_code == 503:
            raise EngineUnavailable(where, f"{operation}: {why}") from None
        raise ContainerFailed(operation, why) from None
    except TRANSPORT_ERRORS as exc:
        raise EngineUnavailable(where, f"{operation}: {exc}") from None


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
