"""Shared set-up for the research tests: a run with the example design, and the
example mirror (examples/research/pages) seeded with put_source."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from steve.objects.model import hash_object
from steve.objects.oid import ObjectId
from steve.porcelain.freeze import load_draft
from steve.porcelain.runs import new_run
from steve.porcelain.stages import record
from steve.repo import Repo, write_blob_stream
from steve.research.records import SourceRecord, put_source

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
MIRROR = EXAMPLES / "research"
NOW = 1_700_000_000


def content_id(content: bytes) -> ObjectId:
    return write_blob_stream(io.BytesIO(content), lambda obj: hash_object(obj)[0])


def seed(repo: Repo, pages: list[tuple[str, bytes, str]] | None = None) -> list[ObjectId]:
    """Mirror ``pages`` (url, bytes, media type), default: the example mirror."""
    if pages is None:
        index = json.loads((MIRROR / "index.json").read_text())
        pages = [(p["url"], (MIRROR / p["file"]).read_bytes(), p["media_type"]) for p in index]
    out = []
    with repo.transaction() as tx:
        for url, content, media_type in pages:
            rec = SourceRecord(
                url=url,
                final_url=url,
                status=200,
                media_type=media_type,
                content=content_id(content),
                size=len(content),
                fetched_at=NOW,
                charset="utf-8",
            )
            out.append(put_source(repo, tx, rec, content, now=NOW))
    return out


def design_draft() -> dict[str, Any]:
    return load_draft((EXAMPLES / "design.yaml").read_bytes())


def run_with_design(repo: Repo, draft: dict[str, Any] | None = None) -> str:
    run = new_run(repo, name="research", now=NOW, actor="test")
    record(repo, "design", draft or design_draft(), run_id=run.id, now=NOW, tz=0, actor="test")
    return run.id
