"""The progress display (steve/cli/progress.py), seen the way a person sees it: real
``python -m steve`` processes with a pseudo-terminal as standard error.

On a terminal each long command draws its task, its counts and its rate on
standard error, and its standard output is byte for byte what it is without a
terminal; with pipes, with ``-q`` and with ``STEVE_QUIET=1`` not one byte of
progress is written.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from steve.cli.forward import Route, route_of, split_globals
from steve.gitbridge import export_git
from steve.porcelain.backup import backup
from steve.repo import Repo
from tests.ptyrun import run_in_pty, run_plain
from tests.test_progress import _populate

BAR = "\u2501"  # the bar's glyph: never part of a result or a message


@dataclass
class Case:
    args: Callable[[Path, str], list[str]]
    """(tmp_path, a label unique to the run) -> argv."""
    shows: list[str]
    """Text the display must show (escape sequences removed)."""
    stdin: bytes = b""
    normalize: Callable[[bytes, str], bytes] = lambda out, label: out


def _files(tmp: Path, n: int) -> list[str]:
    d = tmp / "files"
    d.mkdir(exist_ok=True)
    for i in range(n):
        (d / f"f{i}.txt").write_text(f"file {i}\n")
    return [str(d / f"f{i}.txt") for i in range(n)]


def _paths_stdin(tmp: Path) -> bytes:
    return "".join(f"{p}\n" for p in _files(tmp, 200)).encode()


CASES: dict[str, Case] = {
    "hash-object --stdin-paths": Case(
        lambda tmp, label: ["hash-object", "--stdin-paths"], ["hash-object", "200 files"]
    ),
    "hash-object -w FILE...": Case(
        lambda tmp, label: ["hash-object", "-w", *_files(tmp, 30)], ["hash-object", "30/30 files"]
    ),
    "fsck": Case(lambda tmp, label: ["fsck"], ["fsck", "objects"]),
    "gc --dry-run": Case(
        lambda tmp, label: ["gc", "--prune=now", "--dry-run"], ["gc: marking", "gc: scanning"]
    ),
    "verify": Case(lambda tmp, label: ["verify", "refs/tags/files"], ["verify", "41 objects"]),
    "export-git": Case(
        lambda tmp, label: ["export-git", str(tmp / f"git-{label}")],
        ["export-git", "objects", "refs/heads/main"],
    ),
    "import-git": Case(
        lambda tmp, label: ["import-git", str(tmp / "exported"), "HEAD"], ["import-git", "objects"]
    ),
    "backup": Case(
        lambda tmp, label: ["backup", str(tmp / f"bk-{label}")],
        ["backup", "3/3 steps"],
        # the first backup's repo.backup event is one more event for the second
        normalize=lambda out, label: re.sub(rb"bk-\w+|in [0-9.]+s|[0-9]+ events", b"X", out),
    ),
    "restore": Case(
        lambda tmp, label: ["restore", str(tmp / "backup"), str(tmp / f"rs-{label}")],
        ["restore", "3/3 steps"],
        normalize=lambda out, label: re.sub(rb"rs-\w+", b"X", out),
    ),
}


@pytest.fixture
def filled(repo: Repo, tmp_path: Path, steve_env: dict[str, str]) -> dict[str, str]:
    """The ``repo`` fixture with history, a tree, loose blobs, an export and a backup."""
    _populate(repo, 8, 20, 40)
    export_git(repo, tmp_path / "exported")
    backup(repo, tmp_path / "backup")
    repo.close()
    return {k: v for k, v in steve_env.items() if k != "STEVE_QUIET"}


@pytest.mark.parametrize("name", list(CASES))
def test_a_terminal_shows_progress_and_the_results_do_not_change(
    name: str, filled: dict[str, str], tmp_path: Path
) -> None:
    case = CASES[name]
    stdin = _paths_stdin(tmp_path) if name.endswith("--stdin-paths") else case.stdin

    shown = run_in_pty(case.args(tmp_path, "tty"), filled, tmp_path, stdin=stdin)
    plain = run_plain(case.args(tmp_path, "plain"), filled, stdin=stdin)
    assert shown.code == plain.returncode == 0, (shown.text, plain.stderr)
    for text in case.shows:
        assert text in shown.text, (text, shown.text)
    assert BAR in shown.text and "/s" in shown.text  # how far, how fast
    assert case.normalize(shown.stdout, "tty") == case.normalize(plain.stdout, "plain"), (
        shown.stdout,
        plain.stdout,
    )
    # not a terminal: no progress byte, no escape sequence
    assert b"\x1b" not in plain.stderr and b"\r" not in plain.stderr
    assert BAR.encode() not in plain.stderr

    for args, env in (
        (["-q", *case.args(tmp_path, "q")], filled),
        (case.args(tmp_path, "envq"), {**filled, "STEVE_QUIET": "1"}),
    ):
        quiet = run_in_pty(args, env, tmp_path, stdin=stdin)
        assert quiet.code == 0, quiet.text
        assert b"\x1b" not in quiet.terminal and BAR not in quiet.text, quiet.text


def test_ids_written_to_the_same_terminal_are_not_drawn_over(
    filled: dict[str, str], tmp_path: Path
) -> None:
    files = _files(tmp_path, 40)
    plain = run_plain(["hash-object", *files], filled)
    shown = run_in_pty(["hash-object", *files], filled, tmp_path, stdout_tty=True)
    assert shown.code == 0
    ids = plain.stdout.decode().split()
    lines = [ln.strip() for ln in re.split(r"[\r\n]+", shown.text)]
    # every id on a line of its own (the display's line is erased before each write)
    assert all(i in lines for i in ids), shown.text


def test_off_a_terminal_rich_is_not_even_imported(filled: dict[str, str], tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from steve.cli.main import cli\n"
        "try:\n"
        "    cli.main(['fsck'], prog_name='steve')\n"
        "except SystemExit as exc:\n"
        "    assert exc.code == 0, exc.code\n"
        "print('rich' in sys.modules, 'steve.cli.progress' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=filled, capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["False", "True"]


def test_the_global_quiet_flag_keeps_the_daemon_route() -> None:
    assert split_globals(["-q", "build"]) == (None, ["build"])
    assert split_globals(["--quiet", "-C", "/r", "gc"]) == ("/r", ["gc"])
    assert route_of(split_globals(["-q", "hash-object", "-w"])[1]) is Route.WRITE


def test_a_quick_command_draws_nothing_before_the_delay(
    filled: dict[str, str], tmp_path: Path
) -> None:
    files = _files(tmp_path, 3)
    env = {**filled, "STEVE_PROGRESS_DELAY": "30"}
    quick = run_in_pty(["hash-object", *files], env, tmp_path)
    assert quick.code == 0 and len(quick.stdout.split()) == 3
    assert quick.terminal == b""  # not an escape sequence: rich was not even loaded
