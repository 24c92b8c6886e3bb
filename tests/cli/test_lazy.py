"""Commands load on first use: the map from command to module is complete and
true, a short command imports only its own module, and --help lists them all."""

from __future__ import annotations

import json
import subprocess
import sys

from click.testing import CliRunner

from steve.cli.app import COMMAND_MODULES, load_commands
from steve.cli.main import cli
from steve.repo import Repo


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


def test_cat_file_opens_a_repository_without_the_rare_machinery(
    repo: Repo, steve_env: dict[str, str]
) -> None:
    """What every short command pays at start: opening a repository imports neither
    the rekey, backup or ignore machinery nor the heavy libraries of other layers."""
    from steve.repo import REKEY_STAGING
    from steve.store.rekey import STAGING

    assert REKEY_STAGING == STAGING
    repo.close()  # the subprocesses open it themselves
    blob = subprocess.run(
        [sys.executable, "-m", "steve", "hash-object", "-w", "--stdin"],
        input=b"x", env=steve_env, capture_output=True, check=True,
    ).stdout.decode().strip()
    code = (
        "import sys, json\n"
        "from steve.cli.main import cli\n"
        f"sys.argv = ['steve', 'cat-file', '-t', {blob!r}]\n"
        "try:\n"
        "    cli.main(prog_name='steve')\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=steve_env, capture_output=True, text=True, check=True
    ).stdout
    assert out.splitlines()[0] == "blob"
    loaded = set(json.loads(out.splitlines()[-1]))
    rare = {"steve.store.rekey", "steve.store.snapshot", "steve.ignore", "hashlib"}
    rare |= {"steve.messages", "steve.cli.homely", "steve.cli.progress"}
    rare |= {"docker", "dulwich", "pydantic", "rich", "textual", "httpx", "trafilatura"}
    rare |= {"steve.events", "steve.exec", "steve.llm", "steve.research", "steve.gitbridge"}
    assert loaded & rare == set()
