"""Running one step in a container: the :class:`Runner` protocol and :class:`DockerRunner`.

A step (:class:`StepSpec`) runs like this:

1. the policy is checked and the image must be pinned; a refusal is a
   :data:`FailureClass.POLICY_DENIED` result and nothing is created;
2. a labelled volume is created and mounted at the work dir (the root stays
   read-only), the container is created with the policy's settings;
3. inputs are streamed in as a tar whose root entry hands the work dir to
   the container user;
4. the runner attaches, starts the container and streams stdout/stderr in
   bounded chunks to the callback and into log blobs; past the timeout the
   container is killed;
5. declared outputs come back through ``get_archive`` as tree/blob objects;
6. container and volume are removed, whatever happened.

Outcomes are classified with the DEVPATH 4.8 taxonomy
(:class:`steve.objects.schemas.failures.FailureClass`, the one list of failure classes).
"""

from __future__ import annotations

import contextlib
import posixpath
import queue
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import docker.errors
import docker.types
import requests.exceptions

from steve.errors import (
    ContainerFailed,
    EngineUnavailable,
    ImageNotFound,
    ImageNotPinned,
    ObjectNotFound,
    UnsafeArchive,
)
from steve.exec.base import (
    LABEL_REPO,
    LABEL_RUN,
    LABEL_STEP,
    TRANSPORT_ERRORS,
    engine_call,
    owner_labels,
)
from steve.exec.images import PINNED_REF
from steve.exec.policy import ContainerPolicy, check, create_kwargs
from steve.exec.tarconv import check_input_name, store_tar, tar_stream
from steve.objects.model import CHUNK_SIZE, Blob, ChunkedBlob
from steve.objects.oid import ObjectId
from steve.objects.schemas.failures import FailureClass
from steve.repo import BatchWriter, Repo

if TYPE_CHECKING:
    from steve.exec.engine import Engine

LOG_CHUNK = 64 << 10  # largest piece handed to a LogCallback
TAIL_BYTES = 64 << 10  # stderr kept in memory for classification
QUEUE_DEPTH = 64  # log pieces in flight between the reader thread and the runner
KILL_GRACE_S = 30.0

LogCallback = Callable[[str, bytes], None]


@dataclass(frozen=True)
class StepSpec:
    """One step: what to run, in which image, with which inputs, under which policy."""

    run_id: str
    step_id: str
    image: str  # "sha256:<64 hex>" image id
    command: tuple[str, ...]
    env: Mapping[str, str]
    inputs: Mapping[str, ObjectId]  # name -> tree or blob id, materialised at workdir/name
    outputs: tuple[str, ...]  # declared output paths relative to the workdir
    policy: ContainerPolicy
    timeout_s: float | None = None
    workdir: str = "/work"


@dataclass(frozen=True)
class StepResult:
    exit_code: int | None
    failure: FailureClass | None  # None: success
    failure_detail: str
    outputs: Mapping[str, ObjectId]  # declared path -> tree/blob id in the store
    stdout: ObjectId  # log blobs in the store
    stderr: ObjectId
    started_at: int  # unix ns
    finished_at: int
    container_id: str
    image_diff_ids: tuple[str, ...]
    notes: tuple[str, ...] = field(default=())
    truncated: tuple[str, ...] = field(default=())  # streams cut at the output limit

    @property
    def ok(self) -> bool:
        return self.failure is None


class Runner(Protocol):
    def run(self, repo: Repo, spec: StepSpec, on_log: LogCallback | None = None) -> StepResult:
        """Run ``spec``; the result (success or a classified failure) is returned, not raised.

        Raises only for problems of the environment: the engine is unreachable
        (EngineUnavailable), the pinned image is not there (ImageNotFound), the
        engine refused an operation (ContainerFailed), bad input names (InvalidInput).
        """
        ...


# --- classification ---------------------------------------------------------------------

FORK_FAILED = re.compile(
    rb"can't fork|cannot fork|fork: retry|fork failed|Resource temporarily unavailable"
)
NETWORK_FAILED = re.compile(
    rb"Network is unreachable|bad address|Temporary failure in name resolution|"
    rb"Could not resolve host|Name or service not known|Name does not resolve|"
    rb"No address associated with hostname|getaddrinfo"
)


