"""A loopback web site for RESEARCH tests and benchmarks (real HTTP on 127.0.0.1).

    >>> with serve() as site:          # a fresh port; site.url("/article") is a full URL
    ...     httpx.get(site.url("/article")).text
    >>> site.count("/article")         # requests the server saw for a path
    1

The fixture pages: an article with boilerplate around it (``/article``), a
second article (``/second``), a plain-text page (``/notes.txt``), a redirect
chain (``/r/1`` -> ``/r/2`` -> ``/r/3`` -> ``/article``) and a redirect loop
(``/loop``), a 404 (``/missing``), pages over a 64 KiB cap with and without a
declared length (``/big``, ``/big-stream``), a slow page (``/slow``: body after
a delay of ``site.slow_seconds``), a PNG (``/image.png``), ``/private/...``
(robots.txt disallows it), a page on another "domain" (``/other`` redirects to
``localhost``) and a SearxNG-style JSON endpoint (``/search?q=...&format=json``)
that answers with the pages holding every word of the query.  ``site.pages``
may be extended (``add_pages``) before or while serving; each response's body
is exactly ``site.body(path)``.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

ARTICLE = b"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Write-ahead logging in SQLite</title></head>
<body>
<nav><ul><li><a href="/">Home</a></li><li><a href="/about">About us</a></li>
<li><a href="/shop">Shop</a></li></ul></nav>
<div class="sidebar"><h3>Newsletter</h3><p>Subscribe to our newsletter for deals.</p></div>
<article>
<h1>Write-ahead logging in SQLite</h1>
<p>The write-ahead log (WAL) lets readers proceed while a single writer appends
changes to a separate file. A checkpoint later folds the log back into the main
database file, so readers never block the writer and the writer never blocks readers.</p>
<p>Because every transaction is first appended to the log, a crash leaves the database
consistent: on the next open the log is replayed up to the last commit record and
anything after it is discarded. This is why WAL mode is a good default for
applications with many readers and one writer.</p>
<p>The cost is one more file beside the database and a checkpoint that must run now
and then; an application that holds a read transaction open for a long time keeps the
log from being truncated.</p>
</article>
<footer><p>Copyright 2026 Example Corp. All rights reserved. Privacy policy. Cookies.</p></footer>
</body></html>
"""

