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

The key itself is never logged, nor its hash: only the key id of an accepted key.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import (
    APIGatewayAuthorizerRequestEvent,
    APIGatewayAuthorizerResponse,
)

from triggers_api.auth import hash_api_key
from triggers_api.aws.container import ContainerLoop
from triggers_api.config import Settings
from triggers_api.storage import build_storage
from triggers_api.storage.base import ApiKeyRecord, Storage, now_us

#: Second look-up of a well-formed key the index did not return (GSI propagation lag).
INDEX_RETRY_S = 0.2
#: What a key looks like (``auth.generate_api_key``): anything else is refused without a read.
KEY_SHAPE = re.compile(r"^tk_[A-Za-z0-9_-]{43}$")


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
        self.logger = Logger(service="triggers-api-authorizer", child=False)

    async def _find(self, api_key: str) -> ApiKeyRecord | None:
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
        event = APIGatewayAuthorizerRequestEvent(raw_event)
        api_key = _api_key(raw_event)
        if not api_key or not KEY_SHAPE.match(api_key):
            self.logger.info("authorizer_refused", reason="malformed", request_id=_request_id(event))
            raise Unauthorized()
        record = self.container.run(self._find(api_key))
        if record is None or not record.is_active:
            self.logger.info("authorizer_refused", reason="unknown_or_revoked", request_id=_request_id(event))
            raise Unauthorized()
        if record.expires_us is not None and record.expires_us <= now_us():
            self.logger.info("authorizer_refused", reason="expired", key_id=record.key_id)
            raise Unauthorized()
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


def _request_id(event: APIGatewayAuthorizerRequestEvent) -> str:
    return str(event.request_context.request_id or "")


_authorizer: Authorizer | None = None


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The Lambda entry point (``triggers_api.aws.lambda_authorizer.handler``)."""
    global _authorizer
    if _authorizer is None:
        _authorizer = Authorizer()
    return _authorizer(event, context)
