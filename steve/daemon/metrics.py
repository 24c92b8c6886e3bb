"""Health and metrics: an optional HTTP listener on a loopback address only.

``/healthz`` answers JSON (writer queue depth, in-flight writes, last commit,
event head, key held); ``/metrics`` the Prometheus text format through
``prometheus-client`` with a registry of this daemon's own.
"""

from __future__ import annotations

import ipaddress
import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    generate_latest,
)

from steve.errors import NonLoopbackAddress

PAGE_SIZE = 4096


def parse_loopback(address: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) with HOST a loopback IP literal."""
    host, sep, port_text = address.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise NonLoopbackAddress(address, "expected HOST:PORT with a port in 0..65535")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise NonLoopbackAddress(address, f"{host!r} is not an IP address literal") from None
    if not ip.is_loopback:
        raise NonLoopbackAddress(address, f"{ip} is not a loopback address")
    return str(ip), int(port_text)


def rss_bytes() -> int:
    """This process's resident set size, from /proc/self/statm."""
    try:
        fields = Path("/proc/self/statm").read_text().split()
    except OSError:
        return 0
    return int(fields[1]) * PAGE_SIZE


class DaemonMetrics:
    """The counters steved keeps (a :class:`steve.daemon.server.Metrics`)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "steved_requests",
            "Requests by method and outcome",
            ["method", "outcome"],
            registry=self.registry,
        )
        self.commands = Counter(
            "steved_commands",
            "Forwarded commands by command and exit code class",
            ["command", "outcome"],
            registry=self.registry,
        )
        self.container_runs = Counter(
            "steved_container_runs",
            "Forwarded container runs (build, test, replay) by outcome",
            ["outcome"],
            registry=self.registry,
        )
        self.events_total = Counter(
            "steved_events_appended", "Events appended through the daemon", registry=self.registry
        )
        self.queue_depth = Gauge(
            "steved_writer_queue_depth", "Requests waiting for the writer", registry=self.registry
        )
        self.in_flight = Gauge(
            "steved_writer_in_flight", "Requests the writer runs now", registry=self.registry
        )
        self.clients = Gauge("steved_clients", "Connected clients", registry=self.registry)
        self.events_rate = Gauge(
            "steved_events_per_second",
            "Events appended per second over the last interval",
            registry=self.registry,
        )
        self.event_head = Gauge(
            "steved_event_head", "The event log's head seq", registry=self.registry
        )
        self.rss = Gauge(
            "steved_resident_memory_bytes", "Resident set size (from /proc)", registry=self.registry
        )
        self.rss.set_function(rss_bytes)
        self._window: tuple[float, float] = (time.monotonic(), 0.0)
        self._appended = 0.0
        self._lock = threading.Lock()

    def request(self, method: str, outcome: str) -> None:
        self.requests.labels(method, outcome).inc()

    def events(self, n: int) -> None:
        self.events_total.inc(n)
        with self._lock:
            self._appended += n

    def command(self, argv: list[str], code: int) -> None:
        name = argv[0] if argv else "?"
        outcome = "ok" if code == 0 else "failed"
        self.commands.labels(name, outcome).inc()
        if name in ("build", "test", "replay"):
            self.container_runs.labels(outcome).inc()

    def rate(self) -> float:
        """Events per second since the previous call."""
        with self._lock:
            now = time.monotonic()
            then, seen = self._window
            rate = (self._appended - seen) / max(now - then, 1e-6)
            self._window = (now, self._appended)
        return rate


class HealthServer:
    """The loopback listener; ``snapshot`` returns the server's live status."""

    def __init__(
        self, address: str, metrics: DaemonMetrics, snapshot: Callable[[], dict[str, Any]]
    ) -> None:
        host, port = parse_loopback(address)
        self.metrics = metrics
        self.snapshot = snapshot
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/healthz":
                    body = json.dumps(outer.health(), sort_keys=True).encode()
                    ctype = "application/json"
                elif self.path == "/metrics":
                    outer.refresh()
                    body = generate_latest(outer.metrics.registry)
                    ctype = CONTENT_TYPE_LATEST
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # requests are counted, not logged

        server_class = ThreadingHTTPServer
        if ":" in host:
            import socket

            class V6(ThreadingHTTPServer):
                address_family = socket.AF_INET6

            server_class = V6
        self.httpd = server_class((host, port), Handler)
        self.httpd.daemon_threads = True
        self.port = int(self.httpd.server_address[1])
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, name="steved-http", daemon=True
        )

    def refresh(self) -> None:
        snap = self.snapshot()
        self.metrics.queue_depth.set(snap["queue"])
        self.metrics.in_flight.set(snap["in_flight"])
        self.metrics.clients.set(snap["clients"])
        self.metrics.event_head.set(snap["event_head"])
        self.metrics.events_rate.set(self.metrics.rate())

    def health(self) -> dict[str, Any]:
        snap = self.snapshot()
        return {
            "status": "ok",
            "writer_queue": snap["queue"],
            "in_flight": snap["in_flight"],
            "last_commit": snap["last_commit"],
            "event_head": snap["event_head"],
            "locked": snap["locked"],
            "clients": snap["clients"],
            "rss_bytes": rss_bytes(),
        }

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