SECOND = b"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Content-addressed storage</title></head>
<body><nav><a href="/">Home</a></nav>
<main><h1>Content-addressed storage</h1>
<p>In a content-addressed store an object is named by the digest of its bytes, so the
same bytes stored twice are one object and any change to the bytes changes the name.
Git, for example, names every blob, tree and commit this way, and BLAKE3 makes the
digest cheap enough to compute for every page a crawler mirrors.</p>
<p>Deduplication falls out of the naming: storing a page that was already stored costs
nothing but the lookup.</p></main>
<footer>Footer text that is not part of the article.</footer></body></html>
"""

NOTES = b"Plain notes: the kestrel hovers over the motorway verge.\n"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
ROBOTS = b"User-agent: *\nDisallow: /private/\n"
BIG_SIZE = 100_000  # over the 64 KiB cap the tests use


@dataclass
class Page:
    body: bytes
    content_type: str = "text/html; charset=utf-8"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


def fixture_pages() -> dict[str, Page]:
    return {
        "/article": Page(ARTICLE),
        "/second": Page(SECOND),
        "/notes.txt": Page(NOTES, "text/plain; charset=utf-8"),
        "/image.png": Page(PNG, "image/png"),
        "/robots.txt": Page(ROBOTS, "text/plain"),
        "/private/secret": Page(b"<html><body><p>private page</p></body></html>"),
        "/missing": Page(b"<html><body>not found</body></html>", status=404),
        "/big": Page(b"<html><body>" + b"x" * BIG_SIZE + b"</body></html>"),
        "/r/1": Page(b"", status=302, headers={"Location": "/r/2"}),
        "/r/2": Page(b"", status=301, headers={"Location": "/r/3"}),
        "/r/3": Page(b"", status=307, headers={"Location": "/article"}),
        "/loop": Page(b"", status=302, headers={"Location": "/loop"}),
    }


SYLLABLES = ("ka", "ro", "mi", "ten", "sul", "bo", "ri", "an", "vel", "to", "qua", "zen",
             "li", "mor", "pe", "dax", "nu", "ches", "fi", "gar")  # fmt: skip


def vocabulary(size: int = 20_000) -> list[str]:
    """``size`` distinct made-up words (three syllables each, then a number if needed)."""
    n = len(SYLLABLES)
    return [
        SYLLABLES[i % n] + SYLLABLES[(i // n) % n] + SYLLABLES[(i // n // n) % n]
        + ("" if i < n**3 else str(i // n**3))
        for i in range(size)
    ]  # fmt: skip


VOCABULARY = vocabulary()
_WEIGHTS = [1.0 / (rank + 1) ** 1.1 for rank in range(len(VOCABULARY))]  # Zipf, like prose


def page_words(n: int, count: int = 400) -> list[str]:
    """The words of generated page ``n``: ``count`` words drawn with Zipf frequencies
    (so a word of rank r is in roughly as many pages as in real text), seeded by ``n``."""
    return random.Random(n).choices(VOCABULARY, weights=_WEIGHTS, k=count)


def page_html(n: int) -> bytes:
    """Generated page ``n`` for benchmarks: an article of Zipf-distributed words
    between navigation and a footer, with one token unique to it (``u<n>x``)."""
    words = page_words(n)
    paras = "".join(f"<p>{' '.join(words[i : i + 100])}.</p>" for i in range(0, len(words), 100))
    return (
        f"<!DOCTYPE html><html><head><title>Page {n}: {words[0]} {words[1]}</title></head>"
        f"<body><nav><a href='/'>Home</a> <a href='/about'>About</a></nav><article>"
        f"<h1>Page {n}: {words[0]} {words[1]}</h1>{paras}<p>Unique token u{n}x.</p>"
        "</article><footer>Copyright footer</footer></body></html>"
    ).encode()


class Site:
    def __init__(self) -> None:
        self.pages = fixture_pages()
        self.requests: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.slow_seconds = 3.0
        self.base = ""

    def url(self, path: str) -> str:
        return self.base + path

    def body(self, path: str) -> bytes:
        return self.pages[path].body

    def add_pages(self, n: int, prefix: str = "/page/") -> list[str]:
        paths = [f"{prefix}{i}" for i in range(n)]
        for i, p in enumerate(paths):
            self.pages[p] = Page(page_html(i))
        return paths

    def count(self, path: str | None = None) -> int:
        with self.lock:
            return sum(self.requests.values()) if path is None else self.requests[path]

    def search(self, query: str) -> list[dict[str, str]]:
        terms = re.findall(r"\w+", query.lower())
        out = []
        for path, page in sorted(self.pages.items()):
            text = page.body.decode("utf-8", "replace").lower()
            if page.status == 200 and terms and all(t in text for t in terms):
                out.append({"url": self.url(path), "title": path, "content": text[:80],
                            "engine": "fixture"})  # fmt: skip
        return out


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:  # quiet
        return

    def do_GET(self) -> None:
        site = self.server.site
        parts = urlsplit(self.path)
        path = parts.path
        with site.lock:
            site.requests[path] += 1
        if path == "/search":
            q = parse_qs(parts.query)
            if q.get("format") != ["json"]:
                self._send(400, b"format=json only", "text/plain")
                return
            body = json.dumps(
                {"query": q.get("q", [""])[0], "results": site.search(q.get("q", [""])[0])}
            ).encode()
            self._send(200, body, "application/json")
            return
        if path == "/slow":
            time.sleep(site.slow_seconds)
            self._send(200, b"<html><body><p>slow</p></body></html>", "text/html")
            return
        if path == "/big-stream":
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            try:
                for _ in range(BIG_SIZE // 1000 + 1):
                    self.wfile.write(b"y" * 1000)
            except OSError:
                pass
            return
        if path == "/other":
            port = self.server.server_address[1]
            self._send(302, b"", "text/plain", {"Location": f"http://localhost:{port}/article"})
            return
        page = site.pages.get(path)
        if page is None:
            self._send(404, b"no such page", "text/plain")
            return
        self._send(page.status, page.body, page.content_type, page.headers)

    def _send(
        self, status: int, body: bytes, ctype: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        with suppress(OSError):
            self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    site: Site

    def handle_error(self, request: object, client_address: object) -> None:
        return  # a client that hung up (a cut-off fetch) is not the server's error


@contextmanager
def serve(site: Site | None = None) -> Iterator[Site]:
    """Serve ``site`` (default: the fixture pages) on 127.0.0.1, a free port."""
    site = site or Site()
    server = _Server(("127.0.0.1", 0), _Handler)
    server.site = site
    site.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield site
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def main() -> None:
    """``python -m tests.research.server N``: serve the fixtures plus N generated pages
    until stdin closes; prints the base URL first (the benchmark's server process)."""
    import sys

    site = Site()
    site.add_pages(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
    with serve(site):
        print(site.base, flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    main()
