"""Converting object values to JSON-friendly data (ids and bytes as hex), and the
nesting limit for documents from outside (drafts, event payloads)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from steve.errors import InvalidInput
from steve.objects.cbor import MAX_DEPTH


def check_depth(value: Any, where: str, limit: int = MAX_DEPTH) -> None:
    """Raise InvalidInput if lists and maps in ``value`` nest deeper than ``limit``
    (the CBOR data model's limit); walks iteratively, so any depth is safe."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth >= limit:
            raise InvalidInput("document nested too deeply", f"{where}: limit {limit} levels")
        stack.extend((child, depth + 1) for child in children)


def load_json(
    text: str, where: str, object_pairs_hook: Callable[[list[tuple[str, Any]]], Any] | None = None
) -> Any:
    """``json.loads`` for documents from outside: nesting beyond the limit is
    InvalidInput (also when it is too deep for the parser itself), not a RecursionError.
    Syntax errors stay ``ValueError`` for the caller to word."""
    try:
        value = json.loads(text, object_pairs_hook=object_pairs_hook)
    except RecursionError:
        raise InvalidInput(
            "document nested too deeply", f"{where}: limit {MAX_DEPTH} levels"
        ) from None
    check_depth(value, where)
    return value


def to_json(value: Any) -> Any:
    """Bytes become lowercase hex strings; everything else maps as is."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, list):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    return value
