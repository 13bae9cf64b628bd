"""API keys at the edge: format, hashing, the short-lived key cache, scopes and rate limits.

A key is ``tk_`` + 43 URL-safe characters (32 random bytes): the prefix lets secret scanners spot
leaked keys. Only its SHA-256 is stored. Resolved keys are cached for at most
``key_cache_ttl`` (<= 1 s) so a revoke takes effect everywhere within a second, and at once in
the process that revoked it. ``last_used_at`` is collected in memory and flushed periodically.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import secrets
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import structlog
from limits import RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage
from limits.aio.storage import Storage as LimitsStorage
from limits.aio.strategies import FixedWindowRateLimiter
from limits.storage import storage_from_string

from triggers_api.errors import Forbidden, RateLimitExceeded, Unauthorized
from triggers_api.storage.base import ApiKeyRecord, Storage, now_us

log = structlog.get_logger(__name__)

KEY_PREFIX = "tk_"
KEY_DISPLAY_CHARS = 10  # "tk_" + 7 characters: enough to tell keys apart, useless to an attacker


class Scope(StrEnum):
    EVENTS_WRITE = "events:write"
    EVENTS_READ = "events:read"
    KEYS_MANAGE = "keys:manage"
    EVENT_TYPES_MANAGE = "event_types:manage"  # register, change and delete schemas
    SUBSCRIPTIONS_MANAGE = "subscriptions:manage"


ALL_SCOPES: tuple[str, ...] = tuple(s.value for s in Scope)
DEFAULT_SCOPES: tuple[str, ...] = (Scope.EVENTS_WRITE.value, Scope.EVENTS_READ.value)


def generate_api_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(slots=True, frozen=True)
class Principal:
    """Who is calling: resolved from an API key (or, later, a dashboard session)."""

    key_id: str
    user_id: str
    scopes: frozenset[str]
    rate_limit: int

    def require(self, scope: str) -> None:
        if scope not in self.scopes:
            raise Forbidden(f"This API key lacks the '{scope}' scope", details={"required_scope": scope})


class KeyResolver:
    """Looks keys up by hash with a cache no older than ``ttl`` seconds."""

    def __init__(self, storage: Storage, ttl: float = 1.0) -> None:
        self._storage = storage
        self._ttl = ttl
        self._cache: dict[str, tuple[ApiKeyRecord | None, float, Principal | None]] = {}
        self._last_used: dict[str, int] = {}

    async def resolve(self, api_key: str | None) -> Principal:
        if not api_key or len(api_key) > 256:
            raise Unauthorized("Missing or invalid API key")
        key_hash = hash_api_key(api_key)
        now = time.monotonic()
        hit = self._cache.get(key_hash)
        if hit is not None and hit[1] > now:
            record, principal = hit[0], hit[2]
        else:
            record = await self._storage.find_key_by_hash(key_hash)
            principal = (
                Principal(record.key_id, record.user_id, frozenset(record.scopes), record.rate_limit)
                if record is not None
                else None
            )
            if self._ttl > 0:
                if len(self._cache) > 100_000:
                    self._cache.clear()
                self._cache[key_hash] = (record, now + self._ttl, principal)
        if record is None or principal is None or not record.is_active:
            raise Unauthorized("Missing or invalid API key")
        current = now_us()
        if record.expires_us is not None and record.expires_us <= current:
            raise Unauthorized("Missing or invalid API key")
        self._last_used[record.key_id] = current
        return principal

    def note_use(self, key_id: str, at_us: int) -> None:
        """Record a use of a key resolved elsewhere (the Lambda authorizer's context)."""
        self._last_used[key_id] = at_us

    def forget(self, key_hash: str | None = None) -> None:
        """Drop cached keys (one, or all): called on revoke so this process refuses at once."""
        if key_hash is None:
            self._cache.clear()
        else:
            self._cache.pop(key_hash, None)

    async def flush_last_used(self) -> None:
        pending, self._last_used = self._last_used, {}
        if pending:
            await self._storage.record_key_use(pending)


#: Seconds a Redis call may take before the request goes on without it (fail open).
REDIS_TIMEOUT = 0.5
#: After a Redis failure, seconds during which requests skip it rather than each waiting again.
REDIS_COOLDOWN = 1.0


def _async_storage(url: str) -> LimitsStorage:
    """The ``limits`` async storage for a URL (``redis://`` becomes ``async+redis://``).

    Redis goes through redis-py (the official client; ``limits`` would default to coredis), with
    short timeouts and one immediate retry, so an unreachable Redis costs a request little.
    """
    if not url.startswith("async+"):
        url = "async+" + url
    options: dict[str, Any] = {}
    if url.split("://", 1)[0] in ("async+redis", "async+rediss", "async+redis+unix"):
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        options = {
            "implementation": "redispy",
            "socket_timeout": REDIS_TIMEOUT,
            "socket_connect_timeout": REDIS_TIMEOUT,
            "retry": Retry(NoBackoff(), 1),
        }
    backend = storage_from_string(url, **options)
    assert isinstance(backend, LimitsStorage)
    return backend


class RateLimiter:
    """Per-key fixed-window limits (``limits``), returning the IETF draft ``RateLimit`` headers."""

    POLICY = "per-key"

    def __init__(self, redis_url: str | None = None) -> None:
        self.shared = redis_url is not None
        self.backend: LimitsStorage = _async_storage(redis_url) if redis_url else MemoryStorage()
        self._limiter = FixedWindowRateLimiter(self.backend)
        self._items: dict[int, Any] = {}
        self.failures = 0  # requests served without a limit because the backend failed (metrics)
        self._skip_until = 0.0
        # Without Redis: this process's fixed windows, (key, limit) -> [window end, count].
        self._windows: dict[tuple[str, int], list[float]] = {}

    def _item(self, per_minute: int) -> Any:
        item = self._items.get(per_minute)
        if item is None:
            item = self._items[per_minute] = RateLimitItemPerMinute(per_minute)
        return item

    async def hit(self, principal: Principal) -> list[tuple[bytes, bytes]]:
        """Count one request; raise 429 when over. Returns the headers to add to the response."""
        if not self.shared:
            return self._hit_local(principal)
        item = self._item(principal.rate_limit)
        if self._skip_until and time.monotonic() < self._skip_until:
            self.failures += 1  # still cooling down after a failure: fail open without waiting
            return []
        try:
            allowed = await self._limiter.hit(item, principal.key_id)
            stats = await self._limiter.get_window_stats(item, principal.key_id)
        except Exception as exc:  # a missing Redis must not take the API down: fail open
            self.failures += 1
            self._skip_until = time.monotonic() + REDIS_COOLDOWN
            log.warning("rate_limit_backend_unavailable", error=type(exc).__name__)
            return []
        self._skip_until = 0.0
        reset = max(0, math.ceil(stats.reset_time - time.time()))
        return self._answer(principal, allowed, stats.remaining, reset)

    def _hit_local(self, principal: Principal) -> list[tuple[bytes, bytes]]:
        """Counts like ``limits``' memory storage (a window opens at a key's first request and
        lasts 60 s; over-limit requests still count) without its per-key asyncio lock, expiry
        task and key formatting: one event loop runs one request at a time, so a dict will do.
        """
        now = time.time()
        key = (principal.key_id, principal.rate_limit)
        window = self._windows.get(key)
        if window is None or window[0] <= now:
            if len(self._windows) > 10_000:
                self._windows = {k: w for k, w in self._windows.items() if w[0] > now}
            window = self._windows[key] = [now + 60, 0]
        window[1] += 1
        count = int(window[1])
        reset = max(0, math.ceil(window[0] - now))
        return self._answer(
            principal, count <= principal.rate_limit, max(0, principal.rate_limit - count), reset
        )

    def _answer(
        self, principal: Principal, allowed: bool, remaining: int, reset: int
    ) -> list[tuple[bytes, bytes]]:
        headers = [
            (b"ratelimit-policy", f'"{self.POLICY}";q={principal.rate_limit};w=60'.encode()),
            (b"ratelimit", f'"{self.POLICY}";r={remaining};t={reset}'.encode()),
        ]
        if not allowed:
            raise RateLimitExceeded(
                f"Rate limit of {principal.rate_limit} requests per minute exceeded",
                details={"limit": principal.rate_limit, "window_seconds": 60, "retry_after": max(1, reset)},
                headers={
                    "Retry-After": str(max(1, reset)),
                    "RateLimit-Policy": headers[0][1].decode(),
                    "RateLimit": headers[1][1].decode(),
                },
            )
        return headers

    async def health(self) -> dict[str, Any]:
        """For ``/v1/health``: is the shared counter store answering? (Down is degraded, not
        unhealthy: requests are still served, without limits, and counted in ``fail_open``.)"""
        try:
            ok = bool(await asyncio.wait_for(self.backend.check(), timeout=2 * REDIS_TIMEOUT))
        except Exception:
            ok = False
        return {"status": "ok" if ok else "unavailable", "fail_open": self.failures}
