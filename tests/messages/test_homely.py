"""The homely layer: every friendly line has its factual twin; friendly lines and
nudges appear on a terminal only (a real pty), never with --quiet or in a pipe;
nudges are gentle, configurable and recorded as events."""

from __future__ import annotations

import ast
import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from steve.config import HomelySettings
from steve.events import EventLog
from steve.messages import fields, messages, msg
from steve.porcelain.homely import SESSION_KEY, check_nudges, set_setting
from steve.repo import Repo

ROOT = Path(__file__).resolve().parents[2]
FRIENDLY = {k: v for k, v in messages().items() if k.endswith(".friendly")}


def static_part(template: str) -> str:
    """The longest run of ``template`` without a field (what any rendering contains)."""
    return max(re.split(r"\{[^}]*\}", template), key=len).strip()


def test_every_friendly_line_has_its_factual_twin() -> None:
    assert FRIENDLY, "the catalogue has no friendly lines"
    for key in FRIENDLY:
        twin = key.removesuffix(".friendly") + ".fact"
        assert twin in messages(), f"{key} has no factual twin {twin}"


def test_a_friendly_line_names_no_fact_its_twin_lacks() -> None:
    for key, template in FRIENDLY.items():
        twin = messages()[key.removesuffix(".friendly") + ".fact"]
        assert fields(template) <= fields(twin) | {"kind", "to_stage"}, key


def _ids_used_in_cli() -> set[str]:
    """Message ids named by literal strings in steve/cli (msg("x") and say(_, "x"))."""
    found: set[str] = set()
    for path in (ROOT / "steve" / "cli").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
                continue
            if node.func.id == "msg" and node.args and isinstance(node.args[0], ast.Constant):
                found.add(str(node.args[0].value))
            if node.func.id == "friendly" and len(node.args) > 1:
                arg = node.args[1]
                if isinstance(arg, ast.Constant):
                    found |= {f"{arg.value}.friendly", f"{arg.value}.fact"}
            if node.func.id == "say" and len(node.args) > 1:
                arg = node.args[1]
                if isinstance(arg, ast.Constant):
                    found.add(f"{arg.value}.fact")
                elif isinstance(arg, ast.IfExp):
                    found |= {f"{b.value}.fact" for b in (arg.body, arg.orelse)
                              if isinstance(b, ast.Constant)}  # fmt: skip
    return found


def test_every_message_id_the_cli_names_is_in_the_catalogue() -> None:
    used = _ids_used_in_cli()
    assert len(used) > 20
    assert sorted(used - set(messages())) == []


def test_a_missing_fact_stays_visible() -> None:
    assert msg("secret.set.fact", name="T") == "T version {version}"


# --- real terminals ------------------------------------------------------------------------


