"""Codec layer: canonical CBOR, BLAKE3 object ids and the object types."""

from steve.objects.model import (
    CHUNK_SIZE,
    MANIFEST_TYPES,
    Blob,
    ChunkedBlob,
    Manifest,
    Mode,
    ObjectType,
    Person,
    StoredObject,
    Tag,
    Tree,
    TreeEntry,
    decode_object,
    encode_object,
    hash_object,
)
from steve.objects.oid import ObjectId

__all__ = [
    "CHUNK_SIZE",
    "MANIFEST_TYPES",
    "Blob",
    "ChunkedBlob",
    "Manifest",
    "Mode",
    "ObjectId",
    "ObjectType",
    "Person",
    "StoredObject",
    "Tag",
    "Tree",
    "TreeEntry",
    "decode_object",
    "encode_object",
    "hash_object",
]
