"""The two load generators behind one call: wrk (saturation) and ``bench.paced`` (a fixed rate)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

LUA = Path(__file__).resolve().parent / "lua" / "request.lua"


@dataclass(slots=True)
class Load:
    """What to send: one request shape, optionally cycling through many paths."""

    method: str
    path: str
    body_file: Path | None = None
    paths_file: Path | None = None
    warmup_paths_file: Path | None = None  # distinct paths for the warm-up (each event acked once)
    bodies_file: Path | None = None  # one body per line, each once (batch acknowledgements)
    warmup_bodies_file: Path | None = None


@dataclass(slots=True)
class LoadResult:
    requests: int
    seconds: float
    errors: int  # non-2xx answers plus socket errors
    p50_ms: float
    p95_ms: float
    p99_ms: float
    generator: str
    offered_rate: float = 0.0
    generator_cpu: float = 0.0  # seconds of CPU the generator used (paced only)
    server_cpu: float = 0.0  # seconds of CPU the target's processes used during the measured run

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def cpu_us_per_request(self) -> float:
        """The target's CPU (all its processes and threads) per answered request: unlike req/s,
        this barely moves when other work shares the machine."""
        return self.server_cpu / self.requests * 1e6 if self.requests else 0.0


def wrk_binary() -> str | None:
    return shutil.which("wrk")


def run_wrk(
    base_url: str,
    load: Load,
    *,
    api_key: str = "",
    duration: float = 5.0,
    warmup: float = 1.0,
    connections: int = 50,
    threads: int = 1,
) -> LoadResult:
    """Closed-loop saturation with wrk (``-t1 -c50`` like the issue's measurements)."""
    binary = wrk_binary()
    if binary is None:
        raise RuntimeError("wrk is not installed")
    env = {
        **os.environ,
        "BENCH_METHOD": load.method,
        "BENCH_BODY_FILE": str(load.body_file or ""),
        "BENCH_API_KEY": api_key,
    }
    url = base_url + load.path

    def wrk(seconds: float, paths_file: Path | None, bodies_file: Path | None) -> str:
        env["BENCH_PATHS_FILE"] = str(paths_file or "")
        env["BENCH_BODIES_FILE"] = str(bodies_file or "")
        command = [
            binary,
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "30s",  # a slow answer is a latency to report, not an error
            "-s",
            str(LUA),
            url,
        ]
        done = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=seconds + 60, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"wrk failed: {done.stderr or done.stdout}")
        return done.stdout

    if warmup > 0:
        wrk(warmup, load.warmup_paths_file or load.paths_file, load.warmup_bodies_file or load.bodies_file)
    out = wrk(duration, load.paths_file, load.bodies_file)
    line = next((x for x in out.splitlines() if x.startswith("BENCH_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary:\n{out}")
    data = json.loads(line.removeprefix("BENCH_JSON "))
    errors = data["connect"] + data["read"] + data["write"] + data["status"] + data["timeout"]
    return LoadResult(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        errors=errors,
        p50_ms=data["p50_us"] / 1000,
        p95_ms=data["p95_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        generator="wrk",
    )


def run_paced(
    base_url: str,
    load: Load,
    *,
    api_key: str = "",
    rate: float,
    duration: float = 5.0,
    warmup: float = 1.0,
    connections: int = 50,
) -> LoadResult:
    """``bench.paced`` in its own process (so it does not share the harness's interpreter)."""
    command = [
        sys.executable,
        "-m",
        "bench.paced",
        "--url",
        base_url + load.path,
        "--method",
        load.method,
        "--rate",
        str(rate),
        "--duration",
        str(duration),
        "--warmup",
        str(warmup),
        "--connections",
        str(connections),
        "--api-key",
        api_key,
    ]
    if load.body_file is not None:
        command += ["--body-file", str(load.body_file)]
    if load.paths_file is not None:
        command += ["--paths-file", str(load.paths_file)]
    if load.bodies_file is not None:
        command += ["--bodies-file", str(load.bodies_file)]
    root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=duration + warmup + 60, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench.paced failed: {done.stderr[-2000:]}")
    data = json.loads(done.stdout.strip().splitlines()[-1])
    return LoadResult(
        requests=data["requests"],
        seconds=data["seconds"],
        errors=data["errors"],
        p50_ms=data["p50_ms"],
        p95_ms=data["p95_ms"],
        p99_ms=data["p99_ms"],
        generator="paced",
        offered_rate=rate,
        generator_cpu=data["cpu_seconds"],
    )
