"""Fixtures for the gate, approvals, kill switch and deploy tests: the shared Docker fixtures."""

from __future__ import annotations

from tests.docker_fixtures import busybox_image, engine  # noqa: F401
