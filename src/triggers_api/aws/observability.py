"""What the Lambda functions tell CloudWatch and X-Ray (Powertools Metrics and Tracer), named once.

- **Service names** are Terraform's: ``POWERTOOLS_SERVICE_NAME = triggers-api-<function>``
  (``modules/lambda``), which is also the ``service`` dimension the alarms and the dashboard of
  ``modules/monitoring`` select on. ``tests/aws/test_observability.py`` compares the metric names
  and dimensions the handlers emit with the ones the Terraform reads.
- **Metrics** are CloudWatch EMF: ``log_metrics`` prints one JSON document per invocation to
  stdout and CloudWatch Logs turns it into metrics (no API call, nothing on the request's path).
  Namespace: ``POWERTOOLS_METRICS_NAMESPACE`` (Terraform sets ``TriggersApi/<environment>``),
  else :data:`DEFAULT_NAMESPACE`. Every invocation emits its counters, zeros included, so a Sum
  is a true count and Powertools never warns about an empty flush.
- **Tracer** (X-Ray) switches itself off outside Lambda (no ``LAMBDA_TASK_ROOT``: tests,
  ``make aws-local``) and with ``POWERTOOLS_TRACE_DISABLED=1``. In Lambda it patches **botocore
  only**: the storage calls boto3 on a thread pool, and X-Ray's Lambda context gives each thread
  its own view of the invocation's segment, so every DynamoDB/SQS/S3 call is a subsegment. httpx
  is not patched: a batch's pushes run concurrently on one thread, where X-Ray's per-thread
  subsegment stack would nest and close them wrongly (and the trace header would go to every
  destination); the worker's ``## deliver_batch`` subsegment spans them instead. Handler
  responses are never captured as trace metadata (they carry payloads and key ids).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, Final

from aws_lambda_powertools import Logger, Metrics, Tracer

LambdaHandler = Callable[[dict[str, Any], Any], Any]

NAMESPACE_ENV: Final = "POWERTOOLS_METRICS_NAMESPACE"
DEFAULT_NAMESPACE: Final = "TriggersApi"

#: The four functions, by the name Terraform gives them (``modules/lambda``: ``local.functions``).
FUNCTIONS: Final = ("api", "authorizer", "worker", "archiver")

# -- metric names (unit Count); the alarms and dashboard of modules/monitoring read some of them --
EVENTS_INGESTED: Final = "EventsIngested"  # api: events stored by this invocation
DELIVERY_ATTEMPTS: Final = "DeliveryAttempts"  # worker: pushes made (delivered + retry + failed)
DELIVERY_SUCCESSES: Final = "DeliverySuccesses"  # worker: pushes the destination accepted
DELIVERY_FAILURES: Final = "DeliveryFailures"  # worker: pushes that did not deliver (retries + dead letters)
DELIVERY_RETRIES: Final = "DeliveryRetries"  # worker: a retry was scheduled (message handed back later)
DELIVERY_DEAD_LETTERS: Final = "DeliveryDeadLetters"  # worker: refused or retries exhausted
DELIVERIES_SWEPT: Final = "DeliveriesSwept"  # worker's schedule: messages sent again by the sweep
AUTHORIZER_ALLOWED: Final = "AuthorizerAllowed"
AUTHORIZER_REFUSED: Final = "AuthorizerRefused"
EVENTS_ARCHIVED: Final = "EventsArchived"  # archiver: TTL removals written to the archive
ARCHIVE_OBJECTS: Final = "ArchiveObjectsWritten"
#: Powertools' own, with dimensions ``function_name`` and ``service`` (``capture_cold_start_metric``).
COLD_START: Final = "ColdStart"


def service_name(function: str) -> str:
    """``api`` -> ``triggers-api-api``: Terraform's POWERTOOLS_SERVICE_NAME for that function."""
    if function not in FUNCTIONS:
        raise ValueError(f"unknown function {function!r}")
    return f"triggers-api-{function}"


def metrics_for(function: str) -> Metrics:
    return Metrics(
        service=service_name(function), namespace=os.environ.get(NAMESPACE_ENV) or DEFAULT_NAMESPACE
    )


def tracer_for(function: str) -> Tracer:
    return Tracer(service=service_name(function), auto_patch=True, patch_modules=["botocore"])


def instrument(
    inner: LambdaHandler,
    *,
    logger: Logger,
    tracer: Tracer,
    metrics: Metrics,
    correlation_id_path: str | None = None,
) -> LambdaHandler:
    """``inner`` wrapped as every function wants it: the logger's Lambda context (and the
    correlation id), an X-Ray subsegment ``## handler`` without the response, EMF flushed at the
    end with the cold start."""

    def handler(event: dict[str, Any], context: Any) -> Any:
        return inner(event, context)

    measured = metrics.log_metrics(handler, capture_cold_start_metric=True)
    traced = tracer.capture_lambda_handler(measured, capture_response=False)
    logged: LambdaHandler = logger.inject_lambda_context(
        traced, log_event=False, correlation_id_path=correlation_id_path
    )
    return logged
