"""``make aws-local``: the AWS deployment on this machine, no AWS account needed.

Starts moto's server (the AWS emulator of the dev dependencies) on 127.0.0.1, creates the tables
and queues of ``storage/dynamodb/schema.py`` for a prefix (``migrate``) and the archive bucket,
then runs ``triggers-api serve`` with ``TRIGGERS_DATABASE_URL=dynamodb://<prefix>?region=...&
endpoint_url=http://127.0.0.1:<port>`` and ``TRIGGERS_ARCHIVE_URL=s3://<bucket>/archive``. The
emulator lives as long as this process; its data goes with it.

``--emulator-only`` stops after the emulator is ready: it prints the environment to use with
``triggers-api`` commands of your own and waits for Ctrl-C.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterable, Sequence
from typing import Any

REGION = "us-east-1"


def start_emulator(port: int) -> tuple[Any, str]:
    """moto's server on 127.0.0.1:``port`` (0: any free port), one DynamoDB request inside moto at a time.

    moto is not thread-safe: TransactWriteItems deep-copies the tables it touches while other
    request threads change them ("dictionary changed size during iteration", answered 500). AWS
    serialises nothing of the sort, but the backend's correctness never depends on two requests
    running inside the emulator at once; HTTP connections stay concurrent. Shared by
    ``make aws-local``, ``make bench`` (the ``ours-aws`` target) and the tests."""
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from moto.server import ThreadedMotoServer
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    lock = threading.Lock()

    class Server(ThreadedMotoServer):
        def _server_entry(self) -> None:
            app = DomainDispatcherApplication(create_backend_app)

            def serialised(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
                if not str(environ.get("HTTP_X_AMZ_TARGET", "")).startswith("DynamoDB"):
                    # SQS and S3 run concurrently: a long-polling ReceiveMessage holds its
                    # thread for up to 20 s and must not hold every other call with it.
                    return app(environ, start_response)  # type: ignore[no-any-return]
                with lock:
                    return list(app(environ, start_response))

            self._server = make_server(
                self._ip_address, self._port, serialised, True, request_handler=MotoRequestHandler
            )
            self._server_ready_event.set()
            self._server.serve_forever()

    server = Server(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    host, bound = server.get_host_and_port()
    return server, f"http://{host}:{bound}"


def prepare(endpoint: str, prefix: str, bucket: str) -> None:
    """Tables, queues (idempotent migrate) and the archive bucket."""
    import boto3

    from triggers_api.storage.dynamodb.migrate import connect, migrate

    dynamodb, sqs = connect(REGION, endpoint)
    migrate(dynamodb, sqs, prefix, poll_s=0.05)
    s3 = boto3.session.Session(region_name=REGION).client("s3", endpoint_url=endpoint)
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    if bucket not in existing:
        s3.create_bucket(Bucket=bucket)


def environment(endpoint: str, prefix: str, bucket: str) -> dict[str, str]:
    return {
        "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "local"),
        "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "local"),
        "AWS_DEFAULT_REGION": REGION,
        "TRIGGERS_DATABASE_URL": f"dynamodb://{prefix}?region={REGION}&endpoint_url={endpoint}",
        "TRIGGERS_ARCHIVE_URL": f"s3://{bucket}/archive",
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The AWS deployment on an emulator (moto's server)")
    parser.add_argument("--port", type=int, default=4566, help="emulator port on 127.0.0.1 (0: any free)")
    parser.add_argument("--prefix", default="triggers-local", help="table and queue name prefix")
    parser.add_argument("--emulator-only", action="store_true", help="start the emulator, do not serve")
    parser.add_argument("serve_args", nargs="*", help="passed to triggers-api serve (after --)")
    args = parser.parse_args(argv)

    # The emulator accepts any credentials; never send a developer's real ones to it.
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        os.environ.pop(name, None)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    os.environ["AWS_DEFAULT_REGION"] = REGION

    server, endpoint = start_emulator(args.port)
    bucket = f"{args.prefix}-archive"
    try:
        prepare(endpoint, args.prefix, bucket)
        env = environment(endpoint, args.prefix, bucket)
        print(f"aws-local: emulator ready at {endpoint}", flush=True)  # noqa: T201
        for name, value in env.items():
            print(f"  export {name}='{value}'", flush=True)  # noqa: T201
        if args.emulator_only:
            stop = threading.Event()
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
            try:
                stop.wait()
            except KeyboardInterrupt:
                pass
            return 0
        command = [sys.executable, "-m", "triggers_api.cli", "serve", *args.serve_args]
        return subprocess.call(command, env={**os.environ, **env})
    finally:
        server.stop()


if __name__ == "__main__":
    raise SystemExit(main())
