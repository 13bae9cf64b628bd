"""Forwarded headers count only from ``TRIGGERS_TRUSTED_PROXIES``: right behind a proxy, unspoofable."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import make_settings, new_key
from triggers_api.app import create_app
from triggers_api.edge import TrustedProxies


@pytest.fixture
async def proxied_app(tmp_path: Path) -> AsyncIterator[FastAPI]:
    application = create_app(make_settings(tmp_path, trusted_proxies="10.0.0.0/8, ::1/128"))
    async with application.router.lifespan_context(application):
        yield application


async def _source_ip(app: FastAPI, peer: str, headers: dict[str, str]) -> tuple[str, httpx.Response]:
    key = await new_key(app)
    transport = httpx.ASGITransport(app=app, client=(peer, 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        stored = await c.post(
            "/v1/events", json={"event_type": "a.b", "payload": {}}, headers={"X-API-Key": key, **headers}
        )
        assert stored.status_code == 201, stored.text
        event = await c.get(f"/v1/events/{stored.json()['event_id']}", headers={"X-API-Key": key})
        session = await c.post("/v1/auth/session", json={"api_key": key}, headers=headers)
    return str(event.json()["metadata"]["source_ip"]), session


async def test_a_trusted_proxy_sets_the_client_address_and_scheme(proxied_app: FastAPI) -> None:
    ip, session = await _source_ip(
        proxied_app, "10.1.2.3", {"X-Forwarded-For": "198.51.100.9", "X-Forwarded-Proto": "https"}
    )
    assert ip == "198.51.100.9"
    assert session.status_code == 200, session.text
    assert all("Secure" in c for c in session.headers.get_list("set-cookie"))


async def test_an_untrusted_client_cannot_spoof_its_address_or_scheme(proxied_app: FastAPI) -> None:
    ip, session = await _source_ip(
        proxied_app, "203.0.113.7", {"X-Forwarded-For": "198.51.100.9", "X-Forwarded-Proto": "https"}
    )
    assert ip == "203.0.113.7"
    assert session.status_code == 200
    assert not any("Secure" in c for c in session.headers.get_list("set-cookie"))


async def test_by_default_no_proxy_is_trusted(tmp_path: Path) -> None:
    application = create_app(make_settings(tmp_path))
    async with application.router.lifespan_context(application):
        ip, _ = await _source_ip(application, "10.1.2.3", {"X-Forwarded-For": "198.51.100.9"})
    assert ip == "10.1.2.3"


def test_the_client_is_the_rightmost_address_no_trusted_proxy_added() -> None:
    proxies = TrustedProxies("10.0.0.0/8,192.168.0.0/16")

    def client_of(peer: str, forwarded: str) -> str:
        scope = {"client": (peer, 1), "headers": [(b"x-forwarded-for", forwarded.encode())]}
        proxies.apply(scope)
        return str(scope["client"][0])

    # a client prepending a fake address gains nothing: the proxy appended the real one
    assert client_of("10.0.0.1", "6.6.6.6, 198.51.100.9") == "198.51.100.9"
    # two trusted hops (load balancer, then nginx) are skipped
    assert client_of("10.0.0.1", "198.51.100.9, 192.168.1.5") == "198.51.100.9"
    assert client_of("10.0.0.1", "not-an-ip") == "10.0.0.1"
    assert client_of("::ffff:10.0.0.1", "198.51.100.9") == "198.51.100.9"  # IPv4-mapped peer
    assert not TrustedProxies("")


def test_a_malformed_trusted_proxies_setting_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not an IP network"):
        make_settings(tmp_path, trusted_proxies="10.0.0.0/8,example.com")
