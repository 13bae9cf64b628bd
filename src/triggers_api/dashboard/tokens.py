"""Signed session tokens: ``v1.<base64url JSON claims>.<base64url HMAC-SHA256>``.

Hand-rolled rather than a JWT library: one algorithm, one key, no ``alg`` header to negotiate,
about forty lines. The claims are readable by whoever holds the cookie (it is ``HttpOnly``, so not
by page scripts) and hold nothing secret: ids, times and the session's CSRF token.

The signing key comes from ``TRIGGERS_SESSION_SECRET``; when that is unset one is generated on
first use and kept (mode 0600) in the data directory, so a restart keeps everyone logged in and
several worker processes share it (the first to create the file wins, the others read it).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import orjson

from triggers_api.config import Settings

VERSION = "v1"
TokenKind = Literal["access", "refresh"]


@dataclass(slots=True, frozen=True)
class Claims:
    kind: TokenKind
    sid: str  # session id, shared by the access and refresh tokens of one login
    key_id: str
    user_id: str
    csrf: str  # the CSRF token bound to this session (double-submit, checked against the header)
    iat: int  # issued at, Unix seconds
    exp: int  # expires at, Unix seconds
    auth_time: int  # when the user logged in: refresh is refused after auth_time + max age


class InvalidToken(Exception):
    """Bad format, bad signature, wrong kind or expired: the caller answers 401 for all alike."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenSigner:
    def __init__(self, secret: bytes) -> None:
        if len(secret) < 32:
            raise ValueError("the session secret must be at least 32 bytes")
        self._key = hashlib.sha256(b"triggers-api/session/" + secret).digest()

    def _mac(self, signed_part: str) -> str:
        return _b64(hmac.new(self._key, signed_part.encode("ascii"), hashlib.sha256).digest())

    def sign(self, claims: Claims) -> str:
        body = f"{VERSION}.{_b64(orjson.dumps(asdict(claims)))}"
        return f"{body}.{self._mac(body)}"

    def verify(self, token: str, kind: TokenKind, now: int) -> Claims:
        parts = token.split(".")
        if len(parts) != 3 or parts[0] != VERSION or len(token) > 4096:
            raise InvalidToken("malformed")
        if not hmac.compare_digest(self._mac(f"{parts[0]}.{parts[1]}"), parts[2]):
            raise InvalidToken("bad signature")
        try:
            claims = Claims(**orjson.loads(_unb64(parts[1])))
        except (binascii.Error, ValueError, TypeError) as exc:
            raise InvalidToken("bad claims") from exc
        if claims.kind != kind:
            raise InvalidToken("wrong kind")
        if claims.exp <= now:
            raise InvalidToken("expired")
        return claims


def load_secret(settings: Settings) -> bytes:
    """The configured secret, or the persisted generated one (created on first call)."""
    if settings.session_secret is not None:
        return settings.session_secret.get_secret_value().encode("utf-8")
    path = settings.session_secret_path()
    return _read_or_create(path)


def _read_or_create(path: Path) -> bytes:
    with contextlib.suppress(FileNotFoundError):
        existing = path.read_bytes().strip()
        if len(existing) >= 32:
            return existing
    path.parent.mkdir(parents=True, exist_ok=True)
    fresh = secrets.token_urlsafe(48).encode("ascii")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(fresh)
        out.flush()
        os.fsync(out.fileno())
    try:
        # A hard link fails if another process created the file first: then theirs is the secret.
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    secret = path.read_bytes().strip()
    if len(secret) < 32:
        raise ValueError(f"session secret file {path} holds fewer than 32 bytes")
    return secret
