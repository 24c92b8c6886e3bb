"""Structure: porcelain, CLI, git bridge and event log call the repository's
operations; none of them reaches through ``repo.backend`` into the storage
(the build executor's thread-safe view is ``Repo.serialized``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import steve

ROOT = Path(steve.__file__).parent
LAYERS = ("porcelain", "cli", "gitbridge", "events", "llm", "research", "tui")
ALLOWED: set[tuple[str, str]] = set()


class _Finder(ast.NodeVisitor):
    def __init__(self) -> None:
        self.stack: list[str] = ["<module>"]
        self.found: list[tuple[str, int]] = []

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self.stack.append(node.name)
        self.generic_visit(node)
        self.stack.pop()

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if node.attr == "backend":
            self.found.append((self.stack[-1], node.lineno))
        self.generic_visit(node)


def test_no_layer_above_the_repository_reaches_through_repo_backend() -> None:
    offenders = []
    for layer in LAYERS:
        for path in sorted((ROOT / layer).rglob("*.py")):
            rel = str(path.relative_to(ROOT))
            finder = _Finder()
            finder.visit(ast.parse(path.read_text(encoding="utf-8")))
            offenders += [
                f"{rel}:{line} in {func}" for func, line in finder.found
                if (rel, func) not in ALLOWED
            ]
    assert offenders == []
