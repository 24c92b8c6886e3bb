"""The installed entry point in a real terminal (tmux): `steve tui` starts on the
current run, shows its plan, quits on q with exit 0, and changed nothing."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from steve.repo import Repo

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")


def tmux(socket: Path, *args: str) -> str:
    proc = subprocess.run(
        ["tmux", "-S", str(socket), *args], capture_output=True, text=True, timeout=30, check=True
    )
    return proc.stdout


def test_steve_tui_in_a_terminal(
    repo: Repo, planned: tuple[str, str], steve_env: dict[str, str], tmp_path: Path
) -> None:
    run_id, plan = planned
    undelivered = repo.undelivered()
    socket = tmp_path / "tmux.sock"
    done = tmp_path / "exit"
    env = {**steve_env, "TERM": "xterm-256color"}
    command = f"{shlex.quote(sys.executable)} -m steve tui; echo $? > {shlex.quote(str(done))}"
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items() if k.startswith("STEVE_"))
    tmux(
        socket,
        "new-session",
        "-d",
        "-x",
        "140",
        "-y",
        "40",
        f"env {exports} sh -c {shlex.quote(command)}",
    )
    try:
        deadline = time.monotonic() + 60
        screen = ""
        while time.monotonic() < deadline:
            screen = tmux(socket, "capture-pane", "-p")
            if f"plan {plan[:12]}" in screen and "check" in screen:
                break
            time.sleep(0.3)
        assert f"run demo ({run_id})" in screen, screen
        assert "next allowed: RESEARCH, BUILD" in screen and "[b] steve build" in screen
        tmux(socket, "send-keys", "q")
        deadline = time.monotonic() + 30
        while not done.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert done.read_text().strip() == "0"
    finally:
        subprocess.run(["tmux", "-S", str(socket), "kill-server"], capture_output=True, check=False)
    # nothing was written: the run's events still wait in steve.db's outbox (no drain)
    assert repo.undelivered() == undelivered > 0
