"""The AWS emulator: moto's server mode on a loopback port, one per pytest run.

boto3 talks real HTTP to it (no in-process patching), so what the tests exercise is what a
client does against AWS, minus the gaps listed in docs/deploy-aws.md. Shared by ``tests/aws``
and the ``dynamodb`` backend of ``tests/contract`` (imported by ``tests/conftest.py``).
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest

REGION = "us-east-1"


@pytest.fixture(scope="session")
def aws_endpoint() -> str:
    return _shared_endpoint()


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


#: What ``TRIGGERS_TEST_BACKEND=dynamodb`` gives each test's database (the contract suite's values):
#: fewer DueIndex shards, since a claim queries each and the emulator answers one Query at a time,
#: and a shorter stream settle window.
TEST_DUE_SHARDS = 8
TEST_STREAM_SETTLE_S = 1.0


_EMULATOR = """
import sys
from triggers_api.aws.local import start_emulator
server, endpoint = start_emulator(0)
print(endpoint, flush=True)
sys.stdin.read()  # until the test run's end closes the pipe (or the run dies)
server.stop()
"""


@functools.cache
def _shared_endpoint() -> str:
    """The run's emulator, started on first use in a process of its own (moto holds the GIL for
    most of each request: in the test process it would slow every other thread of the run). It
    stops when the run ends: the pipe it waits on closes, however the run ends.

    Not only a fixture: ``make_settings`` and ``start_server`` are plain functions. The fake
    credentials go into ``os.environ`` so servers started as subprocesses use them too."""
    pytest.importorskip("moto.server", reason="moto[server] (the dev extra) is not installed")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        os.environ.pop(name, None)
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        }
    )
    process = subprocess.Popen(
        [sys.executable, "-c", _EMULATOR],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stdin is not None
    endpoint = process.stdout.readline().strip()
    if not endpoint.startswith("http://"):
        process.kill()
        raise RuntimeError(f"the AWS emulator did not start (exit {process.wait()})")

    def stop() -> None:
        assert process.stdin is not None
        process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()

    atexit.register(stop)
    return endpoint


def dynamodb_url_for(key: str) -> str:
    """The same key (test directory and name) gives the same prefix, as it gives the same SQLite file."""
    prefix = "t" + hashlib.sha1(key.encode()).hexdigest()[:12]
    return (
        f"dynamodb://{prefix}?region={REGION}&endpoint_url={_shared_endpoint()}"
        f"&due_shards={TEST_DUE_SHARDS}&stream_settle_s={TEST_STREAM_SETTLE_S}"
    )
