"""deploy/nginx/triggers-api.conf, run by real nginx (Debian's package) in front of the service.

The file is used as shipped, with only what a host changes rewritten: the ports, the certificate
(a fresh self-signed one) and the upstream's port. One line is added: ``proxy_bind 127.0.0.2``,
so that nginx reaches the service from an address of its own (on one loopback, client, proxy and
service would otherwise all be 127.0.0.1). The service trusts 127.0.0.2/32 only; the test's client
connects from 127.0.0.3.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import LiveServer, free_port, start_server
from tests.deploy.tls import self_signed

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "deploy" / "nginx" / "triggers-api.conf"
PROXY_IP, CLIENT_IP = "127.0.0.2", "127.0.0.3"


def nginx_binary() -> str | None:
    return shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None)


def rewrite(conf: str, *, upstream: int, http: int, https: int, cert: Path, key: Path) -> str:
    """The shipped file with this host's ports and certificate; each rewrite must apply once."""
    rules = [
        (r"server 127\.0\.0\.1:8000;", f"server 127.0.0.1:{upstream};"),
        (r"listen 80;", f"listen 127.0.0.1:{http};"),
        (r"listen 443 ssl http2;", f"listen 127.0.0.1:{https} ssl http2;"),
        (r"ssl_certificate +/\S+;", f"ssl_certificate {cert};"),
        (r"ssl_certificate_key +/\S+;", f"ssl_certificate_key {key};"),
        (r"proxy_http_version 1\.1;", f"proxy_http_version 1.1;\n    proxy_bind {PROXY_IP};"),
    ]
    for pattern, replacement in rules:
        conf, count = re.subn(pattern, replacement, conf)
        assert count == 1, f"{pattern!r} matched {count} times in {CONF.name}"
    conf, ipv6 = re.subn(r"\n\s*listen \[::\]:\d+[^\n]*;", "", conf)  # no IPv6 on every test box
    assert ipv6 == 2
    return conf


@dataclass
class Proxied:
    service: LiveServer
    https: str
    http: str


@pytest.fixture
def proxied(tmp_path: Path) -> Iterator[Proxied]:
    binary = nginx_binary()
    if binary is None:
        pytest.skip("nginx is not installed (Debian: apt-get install nginx-light; `make bench-tools`)")
    service = start_server(
        tmp_path, extra_env={"TRIGGERS_TRUSTED_PROXIES": f"{PROXY_IP}/32", "TRIGGERS_STREAM_HEARTBEAT": "1"}
    )
    root = tmp_path / "nginx"
    root.mkdir()
    cert, key = self_signed(root)
    http, https = free_port(), free_port()
    site = root / "triggers-api.conf"
    site.write_text(
        rewrite(CONF.read_text(), upstream=service.port, http=http, https=https, cert=cert, key=key)
    )
    temp = "".join(
        f"{kind}_temp_path {root / kind};\n" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    main = root / "nginx.conf"
    main.write_text(
        ("user root;\n" if os.geteuid() == 0 else "")
        + f"daemon off;\nworker_processes 1;\npid {root / 'nginx.pid'};\nerror_log {root / 'error.log'};\n"
        + "events { worker_connections 256; }\n"
        + f"http {{\naccess_log off;\n{temp}include {site};\n}}\n"
    )
    process = subprocess.Popen(
        [binary, "-p", str(root), "-e", str(root / "error.log"), "-c", str(main)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            if process.poll() is not None:
                raise RuntimeError(
                    f"nginx exited: {process.stderr.read().decode() if process.stderr else ''}"
                )
            try:
                httpx.get(f"http://127.0.0.1:{http}/", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield Proxied(service, f"https://127.0.0.1:{https}", f"http://127.0.0.1:{http}")
    finally:
        process.terminate()
        process.wait(timeout=10)
        service.stop()


def client(base_url: str, source: str = CLIENT_IP) -> httpx.Client:
    transport = httpx.HTTPTransport(local_address=source, verify=False)
    return httpx.Client(transport=transport, base_url=base_url, timeout=10)


def source_ip(c: httpx.Client, key: str, headers: dict[str, str] | None = None) -> str:
    stored = c.post(
        "/v1/events", json={"event_type": "a.b", "payload": {}}, headers={"X-API-Key": key, **(headers or {})}
    )
    assert stored.status_code == 201, stored.text
    event = c.get(f"/v1/events/{stored.json()['event_id']}", headers={"X-API-Key": key})
    return str(event.json()["metadata"]["source_ip"])


def test_behind_nginx_the_client_address_and_https_are_seen_and_cannot_be_spoofed(
    proxied: Proxied,
) -> None:
    key = proxied.service.api_key
    with client(proxied.https) as via_proxy:
        assert source_ip(via_proxy, key) == CLIENT_IP
        assert source_ip(via_proxy, key, {"X-Forwarded-For": "6.6.6.6"}) == CLIENT_IP  # prepended: ignored
        session = via_proxy.post("/v1/auth/session", json={"api_key": key})
        assert session.status_code == 200, session.text
        cookies = session.headers.get_list("set-cookie")
        assert cookies and all("Secure" in c for c in cookies)  # X-Forwarded-Proto: https
        too_big = via_proxy.post(
            "/v1/events", content=b"{" + b" " * (300 * 1024) + b"}", headers={"X-API-Key": key}
        )
        assert too_big.status_code == 413  # refused by nginx, as the service would
        assert via_proxy.get("/metrics").status_code == 404  # kept off the public edge
    with client(proxied.service.url) as direct:  # an untrusted client straight to the service
        assert source_ip(direct, key, {"X-Forwarded-For": "6.6.6.6"}) == CLIENT_IP
    with client(proxied.service.url, source=PROXY_IP) as as_proxy:  # the trusted address is believed
        assert source_ip(as_proxy, key, {"X-Forwarded-For": "6.6.6.6"}) == "6.6.6.6"
    with client(proxied.http) as plain:
        redirect = plain.get("/v1/health")
        assert redirect.status_code == 301 and redirect.headers["location"].startswith("https://")


def test_the_live_stream_flows_through_nginx_unbuffered(proxied: Proxied) -> None:
    key = proxied.service.api_key
    headers = {"X-API-Key": key}
    with client(proxied.https) as c:
        stored: list[str] = []

        def post_one() -> None:
            response = c.post(
                "/v1/events", json={"event_type": "live.one", "payload": {"n": 1}}, headers=headers
            )
            stored.append(response.json()["event_id"])

        with c.stream("GET", "/v1/inbox/stream", headers=headers, timeout=20) as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            poster = threading.Thread(target=post_one)
            poster.start()  # one small event: a buffering proxy would sit on its few hundred bytes
            seen = ""
            deadline = time.monotonic() + 20  # heartbeats (every second) keep the reads alive
            for line in stream.iter_lines():
                seen += line + "\n"
                if (stored and stored[0] in seen) or time.monotonic() > deadline:
                    break
            poster.join()
    assert stored and stored[0] in seen
