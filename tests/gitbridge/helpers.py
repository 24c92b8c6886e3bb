"""Building STEVE histories for export tests: manifest envelopes written directly
(the bridge never validates bodies), receipts with attachments of every mode."""

from __future__ import annotations

import re
from typing import Any

from steve.gitbridge.layout import parse_trailers
from steve.objects.model import (
    CHUNK_SIZE,
    Blob,
    Manifest,
    Mode,
    ObjectType,
    Tree,
    TreeEntry,
)
from steve.objects.oid import ObjectId
from steve.repo import Repo

KINDS = [
    ObjectType.DESIGN,
    ObjectType.RESEARCH,
    ObjectType.PLAN,
    ObjectType.BUILD_RECEIPT,
    ObjectType.TEST_CERTIFICATE,
    ObjectType.DEPLOY_RECEIPT,
]
BASE_TIME = 1_700_000_000
LARGE = b"0123456789abcdef" * (CHUNK_SIZE // 16) + b"tail of a chunked blob\n"


def body_for(kind: ObjectType, label: str) -> dict[str, Any]:
    if kind is ObjectType.DESIGN:
        return {"name": label, "intent": {"summary": f"design {label}"}}
    if kind is ObjectType.BUILD_RECEIPT:
        return {"node": label, "exit_status": 0}
    if kind is ObjectType.TEST_CERTIFICATE:
        return {"verdict": "pass", "failures": []}
    if kind is ObjectType.DEPLOY_RECEIPT:
        return {"target": label, "decision": {"decision": "approved"}}
    return {"title": label, "nodes": []}


def write_manifest(
    repo: Repo,
    kind: ObjectType,
    label: str,
    parents: list[ObjectId],
    *,
    time: int,
    tz: int = 0,
    body: dict[str, Any] | None = None,
    links: list[ObjectId] | None = None,
) -> ObjectId:
    manifest = Manifest(
        kind=kind,
        version=1,
        parents=tuple(parents),
        links=tuple(sorted(set(links or []))),
        time=time,
        tz=tz,
        body=body if body is not None else body_for(kind, label),
    )
    return repo.write(manifest)


def make_history(
    repo: Repo, shape: dict[str, list[str]], *, tz: int = 0, kinds: list[ObjectType] | None = None
) -> dict[str, ObjectId]:
    """Nodes of ``shape`` (name -> parent names, parents listed before children),
    one minute apart, kinds cycling through ``kinds``."""
    ids: dict[str, ObjectId] = {}
    for i, (name, parents) in enumerate(shape.items()):
        kind = (kinds or KINDS)[i % len(kinds or KINDS)]
        ids[name] = write_manifest(
            repo, kind, name, [ids[p] for p in parents], time=BASE_TIME + 60 * i, tz=tz
        )
    return ids


def output_tree(repo: Repo, salt: str = "") -> ObjectId:
    """A tree with every mode: a file, an executable, a symlink, a subdirectory."""
    with repo.writer() as w:
        sub = w.add(Tree.from_entries([TreeEntry("notes.txt", Mode.FILE, w.add(Blob(b"notes\n")))]))
        entries = [
            TreeEntry("README", Mode.FILE, w.add(Blob(f"read me{salt}\n".encode()))),
            TreeEntry("run.sh", Mode.EXECUTABLE, w.add(Blob(b"#!/bin/sh\necho hi\n"))),
            TreeEntry("latest", Mode.SYMLINK, w.add(Blob(b"run.sh"))),
            TreeEntry("doc", Mode.TREE, sub),
            TreeEntry("\u00e9t\u00e9 .txt", Mode.FILE, w.add(Blob(b""))),
        ]
        return w.add(Tree.from_entries(entries))


def build_receipt(repo: Repo, plan: ObjectId, *, time: int, large: bool = False) -> ObjectId:
    """A build receipt whose body references trees, blobs and its plan."""
    bin_tree = output_tree(repo)
    log = repo.write_blob(LARGE if large else b"build log line\n")
    inputs = output_tree(repo, "-input")
    body = {
        "plan": plan.hex,
        "node": "build",
        "input_trees": [inputs.hex],
        "inputs": {"src/main": inputs.hex},
        "outputs": {"bin": bin_tree.hex, "manifest.json": log.hex},
        "logs": [log.hex],
        "exit_status": 0,
        "action_key": "ab" * 32,
    }
    links = [plan, bin_tree, log, inputs]
    return write_manifest(
        repo, ObjectType.BUILD_RECEIPT, "build", [plan], time=time, body=body, links=links
    )


def trailer_ids(log_output: bytes) -> list[ObjectId]:
    """Steve-Object ids from ``git log --format=%B%x00`` output, in order."""
    out = []
    for message in log_output.split(b"\x00"):
        message = message.lstrip(b"\n")
        if message:
            tr = parse_trailers(message)
            assert tr is not None, message
            out.append(tr.oid)
    return out


HEX40 = re.compile(r"[0-9a-f]{40}")
