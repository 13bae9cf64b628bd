"""``make aws-local`` (aws/local.py): the emulator part, in a subprocess as a person runs it.

Serving on it waits for the DynamoDB storage backend; this checks what exists before it: moto's
server on loopback, the tables and queues of schema.py, the archive bucket, the environment.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from typing import Any

from tests.conftest import free_port
from triggers_api.storage.dynamodb import schema


def test_emulator_only_creates_the_tables_queues_and_bucket(aws_env: None) -> None:
    import boto3

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "triggers_api.aws.local",
            "--emulator-only",
            "--port",
            str(port),
            "--prefix",
            "tl",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        lines: list[str] = []
        for line in process.stdout:
            lines.append(line.strip())
            if line.strip().startswith("export TRIGGERS_ARCHIVE_URL"):
                break
        assert lines[0] == f"aws-local: emulator ready at http://127.0.0.1:{port}", lines
        exported = dict(re.findall(r"export (\w+)='([^']*)'", "\n".join(lines)))
        endpoint = f"http://127.0.0.1:{port}"
        assert exported["TRIGGERS_DATABASE_URL"] == f"dynamodb://tl?region=us-east-1&endpoint_url={endpoint}"
        assert exported["TRIGGERS_ARCHIVE_URL"] == "s3://tl-archive/archive"

        session = boto3.session.Session(region_name="us-east-1")
        dynamodb: Any = session.client("dynamodb", endpoint_url=endpoint)
        assert set(dynamodb.list_tables()["TableNames"]) == {t.name("tl") for t in schema.TABLES}
        queues = session.client("sqs", endpoint_url=endpoint).list_queues()["QueueUrls"]
        assert {q.rsplit("/", 1)[1] for q in queues} == {q.name("tl") for q in schema.QUEUES}
        buckets = session.client("s3", endpoint_url=endpoint).list_buckets()["Buckets"]
        assert [b["Name"] for b in buckets] == ["tl-archive"]
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
