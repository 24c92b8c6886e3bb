"""Refs layer: ref names, compare-and-swap updates, reflog and revision syntax."""

from steve.refs.names import HEAD, check_branch_or_tag_name, check_ref_name
from steve.refs.refs import Identity, Ref, RefStore
from steve.refs.revparse import Resolved, resolve

__all__ = [
    "HEAD",
    "Identity",
    "Ref",
    "RefStore",
    "Resolved",
    "check_branch_or_tag_name",
    "check_ref_name",
    "resolve",
]