def classify(
    *,
    exit_code: int | None,
    oom_killed: bool,
    timed_out: bool,
    stderr_tail: bytes,
    policy: ContainerPolicy,
    timeout_s: float | None,
) -> tuple[FailureClass | None, str]:
    """The failure class of a finished container and a one-line reason."""
    if oom_killed:
        return (
            FailureClass.RESOURCE_LIMIT,
            f"out of memory: killed at the memory limit of {policy.memory_bytes} bytes",
        )
    forks_failed = FORK_FAILED.search(stderr_tail) is not None
    if (timed_out or exit_code != 0) and forks_failed and policy.pids_limit:
        how = "killed after the timeout" if timed_out else f"exit status {exit_code}"
        return (
            FailureClass.RESOURCE_LIMIT,
            f"pids limit of {policy.pids_limit} reached: fork failed ({how})",
        )
    if timed_out:
        return FailureClass.TIMEOUT, f"killed after the timeout of {timeout_s:g} s"
    if exit_code == 0:
        return None, ""
    if policy.network_mode == "none" and NETWORK_FAILED.search(stderr_tail):
        return (
            FailureClass.NETWORK_DENIED,
            f"network access denied by policy (network_mode=none); exit status {exit_code}",
        )
    return FailureClass.EXITED_NONZERO, f"exit status {exit_code}"


# --- log capture ------------------------------------------------------------------------


class BlobBuilder:
    """Builds a blob from pieces in bounded memory; same id as ``repo.write_blob`` would give."""

    def __init__(self, writer: BatchWriter) -> None:
        self._w = writer
        self._buf = bytearray()
        self._chunks: list[tuple[ObjectId, int]] = []
        self.size = 0

    def feed(self, data: bytes) -> None:
        self._buf += data
        self.size += len(data)
        while len(self._buf) > CHUNK_SIZE:
            piece = bytes(self._buf[:CHUNK_SIZE])
            del self._buf[:CHUNK_SIZE]
            self._chunks.append((self._w.add(Blob(piece)), CHUNK_SIZE))

    def finish(self) -> ObjectId:
        if not self._chunks:
            return self._w.add(Blob(bytes(self._buf)))
        if self._buf:
            self._chunks.append((self._w.add(Blob(bytes(self._buf))), len(self._buf)))
            self._buf = bytearray()
        return self._w.add(ChunkedBlob(self.size, tuple(self._chunks)))


class _Logs:
    def __init__(self, writer: BatchWriter, on_log: LogCallback | None) -> None:
        self.streams = {"stdout": BlobBuilder(writer), "stderr": BlobBuilder(writer)}
        self.on_log = on_log
        self.tail = bytearray()

    def feed(self, name: str, data: bytes) -> None:
        self.streams[name].feed(data)
        if name == "stderr":
            self.tail += data
            if len(self.tail) > TAIL_BYTES:
                del self.tail[: len(self.tail) - TAIL_BYTES]
        if self.on_log is not None:
            for i in range(0, len(data), LOG_CHUNK):
                self.on_log(name, data[i : i + LOG_CHUNK])


_Item = tuple[str, bytes] | BaseException | None


def _pump(stream: Any, q: queue.Queue[_Item]) -> None:
    """Reader thread: demuxed attach frames -> bounded queue; None at the end."""
    try:
        for out, err in stream:
            if out:
                q.put(("stdout", bytes(out)))
            if err:
                q.put(("stderr", bytes(err)))
    except TRANSPORT_ERRORS as exc:
        q.put(exc)
    finally:
        q.put(None)


def _secs(value: float | None) -> int | None:
    """A timeout for the SDK (whole seconds, at least 1)."""
    return None if value is None else max(1, round(value + 0.5))


# --- the Docker runner ------------------------------------------------------------------


