"""``handler(event, context)``: API Gateway's REQUEST authorizer (section 10.4 of the document).

``X-API-Key`` -> SHA-256 -> ``Storage.find_key_by_hash`` (the KeyHashIndex on DynamoDB). A valid,
active, unexpired key gets an Allow policy with the context the API function trusts: ``user_id``,
``key_id``, ``scopes`` (space-separated: context values must be scalars) and ``rate_limit``.
Anything else raises ``Exception("Unauthorized")``, which API Gateway turns into a 401 (its
convention; a Deny policy would be a 403).

The policy allows **every method and resource of the stage** (``arn:.../<stage>/*/*``), not the
method ARN of this request: API Gateway caches the decision for 5 minutes per key, and a policy
scoped to the first route would refuse the same key's other routes until the cache expires.
Revocation stays prompt because the API function re-checks the key by id (``lambda_api``).

KeyHashIndex is a GSI and lags the table slightly; a well-formed key that is not found is looked
up once more after :data:`INDEX_RETRY_S`, so a key used right after its creation is not refused.

The key itself is never logged, nor its hash: only the key id of an accepted key. Each decision
is an EMF count (``AuthorizerAllowed`` / ``AuthorizerRefused``), the look-up an X-Ray subsegment
(``## ...Authorizer.find_key``, its result never recorded), and API Gateway's request id the
log's correlation id.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import (
    APIGatewayAuthorizerRequestEvent,
    APIGatewayAuthorizerResponse,
)

from triggers_api.auth import hash_api_key
from triggers_api.aws import observability as obs
from triggers_api.aws.container import ContainerLoop
from triggers_api.config import Settings
from triggers_api.storage import build_storage
from triggers_api.storage.base import ApiKeyRecord, Storage, now_us

#: Second look-up of a well-formed key the index did not return (GSI propagation lag).
INDEX_RETRY_S = 0.2
#: What a key looks like (``auth.generate_api_key``): anything else is refused without a read.
KEY_SHAPE = re.compile(r"^tk_[A-Za-z0-9_-]{43}$")

SERVICE = obs.service_name("authorizer")
tracer = obs.tracer_for("authorizer")
metrics = obs.metrics_for("authorizer")


class Unauthorized(Exception):
    """API Gateway's convention: an authorizer failing with exactly "Unauthorized" means 401."""

    def __init__(self) -> None:
        super().__init__("Unauthorized")


def _api_key(raw_event: dict[str, Any]) -> str | None:
    headers = raw_event.get("headers") or {}
    for name, value in headers.items():
        if name.lower() == "x-api-key" and isinstance(value, str):
            return value.strip()
    return None


class Authorizer:
    """One container's authorizer: its loop and its storage, opened on the first invocation."""

    def __init__(self, settings: Settings | None = None, *, index_retry_s: float = INDEX_RETRY_S) -> None:
        self.settings = settings or Settings()
        self.container = ContainerLoop()
        self.storage: Storage = build_storage(self.settings)
        self.opened = False
        self.index_retry_s = index_retry_s
        self.logger = Logger(service=SERVICE, child=False)
        self._invoke = obs.instrument(
            self._authorize,
            logger=self.logger,
            tracer=tracer,
            metrics=metrics,
            correlation_id_path=correlation_paths.API_GATEWAY_REST,
        )

    @tracer.capture_method(capture_response=False)  # the record holds the key's hash: never traced
    async def find_key(self, api_key: str) -> ApiKeyRecord | None:
        if not self.opened:
            await self.storage.open()
            self.opened = True
        key_hash = hash_api_key(api_key)
        record = await self.storage.find_key_by_hash(key_hash)
        if record is None and self.index_retry_s > 0:
            await asyncio.sleep(self.index_retry_s)
            record = await self.storage.find_key_by_hash(key_hash)
        return record

    def __call__(self, raw_event: dict[str, Any], context: Any) -> dict[str, Any]:
        response: dict[str, Any] = self._invoke(raw_event, context)
        return response

    def _authorize(self, raw_event: dict[str, Any], context: Any) -> dict[str, Any]:
        decision = "error"  # neither counter: a storage failure is API Gateway's 500, not a refusal
        try:
            response = self._decide(raw_event)
            decision = "allowed"
            return response
        except Unauthorized:
            decision = "refused"
            raise
        finally:
            metrics.add_metric(
                name=obs.AUTHORIZER_ALLOWED, unit=MetricUnit.Count, value=int(decision == "allowed")
            )
            metrics.add_metric(
                name=obs.AUTHORIZER_REFUSED, unit=MetricUnit.Count, value=int(decision == "refused")
            )
            tracer.put_annotation("decision", decision)

    def _refuse(self, reason: str, **fields: Any) -> Unauthorized:
        self.logger.info("authorizer_refused", reason=reason, **fields)
        return Unauthorized()

    def _decide(self, raw_event: dict[str, Any]) -> dict[str, Any]:
        event = APIGatewayAuthorizerRequestEvent(raw_event)
        api_key = _api_key(raw_event)
        if not api_key or not KEY_SHAPE.match(api_key):
            raise self._refuse("malformed")
        record = self.container.run(self.find_key(api_key))
        if record is None or not record.is_active:
            raise self._refuse("unknown_or_revoked")
        if record.expires_us is not None and record.expires_us <= now_us():
            raise self._refuse("expired", key_id=record.key_id)
        arn = event.parsed_arn
        policy = APIGatewayAuthorizerResponse(
            principal_id=record.user_id,
            region=arn.region,
            aws_account_id=arn.aws_account_id,
            api_id=arn.api_id,
            stage=arn.stage,
            context={
                "user_id": record.user_id,
                "key_id": record.key_id,
                "scopes": " ".join(record.scopes),
                "rate_limit": record.rate_limit,
            },
        )
        policy.allow_all_routes()  # the whole stage: the decision is cached per key, not per route
        self.logger.info("authorizer_allowed", key_id=record.key_id, user_id=record.user_id)
        response: dict[str, Any] = policy.asdict()
        return response

    def close(self) -> None:
        """For tests: close the storage and the loop."""
        if self.opened:
            self.container.run(self.storage.close())
            self.opened = False
        self.container.close()


_authorizer: Authorizer | None = None


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The Lambda entry point (``triggers_api.aws.lambda_authorizer.handler``)."""
    global _authorizer
    if _authorizer is None:
        _authorizer = Authorizer()
    return _authorizer(event, context)
