"""Fetch and mirror (F-RES-003, F-RES-007, F-RES-009, F-RES-010).

:func:`fetch_sources` answers each URL from the mirror when it holds it and
otherwise retrieves it with ``httpx`` under the scope's source policy:

* the policy gate's ``net.fetch`` rule (subject: the host name) is asked for
  every host, redirect hops included; the kill switch denies every fetch;
* the URL, and every redirect hop (followed one at a time, at most
  ``max_redirects``), must pass the domain policy and robots.txt (fetched once
  per origin and cached for the call; a 4xx robots.txt allows everything, an
  unreachable one disallows everything, as RFC 9309 says);
* TLS is always verified; the media type must be allowed; the body is streamed
  and cut at ``max_page_bytes``; the whole fetch must finish in
  ``timeout_seconds``; only a 2xx answer is mirrored.

A refusal is a typed ``STEVE-RES`` (or gate) error, stores nothing and is
recorded as a ``research.refused`` event.  Fetches run on a bounded pool of
``jobs`` threads; results are committed in batches (one transaction each:
content blobs, source records, mirror refs, their events) and reported to the
``progress`` callback only after their commit.  ``offline`` answers only from
the mirror and makes no request; ``refresh`` always fetches and reports the
old record beside the new one.

    >>> outcomes = fetch_sources(repo, urls, scope=load_scope(repo), gate=gate_settings(repo))
    >>> [(o.url, o.record) for o in outcomes if o.error is None]
"""

from __future__ import annotations

import concurrent.futures as cf
import io
import threading
import time
import urllib.robotparser
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urldefrag, urljoin, urlsplit

import httpx

from steve.errors import (
    CorruptObject,
    FetchFailed,
    FetchStatusError,
    FetchTimedOut,
    GateDenied,
    KillSwitchEngaged,
    NotMirrored,
    PageTooLarge,
    ResearchBudgetExceeded,
    RobotsDisallowed,
    SteveError,
    TooManyRedirects,
)
from steve.objects import cbor
from steve.objects.oid import ObjectId
from steve.porcelain.gate import Action, ActionKind, Context, Reason, Verdict, decide
from steve.repo import Repo
from steve.research.index import mark_pending
from steve.research.policy import Budget, SourcePolicy, host_of, without_credentials
from steve.research.records import (
    MIRROR_PREFIX,
    SourceRecord,
    lookup,
    put_source,
    record_id,
    url_key,
)

if TYPE_CHECKING:
    from steve.porcelain.hostaction import GateSettings

__all__ = [
    "DEFAULT_JOBS",
    "KEPT_HEADERS",
    "USAGE_SPACE",
    "USER_AGENT",
    "FetchOutcome",
    "Fetched",
    "Fetcher",
    "Usage",
    "check_gate",
    "fetch_sources",
    "store_fetched",
    "usage_of",
]

USER_AGENT = "steve-research/1 (+https://steve.invalid/docs/research.md)"
ROBOTS_AGENT = "steve-research"
DEFAULT_JOBS = 8
BATCH = 32
KEPT_HEADERS = (
    "content-type",
    "content-language",
    "content-length",
    "date",
    "etag",
    "last-modified",
    "cache-control",
    "x-steve-imported",
)
REDIRECTS = frozenset({301, 302, 303, 307, 308})
ROBOTS_MAX = 512 * 1024
ROBOTS_REDIRECTS = 5


@dataclass(frozen=True, slots=True)
class Fetched:
    """One response accepted by the policy, not yet stored."""

    url: str
    final_url: str
    status: int
    media_type: str
    charset: str | None
    content: bytes
    redirects: tuple[str, ...]
    headers: dict[str, str]
    fetched_at: int
    elapsed_ms: int
    content_id: ObjectId  # the blob id of ``content``, hashed on the fetching thread

    def record(self) -> SourceRecord:
        return SourceRecord(
            url=self.url,
            final_url=self.final_url,
            status=self.status,
            media_type=self.media_type,
            content=self.content_id,
            size=len(self.content),
            fetched_at=self.fetched_at,
            elapsed_ms=self.elapsed_ms,
            charset=self.charset,
            redirects=self.redirects,
            headers=self.headers,
        )


