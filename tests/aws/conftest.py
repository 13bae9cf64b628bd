"""AWS fixtures on the emulator (``tests/aws_emulator.py``: moto's server, one per pytest run).

boto3 talks real HTTP to it (no in-process patching), so what these tests exercise is what a
client does against AWS, minus the gaps listed in docs/deploy-aws.md. Each test gets its own name
prefix, so tests never see each other's tables or queues.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from tests.aws_emulator import REGION, new_prefix
from triggers_api.storage.dynamodb.migrate import Report


@pytest.fixture(scope="session")
def aws_clients(aws_endpoint: str, aws_env: None) -> tuple[Any, Any]:
    from triggers_api.storage.dynamodb.migrate import connect

    return connect(REGION, aws_endpoint)


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
