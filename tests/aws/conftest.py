"""The AWS emulator: moto's server mode on a loopback port, one per pytest run.

boto3 talks real HTTP to it (no in-process patching), so what these tests exercise is what a
client does against AWS, minus the gaps listed in docs/deploy-aws.md. Each test gets its own name
prefix, so tests never see each other's tables or queues.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from triggers_api.storage.dynamodb.migrate import Report

REGION = "us-east-1"


@pytest.fixture(scope="session")
def aws_endpoint() -> Iterator[str]:
    server_module = pytest.importorskip("moto.server", reason="moto[server] (the dev extra) is not installed")
    # werkzeug logs one line per request; the emulator's chatter would drown the test output.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="session")
def aws_env() -> Iterator[None]:
    """Credentials the emulator accepts, and none of the developer's real ones."""
    with pytest.MonkeyPatch.context() as env:
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
            env.delenv(name, raising=False)
        env.setenv("AWS_ACCESS_KEY_ID", "testing")
        env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        env.setenv("AWS_DEFAULT_REGION", REGION)
        env.setenv("AWS_CONFIG_FILE", "/dev/null")
        env.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        yield


@pytest.fixture(scope="session")
def aws_clients(aws_endpoint: str, aws_env: None) -> tuple[Any, Any]:
    from triggers_api.storage.dynamodb.migrate import connect

    return connect(REGION, aws_endpoint)


def new_prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def prefix() -> str:
    """A fresh name prefix: nothing exists under it yet."""
    return new_prefix()


@dataclass(frozen=True)
class Migrated:
    dynamodb: Any
    sqs: Any
    prefix: str
    report: Report


@pytest.fixture(scope="session")
def migrated(aws_clients: tuple[Any, Any]) -> Migrated:
    """The whole schema, created once per run (each create costs seconds on a loaded machine);
    tests using it write under ids of their own and leave the definitions as they found them."""
    from triggers_api.storage.dynamodb.migrate import migrate

    dynamodb, sqs = aws_clients
    prefix = new_prefix()
    return Migrated(dynamodb, sqs, prefix, migrate(dynamodb, sqs, prefix, poll_s=0.01))
