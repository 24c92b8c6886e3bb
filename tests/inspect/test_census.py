"""The container census of `steve inspect resources` (raw Engine API, no SDK) against
the real engine: it finds what the janitor finds, a container left behind included."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest

from steve.exec import Engine, ImageRecord
from steve.exec.census import list_leftovers
from steve.repo import Repo

# a left-behind container is what `steve janitor` removes: share the janitor's worker
pytestmark = pytest.mark.xdist_group("janitor")


def test_census_matches_the_janitor_and_reports_a_container_left_behind(
    engine: Engine, busybox_image: ImageRecord, repo: Repo, steve_env: dict[str, str]
) -> None:
    repo.close()
    labels = {
        "steve.owner-pid": "999999999",  # no such process: its owner is gone
        "steve.owner-host": socket.gethostname(),
        "steve.run": "CENSUSRUN",
        "steve.step": "left",
    }
    created = engine.api.create_container(busybox_image.id, command=["true"], labels=labels)
    cid = str(created["Id"])
    try:
        mine = [x for x in list_leftovers() if x.id == cid]
        assert [(x.kind, x.run, x.step, x.orphan, x.status) for x in mine] == [
            ("container", "CENSUSRUN", "left", True, "created")
        ]
        by_sdk = {(x.kind, x.id, x.orphan) for x in engine.janitor.scan()}
        assert {(x.kind, x.id, x.orphan) for x in list_leftovers()} == by_sdk
        out = subprocess.run(
            [sys.executable, "-m", "steve", "inspect", "resources", "--json"],
            env=steve_env,
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        ).stdout
        doc = json.loads(out)
        assert doc["containers"]["available"] is True
        assert doc["containers"]["left_behind"] >= 1
        [item] = [i for i in doc["containers"]["items"] if i["id"] == cid]
        assert item == {
            "kind": "container", "id": cid, "run": "CENSUSRUN", "step": "left",
            "status": "created", "left_behind": True,
        }  # fmt: skip
    finally:
        engine.api.remove_container(cid, force=True)
