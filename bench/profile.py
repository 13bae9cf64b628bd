"""Profile the service under load: ``python -m bench.profile [--row ingest] [--workers 1]``.

Starts ``triggers-api serve`` on a fresh SQLite file, drives one row with wrk, records every
worker with py-spy (sampling, no code change, GIL-aware), and prints where the time goes: the
share of samples per thread, the functions with the most *self* time and the most *inclusive*
time. ``--flamegraph out.svg`` also writes a flame graph. Needs ``wrk`` and ``py-spy`` (``make
bench`` installs both).
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from bench.load import Load, run_wrk
from bench.run import _create_key, preingest, service_env, write_inputs, write_paths
from bench.servers import _children, start_service, triggers_cli


def summarize(raw: Path, top: int = 25) -> str:
    """Self and inclusive shares from py-spy's ``--format raw`` (collapsed stacks)."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    threads: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        threads[frames[0][:60]] += n
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    if not total:
        return "no samples"
    out = [f"{total} samples"]
    out += [f"thread {100 * n / total:5.1f}%  {name}" for name, n in threads.most_common(6)]
    out.append("-- self time")
    out += [f"{100 * n / total:5.1f}%  {name[:140]}" for name, n in own.most_common(top)]
    out.append("-- inclusive time")
    out += [f"{100 * n / total:5.1f}%  {name[:140]}" for name, n in inclusive.most_common(top * 2)]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("--row", choices=("ingest", "batch", "inbox", "ack"), default="ingest")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--flamegraph", type=Path)
    parser.add_argument("--raw", type=Path, help="keep py-spy's collapsed stacks here")
    args = parser.parse_args(argv)
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    workdir = Path(tempfile.mkdtemp(prefix="triggers-profile-"))
    try:
        files = write_inputs(workdir)
        env = service_env(workdir, f"sqlite:///{workdir / 'profile.db'}")
        subprocess.run(
            [*triggers_cli(), "migrate"], env={**os.environ, **env}, check=True, capture_output=True
        )
        api_key = _create_key(env, workdir)
        server = start_service("profiled", workers=args.workers, workdir=workdir, env=env)
        try:
            loads = {
                "ingest": Load("POST", "/v1/events", body_file=files.event),
                "batch": Load("POST", "/v1/events/batch", body_file=files.batch),
                "inbox": Load("GET", "/v1/inbox?limit=200"),
            }
            if args.row == "ack":
                ids = preingest(server.url, api_key, files.batch.read_bytes(), int(15_000 * args.duration))
                load = Load("DELETE", "/", paths_file=write_paths(workdir / "ack.txt", ids))
            else:
                load = loads[args.row]
                run_wrk(server.url, load, api_key=api_key, duration=2, warmup=0)  # warm up
            pids = _children(server.process.pid) if args.workers > 1 else [server.process.pid]
            outputs = [workdir / f"profile-{pid}.txt" for pid in pids]
            spies = [
                subprocess.Popen(
                    [
                        py_spy,
                        "record",
                        "-p",
                        str(pid),
                        "-d",
                        str(int(args.duration)),
                        "-r",
                        str(args.rate),
                        "-f",
                        "raw",
                        "-o",
                        str(out),
                        "--nonblocking",
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                for pid, out in zip(pids, outputs, strict=True)
            ]
            result: list[object] = []
            worker = threading.Thread(
                target=lambda: result.append(
                    run_wrk(server.url, load, api_key=api_key, duration=args.duration - 0.5, warmup=0)
                )
            )
            worker.start()
            worker.join()
            for spy in spies:
                spy.wait(timeout=60)
            if args.flamegraph:
                subprocess.run(
                    [py_spy, "record", "-p", str(pids[0]), "-d", "3", "-o", str(args.flamegraph)],
                    check=False,
                    capture_output=True,
                )
        finally:
            server.stop()
        combined = workdir / "combined.txt"
        combined.write_text("".join(out.read_text() for out in outputs if out.exists()))
        if args.raw:
            shutil.copy(combined, args.raw)
        sys.stdout.write(f"{result[0]}\n{summarize(combined, args.top)}\n")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
