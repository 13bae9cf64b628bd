"""A destination is a thing of its own: its target, signer, circuit breaker, concurrency limit
and connection pool. One per subscription, one for ``TRIGGERS_WORKFLOW_URL``; the fan-out worker
only schedules deliveries across them (``fanout.py``), so no part knows every rule.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections import deque
from collections.abc import Awaitable, Callable

from triggers_api.config import Settings, signing_key
from triggers_api.delivery.breaker import STATE_CODES, CircuitBreaker, CircuitState
from triggers_api.delivery.http11 import Http11Pool, PushError
from triggers_api.delivery.push import Pusher
from triggers_api.delivery.signing import Signer
from triggers_api.errors import DestinationNotAllowed
from triggers_api.metrics import Metrics
from triggers_api.storage.base import WORKFLOW_DESTINATION, FanoutClaim, SubscriptionRecord, now_us
from triggers_api.subscriptions.guard import DestinationGuard

#: Deliveries of one destination claimed ahead, per push slot: enough to keep its slots busy
#: between claims, few enough that one slow target cannot hold many leases.
CLAIM_AHEAD = 4


class RotatingSigner(Signer):
    """Standard Webhooks allows several ``v1,`` signatures: during a rotation both secrets sign."""

    def __init__(
        self, secret: str, previous: str | None = None, previous_until_us: int | None = None
    ) -> None:
        super().__init__(secret)
        self._previous = signing_key(previous) if previous else None
        self._previous_until_us = previous_until_us or 0

    def signature(self, msg_id: str, timestamp: int, body: bytes) -> str:
        current = super().signature(msg_id, timestamp, body)
        if self._previous is None or now_us() >= self._previous_until_us:
            return current
        signed = f"{msg_id}.{timestamp}.".encode() + body
        old = base64.b64encode(hmac.new(self._previous, signed, hashlib.sha256).digest()).decode("ascii")
        return f"{current} v1,{old}"


class MetricLabels:
    """Bounded cardinality: the first ``limit`` subscriptions seen get their id as a label value,
    the rest share ``other``; the workflow is always ``workflow``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._named: set[str] = set()

    def of(self, destination: str) -> str:
        if destination == WORKFLOW_DESTINATION or destination in self._named:
            return destination
        if len(self._named) < self.limit:
            self._named.add(destination)
            return destination
        return "other"


class Destination:
    def __init__(
        self,
        name: str,
        url: str,
        *,
        settings: Settings,
        limit: int,
        signer: Signer | None,
        token: str | None = None,
        resolve: Callable[[str, int], Awaitable[str]] | None = None,
        metrics: Metrics | None = None,
        label: str = "",
        subscription: SubscriptionRecord | None = None,
        on_circuit: Callable[[CircuitState], None] | None = None,
    ) -> None:
        self.name = name
        self._on_circuit = on_circuit
        self.url = url
        self.limit = limit
        self.subscription = subscription
        self.metrics = metrics
        self.label = label or name
        self.pool = Http11Pool(url, max_idle=limit, resolve=resolve)
        self.pusher = Pusher(self.pool, timeout=settings.delivery_timeout, token=token, signer=signer)
        self.breaker = CircuitBreaker(
            settings.circuit_failure_threshold, settings.circuit_cooldown, on_change=self._circuit_changed
        )
        self.waiting: deque[FanoutClaim] = deque()  # claimed, push not started
        self.pushing = 0
        self.paused_until = 0.0  # monotonic: a Retry-After from this destination holds it back
        self.stamp = (subscription.updated_us, subscription.target_url) if subscription else (0, url)

    @property
    def held(self) -> int:
        return self.pushing + len(self.waiting)

    def accepting(self) -> bool:
        """Whether more of its deliveries should be claimed now."""
        if self.held >= self.limit * CLAIM_AHEAD or time.monotonic() < self.paused_until:
            return False
        return self.breaker.allowance() != 0

    def can_start(self) -> bool:
        return bool(self.waiting) and self.pushing < self.limit and time.monotonic() >= self.paused_until

    def hold_for(self, seconds: float) -> None:
        self.paused_until = max(self.paused_until, time.monotonic() + seconds)

    def _circuit_changed(self, state: CircuitState) -> None:
        if self.metrics is not None:
            self.metrics.destination_circuit_state.labels(self.label).set(STATE_CODES[state])
        if self._on_circuit is not None:
            self._on_circuit(state)

    async def aclose(self) -> None:
        await self.pool.aclose()


def guarded_resolver(guard: DestinationGuard) -> Callable[[str, int], Awaitable[str]]:
    """Connect-time SSRF check: resolve, check every address, connect to a checked one."""

    async def resolve(host: str, port: int) -> str:
        try:
            addresses = await guard.resolve(host, port)
        except DestinationNotAllowed as exc:
            raise PushError("destination_not_allowed", exc.message) from None
        return addresses[0]

    return resolve


def workflow_destination(
    settings: Settings,
    metrics: Metrics | None,
    on_circuit: Callable[[CircuitState], None] | None = None,
) -> Destination | None:
    if not settings.workflow_url:
        return None
    token = settings.workflow_token.get_secret_value() if settings.workflow_token else None
    signer = Signer(settings.signing_secret.get_secret_value()) if settings.signing_secret else None
    return Destination(
        WORKFLOW_DESTINATION,
        settings.workflow_url,
        settings=settings,
        limit=settings.delivery_concurrency,
        signer=signer,
        token=token,
        metrics=metrics,
        on_circuit=on_circuit,
    )


def subscription_destination(
    record: SubscriptionRecord,
    settings: Settings,
    guard: DestinationGuard,
    metrics: Metrics | None,
    label: str,
) -> Destination:
    return Destination(
        record.subscription_id,
        record.target_url,
        settings=settings,
        limit=settings.destination_concurrency,
        signer=RotatingSigner(record.secret, record.previous_secret, record.previous_secret_until_us),
        resolve=guarded_resolver(guard),
        metrics=metrics,
        label=label,
        subscription=record,
    )
