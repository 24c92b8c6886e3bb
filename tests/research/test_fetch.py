"""Fetch and mirror over real HTTP on loopback (steve.research.fetch)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from steve.errors import (
    FetchStatusError,
    FetchTimedOut,
    GateDenied,
    KillSwitchEngaged,
    MediaTypeRefused,
    NotMirrored,
    PageTooLarge,
    ResearchBudgetExceeded,
    RobotsDisallowed,
    SourcePolicyRefused,
    TooManyRedirects,
)
from steve.porcelain.gate import Rule, Verdict, effective_rules
from steve.porcelain.hostaction import DEFAULT_GATE, GateSettings, KillSwitch, set_kill_switch
from steve.repo import Repo
from steve.research.fetch import FetchOutcome, Usage, fetch_sources, usage_of
from steve.research.index import pending_count
from steve.research.policy import Budget, SourcePolicy
from steve.research.records import lookup, mirrored, record_id
from tests.research.server import ARTICLE, NOTES, ROBOTS, Page, Site, serve

CAP = 64 * 1024
POLICY = SourcePolicy(max_page_bytes=CAP, timeout_seconds=20)  # generous: a loaded CI machine
QUICK = SourcePolicy(max_page_bytes=CAP, timeout_seconds=1)  # for /slow


@pytest.fixture
def site() -> Iterator[Site]:
    with serve() as s:
        s.slow_seconds = 2.5
        yield s


def _fetch(repo: Repo, urls: list[str], **kw: object) -> list[FetchOutcome]:
    kw.setdefault("policy", POLICY)
    kw.setdefault("gate", DEFAULT_GATE)
    return fetch_sources(repo, urls, **kw)  # type: ignore[arg-type]


def _objects(repo: Repo) -> int:
    return sum(1 for _ in repo.iter_objects())


def test_mirrored_bytes_equal_what_was_served(repo: Repo, site: Site) -> None:
    paths = ["/article", "/second", "/notes.txt"]
    out = _fetch(repo, [site.url(p) for p in paths])
    for path, o in zip(paths, out, strict=True):
        assert o.error is None and o.record is not None and o.source is not None
        assert repo.read_blob(o.source.content) == site.body(path)
        assert lookup(repo, site.url(path)) == (o.record, o.source)
    text = out[2].source
    assert text is not None and (text.media_type, text.charset) == ("text/plain", "utf-8")
    assert pending_count(repo) == 3  # queued for the full-text index, not yet extracted


def test_same_bytes_twice_are_one_object(repo: Repo, site: Site) -> None:
    a, b = _fetch(repo, [site.url("/article"), site.url("/r/1")])
    assert a.source is not None and b.source is not None
    assert a.source.content == b.source.content and a.record != b.record
    assert b.source.final_url == site.url("/article")
    assert b.source.redirects == (site.url("/r/2"), site.url("/r/3"))


@pytest.mark.parametrize(
    ("path", "error"),
    [
        ("/missing", FetchStatusError),
        ("/big", PageTooLarge),
        ("/big-stream", PageTooLarge),
        ("/slow", FetchTimedOut),
        ("/image.png", MediaTypeRefused),
        ("/private/secret", RobotsDisallowed),
        ("/loop", TooManyRedirects),
    ],
)
def test_caps_and_refusals_are_coded_errors_and_store_nothing(
    repo: Repo, site: Site, path: str, error: type[Exception]
) -> None:
    before = _objects(repo)
    [o] = _fetch(repo, [site.url(path)], policy=QUICK if path == "/slow" else POLICY)
    assert isinstance(o.error, error) and o.record is None
    assert o.error.code.startswith("STEVE-RES-")
    assert _objects(repo) == before and list(mirrored(repo)) == []


def test_domain_policy_checks_every_redirect_hop(repo: Repo, site: Site) -> None:
    policy = SourcePolicy(allow=("127.0.0.1",), max_page_bytes=CAP)
    [ok, hop] = _fetch(repo, [site.url("/r/1"), site.url("/other")], policy=policy)
    assert ok.error is None
    assert isinstance(hop.error, SourcePolicyRefused) and "localhost" in hop.error.detail
    assert site.count("/article") == 1  # the refused hop was never requested
    [denied] = _fetch(repo, [site.url("/second")], policy=SourcePolicy(deny=("127.0.0.1",)))
    assert isinstance(denied.error, SourcePolicyRefused) and site.count("/second") == 0


def test_urls_with_credentials_or_other_schemes_are_refused(repo: Repo, site: Site) -> None:
    port = site.base.rsplit(":", 1)[1]
    out = _fetch(repo, [f"http://ana:s3cret@127.0.0.1:{port}/article", "ftp://x/y", "file:///etc"])
    assert all(isinstance(o.error, SourcePolicyRefused) for o in out)
    assert "s3cret" not in out[0].error.detail  # type: ignore[union-attr]
    assert site.count() == 0
    assert not any(b"s3cret" in e.payload for e in repo.pending_events())


def test_robots_can_be_turned_off_by_the_scope(repo: Repo, site: Site) -> None:
    [o] = _fetch(repo, [site.url("/private/secret")], policy=SourcePolicy(robots=False))
    assert o.error is None and site.count("/robots.txt") == 0


def test_offline_makes_no_request_and_gives_the_same_ids(repo: Repo, site: Site) -> None:
    urls = [site.url("/article"), site.url("/notes.txt")]
    online = _fetch(repo, urls)
    seen = site.count()
    offline = _fetch(repo, urls, offline=True)
    assert [o.record for o in offline] == [o.record for o in online]
    assert all(o.mirrored for o in offline)
    [miss] = _fetch(repo, [site.url("/second")], offline=True)
    assert isinstance(miss.error, NotMirrored) and miss.error.code == "STEVE-RES-009"
    assert site.count() == seen  # not one request


def test_fetch_answers_from_the_mirror_and_refresh_keeps_old_and_new(
    repo: Repo, site: Site
) -> None:
    [first] = _fetch(repo, [site.url("/article")])
    [again] = _fetch(repo, [site.url("/article")])
    assert again.mirrored and again.record == first.record and site.count("/article") == 1
    site.pages[
        "/article"
    ].body = b"<html><body><article><p>changed text</p></article></body></html>"
    [fresh] = _fetch(repo, [site.url("/article")], refresh=True)
    assert fresh.previous == first.record and fresh.record not in (None, first.record)
    log = repo.reflog(f"refs/research/mirror/{_key(site, '/article')}")
    history = [record_id(repo, e.new) for e in log if e.new is not None]
    assert history[:2] == [fresh.record, first.record]
    assert first.source is not None and repo.has_object(first.source.content)


def _key(site: Site, path: str) -> str:
    from steve.research.records import url_key

    return url_key(site.url(path))


def test_the_kill_switch_and_gate_rules_deny_fetches(repo: Repo, site: Site) -> None:
    killed = GateSettings(DEFAULT_GATE.rules, 3600, KillSwitch(False, True))
    [o] = _fetch(repo, [site.url("/article")], gate=killed)
    assert isinstance(o.error, KillSwitchEngaged)
    set_kill_switch(repo, True, actor="t")
    from steve.porcelain.hostaction import gate_settings

    [o] = _fetch(repo, [site.url("/article")], gate=gate_settings(repo))
    assert isinstance(o.error, KillSwitchEngaged)
    set_kill_switch(repo, False, actor="t")
    rules = effective_rules([Rule("no-loopback", "net.fetch", Verdict.DENY, "127.*")])
    [o] = _fetch(
        repo, [site.url("/article")], gate=GateSettings(rules, 3600, KillSwitch(False, False))
    )
    assert isinstance(o.error, GateDenied) and "no-loopback" in o.error.detail
    assert site.count() == 0 and list(mirrored(repo)) == []


def test_the_budget_bounds_a_fetch(repo: Repo, site: Site) -> None:
    urls = [site.url(p) for p in ("/article", "/second", "/notes.txt")]
    out = _fetch(repo, urls, budget=Budget(pages=2, bytes=0, tokens=0, seconds=0))
    assert all(isinstance(o.error, ResearchBudgetExceeded) for o in out) and site.count() == 0


def test_an_account_sums_pages_and_bytes_over_calls(repo: Repo, site: Site) -> None:
    two = Budget(pages=2, bytes=0, tokens=0, seconds=0)
    [a] = _fetch(repo, [site.url("/article")], budget=two, account="r/RQ-001")
    [n] = _fetch(repo, [site.url("/notes.txt")], budget=two, account="r/RQ-001")
    assert a.error is None and n.error is None
    assert usage_of(repo, "r/RQ-001") == Usage(2, len(ARTICLE) + len(NOTES))
    [again] = _fetch(repo, [site.url("/article")], budget=two, account="r/RQ-001")
    assert again.mirrored and again.error is None  # answers from the mirror are free
    [third] = _fetch(repo, [site.url("/second")], budget=two, account="r/RQ-001")
    assert isinstance(third.error, ResearchBudgetExceeded) and "r/RQ-001" in third.error.detail
    [other] = _fetch(repo, [site.url("/second")], budget=two, account="r/RQ-002")
    assert other.error is None and site.count("/second") == 1
    small = Budget(pages=0, bytes=len(NOTES) + 10, tokens=0, seconds=0)
    [over] = _fetch(repo, [site.url("/r/1")], budget=small, account="r/RQ-002", refresh=True)
    assert isinstance(over.error, ResearchBudgetExceeded)


def test_many_pages_with_a_bounded_pool_and_progress_after_commit(repo: Repo, site: Site) -> None:
    paths = site.add_pages(120)
    seen: list[FetchOutcome] = []

    def progress(o: FetchOutcome) -> None:
        assert o.record is not None and repo.has_object(o.record)  # committed already
        seen.append(o)

    out = _fetch(repo, [site.url(p) for p in paths], jobs=8, batch=16, progress=progress)
    assert all(o.error is None for o in out) and len(seen) == 120
    assert len(list(mirrored(repo))) == 120


def test_events_record_fetches_and_refusals(repo: Repo, site: Site) -> None:
    _fetch(repo, [site.url("/article"), site.url("/missing")])
    types = [e.type for e in repo.pending_events()]  # no sink: they wait in the outbox
    assert types.count("research.mirrored") == 1 and types.count("research.refused") == 1


def test_the_policy_applies_to_answers_from_the_mirror(repo: Repo, site: Site) -> None:
    [o] = _fetch(repo, [site.url("/article")])
    assert o.error is None
    [denied] = _fetch(repo, [site.url("/article")], policy=SourcePolicy(deny=("127.0.0.1",)),
                      offline=True)  # fmt: skip
    assert isinstance(denied.error, SourcePolicyRefused)
    [small] = _fetch(repo, [site.url("/article")], policy=SourcePolicy(max_page_bytes=10),
                     offline=True)  # fmt: skip
    assert isinstance(small.error, PageTooLarge)
    plain = SourcePolicy(media_types=("text/plain",))
    [text_only] = _fetch(repo, [site.url("/article")], policy=plain, offline=True)
    assert isinstance(text_only.error, MediaTypeRefused) and site.count("/article") == 1


@pytest.mark.parametrize(
    ("robots", "allowed"),
    [
        ({"/robots.txt": Page(b"", status=404)}, True),  # none: everything allowed
        ({"/robots.txt": Page(b"oops", status=503)}, False),  # unreachable: nothing
        (
            {
                "/robots.txt": Page(b"", status=301, headers={"Location": "/real-robots.txt"}),
                "/real-robots.txt": Page(ROBOTS, "text/plain"),
            },
            False,  # followed: /private/ is disallowed there
        ),
        ({"/robots.txt": Page(b"", status=302, headers={"Location": "/robots.txt"})}, True),
    ],
)
def test_robots_txt_as_rfc_9309_reads_it(
    repo: Repo, site: Site, robots: dict[str, Page], allowed: bool
) -> None:
    site.pages.update(robots)
    [o] = _fetch(repo, [site.url("/private/secret")])
    assert (o.error is None) is allowed
    if not allowed:
        assert isinstance(o.error, RobotsDisallowed)
