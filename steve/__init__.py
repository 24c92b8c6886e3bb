"""STEVE: Smart Terminal Executive & Versioning Environment.

An encrypted, content-addressed record of software work, built like git's
internals.  The importable library::

    import steve
    repo = steve.Repo.init("project", passphrase="...")
    oid = repo.write_blob(b"hello")

The names below are loaded on first use, so importing one part of the
package (the CLI's start-up, say) does not import all of it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from steve.errors import SteveError
    from steve.objects import ObjectId, ObjectType
    from steve.refs import Identity
    from steve.repo import Repo

__version__ = "0.1.0"

__all__ = ["Identity", "ObjectId", "ObjectType", "Repo", "SteveError", "__version__"]

_HOMES = {
    "Identity": "steve.refs",
    "ObjectId": "steve.objects",
    "ObjectType": "steve.objects",
    "Repo": "steve.repo",
    "SteveError": "steve.errors",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'steve' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])
