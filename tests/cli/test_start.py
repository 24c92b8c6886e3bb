"""`steve start` and bare `steve`: the guided first run (steve/cli/start.py).

The slow test types through the whole guided run in tmux as a person would, from
an empty folder to a passing test certificate built in real containers.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from steve.porcelain import guide
from steve.repo import Repo
from tests.docker_fixtures import MissingTool, ensure_busybox, remove_tag

WORDS = re.compile(r"\b(dag|manifests?|receipts?)\b", re.IGNORECASE)
SECRET = "correct horse battery staple"


def _env(tmp_path: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("STEVE_PASSPHRASE", "STEVE_KEY_FILE", "STEVE_DIR", "STEVE_LLM", "TMUX")
    }
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _steve(
    tmp_path: Path, cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "steve", *args],
        cwd=cwd, env=env or _env(tmp_path), stdin=subprocess.DEVNULL,
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip


def test_without_a_terminal_it_refuses_and_lists_the_commands(tmp_path: Path) -> None:
    proc = _steve(tmp_path, tmp_path, "start")
    assert proc.returncode == 2, proc.stderr
    assert "[STEVE-UX-020]" in proc.stderr
    assert "steve init ." in proc.stderr and "steve test" in proc.stderr
    assert not (tmp_path / ".steve").exists() and list(tmp_path.iterdir()) == []


def test_bare_steve_without_a_terminal_prints_the_help(tmp_path: Path) -> None:
    proc = _steve(tmp_path, tmp_path)
    assert proc.returncode == 2
    assert "Usage: steve" in proc.stdout and "start" in proc.stdout
    assert list(tmp_path.iterdir()) == []
    assert _steve(tmp_path, tmp_path, "--version").returncode == 0
    assert "Usage: steve" in _steve(tmp_path, tmp_path, "--help").stdout


def test_yes_needs_a_passphrase_and_leaves_nothing(tmp_path: Path) -> None:
    proc = _steve(tmp_path, tmp_path, "start", "--yes")
    assert proc.returncode == 4, proc.stderr
    assert "[STEVE-KEY-002]" in proc.stderr
    assert "$ steve init ." not in proc.stdout  # nothing ran
    assert list(tmp_path.iterdir()) == []


# --- the whole walk, typed in tmux ------------------------------------------------------


class Tmux:
    """A private tmux server (its own socket) running one shell in a 120x40 window."""

    def __init__(self, sock: Path, cwd: Path, env: dict[str, str]) -> None:
        self.base = ["tmux", "-S", str(sock)]
        self.env = env
        shell = "bash --norc --noprofile"
        self._tmux("new-session", "-d", "-x", "120", "-y", "40", "-c", str(cwd), shell)
        self._tmux("set-option", "-g", "history-limit", "20000")
        self.type("PS1='$ '; clear")  # a plain prompt, then a clean screen and history
        self.wait(lambda s: s.strip() == "$", "the prompt")
        self._tmux("clear-history")

    def _tmux(self, *args: str) -> str:
        proc = subprocess.run(
            [*self.base, *args],
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
        return proc.stdout

    def type(self, text: str) -> None:
        if text:
            self._tmux("send-keys", "-l", text)
        self._tmux("send-keys", "Enter")

    def keys(self, *keys: str) -> None:
        self._tmux("send-keys", *keys)

    def screen(self) -> str:
        """Everything shown so far (scrollback included, wrapped lines joined)."""
        return self._tmux("capture-pane", "-p", "-J", "-S", "-", "-E", "-")

    def wait(self, ready: Callable[[str], bool], what: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = self.screen()
            if ready(text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; screen:\n{text[-3000:]}")
            time.sleep(0.1)

    def wait_count(self, needle: str, n: int, timeout: float = 60) -> str:
        return self.wait(lambda t: t.count(needle) >= n, f"{needle!r} x{n}", timeout)

    def wait_exit(self, timeout: float = 60) -> tuple[int, str]:
        """The exit status the shell printed (``echo exit=$?``), and the screen."""
        found = re.compile(r"^exit=(\d+)$", re.MULTILINE)
        text = self.wait(lambda s: found.search(s) is not None, "the exit status", timeout)
        m = found.search(text)
        assert m is not None
        return int(m.group(1)), text

    def kill(self) -> None:
        subprocess.run([*self.base, "kill-server"], env=self.env, capture_output=True, check=False)


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Callable[[Path, dict[str, str]], Tmux]]:
    if shutil.which("tmux") is None:
        pytest.fail("tmux is not installed (.ci/run installs it)")
    made: list[Tmux] = []

    def make(cwd: Path, env: dict[str, str]) -> Tmux:
        made.append(Tmux(tmp_path / "sock", cwd, env))
        return made[-1]

    yield make
    for t in made:
        t.kill()


@pytest.mark.slow
def test_guided_first_run_typed_in_tmux(
    tmp_path: Path, tmux: Callable[[Path, dict[str, str]], Tmux], require_docker: str,
    pytestconfig: pytest.Config,
) -> None:  # fmt: skip
    try:
        ensure_busybox(say=print)
    except MissingTool as exc:
        pytest.fail(str(exc))
    project = tmp_path / "proj"
    project.mkdir()
    bin_dir = tmp_path / "bin"  # `steve` on PATH runs this tree's steve
    bin_dir.mkdir()
    (bin_dir / "steve").write_text(f'#!/bin/sh\nexec {sys.executable} -m steve "$@"\n')
    (bin_dir / "steve").chmod(0o755)
    env = _env(tmp_path)
    env.update(PATH=f"{bin_dir}{os.pathsep}{env['PATH']}", TERM="xterm")
    t = tmux(project, env)
    started = time.monotonic()
    try:
        _walk(t, project)
    finally:
        transcript = t.screen()
        (tmp_path / "transcript.txt").write_text(transcript)
        from steve.exec import connect

        engine = connect()
        try:
            remove_tag(engine, guide.image_tag(project.resolve()))
        finally:
            engine.close()
    seconds = time.monotonic() - started
    print(f"guided first run typed in tmux: {seconds:.1f} s")
    assert SECRET not in transcript  # typed hidden, never shown
    repo = Repo.open(project, passphrase=SECRET)
    try:
        facts = guide.gather(project, repo)
    finally:
        repo.close()
    assert facts.verdict == "pass" and facts.certificate is not None
    assert facts.certificate[:12] in transcript


RUN_IT = "Enter to run it"


def _walk(t: Tmux, project: Path) -> None:
    t.type("steve")  # bare `steve` in an empty folder: the guided run
    t.wait_count("Choose a passphrase", 1)
    screen = t.screen()
    assert "no recovery" in screen and "Welcome to STEVE" in screen
    t.type(SECRET)
    t.wait_count("Type it again", 1)
    t.type(SECRET)
    t.wait_count(RUN_IT, 1)
    assert "$ steve init ." in t.screen()
    t.type("")
    t.wait_count("What would you like to build?", 1)
    assert (project / ".steve").is_dir()
    t.type("")  # the example's words
    t.wait_count("check 1", 1)
    t.type("")  # the example's check
    t.wait_count("Enter to accept it", 1)
    t.type("")
    t.wait_count(RUN_IT, 2)
    assert "$ steve run new --name first-steps" in t.screen()
    t.type("")
    t.wait_count(RUN_IT, 3)
    assert "$ steve design design.yaml" in t.screen()
    # Ctrl-C here: it stops, says how to carry on; `steve start` picks up from here
    t.keys("C-c")
    before = t.wait_count("to carry on from", 1)
    assert not WORDS.search(before), WORDS.findall(before)  # not said before asked
    t.type("steve")  # a repository exists now: bare `steve` is the help again
    t.wait_count("Usage: steve", 1)
    t.type("steve start")
    resumed_at = len(t.wait_count("$ steve start", 1).rsplit("$ steve start", 1)[0])
    t.wait_count("The passphrase of this repository", 1)
    t.type(SECRET)
    t.wait_count("Picking up where you left off: 3 of 12 steps are done.", 1)
    expected = [
        "$ steve design design.yaml",
        "$ steve run goto RESEARCH --reason 'the example needs no research'",
        f"$ steve image build example/image --tag {guide.image_tag(project.resolve())} --no-sign",
        "$ steve write-tree example/src",
        "$ steve plan example/plan.yaml",
    ]
    for n, command in enumerate(expected, start=4):
        t.wait_count(RUN_IT, n, timeout=120)
        assert command in t.screen()
        t.type("")
    t.wait_count(RUN_IT, 9, timeout=120)
    screen = t.screen()
    assert "$ steve build" in screen and "+ example/plan.yaml" in screen
    resumed = screen[resumed_at:]  # (the help typed in between lists every command)
    assert not WORDS.search(resumed), WORDS.findall(resumed)  # not said before asked
    t.type("?")  # the longer answer, then the same question again
    more = t.wait_count(RUN_IT, 10)
    assert "More:" in more and WORDS.search(more[len(screen) :])
    t.type("")
    t.wait_count(RUN_IT, 11, timeout=180)
    assert "$ steve test" in t.screen()
    t.type("")
    t.wait_count("? to learn the words", 1, timeout=180)
    t.type("?")
    screen = t.wait_count("DAG:", 1)
    assert "the test passed" in screen and "verdict pass" in screen


def _shell(
    tmp_path: Path, tmux: Callable[[Path, dict[str, str]], Tmux], **extra: str
) -> tuple[Tmux, Path]:
    project = tmp_path / "proj"
    project.mkdir()
    env = _env(tmp_path)
    env.update(TERM="xterm", **extra)
    return tmux(project, env), project


def _init(t: Tmux) -> None:
    t.type(f"{sys.executable} -m steve start; echo exit=$?")
    t.wait_count("Choose a passphrase", 1)
    t.type(SECRET)
    t.wait_count("Type it again", 1)
    t.type(SECRET)
    t.wait_count(RUN_IT, 1)
    t.type("")


def test_own_words_edited_then_stopped_with_q(
    tmp_path: Path, tmux: Callable[[Path, dict[str, str]], Tmux]
) -> None:
    editor = tmp_path / "editor"  # what a person would do in $EDITOR: change a word
    editor.write_text("#!/bin/sh\nsed -i 's/greets/greets kindly/' \"$1\"\n")
    editor.chmod(0o755)
    t, project = _shell(tmp_path, tmux, EDITOR=str(editor), VISUAL=str(editor))
    _init(t)
    t.wait_count("What would you like to build?", 1)
    t.type("?")  # the longer answer first
    t.wait_count("What would you like to build?", 2)
    t.type("A tool that greets people")
    t.wait_count("check 1", 1)
    t.type("It says hello to Ada.")
    t.wait_count("check 2", 1)
    t.type("It exits 0.")
    t.wait_count("check 3", 1)
    t.type("")
    t.wait_count("Enter to accept it", 1)
    t.type("e")
    t.wait_count("Enter to accept it", 2)
    assert "summary: A tool that greets kindly people" in t.screen()
    t.type("")
    t.wait_count(RUN_IT, 2)
    t.type("q")
    status, screen = t.wait_exit()
    assert "Stopped, as you asked." in screen and status == 0
    text = (project / "design.yaml").read_text()
    assert "greets kindly" in text and "human_approved: true" in text
    assert "It exits 0." in text and "AC-002" in text
    assert guide.design_problems(text) == []
    assert not list(project.glob("**/.*.tmp"))  # no temporary file left


@pytest.mark.slow
def test_with_a_model_the_intake_drafts_the_design(
    tmp_path: Path, tmux: Callable[[Path, dict[str, str]], Tmux]
) -> None:
    t, project = _shell(tmp_path, tmux, STEVE_LLM="scripted")  # the offline model
    _init(t)
    t.wait_count("What would you like to build?", 1)
    t.type("")
    t.wait_count("check 1", 1)
    t.type("")
    t.wait_count(RUN_IT, 2)  # no design.yaml to accept: the model drafts it
    t.type("")
    t.wait_count(RUN_IT, 3)
    assert "$ steve design --intake 'A command-line tool" in t.screen()
    t.type("")
    t.wait_count("Freeze this design?", 1)  # `steve design --intake` asks itself
    t.type("y")
    t.wait_count(RUN_IT, 4)
    t.type("q")
    assert t.wait_exit()[0] == 0
    assert not (project / "design.yaml").exists()
    repo = Repo.open(project, passphrase=SECRET)
    try:
        facts = guide.gather(project, repo)
    finally:
        repo.close()
    from steve.objects.model import ObjectType

    assert ObjectType.DESIGN in facts.kinds and facts.stage is not None


def test_every_step_command_parses_as_a_real_steve_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the guide prints is what it runs; each one is an ordinary command line
    that `steve` itself accepts (parsed by click in a folder with the example's files,
    not run)."""
    import click

    from steve.cli.app import cli, load_commands

    load_commands()
    monkeypatch.chdir(tmp_path)
    for path in ("design.yaml", "example/plan.yaml", "example/src/words.txt"):
        guide.write_new_file(tmp_path, path, b"x")
    (tmp_path / "example" / "image").mkdir()
    values = {"image": "sha256:" + "a" * 64, "src": "b" * 64, "tag": "steve-first-steps:0"}
    parsed = []
    for intake in (None, "a word tool"):
        for step in guide.guide_steps(intake=intake, yes=intake is not None):
            if step.kind != "command":
                continue
            args = list(step.command(values))
            group: click.Group = cli
            ctx = click.Context(cli, info_name="steve")
            while True:
                name, command, rest = group.resolve_command(ctx, args)
                assert command is not None, step.argv
                if isinstance(command, click.Group):  # `run new`, `image build`
                    group, args = command, list(rest)
                    ctx = click.Context(command, info_name=str(name), parent=ctx)
                    continue
                command.make_context(str(name), list(rest), parent=ctx)
                parsed.append(step.key)
                break
    assert "build" in parsed and "test" in parsed and parsed.count("design") == 2