@dataclass(frozen=True, slots=True)
class FetchOutcome:
    """What became of one URL: its committed record, or the error that refused it."""

    url: str
    record: ObjectId | None = None
    source: SourceRecord | None = None
    error: SteveError | None = None
    mirrored: bool = False  # answered from the mirror (no request)
    previous: ObjectId | None = None  # refresh: the record it replaced

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "url": self.url,
            "record": None if self.record is None else self.record.hex,
            "from_mirror": self.mirrored,
        }
        if self.source is not None:
            out |= {
                "content": self.source.content.hex,
                "final_url": self.source.final_url,
                "status": self.source.status,
                "media_type": self.source.media_type,
                "size": self.source.size,
            }
        if self.previous is not None or self.error is None:
            out["previous"] = None if self.previous is None else self.previous.hex
        if self.error is not None:
            out["error"] = {"code": self.error.code, "message": str(self.error.message),
                            "detail": self.error.detail}  # fmt: skip
        return out


def check_gate(context: Context, host: str, url: str) -> None:
    """Raise unless the policy gate allows ``net.fetch`` of ``host``."""
    action = Action.of(ActionKind.NET_FETCH, host, {"host": host}, f"fetch {url}")
    d = decide(action, context)
    if d.verdict is Verdict.ALLOW:
        return
    if d.reason is Reason.KILL_SWITCH:
        raise KillSwitchEngaged(f"net.fetch {host}", "on")
    raise GateDenied(f"net.fetch {host}", d.reason.value, d.rule)


