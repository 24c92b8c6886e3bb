"""Pieces shared by the engine modules: labels, owner identity, error translation."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import docker.errors
import requests.exceptions

from steve.errors import ContainerFailed, EngineUnavailable
from steve.exec.owners import (
    LABEL_OWNER_HOST,
    LABEL_OWNER_PID,
    LABEL_OWNER_START,
    LABEL_REPO,
    LABEL_RUN,
    LABEL_STEP,
    owner_labels,
    process_start,
)

__all__ = [
    "LABEL_OWNER_HOST",
    "LABEL_OWNER_PID",
    "LABEL_OWNER_START",
    "LABEL_REPO",
    "LABEL_RUN",
    "LABEL_STEP",
    "TRANSPORT_ERRORS",
    "engine_call",
    "owner_labels",
    "process_start",
]

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
