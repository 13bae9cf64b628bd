"""The AWS emulator: moto's server mode on a loopback port, one per pytest run.

boto3 talks real HTTP to it (no in-process patching), so what the tests exercise is what a
client does against AWS, minus the gaps listed in docs/deploy-aws.md. Shared by ``tests/aws``
and the ``dynamodb`` backend of ``tests/contract`` (imported by ``tests/conftest.py``).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

import pytest

REGION = "us-east-1"


@pytest.fixture(scope="session")
def aws_endpoint() -> Iterator[str]:
    server_module = pytest.importorskip("moto.server", reason="moto[server] (the dev extra) is not installed")
    # werkzeug logs one line per request; the emulator's chatter would drown the test output.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = _serialised_server(server_module)
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


def _serialised_server(server_module: Any) -> Any:
    """moto's ThreadedMotoServer, with one request inside moto at a time.

    moto is not thread-safe: TransactWriteItems deep-copies the tables it touches while other
    request threads change them ("dictionary changed size during iteration", answered 500).
    AWS serialises nothing of the sort, but the backend's correctness never depends on two
    requests running inside the emulator at once; HTTP connections stay concurrent."""
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    lock = threading.Lock()

    class Server(server_module.ThreadedMotoServer):  # type: ignore[misc]
        def _server_entry(self) -> None:
            app = DomainDispatcherApplication(create_backend_app)

            def serialised(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
                with lock:
                    return list(app(environ, start_response))

            self._server = make_server(
                self._ip_address, self._port, serialised, True, request_handler=MotoRequestHandler
            )
            self._server_ready_event.set()
            self._server.serve_forever()

    return Server(ip_address="127.0.0.1", port=0, verbose=False)


def new_prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}"