class _Robots:
    """robots.txt per origin, fetched once per :class:`Fetcher` (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._origins: dict[str, tuple[threading.Event, urllib.robotparser.RobotFileParser]] = {}

    def allowed(self, fetcher: Fetcher, url: str) -> tuple[bool, str]:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        with self._lock:
            entry = self._origins.get(origin)
            owner = entry is None
            if entry is None:
                entry = (threading.Event(), urllib.robotparser.RobotFileParser())
                self._origins[origin] = entry
        ready, parser = entry
        if owner:
            try:
                fetcher.load_robots(origin, parser)
            finally:
                ready.set()
        else:
            ready.wait()
        return parser.can_fetch(ROBOTS_AGENT, url), origin + "/robots.txt"


@dataclass
class Fetcher:
    """One fetch session: an ``httpx`` client (connection pool), the policy, the
    gate's context and the robots.txt cache.  Thread-safe; close it when done."""

    policy: SourcePolicy
    context: Context
    jobs: int = DEFAULT_JOBS
    clock: Callable[[], float] = time.time
    transport: httpx.BaseTransport | None = None
    _robots: _Robots = field(default_factory=_Robots)
    _client: httpx.Client | None = None

    def client(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(
                verify=True,
                follow_redirects=False,
                headers={"user-agent": USER_AGENT},
                limits=httpx.Limits(max_connections=max(self.jobs, 1) * 2),
                timeout=httpx.Timeout(self.policy.timeout_seconds),
                transport=self.transport,
            )
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> Fetcher:
        self.client()  # made here, once: the fetching threads share it
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def load_robots(self, origin: str, parser: urllib.robotparser.RobotFileParser) -> None:
        """Fill ``parser`` from ``origin``'s robots.txt (RFC 9309): up to five redirects,
        each hop under the domain policy and the gate; a 4xx, or a redirect the policy
        refuses or one too many, means no rules; a 5xx or no answer, disallow all."""
        url = origin + "/robots.txt"
        status, body = 599, b""
        try:
            for _ in range(ROBOTS_REDIRECTS + 1):
                with self.client().stream("GET", url) as resp:
                    status = resp.status_code
                    if status in REDIRECTS and "location" in resp.headers:
                        url = urljoin(url, resp.headers["location"])
                        try:
                            self.policy.check_url(url)
                            check_gate(self.context, host_of(url), url)
                        except SteveError:
                            status = 404  # not fetched: unavailable
                            break
                        status = 404  # one redirect too many ends as unavailable too
                        continue
                    if 200 <= status < 300:
                        for chunk in resp.iter_bytes():
                            body += chunk
                            if len(body) > ROBOTS_MAX:
                                break
                    break
        except httpx.HTTPError:
            status = 599
        if 200 <= status < 300:
            parser.parse(body[:ROBOTS_MAX].decode("utf-8", "replace").splitlines())
        elif 400 <= status < 500:
            parser.parse([])  # no robots.txt: everything allowed
        else:
            parser.parse(["User-agent: *", "Disallow: /"])  # unreachable: nothing allowed

    def check(self, url: str) -> None:
        """The policy, the gate and robots.txt for one URL (a fetch or a redirect hop)."""
        self.policy.check_url(url)
        host = host_of(url)
        check_gate(self.context, host, url)
        if self.policy.robots:
            ok, where = self._robots.allowed(self, url)
            if not ok:
                raise RobotsDisallowed(url, where)

    def fetch(self, url: str) -> Fetched:
        """Retrieve ``url`` under the policy (raises a typed error on any refusal)."""
        url = urldefrag(url).url
        policy = self.policy
        start = time.monotonic()
        deadline = start + policy.timeout_seconds
        redirects: list[str] = []
        current = url
        try:
            while True:
                self.check(current)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise FetchTimedOut(url, policy.timeout_seconds)
                with self.client().stream("GET", current, timeout=httpx.Timeout(left)) as resp:
                    status = resp.status_code
                    if status in REDIRECTS and "location" in resp.headers:
                        if len(redirects) >= policy.max_redirects:
                            raise TooManyRedirects(url, policy.max_redirects)
                        redirects.append(current)
                        current = urldefrag(urljoin(current, resp.headers["location"])).url
                        continue
                    if not 200 <= status < 300:
                        raise FetchStatusError(current, status)
                    media, charset = _content_type(resp.headers.get("content-type", ""))
                    policy.check_media(current, media)
                    declared = resp.headers.get("content-length", "")
                    if declared.isdigit() and int(declared) > policy.max_page_bytes:
                        raise PageTooLarge(current, policy.max_page_bytes)
                    chunks: list[bytes] = []
                    size = 0
                    for chunk in resp.iter_bytes():
                        size += len(chunk)
                        if size > policy.max_page_bytes:
                            raise PageTooLarge(current, policy.max_page_bytes)
                        if time.monotonic() > deadline:
                            raise FetchTimedOut(url, policy.timeout_seconds)
                        chunks.append(chunk)
                    headers = {k: resp.headers[k] for k in KEPT_HEADERS if k in resp.headers}
                    content = b"".join(chunks)
                    return Fetched(
                        url=url,
                        final_url=current,
                        status=status,
                        media_type=media,
                        charset=charset,
                        content=content,
                        redirects=tuple(redirects[1:]) if redirects else (),
                        headers=headers,
                        fetched_at=int(self.clock()),
                        elapsed_ms=int((time.monotonic() - start) * 1000),
                        content_id=Repo.hash_stream(io.BytesIO(content)),
                    )
        except httpx.TimeoutException:
            raise FetchTimedOut(url, policy.timeout_seconds) from None
        except httpx.HTTPError as exc:
            raise FetchFailed(url, f"{type(exc).__name__}: {exc}") from None


def _content_type(value: str) -> tuple[str, str | None]:
    media, _, params = value.partition(";")
    charset = None
    for p in params.split(";"):
        k, _, v = p.strip().partition("=")
        if k.strip().lower() == "charset" and v.strip():
            charset = v.strip().strip('"').lower()
    return media.strip().lower() or "application/octet-stream", charset


def store_fetched(
    repo: Repo,
    items: Sequence[tuple[SourceRecord, bytes]],
    *,
    now: int,
    event: tuple[str, str] | None = None,
    refresh: bool = False,
    account: str | None = None,
) -> list[tuple[ObjectId, ObjectId | None]]:
    """Store ``(record, content)`` pairs in one transaction (blobs, records, mirror
    refs, their events, the index queue, ``event`` = (type, where from) if given,
    and the pages and bytes charged to ``account``'s budget usage); returns
    ``(record id, previous id)`` per pair."""
    out: list[tuple[ObjectId, ObjectId | None]] = []
    with repo.transaction() as tx:
        if account is not None:
            used = usage_of(repo, account)
            spent = Usage(used.pages + len(items), used.bytes + sum(len(c) for _, c in items))
            tx.put_derived(USAGE_SPACE, account.encode(), cbor.encode(spent.to_record()))
        if event is not None:
            tx.emit(event[0], {"from": event[1], "count": len(items)})
        for record, content in items:
            ref = repo.refs.resolve(MIRROR_PREFIX + url_key(record.url), tx)
            previous = None if ref is None or ref.target is None else record_id(repo, ref.target)
            rec_id = put_source(repo, tx, record, content, now=now)
            if rec_id != previous:
                mark_pending(tx, rec_id)
            if refresh:
                tx.emit(
                    "research.refreshed",
                    {
                        "url": record.url,
                        "old": None if previous is None else previous.hex,
                        "new": rec_id.hex,
                        "content": record.content.hex,
                    },
                )
            out.append((rec_id, previous))
    return out


USAGE_SPACE = "research.usage"


@dataclass(frozen=True, slots=True)
class Usage:
    """What the network fetches charged to one budget account (``RUN/RQ-nnn``, or
    ``RUN/*`` for fetches that name no question) have used so far."""

    pages: int = 0
    bytes: int = 0

    def to_record(self) -> dict[str, int]:
        return {"pages": self.pages, "bytes": self.bytes}


def usage_of(repo: Repo, account: str) -> Usage:
    """The pages and bytes ``account`` has fetched (zero when it never fetched)."""
    raw = repo.get_derived(USAGE_SPACE, account.encode())
    if raw is None:
        return Usage()
    value = cbor.decode(raw)
    if not isinstance(value, dict):
        raise CorruptObject(USAGE_SPACE, f"usage of {account} is not a map")
    return Usage(int(value.get("pages", 0)), int(value.get("bytes", 0)))


def _check_mirrored(policy: SourcePolicy, source: SourceRecord) -> None:
    """The policy's checks that need no network, for an answer from the mirror: every
    URL of the fetch (asked, redirects, final), the media type and the size cap."""
    for u in (source.url, *source.redirects, source.final_url):
        policy.check_url(u)
    policy.check_media(source.final_url, source.media_type)
    if source.size > policy.max_page_bytes:
        raise PageTooLarge(source.final_url, policy.max_page_bytes)


def _refused(repo: Repo, outcomes: Iterable[FetchOutcome]) -> None:
    errors = [o for o in outcomes if o.error is not None]
    if not errors:
        return
    with repo.transaction() as tx:
        for o in errors:
            assert o.error is not None
            tx.emit(
                "research.refused",
                {"url": without_credentials(o.url), "code": o.error.code,
                 "detail": o.error.detail},
            )  # fmt: skip


Progress = Callable[[FetchOutcome], None]


def fetch_sources(
    repo: Repo,
    urls: Sequence[str],
    *,
    policy: SourcePolicy,
    gate: GateSettings,
    budget: Budget | None = None,
    account: str | None = None,
    offline: bool = False,
    refresh: bool = False,
    jobs: int = DEFAULT_JOBS,
    batch: int = BATCH,
    progress: Progress | None = None,
    clock: Callable[[], float] = time.time,
    transport: httpx.BaseTransport | None = None,
) -> list[FetchOutcome]:
    """Mirror ``urls`` (see the module docstring); one outcome per distinct URL, in
    the order given.  ``budget`` bounds the network fetches: their pages and bytes
    summed over every call charged to ``account`` (None: this call alone; pages are
    checked before any request, bytes as results arrive) and the seconds of this
    call.  Answers from the mirror are free."""
    order = list(dict.fromkeys(urldefrag(u).url for u in urls))
    outcomes: dict[str, FetchOutcome] = {}
    to_fetch: list[str] = []
    for url in order:
        found = None if refresh else lookup(repo, url)
        if found is not None:
            try:
                _check_mirrored(policy, found[1])
            except SteveError as exc:
                outcomes[url] = FetchOutcome(url, error=exc)
                continue
            o = FetchOutcome(url, found[0], found[1], mirrored=True)
            outcomes[url] = o
            if progress is not None:
                progress(o)
        elif offline:
            outcomes[url] = FetchOutcome(url, error=NotMirrored(url))
        else:
            to_fetch.append(url)
    budget = budget or Budget(pages=0, bytes=0, tokens=0, seconds=0)
    used = Usage() if account is None else usage_of(repo, account)
    label = account or "this fetch"
    if budget.pages and used.pages + len(to_fetch) > budget.pages:
        what = f"{used.pages} used + {len(to_fetch)} asked: pages"
        err = ResearchBudgetExceeded(label, what, budget.pages)
        for url in to_fetch:
            outcomes[url] = FetchOutcome(url, error=err)
        to_fetch = []
    if to_fetch:
        t0 = clock()
        context = gate.context(repo, int(t0))
        with Fetcher(policy, context, jobs, clock, transport) as fetcher:
            _run_pool(
                repo, fetcher, to_fetch, outcomes, _Charge(budget, used, label, account),
                jobs, batch, progress, clock, refresh,
            )  # fmt: skip
    failed = [o for o in outcomes.values() if o.error is not None]
    for o in failed:
        if progress is not None:
            progress(o)
    _refused(repo, failed)
    return [outcomes[u] for u in order]


@dataclass(frozen=True, slots=True)
class _Charge:
    budget: Budget
    used: Usage
    label: str
    account: str | None


def _run_pool(
    repo: Repo,
    fetcher: Fetcher,
    urls: list[str],
    outcomes: dict[str, FetchOutcome],
    charge: _Charge,
    jobs: int,
    batch: int,
    progress: Progress | None,
    clock: Callable[[], float],
    refresh: bool,
) -> None:
    start = time.monotonic()
    budget = charge.budget
    spent = charge.used.bytes
    pending: list[Fetched] = []

    def flush() -> None:
        if not pending:
            return
        pairs = [(f.record(), f.content) for f in pending]
        ids = store_fetched(repo, pairs, now=int(clock()), refresh=refresh, account=charge.account)
        for (record, _), (rec_id, previous) in zip(pairs, ids, strict=True):
            o = FetchOutcome(record.url, rec_id, record, previous=previous)
            outcomes[record.url] = o
            if progress is not None:
                progress(o)
        pending.clear()

    window = max(jobs, 1) * 4
    queue = iter(urls)
    with cf.ThreadPoolExecutor(max_workers=max(jobs, 1), thread_name_prefix="fetch") as pool:
        running: dict[cf.Future[Fetched], str] = {}

        def submit() -> None:
            for url in queue:
                running[pool.submit(fetcher.fetch, url)] = url
                if len(running) >= window:
                    return

        submit()
        stop: SteveError | None = None
        while running:
            done, _ = cf.wait(list(running), return_when=cf.FIRST_COMPLETED)
            for fut in done:
                url = running.pop(fut)
                try:
                    fetched = fut.result()
                except SteveError as exc:
                    outcomes[url] = FetchOutcome(url, error=exc)
                    continue
                if stop is not None:
                    outcomes[url] = FetchOutcome(url, error=stop)
                    continue
                spent += len(fetched.content)
                if budget.bytes and spent > budget.bytes:
                    stop = ResearchBudgetExceeded(charge.label, "bytes", budget.bytes)
                    outcomes[url] = FetchOutcome(url, error=stop)
                    continue
                pending.append(fetched)
            if budget.seconds and stop is None and time.monotonic() - start > budget.seconds:
                stop = ResearchBudgetExceeded(charge.label, "seconds", budget.seconds)
            if stop is not None:
                for url in queue:
                    outcomes[url] = FetchOutcome(url, error=stop)
            if len(pending) >= batch or not running:
                flush()
            submit()
        flush()
