"""Starting, watching and stopping what the harness measures: uvicorn apps, the service, nginx."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _children(pid: int) -> list[int]:
    """All descendants of ``pid`` (uvicorn's ``--workers`` spawns its workers as children)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rfind(b")") + 2 :].split()[1])
        parents.setdefault(ppid, []).append(int(entry))
    found: list[int] = []
    todo = [pid]
    while todo:
        current = todo.pop()
        for child in parents.get(current, []):
            found.append(child)
            todo.append(child)
    return found


def tree_rss_bytes(pid: int) -> int:
    """Resident memory of a process and all its descendants, summed."""
    total = 0
    for p in [pid, *_children(pid)]:
        try:
            with open(f"/proc/{p}/statm") as f:
                total += int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except OSError:
            continue
    return total


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and all its descendants (threads included)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in [pid, *_children(pid)]:
        try:
            with open(f"/proc/{p}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


@dataclass
class Server:
    """A process serving HTTP on ``url``; ``peak_rss`` is sampled while ``watch()`` runs."""

    name: str
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    peak_rss: int = 0
    _watching: threading.Event = field(default_factory=threading.Event)
    _sampler: threading.Thread | None = None

    def watch(self) -> None:
        """Sample the process tree's RSS every 100 ms until ``stop()``."""

        def sample() -> None:
            while not self._watching.wait(0.1):
                self.peak_rss = max(self.peak_rss, tree_rss_bytes(self.process.pid))

        self._sampler = threading.Thread(target=sample, daemon=True)
        self._sampler.start()

    def stop(self) -> None:
        self._watching.set()
        if self._sampler is not None:
            self._sampler.join()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def cpu_seconds(self) -> float:
        return tree_cpu_seconds(self.process.pid)

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def _wait_ready(server: Server, path: str, timeout: float = 60.0) -> Server:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited at start:\n{server.log_tail()}")
        try:
            if httpx.get(server.url + path, timeout=1).status_code < 500:
                return server
        except httpx.HTTPError:
            time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"{server.name} did not come up in {timeout:.0f} s:\n{server.log_tail()}")


def start_process(
    name: str,
    command: list[str],
    *,
    port: int,
    workdir: Path,
    env: dict[str, str] | None = None,
    ready_path: str = "/v1/health",
) -> Server:
    log_path = workdir / f"{name.replace(' ', '_')}.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=workdir,
        )
    return _wait_ready(Server(name, f"http://127.0.0.1:{port}", process, log_path), ready_path)


def start_uvicorn_app(name: str, factory: str, *, workers: int, workdir: Path, env: dict[str, str]) -> Server:
    """A ``bench.ceilings`` app under uvicorn with the service's own server settings."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        factory,
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    root = str(Path(__file__).resolve().parent.parent)
    env = {**env, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    return start_process(name, command, port=port, workdir=workdir, env=env)


def triggers_cli() -> list[str]:
    return [sys.executable, "-m", "triggers_api.cli"]


def start_service(name: str, *, workers: int, workdir: Path, env: dict[str, str]) -> Server:
    """``triggers-api serve`` exactly as a user runs it."""
    port = free_port()
    command = [*triggers_cli(), "serve", "--port", str(port), "--workers", str(workers)]
    return start_process(name, command, port=port, workdir=workdir, env=env)


NGINX_CONF = """\
{user}worker_processes {workers};
daemon off;
master_process on;
error_log {dir}/error.log warn;
pid {dir}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  client_max_body_size 10m;
  client_body_buffer_size 10m;
  keepalive_requests 10000000;
  default_type application/json;
  server {{
    listen 127.0.0.1:{port};
    # A fixed answer per route, with the body the service would send ("return 405" + error_page
    # lets the static module answer a POST with a file).
    location = /v1/events {{ error_page 405 =201 /_files/event.json; return 405; }}
    location = /v1/events/batch {{ error_page 405 =201 /_files/batch.json; return 405; }}
    location = /v1/inbox {{ alias {dir}/files/inbox.json; }}
    location /v1/events/ {{ return 204; }}
    location = /v1/health {{ return 200 '{{"status":"healthy"}}'; }}
    location /hook {{ return 200 '{{"ok":true}}'; }}  # the delivery receiver (/hook, /hook/sub0 ...)
    location /_files/ {{ internal; alias {dir}/files/; }}
  }}
}}
"""


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()), None
    )


def start_nginx(*, workers: int, workdir: Path, responses: dict[str, bytes]) -> Server:
    """nginx answering each route with a fixed response of the service's size: the HTTP ceiling."""
    binary = nginx_binary()
    if binary is None:
        raise RuntimeError("nginx is not installed")
    directory = workdir / "nginx"
    (directory / "files").mkdir(parents=True, exist_ok=True)
    for name, body in responses.items():
        (directory / "files" / name).write_bytes(body)
    port = free_port()
    conf = directory / "nginx.conf"
    # As root, nginx's workers would run as "nobody", who cannot read the harness's private
    # temporary directory: keep them as the user running the harness.
    user = "user root;\n" if os.geteuid() == 0 else ""
    conf.write_text(NGINX_CONF.format(user=user, workers=workers, dir=directory, port=port))
    return start_process(
        "nginx", [binary, "-p", str(directory), "-c", str(conf)], port=port, workdir=directory
    )
