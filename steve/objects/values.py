"""Converting object values to JSON-friendly data (ids and bytes as hex)."""

from __future__ import annotations

from typing import Any


def to_json(value: Any) -> Any:
    """Bytes become lowercase hex strings; everything else maps as is."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, list):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    return value
