"""Loopback HTTP servers speaking the Anthropic Messages and OpenAI chat wire formats.

The real SDKs talk to these through their base-URL settings.  Each server
binds 127.0.0.1 port 0 in a thread, records every request it sees
(``server.seen``), and answers according to a queue of planned behaviours
(``server.plan(...)``), then normally:

``"ok"``                 the answer (JSON, or SSE when the body asks to stream)
``Status(code, ...)``    an error status with the vendor's error body and headers
``"midstream_error"``    SSE that starts, sends a delta, then ``event: error``
``"drop"``               SSE that starts, sends a delta, then closes the connection
``Gate(event)``          SSE that sends the first delta and waits for ``event``
                         before the rest (proves text arrives before the end)

HTTP/1.1 with keep-alive: JSON with Content-Length, SSE chunked.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

KEY = "sk-ant-loopback-0123456789abcdefghij"


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class Status:
    code: int
    headers: dict[str, str] = field(default_factory=dict)
    error_type: str = "api_error"
    message: str = "planned"


@dataclass
class Gate:
    event: threading.Event
    timeout: float = 10.0


Behaviour = str | Status | Gate


def words(text: str, n: int = 3) -> list[str]:
    """``text`` cut into pieces of ``n`` words (the pieces join back to ``text``)."""
    parts = text.split(" ")
    return [
        " ".join(parts[i : i + n]) + (" " if i + n < len(parts) else "")
        for i in range(0, len(parts), n)
    ]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: LoopbackServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as real servers do
        with self.server.lock:
            self.server.connections.add(self.connection)

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {}
        seen = Seen("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body)
        with self.server.lock:
            self.server.seen.append(seen)
            behaviour = self.server.queue.pop(0) if self.server.queue else "ok"
        self.server.dispatch(self, seen, behaviour)

    # --- writing --------------------------------------------------------------------

    def send_json(self, status: int, value: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def start_sse(self) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()

    def chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def end_sse(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def drop(self) -> None:
        self.close_connection = True
        self.wfile.flush()
        self.connection.shutdown(2)


class LoopbackServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, reply: str = "Hello from the loopback server, streamed in pieces.") -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.reply = reply
        self.tool: tuple[str, dict[str, Any]] | None = None  # answer with this tool call too
        self.seen: list[Seen] = []
        self.queue: list[Behaviour] = []
        self.lock = threading.Lock()
        self.count = 0
        self.on_reply: Callable[[Seen], str] | None = None
        self.connections: set[Any] = set()
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> LoopbackServer:
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and cut every open (keep-alive) connection."""
        self.shutdown()
        self.server_close()
        with self.lock:
            for conn in self.connections:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
            self.connections.clear()
        if self._thread is not None:
            self._thread.join(5)

    def plan(self, *behaviours: Behaviour) -> None:
        with self.lock:
            self.queue.extend(behaviours)

    def generations(self) -> list[Seen]:
        return [s for s in self.seen if s.path.rstrip("/").endswith(self.generate_path)]

    def text_for(self, seen: Seen) -> str:
        return self.on_reply(seen) if self.on_reply is not None else self.reply

    generate_path = ""

    def dispatch(self, h: _Handler, seen: Seen, behaviour: Behaviour) -> None:
        raise NotImplementedError


# --- Anthropic Messages ---------------------------------------------------------------


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


class AnthropicServer(LoopbackServer):
    generate_path = "/v1/messages"

    def authorised(self, seen: Seen) -> bool:
        h = seen.headers
        return h.get("x-api-key") == KEY or h.get("authorization") == f"Bearer {KEY}"

    def error_body(self, kind: str, message: str) -> dict[str, Any]:
        return {"type": "error", "error": {"type": kind, "message": message}}

    def dispatch(self, h: _Handler, seen: Seen, behaviour: Behaviour) -> None:
        if not self.authorised(seen):
            h.send_json(401, self.error_body("authentication_error", "invalid x-api-key"))
            return
        if isinstance(behaviour, Status):
            kind = {429: "rate_limit_error", 529: "overloaded_error", 400: "invalid_request_error"}
            body = self.error_body(
                kind.get(behaviour.code, behaviour.error_type), behaviour.message
            )
            h.send_json(behaviour.code, body, behaviour.headers)
            return
        path = seen.path.split("?")[0]
        if path == "/v1/messages/count_tokens":
            h.send_json(200, {"input_tokens": len(json.dumps(seen.body.get("messages"))) // 4})
            return
        if path != "/v1/messages":
            h.send_json(404, self.error_body("not_found_error", path))
            return
        with self.lock:
            self.count += 1
            n = self.count
        text = self.text_for(seen)
        pieces = words(text)
        msg_id = f"msg_loop_{n:04d}"
        model = seen.body.get("model", "?")
        input_tokens = 11 + len(json.dumps(seen.body.get("messages"))) // 4
        output_tokens = len(pieces) + (5 if self.tool else 0)
        content: list[dict[str, Any]] = [{"type": "text", "text": text}]
        if self.tool:
            content.append(
                {
                    "type": "tool_use",
                    "id": f"toolu_{n:04d}",
                    "name": self.tool[0],
                    "input": self.tool[1],
                }
            )
        stop = "tool_use" if self.tool else "end_turn"
        if not seen.body.get("stream"):
            h.send_json(
                200,
                {
                    "id": msg_id,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": content,
                    "stop_reason": stop,
                    "stop_sequence": None,
                    "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
                },
            )
            return
        h.start_sse()
        h.chunk(
            _sse(
                "message_start",
                {
                    "type": "message_start",
                    "message": {
                        "id": msg_id,
                        "type": "message",
                        "role": "assistant",
                        "model": model,
                        "content": [],
                        "stop_reason": None,
                        "stop_sequence": None,
                        "usage": {"input_tokens": input_tokens, "output_tokens": 1},
                    },
                },
            )
        )
        h.chunk(
            _sse(
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
            )
        )
        h.chunk(_sse("ping", {"type": "ping"}))
        for i, piece in enumerate(pieces):
            h.chunk(
                _sse(
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": 0,
                        "delta": {"type": "text_delta", "text": piece},
                    },
                )
            )
            if i == 0:
                if behaviour == "midstream_error":
                    h.chunk(_sse("error", self.error_body("overloaded_error", "Overloaded")))
                    h.end_sse()
                    return
                if behaviour == "drop":
                    h.drop()
                    return
                if isinstance(behaviour, Gate):
                    behaviour.event.wait(behaviour.timeout)
            if i == len(pieces) // 2:  # cumulative usage may arrive mid-way too
                pass
        h.chunk(_sse("content_block_stop", {"type": "content_block_stop", "index": 0}))
        if self.tool:
            raw = json.dumps(self.tool[1])
            h.chunk(
                _sse(
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": 1,
                        "content_block": {
                            "type": "tool_use",
                            "id": f"toolu_{n:04d}",
                            "name": self.tool[0],
                            "input": {},
                        },
                    },
                )
            )
            for i in range(0, len(raw), 7):
                h.chunk(
                    _sse(
                        "content_block_delta",
                        {
                            "type": "content_block_delta",
                            "index": 1,
                            "delta": {"type": "input_json_delta", "partial_json": raw[i : i + 7]},
                        },
                    )
                )
            h.chunk(_sse("content_block_stop", {"type": "content_block_stop", "index": 1}))
        h.chunk(
            _sse(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop, "stop_sequence": None},
                    "usage": {"output_tokens": output_tokens},
                },
            )
        )
        h.chunk(_sse("message_stop", {"type": "message_stop"}))
        h.end_sse()


