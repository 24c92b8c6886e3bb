"""An in-process Runner for orchestration tests (a user never meets it).

Each declared output becomes a blob whose bytes are derived from the step's
command, env and input ids, so equal steps give equal outputs; ``fail``
names steps that exit 1; ``delay`` makes steps overlap so a -j bound can be
observed.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import blake3

from steve.exec import FailureClass, StepResult, StepSpec
from steve.exec.runner import LogCallback
from steve.objects.oid import ObjectId
from steve.repo import Repo


def junit(name: str, failed: bool) -> bytes:
    bad = '<testcase classname="t" name="bad"><failure message="no"/></testcase>'
    return (
        f'<?xml version="1.0"?><testsuite name="{name}">'
        f'<testcase classname="t" name="good"/>{bad if failed else ""}</testsuite>'
    ).encode()


@dataclass
class FakeRunner:
    fail: set[str] = field(default_factory=set)
    junit_fail: set[str] = field(default_factory=set)  # exit 0, but a failed JUnit case
    delay: float = 0.0
    salt: bytes = b""  # changes every output: a non-reproducible step
    truncated: tuple[str, ...] = ()  # streams reported cut at the output limit
    calls: list[StepSpec] = field(default_factory=list)
    cancelled: bool = False  # the Runner protocol's cancellation flag (never set here)
    max_running: int = 0
    _running: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, repo: Repo, spec: StepSpec, on_log: LogCallback | None = None) -> StepResult:
        with self._lock:
            self.calls.append(spec)
            self._running += 1
            self.max_running = max(self.max_running, self._running)
        try:
            started = time.time_ns()
            if self.delay:
                time.sleep(self.delay)
            seed = repr((spec.command, sorted(spec.env.items()))).encode()
            seed += b"".join(spec.inputs[k].raw for k in sorted(spec.inputs)) + self.salt
            outputs: dict[str, ObjectId] = {}
            failed = spec.step_id in self.fail
            if not failed:
                for path in spec.outputs:
                    data = f"{path}:{blake3.blake3(seed).hexdigest()}\n".encode()
                    if path.endswith(".xml"):
                        data = junit(spec.step_id, spec.step_id in self.junit_fail)
                    outputs[path] = repo.write_blob(data)
            out = f"ran {spec.step_id}\n".encode() + self.salt  # salted: another run
            if on_log is not None:
                on_log("stdout", out)
            stdout = repo.write_blob(out)
            stderr = repo.write_blob(b"boom\n" if failed else b"")
            return StepResult(
                exit_code=1 if failed else 0,
                failure=FailureClass.EXITED_NONZERO if failed else None,
                failure_detail="exit status 1" if failed else "",
                outputs=outputs,
                stdout=stdout,
                stderr=stderr,
                started_at=started,
                finished_at=time.time_ns(),
                container_id="fake",
                image_diff_ids=("sha256:" + "0" * 64,),
                notes=(),
                truncated=self.truncated,
            )
        finally:
            with self._lock:
                self._running -= 1
