"""The git bridge: STEVE history to and from git repositories, through dulwich.

This package is the only one that imports dulwich.

- :func:`export_git` (:mod:`.export`): manifests become commits, refs become
  git refs, deterministically (ids depend only on STEVE content) and
  incrementally (the ``git-map`` in the encrypted database), one pack per
  export, no non-fast-forward ref update without ``force``.
- :func:`verify_git` (:mod:`.verify`): audit an exported repository by
  hash, without the key.
- :func:`import_git` (:mod:`.importer`): a git tree becomes a STEVE tree.

The layout of an exported commit is in :mod:`.layout`; docs/git-compat.md
has the whole mapping.
"""

from steve.gitbridge.export import ExportReport, RefResult, RefStatus, SkippedRef, export_git
from steve.gitbridge.importer import ImportResult, import_git
from steve.gitbridge.verify import VerifyProblem, VerifyReport, verify_git

__all__ = [
    "ExportReport",
    "ImportResult",
    "RefResult",
    "RefStatus",
    "SkippedRef",
    "VerifyProblem",
    "VerifyReport",
    "export_git",
    "import_git",
    "verify_git",
]
