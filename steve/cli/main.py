"""Entry point of the ``steve`` console script.

Commands live in ``steve.cli.plumbing``, ``porcelain``, ``build``,
``containers``, ``events`` and ``git``; the group imports each module the
first time one of its commands is looked up (see ``COMMAND_MODULES``).
"""

from __future__ import annotations

from steve.cli.app import cli

__all__ = ["cli", "main"]


def main() -> None:
    cli.main(prog_name="steve")


if __name__ == "__main__":
    main()
