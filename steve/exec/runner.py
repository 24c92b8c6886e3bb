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
import os
import posixpath
import queue
import re
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import docker.errors
import docker.types
import requests.exceptions

from steve.errors import (
    ContainerFailed,
    ImageNotFound,
    ImageNotPinned,
    InvalidInput,
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
from steve.exec.launch import (
    CMD_DIR,
    ENTRYPOINT,
    NOT_FOUND_EXIT,
    NOT_STARTED,
    launch_script,
    script_tar,
)
from steve.exec.policy import ContainerPolicy, check, create_kwargs
from steve.exec.tarconv import check_input_name, store_tar, tar_stream
from steve.objects.model import CHUNK_SIZE, Blob, ChunkedBlob
from steve.objects.oid import ObjectId
from steve.objects.schemas.failures import FailureClass
from steve.objects.schemas.plan import DEFAULT_LOG_BYTES, DEFAULT_OUTPUT_BYTES
from steve.redact import Redactor, StreamRedactor
from steve.repo import BatchWriter, Repo

if TYPE_CHECKING:
    from steve.exec.engine import Engine

LOG_CHUNK = 64 << 10  # largest piece handed to a LogCallback
TAIL_BYTES = 64 << 10  # stderr kept in memory for classification
QUEUE_DEPTH = 64  # log pieces in flight between the reader thread and the runner
KILL_GRACE_S = 30.0  # how long a killed container's log stream may take to end
STOP_GRACE_S = 10.0  # after SIGTERM on cancel, SIGKILL follows this much later
POLL_S = 0.25  # how often a running step checks its deadline and cancellation
USAGE_EVERY_S = 1.0  # how often the work dir's size is measured against the output limit

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
    output_limit: int | None = DEFAULT_OUTPUT_BYTES  # bytes in the work dir / collected
    log_limit: int | None = DEFAULT_LOG_BYTES  # bytes kept of each of stdout and stderr
    # vault secrets: name -> version (in the action key and the receipt) and name ->
    # value (set in the container's environment at create time, nowhere else)
    secret_versions: Mapping[str, int] = field(default_factory=dict)
    secret_values: Mapping[str, bytes] = field(default_factory=dict, repr=False)
    # every log byte passes through it before it is stored or passed on
    redactor: Redactor | None = field(default=None, repr=False, compare=False)


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
    log_dropped: Mapping[str, int] = field(default_factory=dict)  # stream -> bytes not kept
    truncated: tuple[str, ...] = field(default=())  # streams cut at the output limit

    @property
    def ok(self) -> bool:
        return self.failure is None


class Runner(Protocol):
    @property
    def cancelled(self) -> bool:
        """True once the runner was told to stop: running steps end, no new one starts."""
        ...

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
FILE_TOO_LARGE = re.compile(rb"File too large|File size limit exceeded")
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
    output_limit: int | None = None,
) -> tuple[FailureClass | None, str]:
    """The failure class of a finished container and a one-line reason."""
    file_too_large = exit_code == 128 + signal.SIGXFSZ or FILE_TOO_LARGE.search(stderr_tail)
    if output_limit is not None and exit_code not in (None, 0) and file_too_large:
        return (
            FailureClass.OUTPUT_LIMIT_EXCEEDED,
            f"a file grew past the output limit of {output_limit} bytes (exit status {exit_code})",
        )
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


def _secret_environment(spec: StepSpec) -> dict[str, str] | None:
    """The step's secrets as the container's environment (set at create time; the
    engine holds them until the container is removed at the end of the step)."""
    if not spec.secret_values:
        return None
    env: dict[str, str] = {}
    for name, value in sorted(spec.secret_values.items()):
        try:
            env[name] = value.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInput(
                "a secret is not UTF-8 text", f"{name}: an environment variable holds text"
            ) from None
        if "\0" in env[name]:
            raise InvalidInput("a NUL byte in a secret", f"{name}: not allowed in the environment")
    return env


