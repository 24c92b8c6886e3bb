"""``steve start`` (and bare ``steve`` outside a repository): the guided first run.

The walk itself is data in :mod:`steve.porcelain.guide`; this module talks to the
person: it explains each step, prints the ``steve`` command, runs it as a real
subprocess (``python -m steve ...`` in the project folder) and shows what it
printed.  It never does anything the printed command does not do, except the two
kinds of step it names as such: writing the files it lists, and asking questions.

The passphrase is asked here (twice for a new repository) and handed to the
commands it runs in ``STEVE_PASSPHRASE``, the variable every ``steve`` command
reads; it says so.  With ``STEVE_PASSPHRASE``, ``STEVE_KEY_FILE`` or a key cached
by `steve unlock`, nothing is asked.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import click

from steve.cli.app import Context, cli, frozen_time, identity, pass_state
from steve.errors import (
    EXIT_INTERRUPTED,
    GuideDesignInvalid,
    GuideNeedsTerminal,
    GuideNoBusybox,
    GuideStepFailed,
    GuideStepNotDone,
    NotARepository,
    WrongKey,
)

if TYPE_CHECKING:  # the guide's module loads with the walk, not for bare `steve`'s help
    from steve.porcelain.guide import Facts, Step

_EXAMPLE_PROMPT_LIMIT = 3  # passphrase tries on a repository that exists


class Stop(Exception):
    """The person answered q, or pressed Ctrl-C."""

    def __init__(self, asked: bool) -> None:
        super().__init__("stopped")
        self.asked = asked


@cli.command()
@click.option(
    "--yes",
    "-y",
    is_flag=True,
    help="Ask nothing: the example's answers, the passphrase from STEVE_PASSPHRASE or "
    "STEVE_KEY_FILE (for automation and scripts).",
)
@pass_state
def start(state: Context, yes: bool) -> None:
    """A guided first run: from an empty folder to a tested example project.

    Each step is an ordinary `steve` command, printed before it runs.  Answer ? for
    more about a step, q to stop.  Stopping (or Ctrl-C) is safe: what ran stays, and
    `steve start` again carries on where it stopped.  Needs a terminal unless --yes.
    """
    guided_run(state, yes=yes)


def bare(ctx: click.Context) -> None:
    """Bare ``steve``: the guided run on a terminal outside any repository, else the
    help (as before, exit status 2)."""
    state = ctx.find_object(Context)
    outside = state is not None and state.repo_dir is None and _repository() is None
    if state is not None and outside and sys.stdin.isatty() and sys.stdout.isatty():
        click.echo("No STEVE repository here: this is `steve start`, the guided first run.")
        click.echo("(`steve --help` lists every command.)")
        guided_run(state, yes=False)
        ctx.exit(0)
    click.echo(ctx.get_help())
    ctx.exit(2)


def _repository() -> Path | None:
    from steve.repo import find_repository

    try:
        return find_repository(Path.cwd())
    except NotARepository:
        return None


# --- the walk --------------------------------------------------------------------------


def guided_run(state: Context, *, yes: bool) -> None:
    from steve.porcelain import guide

    root = (state.repo_dir or _repository() or Path.cwd()).resolve()
    intake = _model_configured(root)
    if not yes and not sys.stdin.isatty():
        steps = guide.guide_steps(intake="TEXT" if intake else None)
        raise GuideNeedsTerminal(guide.commands_to_type(steps))
    ui = Ui(yes)
    walk = Walk(ui, root, _child_env(root), intake, yes)
    try:
        ui.welcome(root)
        walk.key = _unlock(ui, root, walk.env)
        walk.run()
    except Stop as stop:
        ui.stopped(walk.current, asked=stop.asked)
        sys.exit(0 if stop.asked else EXIT_INTERRUPTED)
    except KeyboardInterrupt:
        ui.stopped(walk.current, asked=False)
        sys.exit(EXIT_INTERRUPTED)


class Walk:
    """One session of the guide: the steps not done yet, in order, each checked
    against what exists just before it (and a command's result just after)."""

    def __init__(self, ui: Ui, root: Path, env: dict[str, str], intake: bool, yes: bool) -> None:
        from steve.porcelain import guide

        self.ui, self.root, self.env, self.intake, self.yes = ui, root, env, intake, yes
        self.key: bytes | None = None
        self.current = "the start"  # the title of the step under way
        self.values = {"tag": guide.image_tag(root)}  # + what capturing commands printed
        self.answers: tuple[str, tuple[str, ...]] | None = None
        # with a model, the intake text is known only after the questions: the design
        # step is rebuilt from it (the same steps, the design command filled in)
        self.steps = guide.guide_steps(intake="" if intake else None, yes=yes)
        self.shown = [s.key for s in self.steps if s.key != "switch"]  # switch: if needed

    def run(self) -> None:
        started = time.monotonic()
        ran = 0
        for index, step in enumerate(self.steps):
            if step.done(_facts(self.root, self.key)):
                continue
            number = self.shown.index(step.key if step.key in self.shown else "run") + 1
            if ran == 0 and number > 1:
                done = f"{number - 1} of {len(self.shown)}"
                self.ui.say(f"Picking up where you left off: {done} steps are done.")
            ran += 1
            self.current = step.title
            self.ui.header(number, len(self.shown), step)
            self.do(index, step)
        seconds = time.monotonic() - started if ran else None
        self.ui.finish(_facts(self.root, self.key), seconds)

    def do(self, index: int, step: Step) -> None:
        from steve.porcelain import guide

        if step.key == "init":
            self.key = _init(self.ui, step, self.root, self.env)
            return
        if step.kind == "describe":
            self.answers = _describe(self.ui, step, self.root, self.intake)
            return
        if step.kind == "files":
            _write_files(self.ui, step, self.root, self.values)
            return
        if step.key == "design" and self.intake:
            if self.answers is None:
                self.answers = _describe(self.ui, self.steps[1], self.root, self.intake)
            text = guide.intake_text(*self.answers)
            step = guide.guide_steps(intake=text, yes=self.yes)[index]
        command = step.command(self.values)
        out = _run(self.ui, command, self.root, self.env, capture=step.capture is not None)
        if step.capture is not None:
            self.values[step.capture] = out  # done only once a later step uses it
        elif not step.done(_facts(self.root, self.key)):
            raise GuideStepNotDone("steve " + shlex.join(command), step.title)


def _model_configured(root: Path) -> bool:
    """A model provider named by STEVE_LLM or the repository's [llm] section: the
    design comes from the intake; otherwise from a filled-in design.yaml."""
    if os.environ.get("STEVE_LLM"):
        return True
    from steve.repo import Repo

    try:
        config = Repo.read_config(root)
    except NotARepository:
        return False
    return config.llm is not None and config.llm.provider is not None


def _child_env(root: Path) -> dict[str, str]:
    env = dict(os.environ)
    if env.get("STEVE_DIR"):
        env["STEVE_DIR"] = str(root)
    return env


def _facts(root: Path, key: bytes | None) -> Facts:
    from steve.porcelain import guide
    from steve.repo import Repo

    if key is None or not (root / ".steve").is_dir():
        return guide.gather(root, None)
    repo = Repo.open(root, key=key, identity=identity())
    try:
        return guide.gather(root, repo)
    finally:
        repo.close()


# --- the passphrase ----------------------------------------------------------------------


def _given_passphrase(env: dict[str, str]) -> str | None:
    if env.get("STEVE_PASSPHRASE") or env.get("STEVE_KEY_FILE"):
        from steve.cli.app import passphrase

        return passphrase()
    return None


def _unlock(ui: Ui, root: Path, env: dict[str, str]) -> bytes | None:
    """The key of the repository at ``root`` (None: there is none yet)."""
    from steve.repo import Repo
    from steve.store import keycache
    from steve.store.kdf import derive_key, key_matches

    try:
        config = Repo.read_config(root)
    except NotARepository:
        return None
    cached = keycache.cached_key(config.repository_id)
    if cached is not None and key_matches(cached, config.key_check):
        return cached
    given = _given_passphrase(env)
    for _ in range(1 if given is not None or ui.yes else _EXAMPLE_PROMPT_LIMIT):
        text = given if given is not None else ui.secret("The passphrase of this repository")
        key = derive_key(text, config.kdf)
        if key_matches(key, config.key_check):
            env["STEVE_PASSPHRASE"] = text
            if given is None:
                ui.passphrase_note()
            return key
        if given is None:
            ui.say("That is not it. Try again.")
    raise WrongKey(str(root / ".steve"))


def _init(ui: Ui, step: Step, root: Path, env: dict[str, str]) -> bytes:
    from steve.repo import Repo
    from steve.store.kdf import derive_key

    text = _given_passphrase(env)
    if not ui.yes:
        ui.say(
            ("Choose a passphrase. " if text is None else "Your passphrase is set already. ")
            + "STEVE encrypts everything with it, and it is the only way in: if you lose "
            "it, nobody can open your records, not you and not anyone else. There is no "
            "reset and no recovery. Keep it somewhere safe, a password manager for example."
        )
    if text is None:
        text = env["STEVE_PASSPHRASE"] = ui.secret("Choose a passphrase", confirm=True)
        ui.passphrase_note()
    _run(ui, step.command({}), root, env)
    return derive_key(text, Repo.read_config(root).kdf)


# --- the steps that are not commands ------------------------------------------------------


def _describe(ui: Ui, step: Step, root: Path, intake: bool) -> tuple[str, tuple[str, ...]]:
    from steve.porcelain import guide

    example = guide.DEFAULT_DESCRIPTION
    if ui.yes:
        description, criteria = example, guide.DEFAULT_CRITERIA
    else:
        ui.say(
            "Your own project can come later: this first time, STEVE builds a small "
            "example. Press Enter to describe the example, or write your own words."
        )
        description = ui.ask("What would you like to build?", step, default=example)
        if description == example:
            ui.say("How will you know it works? Press Enter to keep the example's check:")
            ui.say(f"  {guide.DEFAULT_CRITERIA[0]}")
        else:
            ui.say("How will you know it works? One check per line; an empty line ends.")
        criteria = ui.lines(
            "check", step, defaults=guide.DEFAULT_CRITERIA if description == example else ()
        )
    if intake:
        return description, criteria
    now, _ = frozen_time()
    text = guide.design_yaml(description, criteria, now=now)
    while True:
        ui.show_file(guide.DESIGN_FILE, text)
        problems = guide.design_problems(guide.approve_design_yaml(text, now=now))
        if problems and ui.yes:
            raise GuideDesignInvalid(problems)
        if problems:
            ui.say("This is not a valid design yet:")
            for p in problems:
                ui.say(f"  {p}")
        answer = ui.choose(
            "Enter to accept it, e to edit it first" if not problems else "e to edit it",
            step,
            ("", "e") if not problems else ("e",),
        )
        if answer == "":
            text = guide.approve_design_yaml(text, now=frozen_time()[0])
            guide.write_new_file(root, guide.DESIGN_FILE, text.encode())
            how = "accepted with --yes" if ui.yes else "you accepted it"
            ui.say(f"Written: {guide.DESIGN_FILE} ({how}; its last lines say so).")
            return description, criteria
        edited = click.edit(text, extension=".yaml", require_save=False)
        text = edited if edited is not None else text


def _write_files(ui: Ui, step: Step, root: Path, values: dict[str, str]) -> None:
    from steve.porcelain import guide

    if "example/image/busybox" in step.files and not guide.BUSYBOX.is_file():
        raise GuideNoBusybox(str(guide.BUSYBOX))
    contents = guide.example_files(step, values)
    ui.say("Writing these files (no command: STEVE's guide writes them for you):")
    for name, (data, mode) in contents.items():
        if (root / name).exists():
            ui.say(f"  = {name}   (already there, kept)")
            continue
        guide.write_new_file(root, name, data, mode)
        note = f"a copy of {guide.BUSYBOX}" if name.endswith("busybox") else f"{len(data)} bytes"
        ui.say(f"  + {name}   ({note})")
    if guide.PLAN_FILE in contents:
        ui.show_file(guide.PLAN_FILE, contents[guide.PLAN_FILE][0].decode(), head=6)


def _run(
    ui: Ui, argv: tuple[str, ...], root: Path, env: dict[str, str], *, capture: bool = False
) -> str:
    """Print ``$ steve ARGV``, ask, run it in ``root``; its last output line."""
    shown = "steve " + shlex.join(argv)
    ui.command(shown)
    interrupted: list[int] = []

    def note(signum: int, frame: FrameType | None) -> None:
        interrupted.append(signum)  # the command has the same Ctrl-C and stops cleanly

    old = signal.signal(signal.SIGINT, note)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "steve", *argv],
            cwd=root, env=env, stdout=subprocess.PIPE if capture else None,
            text=True, check=False,
        )  # fmt: skip
    finally:
        signal.signal(signal.SIGINT, old)
    if interrupted or proc.returncode == EXIT_INTERRUPTED:
        raise KeyboardInterrupt
    out = (proc.stdout or "").strip()
    if capture and out:
        click.echo(out)
    if proc.returncode != 0:
        raise GuideStepFailed(shown, proc.returncode)
    ui.ok()
    return out.splitlines()[-1] if out else ""


