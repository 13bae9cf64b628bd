"""``triggers-api serve``: one banner when ready; JSON log lines, or console lines when asked."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import orjson
import pytest

from tests.conftest import make_settings, start_server
from triggers_api.logs import wants_json


def test_serve_prints_one_banner_with_the_urls_and_the_new_key(tmp_path: Path) -> None:
    server = start_server(tmp_path, extra_env={"TRIGGERS_LOG_LEVEL": "INFO"})
    try:
        assert httpx.get(f"{server.url}/v1/health", timeout=5).status_code == 200
    finally:
        server.stop()
    log = server.log_path.read_text()
    assert log.count("is ready") == 1
    for url in ("/v1", "/dashboard", "/docs", "/v1/health"):
        assert f"{server.url}{url}" in log, url
    assert server.api_key and log.count(server.api_key) >= 1 and "shown ONCE" in log
    # not a terminal: JSON lines (the access log of the request above among them)
    lines = [orjson.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert any(line.get("event") == "request" and line.get("path") == "/v1/health" for line in lines)


def test_a_restart_prints_the_banner_without_a_key_and_console_logs_on_request(tmp_path: Path) -> None:
    first = start_server(tmp_path)
    first.stop()
    server = start_server(
        tmp_path, extra_env={"TRIGGERS_LOG_LEVEL": "INFO", "TRIGGERS_LOG_FORMAT": "console"}
    )
    try:
        httpx.get(f"{server.url}/v1/health/live", timeout=5)
    finally:
        server.stop()
    log = server.log_path.read_text()
    assert log.count("is ready") == 1 and "shown ONCE" not in log
    access = [line for line in log.splitlines() if "path=/v1/health/live" in line]
    assert access and not access[0].startswith("{") and "request" in access[0]


def test_of_several_processes_started_together_one_announces(tmp_path: Path) -> None:
    # `serve --workers N` starts N processes with the same settings: one banner between them
    from triggers_api.app import _first_to_announce, build_services

    settings = make_settings(tmp_path, public_url="http://127.0.0.1:1")
    first, second, later = (build_services(settings) for _ in range(3))
    assert _first_to_announce(first) is True
    assert _first_to_announce(second) is False
    first.extras.pop("banner_lock").close()  # the announcing process ended: a restart announces
    assert _first_to_announce(later) is True
    later.extras.pop("banner_lock").close()


def test_auto_format_is_console_on_a_terminal_and_json_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stderr", Terminal())
    assert wants_json("auto") is False and wants_json("json") is True
    monkeypatch.setattr("sys.stderr", io.StringIO())
    assert wants_json("auto") is True and wants_json("console") is False
