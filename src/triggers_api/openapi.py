"""Make the served OpenAPI tell the truth: our error shape for every status, no FastAPI 422 stub."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import FastAPI, Path
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

_DESCRIPTIONS = {
    400: "Invalid request (malformed JSON, failed validation, bad parameter)",
    401: "Missing, unknown, revoked or expired API key",
    403: "The API key lacks the required scope",
    404: "Not found (also: another user's resource)",
    405: "Method not allowed",
    409: "A request with this Idempotency-Key is still in progress",
    410: "The event was already acknowledged",
    413: "Request body too large",
    415: "Unsupported Content-Type",
    422: "Idempotency-Key reused with a different request",
    429: "Rate limit exceeded (see Retry-After)",
    500: "Internal error",
    501: (
        "Not served on this deployment: behind API Gateway (the AWS deployment) responses are "
        "buffered, so the stream answers STREAM_UNAVAILABLE; long-poll GET /v1/inbox?wait=25 instead"
    ),
    503: "Service unavailable",
}

EventIdPath = Annotated[str, Path(description="The event's UUID", json_schema_extra={"format": "uuid"})]

#: Statuses any authenticated operation may answer.
AUTHED = (400, 401, 403, 404, 405, 413, 429, 500)


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"description": _DESCRIPTIONS[code], "model": ErrorResponse} for code in sorted(set(codes))}


class ErrorBody(BaseModel):
    code: str
    message: str
    details: dict[str, Any]
    timestamp: str
    request_id: str


class ErrorResponse(BaseModel):
    """The one error shape of the API (architecture document, section 17.2)."""

    error: ErrorBody


def install_openapi(app: FastAPI, extra_models: list[type[BaseModel]]) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
            servers=app.servers,
        )
        components = schema.setdefault("components", {})
        schemas = components.setdefault("schemas", {})
        for model in extra_models:
            model_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, sub in model_schema.pop("$defs", {}).items():
                schemas.setdefault(name, sub)
            schemas[model.__name__] = model_schema
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        for path_item in schema.get("paths", {}).values():
            for operation in path_item.values():
                if not isinstance(operation, dict) or "responses" not in operation:
                    continue
                responses = operation["responses"]
                stub = responses.get("422")
                if stub and "HTTPValidationError" in str(stub):
                    del responses["422"]
        components["securitySchemes"] = {
            "ApiKeyAuth": {"type": "apiKey", "in": "header", "name": "X-API-Key"}
        }
        schema["security"] = [{"ApiKeyAuth": []}]
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
