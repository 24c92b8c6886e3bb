"""The replay provider: answers only from the record, never opens a socket.

Every exchange a live (or scripted) provider answered through the session
is stored and indexed by its request (:mod:`steve.llm.record`).  Replay
looks the (redacted) request up there: a hit returns the stored response
(same object ids, so a replayed run reproduces the same manifests); a miss
is ReplayMiss (STEVE-LLM-007).  It imports no SDK and has no network code.
"""

from __future__ import annotations

from collections.abc import Iterator

from steve.errors import ReplayMiss
from steve.llm import record
from steve.llm.provider import estimate_tokens
from steve.llm.record import Exchange
from steve.llm.types import Done, ModelInfo, Request, Response, StreamEvent, TextDelta
from steve.repo import Repo


class ReplayProvider:
    name = "replay"

    def __init__(self, repo: Repo) -> None:
        self.repo = repo

    def recorded(self, request: Request) -> Exchange:
        """The recorded exchange of ``request`` (already redacted), or ReplayMiss."""
        oid = record.request_oid(request)
        found = record.find(self.repo, oid)
        if found is None:
            raise ReplayMiss(oid.hex, request.model)
        return found

    def send(self, request: Request) -> Response:
        return self.recorded(request).response

    def stream(self, request: Request) -> Iterator[StreamEvent]:
        response = self.send(request)
        if response.text:
            yield TextDelta(response.text)
        yield Done(response)

    def count_tokens(self, request: Request) -> int:
        return estimate_tokens(request)

    def model_info(self, model: str) -> ModelInfo:
        return ModelInfo(self.name, model, 0, 0)
