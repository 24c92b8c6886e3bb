"""Seed the mirror offline from a directory (``steve research import DIR``).

``DIR/index.json`` lists the sources (format in docs/research.md)::

    {"sources": [{"url": "https://example.org/a", "file": "a.html",
                  "media_type": "text/html", "fetched_at": 1767225600,
                  "status": 200, "charset": "utf-8", "final_url": "...",
                  "headers": {"etag": "..."}}]}

(a bare list is read the same way).  Every entry is checked and every file
read before anything is stored; then all of them are stored in one
transaction as source records whose headers carry ``x-steve-imported: 1``.
No request is made: an example can ship its mirror and run offline.

    >>> import_mirror(repo, Path("examples/research/mirror"), now=t)
    [ImportedSource(url=..., record=ObjectId(...))]
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from steve.errors import ImportIndexInvalid
from steve.objects.oid import ObjectId
from steve.repo import Repo
from steve.research.fetch import store_fetched
from steve.research.records import SourceRecord

__all__ = ["IMPORTED_HEADER", "INDEX_NAME", "ImportedSource", "import_mirror"]

INDEX_NAME = "index.json"
IMPORTED_HEADER = "x-steve-imported"
MAX_FILE = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ImportedSource:
    url: str
    record: ObjectId
    previous: ObjectId | None


def _entry(raw: Any, i: int, directory: Path, where: str) -> tuple[SourceRecord, bytes]:
    if not isinstance(raw, dict):
        raise ImportIndexInvalid(where, f"sources[{i}] is not an object")
    unknown = sorted(
        set(raw)
        - {"url", "file", "media_type", "fetched_at", "status", "headers", "final_url", "charset"}
    )
    if unknown:
        raise ImportIndexInvalid(where, f"sources[{i}]: unknown fields {unknown}")
    url, file, media = raw.get("url"), raw.get("file"), raw.get("media_type")
    fetched_at, status = raw.get("fetched_at"), raw.get("status", 200)
    headers, final_url, charset = (
        raw.get("headers", {}),
        raw.get("final_url", url),
        raw.get("charset"),
    )
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ImportIndexInvalid(where, f"sources[{i}].url must be an http(s) URL")
    if not isinstance(file, str) or not file:
        raise ImportIndexInvalid(where, f"sources[{i}].file must be a file name")
    if not isinstance(media, str) or "/" not in media:
        raise ImportIndexInvalid(where, f"sources[{i}].media_type must be a media type")
    if type(fetched_at) is not int or fetched_at < 0:
        raise ImportIndexInvalid(where, f"sources[{i}].fetched_at must be unix seconds")
    if type(status) is not int or not 100 <= status <= 599:
        raise ImportIndexInvalid(where, f"sources[{i}].status must be an HTTP status")
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        raise ImportIndexInvalid(where, f"sources[{i}].headers must map text to text")
    if not isinstance(final_url, str) or not (charset is None or isinstance(charset, str)):
        raise ImportIndexInvalid(where, f"sources[{i}].final_url or charset")
    root = directory.resolve()
    path = (root / file).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise ImportIndexInvalid(where, f"sources[{i}].file {file!r} is not a file inside {root}")
    if path.stat().st_size > MAX_FILE:
        raise ImportIndexInvalid(where, f"sources[{i}].file is over {MAX_FILE} bytes")
    content = path.read_bytes()
    record = SourceRecord(
        url=url,
        final_url=final_url,
        status=status,
        media_type=media.split(";")[0].strip().lower(),
        content=Repo.hash_stream(io.BytesIO(content)),
        size=len(content),
        fetched_at=fetched_at,
        charset=None if charset is None else charset.lower(),
        headers={**{k.lower(): v for k, v in headers.items()}, IMPORTED_HEADER: "1"},
    )
    return record, content


def import_mirror(repo: Repo, directory: Path, *, now: int) -> list[ImportedSource]:
    """Store every source listed in ``directory/index.json`` (all or nothing)."""
    index = directory / INDEX_NAME
    where = str(index)
    try:
        data = json.loads(index.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ImportIndexInvalid(where, "missing") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ImportIndexInvalid(where, str(exc)) from None
    sources = data.get("sources") if isinstance(data, dict) else data
    if not isinstance(sources, list):
        raise ImportIndexInvalid(where, 'expected a list of sources (or {"sources": [...]})')
    items = [_entry(raw, i, directory, where) for i, raw in enumerate(sources)]
    urls = [r.url for r, _ in items]
    if len(set(urls)) != len(urls):
        raise ImportIndexInvalid(where, "a URL is listed twice")
    if not items:
        return []
    stored = store_fetched(repo, items, now=now, event=("research.imported", where))
    return [
        ImportedSource(r.url, rec, prev) for (r, _), (rec, prev) in zip(items, stored, strict=True)
    ]
