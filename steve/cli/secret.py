"""``steve secret set | list | rm``: the secrets vault (docs/secrets.md).

A value is read from standard input, or from a hidden prompt on a terminal;
never from the command line, where other users and shell history see it.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime

import click

from steve.cli.app import Context, cli, pass_state
from steve.cli.homely import say
from steve.errors import NoSecretValue


@cli.group("secret")
def secret() -> None:
    """Manage the secrets vault (values live only in the encrypted database)."""


def _read_value(name: str) -> bytes:
    stdin = sys.stdin
    if stdin.isatty():
        if not sys.stderr.isatty():
            raise NoSecretValue(name, "standard input is a terminal but no prompt can be shown")
        text: str = click.prompt(
            f"value of {name}", hide_input=True, confirmation_prompt=True, err=True
        )
        return text.encode("utf-8")
    data = stdin.buffer.read()
    if data.endswith(b"\r\n"):
        data = data[:-2]
    elif data.endswith(b"\n"):
        data = data[:-1]
    if not data:
        raise NoSecretValue(name, "standard input was empty")
    return data


@secret.command("set")
@click.argument("name")
@click.option(
    "--command",
    "command",
    metavar="CMD",
    help="An external secret: CMD (split like a shell would, never run by one) is run "
    "when a build needs the value; its output is the value.",
)
@pass_state
def secret_set(state: Context, name: str, command: str | None) -> None:
    """Store NAME's value (from standard input or a hidden prompt) as its next version."""
    from steve.porcelain.secrets import check_secret_name, set_secret

    check_secret_name(name)
    repo = state.repo()
    if command is not None:
        info = set_secret(repo, name, command=command)
    else:
        info = set_secret(repo, name, _read_value(name))
    say(state, "secret.set", name=info.name, version=info.version)


@secret.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@pass_state
def secret_list(state: Context, as_json: bool) -> None:
    """List the vault: name, version, kind, created, who (never a value)."""
    from steve.porcelain.secrets import list_secrets

    for info in list_secrets(state.repo()):
        if as_json:
            click.echo(json.dumps(info.to_json(), sort_keys=True))
            continue
        when = datetime.fromtimestamp(info.created, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        click.echo(f"{info.name}\tv{info.version}\t{info.kind}\t{when}\t{info.who}")


@secret.command("rm")
@click.argument("name")
@pass_state
def secret_rm(state: Context, name: str) -> None:
    """Remove NAME's value from the vault (its version number is kept)."""
    from steve.porcelain.secrets import remove_secret

    info = remove_secret(state.repo(), name)
    say(state, "secret.removed", name=info.name, version=info.version)
