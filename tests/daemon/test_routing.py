"""The one routing table covers every command and subcommand."""

from __future__ import annotations

import click

from steve.cli.app import load_commands
from steve.cli.forward import ROUTES, Route, route_of, split_globals


def test_every_registered_command_and_subcommand_has_a_route() -> None:
    commands = load_commands()
    assert sorted(set(commands) - set(ROUTES)) == []
    assert sorted(set(ROUTES) - set(commands)) == []
    for name, command in commands.items():
        entry = ROUTES[name]
        if isinstance(command, click.Group):
            assert isinstance(entry, dict), f"{name} is a group: route its subcommands"
            assert set(entry) == {"", *command.commands}, name
        else:
            assert isinstance(entry, Route), name


def test_routes_of_command_lines() -> None:
    assert route_of(["hash-object", "-w", "--stdin"]) is Route.WRITE
    assert route_of(["cat-file", "-t", "abcd"]) is Route.READ
    assert route_of(["events", "--follow"]) is Route.READ
    assert route_of(["events", "append", "--type", "x"]) is Route.WRITE
    assert route_of(["run", "new"]) is Route.WRITE
    assert route_of(["run"]) is Route.READ
    assert route_of(["init"]) is Route.LOCAL
    assert route_of([]) is Route.LOCAL
    assert split_globals(["-C", "/x", "log"]) == ("/x", ["log"])
    assert split_globals(["--repo=/y", "cat-file", "-t", "a"]) == ("/y", ["cat-file", "-t", "a"])
    assert split_globals(["--help"]) == (None, [])
