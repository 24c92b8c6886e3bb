"""Search (F-RES-002): a provider protocol, two providers, results kept with their query.

* :class:`LocalSearch` answers from the mirror's full-text index (SQLite FTS5
  inside the encrypted database; queued sources are indexed first, see
  :mod:`steve.research.index`);
* :class:`SearxngSearch` asks a SearxNG-compatible endpoint
  (``GET {url}/search?q=...&format=json``), a network action judged by the
  policy gate (``net.fetch``, subject: the endpoint's host).

:func:`search` runs a provider and records the query and its results as a
canonical-CBOR blob (``type: research.search``) that names the previous search
of the run; ``refs/research/search/<run-id>`` points at the latest
(``_`` without a run), with ``ref.updated`` and ``research.searched`` events,
in one transaction.

    >>> s = search(repo, LocalSearch(repo), "write-ahead log", limit=5, now=t)
    >>> s.record, [h.url for h in s.hits]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import httpx

from steve.errors import SearchUnavailable
from steve.objects import cbor
from steve.objects.model import Blob, ObjectType, hash_object, object_size
from steve.objects.oid import ObjectId
from steve.porcelain.runs import current_run
from steve.repo import Repo
from steve.research.fetch import USER_AGENT, check_gate
from steve.research.index import index_pending
from steve.research.policy import host_of

if TYPE_CHECKING:
    from steve.porcelain.hostaction import GateSettings

__all__ = [
    "SEARCH_PREFIX",
    "SEARCH_TYPE",
    "LocalSearch",
    "SearchHit",
    "SearchProvider",
    "Searched",
    "SearxngSearch",
    "search",
]

SEARCH_TYPE = "research.search"
SEARCH_PREFIX = "refs/research/search/"
MAX_ANSWER = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class SearchHit:
    url: str
    title: str
    snippet: str
    engine: str  # "local" or the metasearch engine that found it
    content: ObjectId | None = None  # the mirrored content blob (local hits)

    def to_record(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "url": self.url,
            "title": self.title,
            "snippet": self.snippet,
            "engine": self.engine,
        }
        if self.content is not None:
            out["content"] = self.content.raw
        return out

    def to_json(self) -> dict[str, Any]:
        out = self.to_record()
        out["content"] = None if self.content is None else self.content.hex
        return out


class SearchProvider(Protocol):
    name: str

    def endpoint(self) -> str | None:
        """Where the answers come from (None: the local mirror)."""
        ...

    def search(self, query: str, limit: int) -> list[SearchHit]: ...


class LocalSearch:
    """Full-text search over everything mirrored (queued sources indexed first)."""

    name = "local"

    def __init__(self, repo: Repo, progress: Callable[[int], None] | None = None) -> None:
        self.repo = repo
        self.progress = progress

    def endpoint(self) -> str | None:
        return None

    def search(self, query: str, limit: int) -> list[SearchHit]:
        index_pending(self.repo, self.progress)
        return [
            SearchHit(h.uri, h.title, h.snippet, "local", h.content)
            for h in self.repo.search_text(query, limit)
        ]


class SearxngSearch:
    """A SearxNG-compatible JSON endpoint (any metasearch instance the user runs)."""

    name = "searxng"

    def __init__(
        self,
        repo: Repo,
        url: str,
        gate: GateSettings,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.repo = repo
        self.url = url.rstrip("/")
        self.gate = gate
        self.timeout = timeout
        self.transport = transport

    def endpoint(self) -> str | None:
        return self.url

    def search(self, query: str, limit: int) -> list[SearchHit]:
        target = self.url + "/search"
        context = self.gate.context(self.repo, int(self.gate.clock()))
        check_gate(context, host_of(target), target)
        try:
            with httpx.Client(
                verify=True,
                timeout=self.timeout,
                headers={"user-agent": USER_AGENT, "accept": "application/json"},
                transport=self.transport,
            ) as client:
                resp = client.get(target, params={"q": query, "format": "json"})
        except httpx.HTTPError as exc:
            raise SearchUnavailable(self.name, f"{target}: {type(exc).__name__}: {exc}") from None
        if resp.status_code != 200:
            raise SearchUnavailable(self.name, f"{target}: HTTP {resp.status_code}")
        if len(resp.content) > MAX_ANSWER:
            raise SearchUnavailable(self.name, f"{target}: answer over {MAX_ANSWER} bytes")
        try:
            results = resp.json()["results"]
            if not isinstance(results, list):
                raise TypeError("results is not a list")
            hits = [
                SearchHit(
                    str(r["url"]),
                    str(r.get("title") or ""),
                    str(r.get("content") or ""),
                    str(r.get("engine") or "searxng"),
                )
                for r in results
                if isinstance(r, dict) and isinstance(r.get("url"), str)
            ]
        except (ValueError, KeyError, TypeError) as exc:
            raise SearchUnavailable(self.name, f"{target}: not SearxNG JSON ({exc})") from None
        return hits[:limit]


@dataclass(frozen=True, slots=True)
class Searched:
    """A recorded search: its record id, the query and what it found."""

    record: ObjectId
    query: str
    provider: str
    endpoint: str | None
    hits: tuple[SearchHit, ...]
    previous: ObjectId | None

    def to_json(self) -> dict[str, Any]:
        return {
            "record": self.record.hex,
            "query": self.query,
            "provider": self.provider,
            "endpoint": self.endpoint,
            "previous": None if self.previous is None else self.previous.hex,
            "results": [h.to_json() for h in self.hits],
        }


def search(
    repo: Repo,
    provider: SearchProvider,
    query: str,
    *,
    limit: int = 10,
    now: int,
    run_id: str | None = None,
) -> Searched:
    """Run ``provider`` and record the query with its results (see the module
    docstring); ``run_id`` None files it under the current run, if any."""
    if run_id is None:
        run = current_run(repo)
        run_id = None if run is None else run.id
    hits = tuple(provider.search(query, limit))
    name = SEARCH_PREFIX + (run_id or "_")
    with repo.transaction() as tx:
        current = repo.refs.resolve(name, tx)
        previous = None if current is None else current.target
        record: dict[str, Any] = {
            "type": SEARCH_TYPE,
            "query": query,
            "provider": provider.name,
            "endpoint": provider.endpoint(),
            "limit": limit,
            "run": run_id,
            "at": now,
            "results": [h.to_record() for h in hits],
            "previous": None if previous is None else previous.raw,
        }
        blob = Blob(cbor.encode(record))
        oid, data = hash_object(blob)
        tx.put(oid, ObjectType.BLOB, object_size(blob), data)
        target, before = repo.refs.update(
            name, oid, previous, who=repo.identity, message=f"search {query}", now=now, tx=tx
        )
        tx.emit(
            "ref.updated",
            {"ref": target, "old": None if before is None else before.hex, "new": oid.hex},
            run_id,
        )
        tx.emit(
            "research.searched",
            {
                "record": oid.hex,
                "query": query,
                "provider": provider.name,
                "results": len(hits),
            },
            run_id,
        )
    return Searched(oid, query, provider.name, provider.endpoint(), hits, previous)
