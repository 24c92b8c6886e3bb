"""Progress through steved: a write command forwarded from a terminal draws its display
inside the daemon, and it reaches the client's terminal as standard-error frames;
from a pipe, or with --quiet, not one progress byte travels."""

from __future__ import annotations

import json
from pathlib import Path

from tests.daemon.conftest import Daemon, env_for
from tests.ptyrun import run_in_pty, run_plain

BAR = "\u2501"


def _served(daemon: Daemon) -> list[str]:
    """The commands steved ran, from its log."""
    lines = (daemon.repo.parent / "steved.log").read_text().splitlines()
    records = [json.loads(ln) for ln in lines]
    return [
        r["fields"]["command"][0]
        for r in records
        if r.get("msg") == "request done" and r.get("fields", {}).get("command")
    ]


def test_a_forwarded_command_draws_on_the_clients_terminal(daemon: Daemon, tmp_path: Path) -> None:
    files = tmp_path / "files"
    files.mkdir()
    paths = []
    for i in range(60):
        (files / f"f{i}").write_text(f"{i}\n")
        paths.append(str(files / f"f{i}"))
    stdin = "".join(f"{p}\n" for p in paths).encode()
    env = env_for(daemon.repo)

    shown = run_in_pty(["hash-object", "-w", "--stdin-paths"], env, tmp_path, stdin=stdin)
    assert shown.code == 0, shown.text
    assert "hash-object" in shown.text and "60 files" in shown.text and BAR in shown.text
    assert _served(daemon).count("hash-object") == 1  # it ran inside steved

    plain = run_plain(["hash-object", "-w", "--stdin-paths"], env, stdin=stdin)
    assert plain.returncode == 0
    assert shown.stdout == plain.stdout and len(plain.stdout.split()) == 60
    assert b"\x1b" not in plain.stderr and BAR.encode() not in plain.stderr

    quiet = run_in_pty(["-q", "hash-object", "-w", "--stdin-paths"], env, tmp_path, stdin=stdin)
    assert quiet.code == 0 and quiet.stdout == plain.stdout
    assert b"\x1b" not in quiet.terminal and BAR not in quiet.text
    assert len(_served(daemon)) == 3  # -q no longer bypasses steved