# --- OpenAI chat completions ------------------------------------------------------------


class OpenAIServer(LoopbackServer):
    generate_path = "/v1/chat/completions"

    def dispatch(self, h: _Handler, seen: Seen, behaviour: Behaviour) -> None:
        if seen.headers.get("authorization") != f"Bearer {KEY}":
            h.send_json(
                401,
                {
                    "error": {
                        "message": "Incorrect API key",
                        "type": "invalid_request_error",
                        "code": "invalid_api_key",
                    }
                },
            )
            return
        if isinstance(behaviour, Status):
            h.send_json(
                behaviour.code,
                {"error": {"message": behaviour.message, "type": behaviour.error_type}},
                behaviour.headers,
            )
            return
        if seen.path.split("?")[0] != "/v1/chat/completions":
            h.send_json(404, {"error": {"message": seen.path, "type": "not_found"}})
            return
        with self.lock:
            self.count += 1
            n = self.count
        text = self.text_for(seen)
        pieces = words(text)
        cid = f"chatcmpl-loop{n:04d}"
        model = seen.body.get("model", "?")
        prompt_tokens = 9 + len(json.dumps(seen.body.get("messages"))) // 4
        completion_tokens = len(pieces) + (5 if self.tool else 0)
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        finish = "tool_calls" if self.tool else "stop"
        tool_calls = (
            [
                {
                    "id": f"call_{n:04d}",
                    "type": "function",
                    "function": {"name": self.tool[0], "arguments": json.dumps(self.tool[1])},
                }
            ]
            if self.tool
            else None
        )
        if not seen.body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": text}
            if tool_calls:
                message["tool_calls"] = tool_calls
            h.send_json(
                200,
                {
                    "id": cid,
                    "object": "chat.completion",
                    "created": 1700000000,
                    "model": model,
                    "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                    "usage": usage,
                },
            )
            return

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
            value = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": 1700000000,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
            }
            return f"data: {json.dumps(value)}\n\n".encode()

        h.start_sse()
        h.chunk(chunk({"role": "assistant", "content": ""}))
        for i, piece in enumerate(pieces):
            h.chunk(chunk({"content": piece}))
            if i == 0:
                if behaviour == "midstream_error":
                    err = {"error": {"message": "server overloaded", "type": "server_error"}}
                    h.chunk(f"data: {json.dumps(err)}\n\n".encode())
                    h.end_sse()
                    return
                if behaviour == "drop":
                    h.drop()
                    return
                if isinstance(behaviour, Gate):
                    behaviour.event.wait(behaviour.timeout)
        if tool_calls:
            call = tool_calls[0]
            args = call["function"]["arguments"]
            h.chunk(
                chunk(
                    {
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": call["id"],
                                "type": "function",
                                "function": {"name": call["function"]["name"], "arguments": ""},
                            }
                        ]
                    }
                )
            )
            for i in range(0, len(args), 7):
                h.chunk(
                    chunk(
                        {"tool_calls": [{"index": 0, "function": {"arguments": args[i : i + 7]}}]}
                    )
                )
        h.chunk(chunk({}, finish))
        if (seen.body.get("stream_options") or {}).get("include_usage"):
            value = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": 1700000000,
                "model": model,
                "choices": [],
                "usage": usage,
            }
            h.chunk(f"data: {json.dumps(value)}\n\n".encode())
        h.chunk(b"data: [DONE]\n\n")
        h.end_sse()
