"""Commands for the person at the terminal: ``steve help``, ``steve config`` and
``steve completion`` (docs/cli.md; the words come from steve.messages)."""

from __future__ import annotations

import json
import re

import click

from steve.cli.app import Context, cli, pass_state
from steve.cli.llmopts import llm_options
from steve.errors import UnknownHelpTopic
from steve.messages import error_catalogue, error_classes, fields, msg

CODE = re.compile(r"^STEVE-[A-Z]+-\d{3}$")
DOCS_ERRORS = "docs/errors.md#all-errors"
SHELLS = ("bash", "zsh", "fish")


def _placeholders(template: str) -> str:
    """``template`` with each field shown as its name in capitals (``{oid}`` -> OID)."""
    for name in fields(template):
        template = re.sub(r"\{" + re.escape(name) + r"(![rsa])?(:[^}]*)?\}", name.upper(), template)
    return template


def explain(code: str) -> str:
    """The long text of ``steve help CODE``."""
    cls = error_classes()[code]
    entry = error_catalogue().get(code)
    lines = [msg("help.code.title", code=code, name=cls.__name__, exit=cls.exit_code)]
    if entry is not None:
        lines.append("  " + _placeholders(entry.say))
        if entry.meaning:
            lines += ["", msg("help.code.meaning"), "  " + entry.meaning]
    lines += ["", msg("help.code.action"), "  " + cls.action]
    if entry is not None:
        lines += ["", msg("help.code.try"), "  " + _placeholders(entry.try_)]
    lines += ["", msg("help.code.exit"), f"  {cls.exit_code}: {msg(f'exit.{cls.exit_code}')}"]
    lines += ["", msg("help.code.docs"), f"  {DOCS_ERRORS}"]
    return "\n".join(lines)


@cli.command("help")
@click.argument("topic", nargs=-1)
@click.pass_context
def help_cmd(ctx: click.Context, topic: tuple[str, ...]) -> None:
    """Explain an error code at length (`steve help STEVE-KEY-001`), or show a
    command's help (`steve help run new` is `steve run new --help`)."""
    if not topic:
        root = ctx.find_root()
        click.echo(root.get_help())
        return
    if len(topic) == 1 and CODE.match(topic[0].upper()):
        code = topic[0].upper()
        if code not in error_classes():
            raise UnknownHelpTopic(topic[0])
        click.echo(explain(code))
        return
    command: click.Command | None = ctx.find_root().command
    parent = ctx.find_root()
    for i, name in enumerate(topic):
        if not isinstance(command, click.Group):
            raise UnknownHelpTopic(" ".join(topic))
        command = command.get_command(parent, name)
        if command is None:
            raise UnknownHelpTopic(" ".join(topic))
        parent = click.Context(command, info_name=name, parent=parent)
        if i == len(topic) - 1:
            click.echo(command.get_help(parent))


@cli.command("explain")
@click.argument("code")
@click.option(
    "--context",
    default="",
    help="What you ran and what it printed, for the model ('-' reads standard input).",
)
@llm_options
@pass_state
def explain_cmd(
    state: Context, code: str, context: str, llm_name: str | None, llm_model: str | None
) -> None:
    """Ask a model to explain error CODE in plain words (opt-in: `steve help CODE` needs
    no model).  The request holds the catalogue's text and your --context, redacted,
    budgeted and recorded like `steve llm ask`; the answer streams to stdout."""
    import sys

    from steve.cli.llmopts import open_llm
    from steve.llm.types import Message

    code = code.upper()
    if not CODE.match(code) or code not in error_classes():
        raise UnknownHelpTopic(code)
    text = sys.stdin.read() if context == "-" else context
    prompt = msg("explain.prompt", code=code, explanation=explain(code), context=text or "-")
    model = open_llm(state, llm_name, llm_model)
    request = model.request([Message.user(prompt)], system=msg("explain.system"), max_tokens=800)
    ex = model.session.complete(request, on_text=model.echo)
    if ex.response.text and not ex.response.text.endswith("\n"):
        click.echo("")
    click.echo(
        msg("explain.recorded", request=ex.request_oid.hex, response=ex.response_oid.hex),
        err=True,
    )


# --- config --------------------------------------------------------------------------------


@cli.group("config")
def config_group() -> None:
    """Read and change STEVE's settings in .steve/config (today the [homely] section:
    the wellbeing nudges; see docs/messages.md#nudges)."""


def _settings(state: Context) -> dict[str, str | int]:
    from steve.config import HOMELY_DEFAULTS
    from steve.porcelain.homely import HomelySettings
    from steve.repo import Repo

    config = Repo.read_config(state.root())
    current = config.homely if config.homely is not None else HomelySettings()
    return {f"homely.{k}": getattr(current, k) for k in HOMELY_DEFAULTS}


def _split_key(key: str) -> str:
    from steve.config import HOMELY_DEFAULTS
    from steve.errors import UnknownSetting

    section, _, name = key.partition(".")
    if section != "homely" or name not in HOMELY_DEFAULTS:
        raise UnknownSetting(key, [f"homely.{k}" for k in HOMELY_DEFAULTS])
    return name


@config_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object: key -> value.")
@pass_state
def config_list(state: Context, as_json: bool) -> None:
    """Print every setting and its value (`key = value`, defaults included)."""
    values = _settings(state)
    if as_json:
        click.echo(json.dumps(values, sort_keys=True))
        return
    for key, value in values.items():
        click.echo(f"{key} = {value}")


@config_group.command("get")
@click.argument("key")
@pass_state
def config_get(state: Context, key: str) -> None:
    """Print the value of KEY (e.g. homely.nudges)."""
    _split_key(key)
    click.echo(_settings(state)[key])


@config_group.command("set")
@click.argument("key")
@click.argument("value")
@pass_state
def config_set(state: Context, key: str, value: str) -> None:
    """Set KEY to VALUE in .steve/config (e.g. `steve config set homely.nudges off`)."""
    from steve.cli.homely import say
    from steve.porcelain.homely import set_setting

    name = _split_key(key)
    updated = set_setting(state.root(), name, value)
    say(state, "config.set", key=key, value=getattr(updated, name))


# --- completion ----------------------------------------------------------------------------


@cli.command("completion")
@click.argument("shell", type=click.Choice(SHELLS))
def completion(shell: str) -> None:
    """Print the shell completion script for SHELL (bash, zsh or fish).

    bash: `eval "$(steve completion bash)"` in ~/.bashrc; zsh: the same with zsh in
    ~/.zshrc; fish: `steve completion fish > ~/.config/fish/completions/steve.fish`.
    """
    from click.shell_completion import get_completion_class

    comp_cls = get_completion_class(shell)
    assert comp_cls is not None  # the Choice holds only shells click knows
    click.echo(comp_cls(cli, {}, "steve", "_STEVE_COMPLETE").source())
