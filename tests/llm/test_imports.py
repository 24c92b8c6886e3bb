"""Only steve.llm imports a model SDK, and only its provider modules, when used."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import steve

ROOT = Path(steve.__file__).parent
SDKS = {"anthropic", "openai"}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_no_module_outside_steve_llm_imports_a_model_sdk() -> None:
    offenders = [
        str(p.relative_to(ROOT))
        for p in sorted(ROOT.rglob("*.py"))
        if _imports(p) & SDKS and p.relative_to(ROOT).parts[0] != "llm"
    ]
    assert offenders == []


def test_the_session_and_the_offline_providers_load_no_sdk() -> None:
    code = (
        "import sys, steve.llm.session, steve.llm.scripted, steve.llm.replay, "
        "steve.llm.budget, steve.llm.record\n"
        "print(sorted(m for m in ('anthropic', 'openai', 'httpx') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT.parent,
    )
    assert out.stdout.strip() == "[]"


def test_offline_model_commands_load_no_sdk(cli_repo: Path) -> None:
    """``steve llm ask`` with the scripted provider and ``steve budget show`` run
    without importing a model SDK or an HTTP client."""
    code = (
        "import sys, json\n"
        "from steve.cli.main import cli\n"
        "for argv in (['llm', 'ask', 'steve-selftest'], ['budget', 'show']):\n"
        "    try:\n"
        f"        cli.main(['--repo', {str(cli_repo)!r}, *argv], prog_name='steve')\n"
        "    except SystemExit as exc:\n"
        "        assert not exc.code, exc.code\n"
        "print(json.dumps(sorted(m for m in ('anthropic', 'openai', 'httpx', 'httpx2')"
        " if m in sys.modules)))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEVE_")}
    env["STEVE_PASSPHRASE"] = "pw"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        cwd=ROOT.parent,
    )
    assert out.stdout.strip().splitlines()[-1] == "[]"
