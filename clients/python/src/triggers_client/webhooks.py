"""Standard Webhooks (https://www.standardwebhooks.com) for receivers of Triggers pushes.

``verify(body, headers, secret)`` checks ``webhook-signature`` (HMAC-SHA256 of
``"{webhook-id}.{webhook-timestamp}.{body}"`` keyed with the base64 secret after ``whsec_``) and
that ``webhook-timestamp`` is within ``tolerance`` seconds of now, then returns the event. ``sign``
makes the same headers (``triggers listen`` signs what it forwards with it).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Mapping

from triggers_client._errors import TriggersError
from triggers_client._models import Event

DEFAULT_TOLERANCE = 300  # seconds, as the reference libraries


class WebhookVerificationError(TriggersError):
    """The request is not a valid, fresh, correctly signed Standard Webhooks message."""


def _key(secret: str) -> bytes:
    raw = secret[len("whsec_") :] if secret.startswith("whsec_") else secret
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("the secret must be whsec_ followed by base64") from exc


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: ``v1,<base64 HMAC-SHA256>``."""
    digest = hmac.new(_key(secret), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def sign(body: bytes, msg_id: str, secret: str | None, timestamp: int | None = None) -> dict[str, str]:
    """The Standard Webhooks headers the Triggers worker sends (unsigned when ``secret`` is None)."""
    ts = int(time.time()) if timestamp is None else timestamp
    headers = {"webhook-id": msg_id, "webhook-timestamp": str(ts)}
    if secret:
        headers["webhook-signature"] = signature(secret, msg_id, ts, body)
    return headers


def verify(
    body: bytes | str,
    headers: Mapping[str, str],
    secret: str,
    tolerance: int = DEFAULT_TOLERANCE,
) -> Event:
    """The pushed event, after checking its signature and freshness (raises
    :class:`WebhookVerificationError` otherwise). Pass the raw body, not re-encoded JSON."""
    data = body.encode() if isinstance(body, str) else bytes(body)
    lowered = {k.lower(): v for k, v in headers.items()}
    msg_id = lowered.get("webhook-id")
    stamp = lowered.get("webhook-timestamp")
    signatures = lowered.get("webhook-signature")
    if not msg_id or not stamp or not signatures:
        raise WebhookVerificationError("missing webhook-id, webhook-timestamp or webhook-signature header")
    try:
        timestamp = int(stamp)
    except ValueError:
        raise WebhookVerificationError("webhook-timestamp is not a number") from None
    if abs(time.time() - timestamp) > tolerance:
        raise WebhookVerificationError("webhook-timestamp is outside the tolerance (replayed or clock skew)")
    expected = signature(secret, msg_id, timestamp, data).encode()
    for candidate in signatures.split():
        if candidate.startswith("v1,") and hmac.compare_digest(candidate.encode(), expected):
            break
    else:
        raise WebhookVerificationError("no matching signature")
    try:
        return Event.from_json(json.loads(data))
    except (ValueError, KeyError, TypeError) as exc:
        raise WebhookVerificationError(f"the body is not a Triggers event: {exc}") from exc
