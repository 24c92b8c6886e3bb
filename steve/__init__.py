"""STEVE: Smart Terminal Executive & Versioning Environment.

An encrypted, content-addressed record of software work, built like git's
internals.  The importable library::

    import steve
    repo = steve.Repo.init("project", passphrase="...")
    oid = repo.write_blob(b"hello")
"""

from steve.errors import SteveError
from steve.objects import ObjectId, ObjectType
from steve.refs import Identity
from steve.repo import Repo

__version__ = "0.1.0"

__all__ = ["Identity", "ObjectId", "ObjectType", "Repo", "SteveError", "__version__"]
