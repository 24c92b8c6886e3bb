"""Storage layer: object database backends, key derivation and key cache."""

from steve.store.base import ANY, Backend, ObjectInfo, ReflogEntry, RefRecord, Transaction
from steve.store.memory import MemoryBackend

__all__ = [
    "ANY",
    "Backend",
    "MemoryBackend",
    "ObjectInfo",
    "RefRecord",
    "ReflogEntry",
    "Transaction",
]
