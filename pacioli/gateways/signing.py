"""Signed callbacks: HMAC-SHA256 over the timestamp and the body, Stripe's scheme.

The header is `Pacioli-Signature: t=<unix seconds>,v1=<hex>`, where the hex is
HMAC-SHA256(secret, f"{t}.{body}"). Signing the timestamp with the body lets the
receiver refuse a replay of an old callback: a signature older (or further in the
future) than the tolerance is refused even when it is genuine. A header may carry
several `v1=` values, so a sender can sign with an old and a new secret while the secret
is being rotated; one matching value is enough.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime

from pacioli.gateways.base import InvalidSignature

SIGNATURE_HEADER = "Pacioli-Signature"
SIGNATURE_SCHEME = "v1"
TOLERANCE_SECONDS = 300


def compute_signature(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of `f"{timestamp}.{body}"` under `secret`."""
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, now: datetime) -> str:
    """The `Pacioli-Signature` header value for `body` sent at `now`."""
    timestamp = int(now.timestamp())
    return f"t={timestamp},{SIGNATURE_SCHEME}={compute_signature(secret, timestamp, body)}"


def parse_header(header: str) -> tuple[int, list[str]]:
    """The timestamp and the v1 signatures of a header value, or InvalidSignature."""
    timestamp: int | None = None
    signatures: list[str] = []
    for part in (header or "").split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            if not value.isdigit():
                raise InvalidSignature("The signature's timestamp is not a number.")
            timestamp = int(value)
        elif key == SIGNATURE_SCHEME:
            signatures.append(value)
    if timestamp is None or not signatures:
        raise InvalidSignature("The Pacioli-Signature header needs t= and v1= values.")
    return timestamp, signatures


def verify(
    secret: str, body: bytes, header: str | None, now: datetime, *,
    tolerance_seconds: int = TOLERANCE_SECONDS,
) -> int:
    """Check a callback's signature; return its timestamp or raise InvalidSignature.

    The comparison is constant-time (hmac.compare_digest) so a forger learns nothing
    from how long a refusal takes. The timestamp must lie within `tolerance_seconds` of
    `now`, either side.
    """
    if not header:
        raise InvalidSignature("The Pacioli-Signature header is missing.")
    timestamp, signatures = parse_header(header)
    if abs(int(now.timestamp()) - timestamp) > tolerance_seconds:
        raise InvalidSignature("The signature's timestamp is outside the tolerance window.")
    expected = compute_signature(secret, timestamp, body)
    # Compare with every candidate, without stopping early, to keep the time constant.
    matched = False
    for candidate in signatures:
        matched |= hmac.compare_digest(expected.encode(), candidate.encode())
    if not matched:
        raise InvalidSignature("The signature does not match the body.")
    return timestamp