class _Logs:
    """Both log streams: redacted (a stream redactor per stream, so a secret split
    across chunks is caught), kept up to ``limit`` bytes each (the rest counted, not
    stored, not passed on), passed to ``on_log`` in bounded pieces."""

    def __init__(
        self,
        writer: BatchWriter,
        on_log: LogCallback | None,
        limit: int | None = None,
        redactor: Redactor | None = None,
    ) -> None:
        self.streams = {"stdout": BlobBuilder(writer), "stderr": BlobBuilder(writer)}
        self.on_log = on_log
        self.tail = bytearray()
        self.limit = limit
        self.dropped = {"stdout": 0, "stderr": 0}
        self.redactors: dict[str, StreamRedactor] = (
            {} if redactor is None else {name: redactor.stream() for name in self.streams}
        )

    def close(self) -> None:
        """Let out what the redactors still hold back (idempotent)."""
        for name, stream in self.redactors.items():
            self._keep(name, stream.close())

    def notes(self) -> list[str]:
        return [
            f"{name} truncated: kept the first {self.streams[name].size} bytes "
            f"(log limit {self.limit}), dropped {n}"
            for name, n in self.dropped.items()
            if n
        ]

    def feed(self, name: str, data: bytes) -> None:
        redactor = self.redactors.get(name)
        self._keep(name, data if redactor is None else redactor.feed(data))

    def _keep(self, name: str, data: bytes) -> None:
        if not data:
            return
        if self.limit is not None:
            room = max(0, self.limit - self.streams[name].size)
            if len(data) > room:
                self.dropped[name] += len(data) - room
                data = data[:room]
                if not data:
                    return
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


class _OverBudget(Exception):
    pass