# --- the terminal ---------------------------------------------------------------------------


class Ui:
    """What the person sees and answers."""

    def __init__(self, yes: bool) -> None:
        self.yes = yes

    def say(self, text: str) -> None:
        click.echo(text)

    def welcome(self, root: Path) -> None:
        self.say("")
        click.secho("Welcome to STEVE.", bold=True)
        self.say(
            "This guide runs ordinary steve commands, one at a time, and prints each one "
            "before it runs it, so that next time you can type them yourself.\n"
            "Answer ? to any question for more, q to stop. Stopping is safe: run "
            "`steve start` again and it carries on where it stopped."
        )
        self.say(f"Folder: {root}")

    def header(self, number: int, total: int, step: Step) -> None:
        self.say("")
        click.secho(f"Step {number} of {total}: {step.title}", bold=True)
        self.say(step.explain)
        self._step = step

    def command(self, shown: str) -> None:
        click.secho(f"  $ {shown}", bold=True)
        if not self.yes:
            self.choose("Enter to run it", self._step, ("",))

    def ok(self) -> None:
        click.secho("  ok", fg="green")

    def passphrase_note(self) -> None:
        self.say(
            "(The commands below get the passphrase from STEVE_PASSPHRASE, which this "
            "guide sets for them only. Typed by yourself, each command asks for it, or "
            "`steve unlock` remembers it for a while.)"
        )

    def secret(self, prompt: str, *, confirm: bool = False) -> str:
        if self.yes:
            from steve.errors import NoPassphrase

            raise NoPassphrase("--yes: set STEVE_PASSPHRASE or STEVE_KEY_FILE")
        try:
            value: str = click.prompt(
                prompt, hide_input=True, confirmation_prompt="Type it again" if confirm else False
            )
        except click.exceptions.Abort:  # Ctrl-D or Ctrl-C at the prompt
            raise KeyboardInterrupt from None
        return value

    def _answer(self, prompt: str) -> str:
        try:
            answer: str = click.prompt(prompt, default="", show_default=False, prompt_suffix=": ")
        except click.exceptions.Abort:  # Ctrl-D or Ctrl-C at the prompt
            raise KeyboardInterrupt from None
        return answer.strip()

    def _more(self, step: Step) -> None:
        click.secho("  More:", bold=True)
        self.say("  " + step.more)

    def choose(self, prompt: str, step: Step, allowed: tuple[str, ...]) -> str:
        if self.yes:
            return allowed[0]
        while True:
            answer = self._answer(f"{prompt}, ? for more, q to stop").lower()
            if answer == "q":
                raise Stop(asked=True)
            if answer == "?":
                self._more(step)
                continue
            if answer in allowed:
                return answer

    def ask(self, question: str, step: Step, *, default: str) -> str:
        while True:
            self.say(question)
            answer = self._answer("(Enter for the example; ? for more, q to stop)")
            if answer == "q":
                raise Stop(asked=True)
            if answer == "?":
                self._more(step)
                continue
            return answer or default

    def lines(self, what: str, step: Step, *, defaults: tuple[str, ...]) -> tuple[str, ...]:
        got: list[str] = []
        while True:
            answer = self._answer(f"{what} {len(got) + 1}")
            if answer == "q":
                raise Stop(asked=True)
            if answer == "?":
                self._more(step)
                continue
            if answer:
                got.append(answer)
                continue
            if got or defaults:
                return tuple(got) or defaults
            self.say("At least one check, please: it is how you will know you are done.")

    def show_file(self, name: str, text: str, head: int | None = None) -> None:
        lines = text.rstrip("\n").splitlines()
        click.secho(f"  --- {name}", dim=True)
        for line in lines[:head] if head else lines:
            self.say(f"  | {line}")
        if head and len(lines) > head:
            self.say(f"  | ... ({len(lines) - head} more lines)")

    def finish(self, facts: Facts, seconds: float | None) -> None:
        """The end; ``seconds``: how long the steps of this session took (None: every
        step was done already)."""
        self.say("")
        if seconds is None:
            self.say("Every step is done already.")
        click.secho("Done: the example was built and tested, and the test passed.", bold=True)
        if facts.certificate:
            self.say(f"  certificate {facts.certificate[:12]}  (the proof, kept in .steve)")
        if seconds is not None:
            self.say(f"  (the steps took {seconds:.0f} s)")
        self.say(
            "What next:\n"
            "  steve status          where the run stands\n"
            "  steve log --oneline   its history\n"
            "  steve start           this guide again (it carries on where you are)\n"
            "  steve --help          every command"
        )
        if self.yes:
            return
        answer = self._answer("? to learn the words STEVE uses, Enter to finish")
        if answer == "?":
            from steve.porcelain.guide import GLOSSARY

            for word, meaning in GLOSSARY:
                self.say(f"  {word}: {meaning}")

    def stopped(self, where: str, *, asked: bool) -> None:
        self.say("")
        self.say(
            ("Stopped, as you asked." if asked else "Interrupted.")
            + " Nothing is half-written: what ran stays."
        )
        self.say(f"Run `steve start` here again to carry on from {where!r}.")
