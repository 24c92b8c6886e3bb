"""Shared helpers for the backup, restore and rekey tests."""

from __future__ import annotations

from pathlib import Path

from steve.events import EventLog
from steve.events.fsck import fsck as full_fsck
from steve.repo import Repo


def fill(repo: Repo, n: int, prefix: str = "b") -> dict[str, bytes]:
    """``n`` refs to small blobs (and one chunked blob), with their events; returns
    ref name -> content."""
    written: dict[str, bytes] = {}
    log = EventLog.attach(repo)
    try:
        for i in range(n):
            data = f"{prefix}{i} ".encode() * (3 if i else 400_000)  # the first is chunked
            name = f"refs/heads/{prefix}{i}"
            repo.update_ref(name, repo.write_blob(data), old=None)
            written[name] = data
    finally:
        log.close()
    return written


def check_clean(root: Path, *, key: bytes | None = None, passphrase: str | None = None) -> Repo:
    """Open ``root``, deliver waiting events, and assert the whole fsck (objects, refs,
    runs, the event chain and its reconciliation) is clean.  The repo is returned
    open: the caller closes it."""
    repo = Repo.open(root, key=key, passphrase=passphrase)
    log = EventLog.attach(repo)
    try:
        report = full_fsck(
            repo, log, public_key=repo.config.events_public_key if repo.config else None
        )
    finally:
        log.close()
    assert report.problems == [], [str(p) for p in report.problems[:5]]
    return repo


def contents(repo: Repo, prefix: str = "refs/heads/") -> dict[str, bytes]:
    """Ref name -> blob content for every ref under ``prefix``."""
    out: dict[str, bytes] = {}
    for ref in repo.list_refs(prefix):
        assert ref.target is not None
        out[ref.name] = repo.read_blob(ref.target)
    return out
