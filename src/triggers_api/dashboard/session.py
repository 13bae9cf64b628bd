"""Dashboard sessions: an API key with ``keys:manage`` exchanged for cookies, and the resolver that
lets the rest of the API accept those cookies where no ``X-API-Key`` header is sent.

Three cookies, all ``SameSite=Strict`` (and ``Secure`` over HTTPS):

- ``triggers_session`` (``HttpOnly``, path ``/``): the access token, valid ``session_ttl_seconds``;
- ``triggers_refresh`` (``HttpOnly``, path ``/v1/auth``): the refresh token, valid until
  ``session_max_age_seconds`` after login, sent only to the auth routes;
- ``triggers_csrf`` (readable by the page): the session's CSRF token. Every cookie-authenticated
  request with a mutating method must echo it in ``X-CSRF-Token``; it is compared with the copy
  inside the signed token, so a cookie planted by a sibling origin does not pass.

The key itself never reaches the browser's storage: it is posted once and forgotten. A session
lives as long as its key: a revoked or expired key ends it at the next request (after at most
``key_cache_ttl``). Logging out revokes the session id in this process; tokens are stateless, so
another worker process keeps accepting a copied cookie until its 1 h expiry (the browser's own copy
is deleted at logout).
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import cookie_parser

from triggers_api.auth import Principal, Scope
from triggers_api.config import Settings
from triggers_api.errors import Forbidden, Unauthorized
from triggers_api.storage.base import ApiKeyRecord, Storage, now_us

from .tokens import Claims, InvalidToken, TokenKind, TokenSigner, load_secret

SESSION_COOKIE = "triggers_session"
REFRESH_COOKIE = "triggers_refresh"
CSRF_COOKIE = "triggers_csrf"
CSRF_HEADER = b"x-csrf-token"
REFRESH_PATH = "/v1/auth"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _header(scope: MutableMapping[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def cookies_of(scope: MutableMapping[str, Any]) -> dict[str, str]:
    raw = _header(scope, b"cookie")
    return cookie_parser(raw) if raw else {}


def is_https(scope: MutableMapping[str, Any]) -> bool:
    return scope.get("scheme") == "https"


@dataclass(slots=True, frozen=True)
class IssuedSession:
    claims: Claims
    access_token: str
    refresh_token: str | None
    record: ApiKeyRecord


class SessionManager:
    """Issues, verifies and ends sessions; its :meth:`resolve` is the ``session_resolver``."""

    def __init__(self, settings: Settings, storage: Storage) -> None:
        self.settings = settings
        self.storage = storage
        self._signer: TokenSigner | None = None
        self._keys: dict[str, tuple[ApiKeyRecord | None, float]] = {}
        self._ended: dict[str, int] = {}  # session id -> when its refresh token would expire

    @property
    def signer(self) -> TokenSigner:
        if self._signer is None:
            self._signer = TokenSigner(load_secret(self.settings))
        return self._signer

    # -- issuing ------------------------------------------------------------------------------

    def issue(self, record: ApiKeyRecord) -> IssuedSession:
        now = int(time.time())
        sid = secrets.token_urlsafe(16)
        csrf = secrets.token_urlsafe(24)
        refresh = Claims(
            kind="refresh",
            sid=sid,
            key_id=record.key_id,
            user_id=record.user_id,
            csrf=csrf,
            iat=now,
            exp=now + self.settings.session_max_age_seconds,
            auth_time=now,
        )
        access = self._access_for(refresh, now)
        return IssuedSession(access, self.signer.sign(access), self.signer.sign(refresh), record)

    def _access_for(self, refresh: Claims, now: int) -> Claims:
        return Claims(
            kind="access",
            sid=refresh.sid,
            key_id=refresh.key_id,
            user_id=refresh.user_id,
            csrf=refresh.csrf,
            iat=now,
            exp=min(now + self.settings.session_ttl_seconds, refresh.exp),
            auth_time=refresh.auth_time,
        )

    async def refresh(self, scope: MutableMapping[str, Any]) -> IssuedSession:
        """A new access token from the refresh cookie (CSRF-checked: it is a cookie POST)."""
        claims = self._verified(scope, REFRESH_COOKIE, "refresh")
        self._check_csrf(scope, claims)
        record = await self.live_key(claims.key_id, claims.user_id)
        now = int(time.time())
        if now >= claims.auth_time + self.settings.session_max_age_seconds:
            raise Unauthorized("Session expired; log in again")
        access = self._access_for(claims, now)
        return IssuedSession(access, self.signer.sign(access), None, record)

    def end(self, claims: Claims) -> None:
        now = int(time.time())
        self._ended = {sid: until for sid, until in self._ended.items() if until > now}
        self._ended[claims.sid] = claims.auth_time + self.settings.session_max_age_seconds

    # -- checking -----------------------------------------------------------------------------

    def current(self, scope: MutableMapping[str, Any]) -> Claims:
        """The valid access token's claims (no CSRF check: for reads and for logout)."""
        return self._verified(scope, SESSION_COOKIE, "access")

    def any_claims(self, scope: MutableMapping[str, Any]) -> Claims | None:
        """The access token's claims, else the refresh token's, else None (for logout)."""
        tokens: tuple[tuple[str, TokenKind], ...] = ((SESSION_COOKIE, "access"), (REFRESH_COOKIE, "refresh"))
        for cookie, kind in tokens:
            try:
                return self._verified(scope, cookie, kind)
            except Unauthorized:
                continue
        return None

    async def live_key(self, key_id: str, user_id: str) -> ApiKeyRecord:
        """The key, if still active: cached no longer than ``key_cache_ttl``; else 401."""
        now = time.monotonic()
        hit = self._keys.get(key_id)
        if hit is not None and hit[1] > now:
            record = hit[0]
        else:
            record = await self.storage.get_key(user_id, key_id)
            if len(self._keys) > 10_000:
                self._keys.clear()
            self._keys[key_id] = (record, now + self.settings.key_cache_ttl)
        if (
            record is None
            or record.user_id != user_id
            or not record.is_active
            or (record.expires_us is not None and record.expires_us <= now_us())
        ):
            raise Unauthorized("Session ended: its API key was revoked or has expired")
        return record

    async def resolve(self, scope: MutableMapping[str, Any]) -> Principal:
        """The ``session_resolver``: a request without ``X-API-Key`` authenticated by its cookie."""
        claims = self._verified(scope, SESSION_COOKIE, "access")
        if scope.get("method", "GET") not in SAFE_METHODS:
            self._check_csrf(scope, claims)
        record = await self.live_key(claims.key_id, claims.user_id)
        # A session is its owner's console: it may also manage the event-type catalog and, so keys
        # created before that scope existed still drive the whole dashboard, subscriptions.
        scopes = frozenset(record.scopes) | {
            Scope.EVENT_TYPES_MANAGE.value,
            Scope.SUBSCRIPTIONS_MANAGE.value,
        }
        return Principal(record.key_id, record.user_id, scopes, record.rate_limit)

    def _verified(self, scope: MutableMapping[str, Any], cookie: str, kind: TokenKind) -> Claims:
        token = cookies_of(scope).get(cookie)
        if not token:
            raise Unauthorized("Missing or invalid API key")
        try:
            claims = self.signer.verify(token, kind, int(time.time()))
        except InvalidToken:
            raise Unauthorized("Session expired or invalid; log in again") from None
        if claims.sid in self._ended:
            raise Unauthorized("Session ended; log in again")
        return claims

    def _check_csrf(self, scope: MutableMapping[str, Any], claims: Claims) -> None:
        sent = _header(scope, CSRF_HEADER)
        if not sent or not hmac.compare_digest(sent.encode(), claims.csrf.encode()):
            raise Forbidden(
                "Missing or invalid CSRF token",
                details={"csrf": "send the triggers_csrf cookie's value in the X-CSRF-Token header"},
            )
        origin = _header(scope, b"origin")
        host = _header(scope, b"host")
        if origin is not None and host is not None and origin.split("://", 1)[-1] != host:
            raise Forbidden("Cross-origin request refused", details={"origin": origin[:200]})

    # -- cookies ------------------------------------------------------------------------------

    def set_cookie_headers(self, scope: MutableMapping[str, Any], issued: IssuedSession) -> list[str]:
        secure = is_https(scope)
        claims = issued.claims
        headers = [
            _cookie(SESSION_COOKIE, issued.access_token, claims.exp - claims.iat, "/", True, secure),
        ]
        if issued.refresh_token is not None:
            life = self.settings.session_max_age_seconds
            headers.append(_cookie(REFRESH_COOKIE, issued.refresh_token, life, REFRESH_PATH, True, secure))
            headers.append(_cookie(CSRF_COOKIE, claims.csrf, life, "/", False, secure))
        return headers

    @staticmethod
    def clear_cookie_headers(scope: MutableMapping[str, Any]) -> list[str]:
        secure = is_https(scope)
        return [
            _cookie(SESSION_COOKIE, "", 0, "/", True, secure),
            _cookie(REFRESH_COOKIE, "", 0, REFRESH_PATH, True, secure),
            _cookie(CSRF_COOKIE, "", 0, "/", False, secure),
        ]


def _cookie(name: str, value: str, max_age: int, path: str, http_only: bool, secure: bool) -> str:
    parts = [f"{name}={value}", f"Max-Age={max(0, max_age)}", f"Path={path}", "SameSite=Strict"]
    if http_only:
        parts.append("HttpOnly")
    if secure:
        parts.append("Secure")
    return "; ".join(parts)
