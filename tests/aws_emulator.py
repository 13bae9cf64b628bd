"""The AWS emulator: moto's server mode on a loopback port, one per pytest run.

boto3 talks real HTTP to it (no in-process patching), so what the tests exercise is what a
client does against AWS, minus the gaps listed in docs/deploy-aws.md. Shared by ``tests/aws``
and the ``dynamodb`` backend of ``tests/contract`` (imported by ``tests/conftest.py``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

REGION = "us-east-1"


@pytest.fixture(scope="session")
def aws_endpoint() -> Iterator[str]:
    pytest.importorskip("moto.server", reason="moto[server] (the dev extra) is not installed")
    from triggers_api.aws.local import start_emulator

    server, endpoint = start_emulator(0)  # one request inside moto at a time (moto is not thread-safe)
    try:
        yield endpoint
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


def new_prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}"
