"""Fixtures for the secrets tests: the shared Docker fixtures."""

from __future__ import annotations

from tests.docker_fixtures import busybox_image, engine, labelled  # noqa: F401
