"""Entry point of the ``steve`` console script.

Commands live in ``steve.cli.plumbing``, ``porcelain``, ``build``,
``containers``, ``events`` and ``git``; the group imports each module the
first time one of its commands is looked up (see ``COMMAND_MODULES``).
The hottest read-only command lines are answered without click first
(:mod:`steve.cli.fast`); ``cli`` is imported on first use.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from steve.cli.app import cli

__all__ = ["cli", "main"]


def main() -> None:
    from steve.cli.fast import run

    code = run(sys.argv[1:])
    if code is not None:
        sys.exit(code)
    from steve.cli.fast import derive_early

    derive_early(sys.argv[1:], os.environ)
    from steve.cli.app import cli

    cli.main(prog_name="steve")


def __getattr__(name: str) -> Any:
    if name == "cli":
        from steve.cli.app import cli

        return cli
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if __name__ == "__main__":
    main()
