"""Entry point of the ``steve`` console script."""

from __future__ import annotations

import steve.cli.build  # registers build, test and replay
import steve.cli.containers  # registers image and janitor
import steve.cli.events  # registers the event log commands and verify
import steve.cli.git  # registers export-git, verify-git, import-git
import steve.cli.porcelain  # noqa: F401  (registers the manifest and run commands)
from steve.cli import plumbing  # registers the plumbing commands on the group
from steve.cli.app import cli

__all__ = ["cli", "main", "plumbing"]


def main() -> None:
    cli.main(prog_name="steve")


if __name__ == "__main__":
    main()
