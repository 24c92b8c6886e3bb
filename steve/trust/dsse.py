"""DSSE envelopes (https://github.com/secure-systems-lab/dsse, protocol v1).

An envelope is JSON ``{"payload": <base64>, "payloadType": <text>, "signatures":
[{"keyid": <text>, "sig": <base64>}]}``; each signature is an Ed25519 signature
over the *pre-authentication encoding* of the payload:

    PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body

with lengths as ASCII decimal byte counts.  Key ids are securesystemslib's
(:func:`steve.trust.keys.keyid`), so ``securesystemslib.dsse.Envelope`` verifies
an envelope made here with only the public key.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from steve.trust.keys import SigningKey, keyid, verify_signature

IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"


def pae(payload_type: str, payload: bytes) -> bytes:
    """The DSSE v1 pre-authentication encoding."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(kind), kind, len(payload), payload)


@dataclass(frozen=True, slots=True)
class Envelope:
    payload: bytes
    payload_type: str
    signatures: tuple[tuple[str, bytes], ...]  # (keyid, signature)

    def to_json(self) -> bytes:
        """The envelope as compact JSON with sorted keys (stable bytes)."""
        doc = {
            "payload": base64.b64encode(self.payload).decode("ascii"),
            "payloadType": self.payload_type,
            "signatures": [
                {"keyid": kid, "sig": base64.b64encode(sig).decode("ascii")}
                for kid, sig in self.signatures
            ],
        }
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()

    def verified_by(self, public_keys: Sequence[bytes]) -> list[bytes]:
        """The keys of ``public_keys`` that made a valid signature (matched by key id)."""
        message = pae(self.payload_type, self.payload)
        by_id = {keyid(k): k for k in public_keys}
        ok: list[bytes] = []
        for kid, sig in self.signatures:
            key = by_id.get(kid)
            if key is not None and key not in ok and verify_signature(key, sig, message):
                ok.append(key)
        return ok


def sign_envelope(payload: bytes, payload_type: str, keys: Sequence[SigningKey]) -> Envelope:
    message = pae(payload_type, payload)
    unique = {k.public_key: k for k in keys}
    sigs = tuple((keyid(pub), unique[pub].sign(message)) for pub in sorted(unique))
    return Envelope(payload, payload_type, sigs)


def parse_envelope(data: bytes) -> Envelope:
    """An envelope from its JSON (ValueError with the reason if it is not one)."""
    try:
        doc: Any = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ValueError("a DSSE envelope is a JSON object")
    payload, kind, sigs = doc.get("payload"), doc.get("payloadType"), doc.get("signatures")
    if not isinstance(payload, str) or not isinstance(kind, str) or not isinstance(sigs, list):
        raise ValueError("a DSSE envelope has payload, payloadType and signatures")
    try:
        body = base64.b64decode(payload, validate=True)
        out: list[tuple[str, bytes]] = []
        for s in sigs:
            if not isinstance(s, dict) or not isinstance(s.get("sig"), str):
                raise ValueError("each signature has a base64 sig")
            out.append((str(s.get("keyid", "")), base64.b64decode(s["sig"], validate=True)))
    except binascii.Error as exc:
        raise ValueError(f"bad base64: {exc}") from None
    return Envelope(body, kind, tuple(out))


__all__ = ["IN_TOTO_PAYLOAD_TYPE", "Envelope", "pae", "parse_envelope", "sign_envelope"]
