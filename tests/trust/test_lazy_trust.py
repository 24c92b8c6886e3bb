"""The trust commands start light: showing a key or verifying an envelope loads neither
the container engine's SDK, nor the git bridge, nor the SBOM library."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    "argv", [["key", "show", "--help"], ["verify-attestation", "--help"], ["verify-tag", "--help"]]
)
def test_trust_commands_import_no_heavy_module(argv: list[str]) -> None:
    code = (
        "import sys, json\n"
        "from steve.cli.main import cli\n"
        "try:\n"
        f"    cli.main({argv!r}, prog_name='steve')\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith(('steve', 'docker',"
        " 'dulwich', 'cyclonedx', 'securesystemslib', 'in_toto')))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    loaded = set(json.loads(out.splitlines()[-1]))
    assert "steve.cli.trust" in loaded
    heavy = {"docker", "dulwich", "cyclonedx", "securesystemslib", "in_toto"}
    heavy |= {"steve.exec", "steve.gitbridge", "steve.porcelain.attest", "steve.trust.sbom"}
    assert loaded & heavy == set()