class _Budget:
    """Counts the bytes of output archives; raises _OverBudget past ``limit``."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.used = 0

    def count(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            self.used += len(chunk)
            if self.limit is not None and self.used > self.limit:
                raise _OverBudget
            yield chunk


def _disk_usage(root: Path) -> int:
    """Bytes of disk the files under ``root`` use (blocks, so sparse files count as
    written), walked without recursion; symlinks are not followed."""
    total = 0
    stack = [root]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue
        for e in entries:
            try:
                st = e.stat(follow_symlinks=False)
            except OSError:
                continue
            total += st.st_blocks * 512
            if e.is_dir(follow_symlinks=False):
                stack.append(Path(e.path))
    return total


# --- the Docker runner ------------------------------------------------------------------


class _Watch:
    """Enforces a running step's deadline and the runner's cancellation, tick by tick."""

    def __init__(
        self,
        runner: DockerRunner,
        cid: str,
        timeout_s: float | None,
        usage: Callable[[], int] | None = None,
        limit: int | None = None,
    ) -> None:
        self._runner = runner
        self._cid = cid
        now = time.monotonic()
        self.deadline = None if timeout_s is None else now + timeout_s
        self._usage = usage
        self._limit = limit
        self._measure_at = now + USAGE_EVERY_S
        self.over_limit: int | None = None  # bytes found in the work dir past the limit
        self.timed_out = False
        self.interrupted = False
        self.stopped_at: float | None = None  # SIGTERM sent (cancellation)
        self.killed_at: float | None = None  # SIGKILL sent

    def tick(self) -> bool:
        """Signal the container if a limit passed; False once a kill went unanswered."""
        now = time.monotonic()
        r = self._runner
        if self.killed_at is not None:
            return now < self.killed_at + KILL_GRACE_S
        if self.deadline is not None and now >= self.deadline and not self.interrupted:
            self.timed_out = True
            self.kill()
        elif self._usage is not None and self._limit is not None and now >= self._measure_at:
            used = self._usage()
            took = time.monotonic() - now  # a big work dir is measured less often
            self._measure_at = time.monotonic() + max(USAGE_EVERY_S, 10 * took)
            if used > self._limit:
                self.over_limit = used
                self.kill()
        elif r.cancelled:
            if self.stopped_at is None:
                self.interrupted = True
                self.stopped_at = now
                r.signal(self._cid, "SIGTERM")
            if r.hurried or now >= self.stopped_at + r.stop_grace_s:
                self.kill()
        return True

    def kill(self) -> None:
        self.killed_at = time.monotonic()
        self._runner.signal(self._cid, "SIGKILL")

    def wait_s(self) -> float:
        """How long to block before the next tick."""
        if self.deadline is None or self.killed_at is not None:
            return POLL_S
        return max(0.01, min(POLL_S, self.deadline - time.monotonic()))


class DockerRunner:
    """Runs steps in Docker Engine containers (implements :class:`Runner`).

    :meth:`cancel` (safe to call from a signal handler or another thread) stops the
    steps that run: SIGTERM, then SIGKILL after ``stop_grace_s`` (at once with
    ``now=True``); each ends as :data:`FailureClass.INTERRUPTED`, its container and
    volume removed; a step asked to run after that is interrupted before anything
    is created.
    """

    def __init__(
        self,
        engine: Engine,
        repository_id: str | None = None,
        *,
        stop_grace_s: float = STOP_GRACE_S,
    ) -> None:
        self._engine = engine
        self._repository_id = repository_id
        self.stop_grace_s = stop_grace_s
        self._cancel = threading.Event()
        self._hurry = threading.Event()
        self._reason = "interrupted"
        self._running: set[str] = set()  # container ids of steps that run now

    # --- cancellation ----------------------------------------------------------------

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    @property
    def hurried(self) -> bool:
        return self._hurry.is_set()

    @property
    def running(self) -> int:
        """How many steps have a container right now."""
        return len(self._running)

    def cancel(self, reason: str = "interrupted", *, now: bool = False) -> None:
        """Stop every running step and start no new one (see the class docstring).

        Takes no lock and makes no engine call: the step threads act within
        :data:`POLL_S`, so a signal handler may call it."""
        if not self._cancel.is_set():
            self._reason = reason
        self._cancel.set()
        if now:
            self._hurry.set()

    def signal(self, cid: str, sig: str) -> None:
        with contextlib.suppress(docker.errors.APIError, *TRANSPORT_ERRORS):  # already gone
            self._engine.api.kill(cid, signal=sig)

    def _interrupted_detail(self, watch: _Watch | None) -> str:
        if watch is None or watch.stopped_at is None:
            return f"{self._reason}: stopped before the step started"
        if watch.killed_at is None:
            return f"{self._reason}: the step ended on SIGTERM"
        waited = watch.killed_at - watch.stopped_at
        return f"{self._reason}: the step was killed (SIGKILL {waited:.1f} s after SIGTERM)"

    # --- one step ----------------------------------------------------------------------

    def _nothing_ran(
        self, repo: Repo, started: int, failure: FailureClass, detail: str
    ) -> StepResult:
        with repo.writer() as w:
            empty = w.add(Blob(b""))
        return StepResult(
            exit_code=None,
            failure=failure,
            failure_detail=detail,
            outputs={},
            stdout=empty,
            stderr=empty,
            started_at=started,
            finished_at=time.time_ns(),
            container_id="",
            image_diff_ids=(),
            notes=(),
        )

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
        where = self._engine.where
        own_socket = (where.removeprefix("unix://"),) if where.startswith("unix://") else ()
        refused = [what for _, what in check(spec.policy, own_socket)]
        if not PINNED_REF.fullmatch(spec.image):
            refused.insert(0, f"image {spec.image!r} is not pinned by digest (sha256:<id>)")
        if refused:
            return self._nothing_ran(repo, started, FailureClass.POLICY_DENIED, "; ".join(refused))
        if self.cancelled:
            return self._nothing_ran(
                repo, started, FailureClass.INTERRUPTED, self._interrupted_detail(None)
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
        script = launch_script(spec.command, spec.env)  # refuses bad names before creating
        volume = f"steve-{uuid.uuid4().hex}"
        volumes = [volume, volume + "-cmd"]
        cid = ""
        try:
            for name in volumes:
                with engine_call(where, "create volume"):
                    api.create_volume(name=name, driver="local", labels=labels)
            cid = self._create(spec, image.id, volumes, labels)
            self._running.add(cid)
            uid, gid = spec.policy.uid, spec.policy.gid
            with engine_call(where, "copy inputs"):
                api.put_archive(cid, CMD_DIR, script_tar(script, uid=uid, gid=gid))
                api.put_archive(cid, spec.workdir, tar_stream(repo, spec.inputs, uid=uid, gid=gid))
            if self.cancelled:
                return self._nothing_ran(
                    repo, started, FailureClass.INTERRUPTED, self._interrupted_detail(None)
                )
            with repo.writer() as w:
                logs = _Logs(w, on_log, spec.log_limit, spec.redactor)
                try:
                    outcome = self._execute(cid, spec, logs, notes, volumes)
                finally:
                    logs.close()
                stdout = logs.streams["stdout"].finish()
                stderr = logs.streams["stderr"].finish()
            notes.extend(logs.notes())
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
                log_dropped={k: v for k, v in logs.dropped.items() if v},
                truncated=tuple(k for k, v in logs.dropped.items() if v),
            )
        finally:
            self._cleanup(cid, volumes, notes)
            self._running.discard(cid)

    def _create(
        self, spec: StepSpec, image_id: str, volumes: list[str], labels: dict[str, str]
    ) -> str:
        """Create the container: the command and environment are NOT in its config
        (they come in ``/steve/cmd``, see :mod:`steve.exec.launch`)."""
        kwargs = create_kwargs(spec.policy)
        if spec.output_limit is not None:  # no single file past the limit (SIGXFSZ / EFBIG)
            limit = spec.output_limit
            kwargs["ulimits"] = [docker.types.Ulimit(name="fsize", soft=limit, hard=limit)]
        mounts = list(kwargs.pop("mounts", []))
        mounts.append(docker.types.Mount(spec.workdir, volumes[0], type="volume"))
        mounts.append(docker.types.Mount(CMD_DIR, volumes[1], type="volume"))
        with engine_call(self._engine.where, "create container"):
            container = self._engine.client.containers.create(
                image_id,
                command=[],
                entrypoint=list(ENTRYPOINT),
                working_dir=spec.workdir,
                labels=labels,
                mounts=mounts,
                log_config=docker.types.LogConfig(type="none"),
                environment=_secret_environment(spec),
                stdin_open=False,
                tty=False,
                **kwargs,
            )
        return str(container.id)

    def _execute(
        self, cid: str, spec: StepSpec, logs: _Logs, notes: list[str], volumes: list[str]
    ) -> tuple[int | None, FailureClass | None, str] | str:
        """Attach, start, stream, wait; the classified outcome, or why it did not start."""
        api, stream_api, where = self._engine.api, self._engine.stream_api, self._engine.where
        with engine_call(where, "attach"):
            stream = stream_api.attach(cid, stdout=True, stderr=True, stream=True, demux=True)
        try:
            try:
                api.start(cid)
            except docker.errors.APIError as exc:
                why = str(exc.explanation or exc)
                if f'"{ENTRYPOINT[0]}"' in why and "no such file" in why:
                    return (
                        f"the image has no {ENTRYPOINT[0]}: a step runs as "
                        f"`{' '.join(ENTRYPOINT)}`, so its image needs a POSIX shell "
                        f"(tools/toolchain-image.sh adds dash); {why}"
                    )
                return why
            except TRANSPORT_ERRORS as exc:
                with engine_call(where, "start"):
                    raise exc
            q: queue.Queue[_Item] = queue.Queue(maxsize=QUEUE_DEPTH)
            reader = threading.Thread(target=_pump, args=(stream, q), daemon=True)
            reader.start()
            usage = None if spec.output_limit is None else self._usage_of(volumes)
            watch = _Watch(self, cid, spec.timeout_s, usage, spec.output_limit)
            while True:
                if not watch.tick():
                    notes.append("log stream did not end after the kill")
                    break
                try:
                    item = q.get(timeout=watch.wait_s())
                except queue.Empty:
                    continue
                if item is None:
                    break
                if isinstance(item, BaseException):
                    notes.append(f"log stream broke: {item}")
                    continue
                logs.feed(*item)
            logs.close()
            exit_code = self._wait(cid, watch)
            with engine_call(where, "inspect container"):
                state = api.inspect_container(cid)["State"]
            code = exit_code if exit_code is not None else state.get("ExitCode")
            if code == NOT_FOUND_EXIT and self._exists(cid, NOT_STARTED):
                return f"cannot start {spec.command[0]!r}: not found in the image"
            if watch.over_limit is None and usage is not None and code not in (None, 0):
                used = usage()  # a write refused at the file size limit fails the step
                if spec.output_limit is not None and used >= spec.output_limit:
                    watch.over_limit = used
            if watch.over_limit is not None:
                return (
                    (None if code is None else int(code)),
                    FailureClass.OUTPUT_LIMIT_EXCEEDED,
                    f"the work dir reached the output limit of {spec.output_limit} bytes "
                    f"({watch.over_limit} bytes found; exit status {code})",
                )
            if watch.interrupted:
                return (
                    (None if code is None else int(code)),
                    FailureClass.INTERRUPTED,
                    self._interrupted_detail(watch),
                )
            failure, detail = classify(
                exit_code=code,
                oom_killed=bool(state.get("OOMKilled")),
                timed_out=watch.timed_out,
                stderr_tail=bytes(logs.tail),
                policy=spec.policy,
                timeout_s=spec.timeout_s,
                output_limit=spec.output_limit,
            )
            if failure is None and FORK_FAILED.search(bytes(logs.tail)):
                notes.append(f"fork failed at the pids limit of {spec.policy.pids_limit}")
            return (None if code is None else int(code)), failure, detail
        finally:
            stream.close()

    def _usage_of(self, volumes: list[str]) -> Callable[[], int]:
        """A function measuring the bytes ``volumes`` hold: a walk of their directories
        when this host can see them (a local engine), else the engine's disk usage report."""
        api, where = self._engine.api, self._engine.where
        mountpoints = []
        for volume in volumes:
            with engine_call(where, "inspect volume"):
                found = api.inspect_volume(volume).get("Mountpoint") or "/nonexistent"
            mountpoints.append(Path(str(found)))
        if all(m.is_dir() for m in mountpoints):
            return lambda: sum(_disk_usage(m) for m in mountpoints)

        def from_engine() -> int:
            with engine_call(where, "disk usage"):
                report = api.df()
            return sum(
                int((v.get("UsageData") or {}).get("Size") or 0)
                for v in report.get("Volumes") or ()
                if v.get("Name") in volumes
            )

        return from_engine

    def _exists(self, cid: str, path: str) -> bool:
        try:
            chunks, _ = self._engine.api.get_archive(cid, path)
            for _ in chunks:  # drain the (tiny) archive so the connection is reused
                pass
        except docker.errors.NotFound:
            return False
        except TRANSPORT_ERRORS as exc:
            with engine_call(self._engine.where, "copy outputs"):
                raise exc
        return True

    def _wait(self, cid: str, watch: _Watch) -> int | None:
        """Exit status, the deadline and cancellation still enforced (None: no answer
        within the kill grace period after a kill)."""
        stream_api, where = self._engine.stream_api, self._engine.where
        while True:
            try:
                result = stream_api.wait(cid, timeout=1)
                return int(result["StatusCode"])
            except docker.errors.APIError as exc:
                raise ContainerFailed("wait", str(exc.explanation or exc)) from None
            except (requests.exceptions.Timeout, requests.exceptions.ConnectionError) as exc:
                if not watch.tick():
                    return None
                if isinstance(exc, requests.exceptions.ConnectionError) and not isinstance(
                    exc, requests.exceptions.ReadTimeout
                ):
                    with engine_call(where, "wait"):
                        self._engine.api.inspect_container(cid)  # the engine is gone?

    def _collect(
        self, repo: Repo, cid: str, spec: StepSpec, outputs: dict[str, ObjectId]
    ) -> tuple[FailureClass | None, str]:
        missing: list[str] = []
        budget = _Budget(spec.output_limit)
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
                _, outputs[path] = store_tar(repo, budget.count(chunks))
            except UnsafeArchive as exc:
                return FailureClass.OUTPUT_REJECTED, f"output {path}: {exc.detail}"
            except _OverBudget:
                outputs.clear()
                return (
                    FailureClass.OUTPUT_LIMIT_EXCEEDED,
                    f"the declared outputs hold more than the output limit of "
                    f"{spec.output_limit} bytes (stopped at output {path})",
                )
        if missing:
            return FailureClass.OUTPUT_MISSING, "declared outputs not produced: " + ", ".join(
                missing
            )
        return None, ""

    def _cleanup(self, cid: str, volumes: list[str], notes: list[str]) -> None:
        api = self._engine.api
        if cid:
            try:
                api.remove_container(cid, force=True)
            except docker.errors.NotFound:
                pass
            except TRANSPORT_ERRORS as exc:
                notes.append(f"container {cid[:12]} not removed ({exc}); run `steve janitor`")
        for volume in volumes:
            try:
                api.remove_volume(volume, force=True)
            except docker.errors.NotFound:
                pass
            except TRANSPORT_ERRORS as exc:
                notes.append(f"volume {volume} not removed ({exc}); run `steve janitor`")