class DockerRunner:
    """Runs steps in Docker Engine containers (implements :class:`Runner`)."""

    def __init__(self, engine: Engine, repository_id: str | None = None) -> None:
        self._engine = engine
        self._repository_id = repository_id

    def image_problem(self, image: str) -> str | None:
        """Why ``image`` cannot run here (not pinned, not a local image), or None; the
        engine being unreachable raises (EngineUnavailable)."""
        try:
            self._engine.images.get(image)
        except ImageNotFound:
            return f"image {image} is not a local image"
        except ImageNotPinned as exc:
            return f"image {image} is not pinned ({exc.detail})"
        return None

    def run(self, repo: Repo, spec: StepSpec, on_log: LogCallback | None = None) -> StepResult:
        started = time.time_ns()
        for name in [*spec.inputs, *spec.outputs]:
            check_input_name(name)
        for oid in spec.inputs.values():
            if not repo.has_object(oid):
                raise ObjectNotFound(oid.hex)
        refused = [f"{what} needs a {cap!r} grant" for cap, what in check(spec.policy)]
        if not PINNED_REF.fullmatch(spec.image):
            refused.insert(0, f"image {spec.image!r} is not pinned by digest (sha256:<id>)")
        if refused:
            with repo.writer() as w:
                empty = w.add(Blob(b""))
            return StepResult(
                exit_code=None,
                failure=FailureClass.POLICY_DENIED,
                failure_detail="; ".join(refused),
                outputs={},
                stdout=empty,
                stderr=empty,
                started_at=started,
                finished_at=time.time_ns(),
                container_id="",
                image_diff_ids=(),
                notes=(),
            )
        notes = list(self._engine.notes_for(spec.policy))
        image = self._engine.images.get(spec.image)
        labels = {
            LABEL_RUN: spec.run_id,
            LABEL_STEP: spec.step_id,
            LABEL_REPO: self._repository_id or repo.repository_id,
            **owner_labels(),
        }
        api = self._engine.api
        where = self._engine.where
        volume = f"steve-{uuid.uuid4().hex}"
        cid = ""
        try:
            with engine_call(where, "create volume"):
                api.create_volume(name=volume, driver="local", labels=labels)
            cid = self._create(spec, image.id, volume, labels)
            with engine_call(where, "copy inputs"):
                api.put_archive(
                    cid,
                    spec.workdir,
                    tar_stream(repo, spec.inputs, uid=spec.policy.uid, gid=spec.policy.gid),
                )
            with repo.writer() as w:
                logs = _Logs(w, on_log)
                outcome = self._execute(cid, spec, logs, notes)
                stdout = logs.streams["stdout"].finish()
                stderr = logs.streams["stderr"].finish()
            if isinstance(outcome, tuple):
                exit_code, failure, detail = outcome
            else:  # could not start
                exit_code, failure, detail = None, FailureClass.START_FAILED, outcome
            outputs: dict[str, ObjectId] = {}
            if failure is None:
                failure, detail = self._collect(repo, cid, spec, outputs)
            elif failure is FailureClass.EXITED_NONZERO:
                # a non-zero exit keeps what it did produce (a failing test's JUnit
                # report is the evidence); missing or unsafe outputs change nothing
                self._collect(repo, cid, spec, outputs)
            return StepResult(
                exit_code=exit_code,
                failure=failure,
                failure_detail=detail,
                outputs=outputs,
                stdout=stdout,
                stderr=stderr,
                started_at=started,
                finished_at=time.time_ns(),
                container_id=cid,
                image_diff_ids=image.diff_ids,
                notes=tuple(notes),
            )
        finally:
            self._cleanup(cid, volume, notes)

    def _create(self, spec: StepSpec, image_id: str, volume: str, labels: dict[str, str]) -> str:
        kwargs = create_kwargs(spec.policy)
        mounts = list(kwargs.pop("mounts", []))
        mounts.append(docker.types.Mount(spec.workdir, volume, type="volume"))
        with engine_call(self._engine.where, "create container"):
            container = self._engine.client.containers.create(
                image_id,
                command=list(spec.command[1:]),
                entrypoint=[spec.command[0]],
                environment=dict(spec.env),
                working_dir=spec.workdir,
                labels=labels,
                mounts=mounts,
                log_config=docker.types.LogConfig(type="none"),
                stdin_open=False,
                tty=False,
                **kwargs,
            )
        return str(container.id)

    def _execute(
        self, cid: str, spec: StepSpec, logs: _Logs, notes: list[str]
    ) -> tuple[int | None, FailureClass | None, str] | str:
        """Attach, start, stream, wait; the classified outcome, or why it did not start."""
        api, stream_api, where = self._engine.api, self._engine.stream_api, self._engine.where
        with engine_call(where, "attach"):
            stream = stream_api.attach(cid, stdout=True, stderr=True, stream=True, demux=True)
        try:
            try:
                api.start(cid)
            except docker.errors.APIError as exc:
                return str(exc.explanation or exc)
            except TRANSPORT_ERRORS as exc:
                with engine_call(where, "start"):
                    raise exc
            q: queue.Queue[_Item] = queue.Queue(maxsize=QUEUE_DEPTH)
            reader = threading.Thread(target=_pump, args=(stream, q), daemon=True)
            reader.start()
            deadline = None if spec.timeout_s is None else time.monotonic() + spec.timeout_s
            timed_out = False
            while True:
                now = time.monotonic()
                if deadline is not None and not timed_out and now >= deadline:
                    timed_out = True
                    self._kill(cid)
                    deadline = now + KILL_GRACE_S  # the stream must end by then
                elif timed_out and deadline is not None and now >= deadline:
                    notes.append("log stream did not end after the kill")
                    break
                wait_s = 0.5 if deadline is None else max(0.01, min(0.5, deadline - now))
                try:
                    item = q.get(timeout=wait_s)
                except queue.Empty:
                    continue
                if item is None:
                    break
                if isinstance(item, BaseException):
                    notes.append(f"log stream broke: {item}")
                    continue
                logs.feed(*item)
            exit_code = self._wait(cid, None if timed_out else deadline, timed_out)
            if exit_code is None:
                timed_out = True
            with engine_call(where, "inspect container"):
                state = api.inspect_container(cid)["State"]
            failure, detail = classify(
                exit_code=exit_code if exit_code is not None else state.get("ExitCode"),
                oom_killed=bool(state.get("OOMKilled")),
                timed_out=timed_out,
                stderr_tail=bytes(logs.tail),
                policy=spec.policy,
                timeout_s=spec.timeout_s,
            )
            if failure is None and FORK_FAILED.search(bytes(logs.tail)):
                notes.append(f"fork failed at the pids limit of {spec.policy.pids_limit}")
            code = exit_code if exit_code is not None else state.get("ExitCode")
            return (None if code is None else int(code)), failure, detail
        finally:
            stream.close()

    def _wait(self, cid: str, deadline: float | None, timed_out: bool) -> int | None:
        """Exit status; kills the container if it outlives the deadline (None then)."""
        stream_api, where = self._engine.stream_api, self._engine.where
        remaining = None if deadline is None else max(0.1, deadline - time.monotonic())
        if timed_out:
            remaining = KILL_GRACE_S
        try:
            result = stream_api.wait(cid, timeout=_secs(remaining))
            return int(result["StatusCode"])
        except docker.errors.APIError as exc:
            raise ContainerFailed("wait", str(exc.explanation or exc)) from None
        except (requests.exceptions.Timeout, requests.exceptions.ConnectionError) as exc:
            if remaining is None:
                raise EngineUnavailable(where, f"wait: {exc}") from None
        self._kill(cid)
        with engine_call(where, "wait"):
            stream_api.wait(cid, timeout=_secs(KILL_GRACE_S))
        return None

    def _kill(self, cid: str) -> None:
        with contextlib.suppress(docker.errors.APIError):  # already stopped
            self._engine.api.kill(cid)

    def _collect(
        self, repo: Repo, cid: str, spec: StepSpec, outputs: dict[str, ObjectId]
    ) -> tuple[FailureClass | None, str]:
        missing: list[str] = []
        for path in spec.outputs:
            full = posixpath.join(spec.workdir, path)
            try:
                chunks, _ = self._engine.api.get_archive(cid, full, chunk_size=1 << 16)
            except docker.errors.NotFound:
                missing.append(path)
                continue
            except TRANSPORT_ERRORS as exc:
                with engine_call(self._engine.where, "copy outputs"):
                    raise exc
            try:
                _, outputs[path] = store_tar(repo, chunks)
            except UnsafeArchive as exc:
                return FailureClass.OUTPUT_REJECTED, f"output {path}: {exc.detail}"
        if missing:
            return FailureClass.OUTPUT_MISSING, "declared outputs not produced: " + ", ".join(
                missing
            )
        return None, ""

    def _cleanup(self, cid: str, volume: str, notes: list[str]) -> None:
        api = self._engine.api
        if cid:
            try:
                api.remove_container(cid, force=True)
            except docker.errors.NotFound:
                pass
            except TRANSPORT_ERRORS as exc:
                notes.append(f"container {cid[:12]} not removed ({exc}); run `steve janitor`")
        try:
            api.remove_volume(volume, force=True)
        except docker.errors.NotFound:
            pass
        except TRANSPORT_ERRORS as exc:
            notes.append(f"volume {volume} not removed ({exc}); run `steve janitor`")
