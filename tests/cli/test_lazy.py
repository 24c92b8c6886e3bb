"""Commands load on first use: the map from command to module is complete and
true, a short command imports only its own module, and --help lists them all."""

from __future__ import annotations

import json
import subprocess
import sys

from click.testing import CliRunner

from steve.cli.app import COMMAND_MODULES, load_commands
from steve.cli.main import cli


def test_every_command_is_defined_in_the_module_the_map_names() -> None:
    commands = load_commands()
    assert set(commands) == set(COMMAND_MODULES)
    for name, command in commands.items():
        assert command.callback is not None
        assert command.callback.__module__ == COMMAND_MODULES[name], name


def test_top_level_help_lists_every_command() -> None:
    out = CliRunner().invoke(cli, ["--help"]).output
    for name in COMMAND_MODULES:
        assert f"  {name} " in out or f"  {name}\n" in out, name


def test_log_imports_neither_containers_nor_git_nor_events(tmp_path: object) -> None:
    code = (
        "import sys, json\n"
        "from steve.cli.main import cli\n"
        "try:\n"
        "    cli.main(['log', '--help'], prog_name='steve')\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith(('steve', 'docker',"
        " 'dulwich', 'pydantic', 'rich')))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    loaded = set(json.loads(out.splitlines()[-1]))
    assert "steve.cli.porcelain" in loaded
    heavy = {"docker", "dulwich", "pydantic", "rich", "steve.events", "steve.exec"}
    heavy |= {"steve.gitbridge", "steve.cli.build", "steve.cli.git", "steve.cli.plumbing"}
    assert loaded & heavy == set()
