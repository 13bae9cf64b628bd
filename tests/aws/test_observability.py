"""The functions' metrics and traces (``aws/observability.py``) against what the Terraform reads.

The values each handler emits are checked where the handler is driven (``test_delivery_queue``,
``test_lambda_api``, ``test_lambda_archiver``); here: the names the Terraform alarms and graphs
on are the code's, the service names are Terraform's ``POWERTOOLS_SERVICE_NAME``, the namespace
follows ``POWERTOOLS_METRICS_NAMESPACE``, Tracer stays off in tests, and, in a Lambda-like
process, the traces really reach an X-Ray daemon (a UDP socket of this test).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.aws import emf
from tests.aws.conftest import REGION
from tests.aws.test_terraform import MODULES, _directory, _resources
from triggers_api.aws import lambda_api, lambda_archiver, lambda_authorizer, lambda_worker
from triggers_api.aws import observability as obs
from triggers_api.storage.dynamodb import schema

ROOT = Path(__file__).resolve().parents[2]


def _lambda_locals() -> dict[str, Any]:
    return {k: v for block in _directory(MODULES / "lambda")["locals"] for k, v in block.items()}


def test_service_names_and_the_namespace_variable_are_the_terraforms() -> None:
    assert set(_lambda_locals()["functions"]) == set(obs.FUNCTIONS)
    (function,) = _resources(MODULES / "lambda", "aws_lambda_function").values()
    variables = str(function["environment"][0]["variables"])
    assert 'POWERTOOLS_SERVICE_NAME = "triggers-api-${each.key}"' in variables
    for name in obs.FUNCTIONS:
        assert obs.service_name(name) == f"triggers-api-{name}"
    assert _lambda_locals()["environment"][obs.NAMESPACE_ENV] == "${var.metrics_namespace}"
    handlers = {"api": lambda_api, "authorizer": lambda_authorizer, "worker": lambda_worker}
    for name, module in {**handlers, "archiver": lambda_archiver}.items():
        assert module.SERVICE == obs.service_name(name)
        assert module.tracer.service == module.metrics.provider.service == module.SERVICE


def test_every_metric_the_terraform_reads_is_one_the_code_emits() -> None:
    """By name and dimensions; the values are checked where each handler is driven."""
    emitted_by_code = {  # name -> the service whose handler emits it
        obs.EVENTS_INGESTED: "api",
        obs.COLD_START: "api",
        obs.DELIVERY_ATTEMPTS: "worker",
        obs.DELIVERY_FAILURES: "worker",
        obs.DELIVERY_RETRIES: "worker",
    }
    wanted = emf.terraform_metrics()
    assert {name for name, _ in wanted} == set(emitted_by_code)
    for name, dims in wanted:
        values = dict(dims)
        assert values["service"] == obs.service_name(emitted_by_code[name]), name
        expected = {"service", "function_name"} if name == obs.COLD_START else {"service"}
        assert set(values) == expected, name  # Powertools' ColdStart: function_name + service


def test_the_namespace_follows_powertools_metrics_namespace(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(obs.NAMESPACE_ENV, "TriggersApi/staging")
    metrics = obs.metrics_for("archiver")
    metrics.add_metric(name=obs.EVENTS_ARCHIVED, unit="Count", value=2)
    capsys.readouterr()
    metrics.flush_metrics()
    (found,) = emf.emitted(capsys.readouterr().out)
    assert (found.namespace, found.name, found.values) == ("TriggersApi/staging", "EventsArchived", (2.0,))
    monkeypatch.delenv(obs.NAMESPACE_ENV)
    assert obs.metrics_for("archiver").provider.namespace == obs.DEFAULT_NAMESPACE


def test_tracer_is_off_outside_lambda() -> None:
    assert "LAMBDA_TASK_ROOT" not in os.environ
    for module in (lambda_api, lambda_authorizer, lambda_worker, lambda_archiver):
        assert module.tracer.disabled


# -- X-Ray, for real: a Lambda-like process sending to a daemon that is this test's UDP socket -----
TRACE_SCRIPT = """
import json, sys
from triggers_api.aws import lambda_archiver
from tests.aws.lambda_events import LambdaContext
print(json.dumps(lambda_archiver.handler(json.loads(sys.argv[1]), LambdaContext(function_name="t-archiver"))))
"""


def _ttl_removal(prefix: str) -> dict[str, Any]:
    from triggers_api.storage.base import EventRecord
    from triggers_api.storage.dynamodb.core import event_item

    record = EventRecord(
        event_id=str(uuid.uuid4()),
        user_id="trace-user",
        event_type="a.b",
        payload=b'{"n":1}',
        status="delivered",
        ts_us=1_767_225_600_000_000,
        expires_at=1_767_312_000,
        metadata=b"{}",
    )
    table = schema.EVENTS.name(prefix)
    return {
        "eventID": uuid.uuid4().hex,
        "eventName": "REMOVE",
        "eventSource": "aws:dynamodb",
        "awsRegion": REGION,
        "dynamodb": {"OldImage": event_item(record, schema.user_shard("trace-user", 0), position=1)},
        "userIdentity": {"type": "Service", "principalId": "dynamodb.amazonaws.com"},
        "eventSourceARN": f"arn:aws:dynamodb:{REGION}:123456789012:table/{table}/stream/2026",
    }


def test_in_lambda_the_handler_and_its_s3_call_reach_xray(aws_endpoint: str, aws_env: None) -> None:
    import boto3

    bucket = f"trace-{uuid.uuid4().hex[:12]}"
    boto3.session.Session(region_name=REGION).client("s3", endpoint_url=aws_endpoint).create_bucket(
        Bucket=bucket
    )
    daemon = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    daemon.bind(("127.0.0.1", 0))
    daemon.settimeout(5)
    trace_id = "1-6762a5c0-0123456789abcdef01234567"
    env = {
        **os.environ,
        "LAMBDA_TASK_ROOT": str(ROOT),  # what makes Powertools and the X-Ray SDK think "Lambda"
        "_X_AMZN_TRACE_ID": f"Root={trace_id};Parent=53995c3f42cd8ad8;Sampled=1",
        "AWS_XRAY_DAEMON_ADDRESS": f"127.0.0.1:{daemon.getsockname()[1]}",
        "AWS_ENDPOINT_URL": aws_endpoint,
        "TRIGGERS_ARCHIVE_URL": f"s3://{bucket}/traced",
        "PYTHONPATH": str(ROOT),
    }
    env.pop("POWERTOOLS_TRACE_DISABLED", None)
    try:
        done = subprocess.run(
            [sys.executable, "-c", TRACE_SCRIPT, json.dumps({"Records": [_ttl_removal("p")]})],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            cwd=ROOT,
        )
        assert done.returncode == 0, done.stderr
        documents = []
        daemon.settimeout(0.5)  # every datagram was sent before the process exited
        while True:
            try:
                datagram = daemon.recv(65536)
            except TimeoutError:
                break
            header, _, body = datagram.decode().partition("\n")
            assert json.loads(header) == {"format": "json", "version": 1}
            documents.append(json.loads(body))
    finally:
        daemon.close()
    assert '"archived": 1' in done.stdout.splitlines()[-1]
    by_name = {d["name"]: d for d in documents}
    write = "## triggers_api.aws.lambda_archiver.Archiver.write_archive"  # capture_method's name
    assert {"## handler", write, "s3"} <= set(by_name), sorted(by_name)
    assert all(d["trace_id"] == trace_id for d in documents)
    handler = by_name["## handler"]
    assert handler["annotations"]["Service"] == "triggers-api-archiver"
    assert handler["annotations"]["ColdStart"] is True
    assert by_name["s3"]["aws"]["operation"] == "PutObject"
    # responses are not trace metadata (they would carry payloads and key ids)
    assert "handler response" not in json.dumps(handler.get("metadata", {}))
