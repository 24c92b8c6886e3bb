"""A census of STEVE's containers and volumes without the ``docker`` SDK.

``steve inspect resources`` asks the engine which labelled containers and
volumes exist.  Importing the SDK (and the rest of :mod:`steve.exec`) costs
more than the whole command may take, so this module speaks the Engine API's
two list calls over HTTP/1.1 itself: on the unix socket (``unix://PATH``, the
default) or plain TCP (``tcp://HOST:PORT``).  Other engine URLs (``ssh://``,
TLS) go through the SDK's janitor.  Classification is the janitor's
(:func:`steve.exec.owners.leftover`).
"""

from __future__ import annotations

import http.client
import json
import socket
import urllib.parse
from typing import Any

from steve.errors import EngineUnavailable
from steve.exec.owners import LABEL_OWNER_PID, Leftover, leftover

DEFAULT_SOCKET = "unix:///var/run/docker.sock"
MAX_BODY = 64 << 20


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def _connection(url: str, timeout: float) -> http.client.HTTPConnection | None:
    if url.startswith("unix://"):
        return _UnixConnection(url[len("unix://") :], timeout)
    if url.startswith(("tcp://", "http://")):
        parsed = urllib.parse.urlsplit(url)
        return http.client.HTTPConnection(
            parsed.hostname or "localhost", parsed.port, timeout=timeout
        )
    return None


def _get(conn: http.client.HTTPConnection, path: str) -> Any:
    conn.request("GET", path, headers={"Host": "docker"})
    response = conn.getresponse()
    body = response.read(MAX_BODY + 1)
    if response.status != 200 or len(body) > MAX_BODY:
        raise OSError(f"GET {path.split('?')[0]}: HTTP {response.status} {body[:200]!r}")
    return json.loads(body)


def list_leftovers(base_url: str | None = None, *, timeout: float = 3.0) -> list[Leftover]:
    """Every STEVE-labelled container and volume on the engine at ``base_url``
    (default: the local socket); ``orphan`` is whether its owner process is gone.
    Raises EngineUnavailable when the engine does not answer."""
    url = base_url or DEFAULT_SOCKET
    conn = _connection(url, timeout)
    if conn is None:  # ssh://, https://: the SDK knows how
        from steve.exec import connect

        with connect(url, timeout=timeout) as engine:
            return engine.janitor.scan()
    filters = urllib.parse.quote(json.dumps({"label": [LABEL_OWNER_PID]}))
    try:
        containers = _get(conn, f"/containers/json?all=1&filters={filters}")
        volumes = (_get(conn, f"/volumes?filters={filters}") or {}).get("Volumes") or []
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise EngineUnavailable(url, str(exc).splitlines()[0][:300] or type(exc).__name__) from None
    finally:
        conn.close()
    out = [
        leftover("container", str(c["Id"]), c.get("Labels") or {}, str(c.get("State", "")), False)
        for c in containers
    ]
    out.extend(
        leftover("volume", str(v["Name"]), v.get("Labels") or {}, "", False) for v in volumes
    )
    return out
