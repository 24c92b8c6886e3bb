"""Storage layer: object database backends, key derivation and key cache."""

from steve.store.base import ANY, Backend, ObjectInfo, ReflogEntry, RefRecord, Transaction

__all__ = [
    "ANY",
    "Backend",
    "ObjectInfo",
    "RefRecord",
    "ReflogEntry",
    "Transaction",
]