def run_on_pty(args: list[str], env: dict[str, str], stdin: bytes = b"") -> tuple[int, str]:
    """``python -m steve ARGS`` with standard output and error on one pseudo-terminal."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "steve", *args],
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=slave,
        env=env,
        cwd=ROOT,
    )
    os.close(slave)
    chunks = []
    while True:
        ready, _, _ = select.select([master], [], [], 60)
        if not ready:
            proc.kill()
            raise AssertionError("no output from the pty in 60 s")
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    code = proc.wait(timeout=60)
    return code, b"".join(chunks).decode().replace("\r\n", "\n")


def run_in_pipe(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "steve", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
    )
    return proc.returncode, proc.stdout + proc.stderr


def friendly_lines_in(output: str) -> list[str]:
    return [k for k, t in FRIENDLY.items() if static_part(t) and static_part(t) in output]


@pytest.fixture
def env(repo: Repo, steve_env: dict[str, str]) -> dict[str, str]:
    out = dict(steve_env)
    out.pop("STEVE_QUIET", None)
    out["PYTHONPATH"] = str(ROOT)
    out["TERM"] = "dumb"
    repo.close()
    # late nudges only from 04:00 to 05:00 (no setting rules them out at every hour)
    set_setting(Path(out["STEVE_DIR"]), "late_hour", "4")
    return out


COMMANDS = [
    (["config", "set", "homely.failure_streak", "5"], "config.set"),
    (["secret", "set", "TOKEN", "--command", "printf abcdefghij"], "secret.set"),
    (["secret", "rm", "TOKEN"], "secret.removed"),
    (["fsck"], "repo.fsck_ok"),
    (["run", "new"], "run.created"),
]


@pytest.mark.slow
def test_friendly_lines_on_a_terminal_only(env: dict[str, str], tmp_path: Path) -> None:
    cases = [*COMMANDS, (["backup", str(tmp_path / "b1")], "backup.done")]
    for args, message_id in cases:
        code, out = run_on_pty(args, env)
        assert code == 0, out
        assert message_id + ".friendly" in friendly_lines_in(out), (args, out)
        friendly_at = out.index(static_part(FRIENDLY[message_id + ".friendly"]))
        fact = static_part(messages()[message_id + ".fact"]) or "\n"  # a bare id: next line
        assert friendly_at < out.index(fact, friendly_at), out  # the friendly line, then its fact

    quiet_env = {**env, "STEVE_QUIET": "1"}
    ways = {
        "pipe": (run_in_pipe, [], env),
        "--quiet": (run_on_pty, ["--quiet"], env),
        "-q": (run_on_pty, ["-q"], env),
        "STEVE_QUIET": (run_on_pty, [], quiet_env),
    }
    for how, (runner, flags, run_env) in ways.items():
        cases = [*COMMANDS, (["backup", str(tmp_path / f"b-{how}")], "backup.done")]
        for args, message_id in cases:
            code, out = runner([*flags, *args], run_env)
            assert code == 0, (how, out)
            assert friendly_lines_in(out) == [], (how, args, out)
            assert static_part(messages()[message_id + ".fact"]) in out, (how, args, out)


def _session(root: Path) -> str | None:
    with Repo.open(root, passphrase="pw") as r:
        return r.get_meta(SESSION_KEY)


@pytest.mark.slow
def test_a_nudge_comes_last_on_a_terminal_and_never_in_a_pipe(env: dict[str, str]) -> None:
    root = Path(env["STEVE_DIR"])
    set_setting(root, "session_hours", "1")
    with Repo.open(root, passphrase="pw") as r:
        long_ago = int(time.time()) - 2 * 3600
        with r.transaction() as tx:  # a session that began two hours ago, still going
            tx.set_meta(SESSION_KEY, f"{long_ago} {long_ago + 7000}")

    code, out = run_in_pipe(["fsck"], env)
    assert code == 0 and "A short break" not in out
    assert _session(root) == f"{long_ago} {long_ago + 7000}"  # a pipe leaves it alone

    code, out = run_on_pty(["-q", "fsck"], env)
    assert code == 0 and "A short break" not in out

    code, out = run_on_pty(["fsck"], env)
    assert code == 0
    lines = out.rstrip("\n").splitlines()
    assert lines[-2].startswith("You have been at it for 2 hours"), out
    assert lines[-1] == "  session of 2 h"
    assert out.index("checked ") < out.index("You have been at it")  # after the result

    code, out = run_on_pty(["fsck"], env)  # once per session length, not every command
    assert "You have been at it" not in out

    with Repo.open(root, passphrase="pw") as r:
        log = EventLog.attach(r)
        try:
            nudges = [e.payload for e in log.events(event_type="homely.nudge")]
        finally:
            log.close()
    # (between 04:00 and 05:00 no late_hour avoids a late nudge too: it may join)
    assert [n for n in nudges if n["kind"] != "late"] == [{"kind": "session", "hours": 2}]


@pytest.mark.slow
def test_nudges_off_means_none(env: dict[str, str]) -> None:
    root = Path(env["STEVE_DIR"])
    set_setting(root, "session_hours", "1")
    set_setting(root, "nudges", "off")
    with Repo.open(root, passphrase="pw") as r, r.transaction() as tx:
        tx.set_meta(SESSION_KEY, f"{int(time.time()) - 7200} 0")
    code, out = run_on_pty(["fsck"], env)
    assert code == 0 and "You have been at it" not in out


# --- the library's rules -------------------------------------------------------------------


def test_late_hour_nudge_once_in_eight_hours(mem_repo: Repo) -> None:
    s = HomelySettings()
    t = 1_000_000
    assert check_nudges(mem_repo, s, now=t - 1800, hour=22, minute=35) == []
    assert check_nudges(mem_repo, s, now=t - 60, hour=23, minute=4) == []  # 29 min in
    assert [n.kind for n in check_nudges(mem_repo, s, now=t, hour=23, minute=5)] == ["late"]
    assert check_nudges(mem_repo, s, now=t + 60, hour=23, minute=6) == []
    assert check_nudges(mem_repo, s, now=t + 3 * 3600, hour=2, minute=5) == []
    later = check_nudges(mem_repo, s, now=t + 8 * 3600 + 60, hour=7, minute=0)
    assert later == []  # not late any more (and a new session: the pause was long)
    check_nudges(mem_repo, s, now=t + 9 * 3600 - 1800, hour=3, minute=30)
    assert check_nudges(mem_repo, s, now=t + 9 * 3600, hour=4, minute=0)[0].facts == {
        "hour": 4,
        "minute": 0,
    }


def test_daytime_is_not_late(mem_repo: Repo) -> None:
    for hour in range(5, 23):  # commands every 20 minutes, all day
        due = check_nudges(mem_repo, HomelySettings(), now=hour * 1200, hour=hour, minute=0)
        assert "late" not in [n.kind for n in due]


def test_a_late_hour_does_not_greet_someone_who_just_sat_down(mem_repo: Repo) -> None:
    assert check_nudges(mem_repo, HomelySettings(), now=10_000, hour=2, minute=0) == []


def test_a_failure_streak_earns_a_nudge_at_each_multiple(mem_repo: Repo) -> None:
    s = HomelySettings(failure_streak=2)
    seen = []
    for i, failed in enumerate([True, True, True, True, False, True]):
        due = check_nudges(mem_repo, s, now=1000 + i, hour=12, minute=0, tests_failed=failed)
        seen.append([(n.kind, n.facts) for n in due])
    assert seen == [[], [("failures", {"count": 2})], [], [("failures", {"count": 4})], [], []]


def test_a_pause_starts_a_new_session(mem_repo: Repo) -> None:
    s = HomelySettings(session_hours=1)
    check_nudges(mem_repo, s, now=0, hour=12, minute=0)
    check_nudges(mem_repo, s, now=1700, hour=12, minute=0)
    assert check_nudges(mem_repo, s, now=3400, hour=12, minute=0) == []
    due = check_nudges(mem_repo, s, now=3600, hour=12, minute=0)
    assert [(n.kind, n.facts) for n in due] == [("session", {"hours": 1})]
    assert check_nudges(mem_repo, s, now=3600 + 31 * 60 + 3600, hour=12, minute=0) == []


def test_nudges_off_records_nothing(mem_repo: Repo) -> None:
    assert check_nudges(mem_repo, HomelySettings(nudges="off"), now=5, hour=23, minute=0) == []
    assert mem_repo.get_meta(SESSION_KEY) is None


@pytest.mark.slow
def test_through_steved_friendly_lines_follow_the_clients_terminal(env: dict[str, str]) -> None:
    """A command forwarded to steved shows friendly lines when the client's output is
    a terminal, and none when it is a pipe (STEVE_TERMINAL, set by the client)."""
    root = Path(env["STEVE_DIR"])
    daemon = subprocess.Popen(
        [sys.executable, "-m", "steve.cli.serve", "--repo", str(root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,
    )
    try:
        assert daemon.stdout is not None
        assert daemon.stdout.readline().decode().startswith("ready ")
        # no passphrase: only steved (which holds the key) can run these
        client = {k: v for k, v in env.items() if k != "STEVE_PASSPHRASE"}
        piped = {**client, "STEVE_TERMINAL": "1"}  # overwritten by the client: it is a pipe
        code, out = run_in_pipe(["secret", "set", "A_TOKEN", "--command", "printf x"], piped)
        assert code == 0 and "A_TOKEN version 1" in out and friendly_lines_in(out) == [], out
        code, out = run_on_pty(["secret", "set", "A_TOKEN", "--command", "printf y"], client)
        assert code == 0 and "A_TOKEN version 2" in out, out
        assert friendly_lines_in(out) == ["secret.set.friendly"], out
        code, out = run_on_pty(["-q", "secret", "rm", "A_TOKEN"], client)
        assert code == 0 and friendly_lines_in(out) == [], out
    finally:
        daemon.terminate()
        daemon.wait(timeout=60)
        for stream in (daemon.stdout, daemon.stderr):
            if stream is not None:
                stream.close()


def test_the_global_quiet_flag_does_not_stop_forwarding() -> None:
    from steve.cli.forward import split_globals

    assert split_globals(["-q", "secret", "rm", "X"]) == (None, ["secret", "rm", "X"])
    assert split_globals(["--quiet", "-C", "r", "build"]) == ("r", ["build"])
    assert split_globals(["--version"]) == (None, [])
