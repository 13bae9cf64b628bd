"""Standard Webhooks signatures (https://www.standardwebhooks.com), so any receiver library verifies.

``webhook-signature: v1,<base64 HMAC-SHA256 of "{webhook-id}.{webhook-timestamp}.{body}">``, keyed
with the base64-decoded secret (``whsec_...``). The id is the event id, the same on every retry,
which is what lets the engine deduplicate; the timestamp is the attempt's, so a retry hours later
is not refused as a replay by receivers that check freshness.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from triggers_api.config import signing_key


class Signer:
    def __init__(self, secret: str) -> None:
        self._key = signing_key(secret)

    def signature(self, msg_id: str, timestamp: int, body: bytes) -> str:
        signed = f"{msg_id}.{timestamp}.".encode() + body
        digest = hmac.new(self._key, signed, hashlib.sha256).digest()
        return "v1," + base64.b64encode(digest).decode("ascii")
