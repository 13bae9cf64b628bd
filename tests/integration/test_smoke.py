from __future__ import annotations

import httpx

from tests.conftest import LiveServer


def test_make_run_path_prints_a_bootstrap_key_that_ingests(live_server: LiveServer) -> None:
    assert live_server.api_key.startswith("tk_")
    response = httpx.post(
        f"{live_server.url}/v1/events",
        headers={"X-API-Key": live_server.api_key},
        content=b'{"event_type":"user.created","payload":{"id":1}}',
    )
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "received"
