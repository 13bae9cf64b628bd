"""Pagination cursors: opaque, signed, bound to their listing and their user.

A cursor names the last row a client saw (its time and id) for keyset pagination. It carries an
HMAC-SHA256 tag (16 bytes) over the listing kind, the user and that position, so a modified
cursor, one made up by hand, one from another listing or one issued to another user is refused
(400) instead of quietly starting the listing somewhere else. Nothing in a cursor is secret
(its position is a time and an event id the client has already seen); the tag only makes it
tamper-proof, as the issue-9 contract asks ("a modified cursor is 400").

The key is derived from the session secret (``TRIGGERS_SESSION_SECRET``, or the generated one
kept in the data directory), so every process and Lambda container of one deployment accepts the
cursors of the others, and a restart keeps them valid. Rotating that secret invalidates
outstanding cursors (a client starts its listing again from the first page).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Callable

from triggers_api.errors import ValidationFailed

_POSITION = re.compile(r"^(?P<kind>[a-z])2:(?P<ts>\d{1,19}):(?P<id>[0-9a-f-]{36})$")
TAG_BYTES = 16
MAX_CURSOR_CHARS = 200
_CONTEXT = b"triggers-api pagination cursors v2"


class CursorCodec:
    """Encodes and checks the cursors of every listing (inbox ``i``, events ``e``, audit ``a``)."""

    def __init__(self, secret: Callable[[], bytes]) -> None:
        self._secret = secret  # read on first use: a worker-only process never touches it
        self._key: bytes | None = None

    def _tag(self, user_id: str, position: bytes) -> bytes:
        if self._key is None:
            self._key = hmac.new(self._secret(), _CONTEXT, hashlib.sha256).digest()
        signed = user_id.encode("utf-8") + b"\x00" + position
        return hmac.new(self._key, signed, hashlib.sha256).digest()[:TAG_BYTES]

    def encode(self, kind: str, user_id: str, ts_us: int, row_id: str) -> str:
        position = f"{kind}2:{ts_us}:{row_id}".encode("ascii")
        raw = self._tag(user_id, position) + position
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")

    def decode(
        self, kind: str, user_id: str, cursor: str | None, field: str = "offset"
    ) -> tuple[int, str] | None:
        """The position of a cursor this listing issued to this user; anything else is a 400."""
        if cursor is None or cursor == "":
            return None
        bad = ValidationFailed(
            "Invalid pagination cursor", details={field: "not a cursor issued by this listing"}
        )
        if len(cursor) > MAX_CURSOR_CHARS:
            raise bad
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        except (binascii.Error, ValueError):
            raise bad from None
        tag, position = raw[:TAG_BYTES], raw[TAG_BYTES:]
        if len(tag) < TAG_BYTES or not hmac.compare_digest(tag, self._tag(user_id, position)):
            raise bad
        match = _POSITION.match(position.decode("ascii", errors="replace"))
        if match is None or match["kind"] != kind:
            raise bad
        ts = int(match["ts"])
        if ts >= 2**63:  # larger than any stored time, and than a 64-bit database integer
            raise bad
        return ts, match["id"]


__all__ = ["CursorCodec"]
