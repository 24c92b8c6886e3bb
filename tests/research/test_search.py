"""Search: the FTS5 index over the mirror, the SearxNG provider, recorded queries, import."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from steve.errors import ImportIndexInvalid, KillSwitchEngaged, SearchUnavailable
from steve.objects import cbor
from steve.objects.oid import ObjectId
from steve.porcelain.hostaction import DEFAULT_GATE, GateSettings, KillSwitch
from steve.repo import Repo
from steve.research.fetch import fetch_sources
from steve.research.imports import import_mirror
from steve.research.index import index_pending, pending_count
from steve.research.policy import SourcePolicy
from steve.research.records import lookup
from steve.research.search import SEARCH_PREFIX, LocalSearch, SearxngSearch, search
from tests.research.server import ARTICLE, NOTES, Site, serve


@pytest.fixture
def site() -> Iterator[Site]:
    with serve() as s:
        yield s


def _mirror(repo: Repo, site: Site, *paths: str) -> None:
    out = fetch_sources(repo, [site.url(p) for p in paths], policy=SourcePolicy(),
                        gate=DEFAULT_GATE)  # fmt: skip
    assert all(o.error is None for o in out)


def test_local_search_finds_mirrored_pages(repo: Repo, site: Site) -> None:
    _mirror(repo, site, "/article", "/second", "/notes.txt")
    assert pending_count(repo) == 3 and repo.text_count() == 0
    found = search(repo, LocalSearch(repo), "readers writer", limit=5, now=1)
    assert pending_count(repo) == 0 and repo.text_count() == 3
    assert [h.url for h in found.hits] == [site.url("/article")]
    hit = found.hits[0]
    assert hit.title == "Write-ahead logging in SQLite" and "[" in hit.snippet
    assert hit.content == lookup(repo, site.url("/article"))[1].content  # type: ignore[index]
    assert "Newsletter" not in repo.search_text("newsletter", 5).__repr__()  # boilerplate
    assert [h.url for h in search(repo, LocalSearch(repo), "kestrel", now=2).hits] == [
        site.url("/notes.txt")
    ]
    assert search(repo, LocalSearch(repo), 'no "such" words', now=3).hits == ()


def test_searches_are_recorded_with_their_query(repo: Repo, site: Site) -> None:
    _mirror(repo, site, "/article")
    first = search(repo, LocalSearch(repo), "checkpoint", now=10)
    second = search(repo, LocalSearch(repo), "nothing-here", now=11)
    assert second.previous == first.record
    stored = cbor.decode(repo.read_blob(first.record))
    assert stored["type"] == "research.search" and stored["query"] == "checkpoint"
    assert stored["results"][0]["url"] == site.url("/article")
    ref = repo.refs.resolve(SEARCH_PREFIX + "_")
    assert ref is not None and ref.target == second.record
    assert [e.type for e in repo.pending_events()].count("research.searched") == 2


def test_a_refreshed_page_replaces_its_indexed_text(repo: Repo, site: Site) -> None:
    _mirror(repo, site, "/article")
    index_pending(repo)
    site.pages[
        "/article"
    ].body = b"<html><body><article><p>zebra crossing</p></article></body></html>"
    fetch_sources(repo, [site.url("/article")], policy=SourcePolicy(), gate=DEFAULT_GATE,
                  refresh=True)  # fmt: skip
    assert [h.uri for h in repo.search_text("checkpoint")] == [site.url("/article")]
    index_pending(repo)
    assert repo.search_text("checkpoint") == [] and repo.text_count() == 1
    assert [h.uri for h in repo.search_text("zebra")] == [site.url("/article")]


def test_searxng_provider(repo: Repo, site: Site) -> None:
    found = search(repo, SearxngSearch(repo, site.base, DEFAULT_GATE), "kestrel", now=1)
    assert [h.url for h in found.hits] == [site.url("/notes.txt")]
    assert found.endpoint == site.base and site.count("/search") == 1
    with pytest.raises(SearchUnavailable):
        SearxngSearch(repo, site.url("/nowhere"), DEFAULT_GATE).search("x", 5)
    killed = GateSettings(DEFAULT_GATE.rules, 3600, KillSwitch(False, True))
    with pytest.raises(KillSwitchEngaged):
        SearxngSearch(repo, site.base, killed).search("x", 5)
    assert site.count("/search") == 1


def _write_index(tmp: Path, entries: object) -> Path:
    d = tmp / "mirror"
    d.mkdir(exist_ok=True)
    (d / "a.html").write_bytes(ARTICLE)
    (d / "n.txt").write_bytes(NOTES)
    (d / "index.json").write_text(json.dumps(entries))
    return d


def test_import_seeds_the_mirror_offline(repo: Repo, tmp_path: Path) -> None:
    d = _write_index(
        tmp_path,
        {
            "sources": [
                {"url": "https://example.org/a", "file": "a.html", "media_type": "text/html",
                 "fetched_at": 1767225600, "charset": "utf-8", "headers": {"ETag": "x"}},
                {"url": "https://example.org/n", "file": "n.txt", "media_type": "text/plain",
                 "fetched_at": 1767225601, "status": 200},
            ]
        },
    )  # fmt: skip
    done = import_mirror(repo, d, now=5)
    assert [s.url for s in done] == ["https://example.org/a", "https://example.org/n"]
    rec_id, rec = lookup(repo, "https://example.org/a")  # type: ignore[misc]
    assert rec_id == done[0].record and repo.read_blob(rec.content) == ARTICLE
    assert rec.headers == {"etag": "x", "x-steve-imported": "1"}
    out = fetch_sources(repo, ["https://example.org/a"], policy=SourcePolicy(),
                        gate=DEFAULT_GATE, offline=True)  # fmt: skip
    assert out[0].record == rec_id
    assert [h.url for h in search(repo, LocalSearch(repo), "kestrel", now=6).hits] == [
        "https://example.org/n"
    ]
    assert import_mirror(repo, d, now=7)[0].record == rec_id  # same bytes, same record


@pytest.mark.parametrize(
    "entry",
    [
        {"url": "ftp://x/a", "file": "a.html", "media_type": "text/html", "fetched_at": 1},
        {"url": "https://x/a", "file": "../a.html", "media_type": "text/html", "fetched_at": 1},
        {"url": "https://x/a", "file": "a.html", "media_type": "html", "fetched_at": 1},
        {"url": "https://x/a", "file": "a.html", "media_type": "text/html", "fetched_at": "1"},
        {"url": "https://x/a", "file": "zz.html", "media_type": "text/html", "fetched_at": 1},
        {"url": "https://x/a", "file": "a.html", "media_type": "text/html", "fetched_at": 1,
         "extra": 1},
    ],
)  # fmt: skip
def test_a_bad_index_stores_nothing(repo: Repo, tmp_path: Path, entry: object) -> None:
    ok = {"url": "https://x/ok", "file": "n.txt", "media_type": "text/plain", "fetched_at": 1}
    d = _write_index(tmp_path, [ok, entry])
    before = sum(1 for _ in repo.iter_objects())
    with pytest.raises(ImportIndexInvalid):
        import_mirror(repo, d, now=1)
    assert sum(1 for _ in repo.iter_objects()) == before and lookup(repo, "https://x/ok") is None


def test_text_index_on_the_memory_backend(mem_repo: Repo) -> None:
    c = ObjectId.of(b"x")
    with mem_repo.transaction() as tx:
        tx.put_text("u:1", c, "Kestrel", "hovers over the verge")
        tx.put_text("u:2", c, "Harbour", "boats in the harbour harbour")
    assert [h.uri for h in mem_repo.search_text("harbour")] == ["u:2"]
    assert [h.uri for h in mem_repo.search_text("kestrel verge")] == ["u:1"]
    with mem_repo.transaction() as tx:
        tx.delete_text("u:1")
    assert mem_repo.search_text("kestrel") == [] and mem_repo.text_count() == 1
