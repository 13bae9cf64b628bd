"""Real-shaped Lambda events and context, as API Gateway, Lambda and DynamoDB Streams send them.

Shapes follow AWS's documented examples (REST API proxy integration, REQUEST authorizer input,
DynamoDB Streams record): the handlers under test see what they would see deployed.
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

ACCOUNT = "123456789012"
REGION = "us-east-1"
API_ID = "a1b2c3d4e5"
STAGE = "prod"


@dataclass
class LambdaContext:
    """The attributes of the context object Lambda passes to a Python handler."""

    function_name: str = "triggers-api"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 1024
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/triggers-api"
    log_stream_name: str = "2026/01/01/[$LATEST]0123456789abcdef"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.function_name}:live"

    def get_remaining_time_in_millis(self) -> int:
        return 29_000


def rest_event(
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    query: str = "",
    body: bytes | str | None = None,
    authorizer: dict[str, Any] | None = None,
    request_id: str | None = None,
    source_ip: str = "203.0.113.7",
) -> dict[str, Any]:
    """An API Gateway REST API (v1) Lambda proxy event for ``/{proxy+}``."""
    request_id = request_id or str(uuid.uuid4())
    all_headers = {
        "Host": f"{API_ID}.execute-api.{REGION}.amazonaws.com",
        "User-Agent": "test-client/1.0",
        "X-Amzn-Trace-Id": "Root=1-67891233-abcdef012345678912345678",
        "X-Forwarded-For": source_ip,
        "X-Forwarded-Port": "443",
        "X-Forwarded-Proto": "https",
        **(headers or {}),
    }
    if body is not None and not any(k.lower() == "content-type" for k in all_headers):
        all_headers["Content-Type"] = "application/json"
    pairs = parse_qsl(query, keep_blank_values=True)
    single = {k: v for k, v in pairs} or None
    multi: dict[str, list[str]] = {}
    for k, v in pairs:
        multi.setdefault(k, []).append(v)
    raw = body.encode() if isinstance(body, str) else body
    context: dict[str, Any] = {
        "resourceId": "abc123",
        "resourcePath": "/{proxy+}",
        "httpMethod": method,
        "extendedRequestId": "c6af9ac6-7b61-11e6",
        "requestTime": "09/Apr/2026:12:34:56 +0000",
        "path": f"/{STAGE}{path}",
        "accountId": ACCOUNT,
        "protocol": "HTTP/1.1",
        "stage": STAGE,
        "domainPrefix": API_ID,
        "requestTimeEpoch": 1775737696000,
        "requestId": request_id,
        "identity": {
            "cognitoIdentityPoolId": None,
            "accountId": None,
            "cognitoIdentityId": None,
            "caller": None,
            "sourceIp": source_ip,
            "principalOrgId": None,
            "accessKey": None,
            "cognitoAuthenticationType": None,
            "cognitoAuthenticationProvider": None,
            "userArn": None,
            "userAgent": "test-client/1.0",
            "user": None,
        },
        "domainName": f"{API_ID}.execute-api.{REGION}.amazonaws.com",
        "apiId": API_ID,
    }
    if authorizer is not None:
        # What API Gateway passes on: the authorizer's context (values stringified by the
        # gateway for numbers and booleans), plus principalId and integrationLatency.
        context["authorizer"] = {
            **{k: v if isinstance(v, str) else json.dumps(v) for k, v in authorizer.items()},
            "integrationLatency": 12,
        }
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": all_headers,
        "multiValueHeaders": {k: [v] for k, v in all_headers.items()},
        "queryStringParameters": single,
        "multiValueQueryStringParameters": multi or None,
        "pathParameters": {"proxy": path.lstrip("/")},
        "stageVariables": None,
        "requestContext": context,
        "body": base64.b64encode(raw).decode() if raw is not None else None,
        "isBase64Encoded": raw is not None,
    }


def authorizer_event(method: str, path: str, headers: dict[str, str]) -> dict[str, Any]:
    """The REQUEST authorizer's input (identity source: method.request.header.X-API-Key)."""
    request_id = str(uuid.uuid4())
    return {
        "type": "REQUEST",
        "methodArn": f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{API_ID}/{STAGE}/{method}{path}",
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": {},
        "multiValueQueryStringParameters": {},
        "pathParameters": {"proxy": path.lstrip("/")},
        "stageVariables": {},
        "requestContext": {
            "path": f"/{STAGE}{path}",
            "accountId": ACCOUNT,
            "resourceId": "abc123",
            "stage": STAGE,
            "requestId": request_id,
            "identity": {"sourceIp": "203.0.113.7", "userAgent": "test-client/1.0"},
            "resourcePath": "/{proxy+}",
            "httpMethod": method,
            "apiId": API_ID,
        },
    }


def response_json(response: dict[str, Any]) -> Any:
    body = response["body"]
    raw = base64.b64decode(body) if response.get("isBase64Encoded") else body.encode()
    return json.loads(raw)


def header(response: dict[str, Any], name: str) -> str | None:
    for source in (response.get("headers") or {}, response.get("multiValueHeaders") or {}):
        for key, value in source.items():
            if key.lower() == name.lower():
                return value[0] if isinstance(value, list) else str(value)
    return None
