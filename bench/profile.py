"""Profile the service under load: ``python -m bench.profile [--row ingest] [--workers 1] [--postgres]``.

Starts ``triggers-api serve`` on a fresh SQLite file (``--postgres``: a fresh schema on
``TRIGGERS_TEST_POSTGRES_URL``), drives one row with wrk, records every worker with py-spy
(sampling, no code change, GIL-aware), and prints where the time goes: the share of samples per
thread, the functions with the most *self* time and the most *inclusive* time. The ``delivery``
row stores events through the API, stops it, and profiles ``triggers-api worker`` pushing them
to a loopback nginx receiver instead. ``--flamegraph out.svg`` also writes a flame graph. Needs
``wrk``, ``nginx`` and ``py-spy`` (``make bench`` installs them).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import orjson

from bench.load import Load, run_wrk
from bench.run import _create_key, postgres_schema, preingest, service_env, write_inputs, write_paths
from bench.servers import Server, _children, start_nginx, start_service, triggers_cli

_RAW = ("-f", "raw", "-o")


class _Worker:
    """``triggers-api worker`` as a profiling target (the delivery row): pid and stop like a Server."""

    def __init__(self, env: dict[str, str], workdir: Path) -> None:
        self.log = open(workdir / "worker.log", "ab")  # closed in stop()
        self.process = subprocess.Popen(
            [*triggers_cli(), "worker"],
            env={**os.environ, **env},
            cwd=workdir,
            stdout=subprocess.DEVNULL,
            stderr=self.log,
        )

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


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
    parser.add_argument(
        "--row", choices=("ingest", "batch", "inbox", "ack", "ackbatch", "delivery"), default="ingest"
    )
    parser.add_argument(
        "--postgres", action="store_true", help="profile on a fresh schema of TRIGGERS_TEST_POSTGRES_URL"
    )
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
        with contextlib.ExitStack() as stack:
            if args.postgres:
                url = os.environ.get("TRIGGERS_TEST_POSTGRES_URL", "")
                if not url:
                    parser.error("--postgres needs TRIGGERS_TEST_POSTGRES_URL")
                env = service_env(workdir, url, stack.enter_context(postgres_schema(url)))
            else:
                env = service_env(workdir, f"sqlite:///{workdir / 'profile.db'}")
            result, outputs = _profile(args, py_spy, workdir, env)
        combined = workdir / "combined.txt"
        combined.write_text("".join(out.read_text() for out in outputs if out.exists()))
        if args.raw:
            shutil.copy(combined, args.raw)
        sys.stdout.write(f"{result}\n{summarize(combined, args.top)}\n")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def _profile(
    args: argparse.Namespace, py_spy: str, workdir: Path, env: dict[str, str]
) -> tuple[object, list[Path]]:
    """Start the target, drive it, record it; the load's result and py-spy's output files."""
    files = write_inputs(workdir)
    subprocess.run([*triggers_cli(), "migrate"], env={**os.environ, **env}, check=True, capture_output=True)
    api_key = _create_key(env, workdir)
    server = start_service("profiled", workers=args.workers, workdir=workdir, env=env)
    target: Server | _Worker = server
    receiver: Server | None = None
    result: list[object] = []
    try:
        loads = {
            "ingest": Load("POST", "/v1/events", body_file=files.event),
            "batch": Load("POST", "/v1/events/batch", body_file=files.batch),
            "inbox": Load("GET", "/v1/inbox?limit=200"),
        }
        load: Load | None = None
        if args.row == "ack":
            ids = preingest(server.url, api_key, files.batch.read_bytes(), int(15_000 * args.duration))
            load = Load("DELETE", "/", paths_file=write_paths(workdir / "ack.txt", ids))
        elif args.row == "ackbatch":
            ids = preingest(server.url, api_key, files.batch.read_bytes(), int(60_000 * args.duration))
            bodies = workdir / "ackb.txt"
            bodies.write_bytes(
                b"\n".join(
                    orjson.dumps({"event_ids": ids[i : i + 100]}) for i in range(0, len(ids) - 99, 100)
                )
                + b"\n"
            )
            load = Load("POST", "/v1/events/acknowledge/batch", bodies_file=bodies)
        elif args.row == "delivery":
            preingest(server.url, api_key, files.batch.read_bytes(), int(12_000 * args.duration))
            server.stop()
            receiver = start_nginx(workers=1, workdir=workdir / "receiver", responses={})
            target = _Worker(
                {**env, "TRIGGERS_WORKFLOW_URL": f"{receiver.url}/hook", "TRIGGERS_LOG_LEVEL": "WARNING"},
                workdir,
            )
            time.sleep(2.0)  # the worker opens its storage and starts pushing
        else:
            load = loads[args.row]
            run_wrk(server.url, load, api_key=api_key, duration=2, warmup=0)  # warm up
        pids = (
            _children(server.process.pid) if args.workers > 1 and target is server else [target.process.pid]
        )
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
                    *_RAW,
                    str(out),
                    "--nonblocking",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for pid, out in zip(pids, outputs, strict=True)
        ]
        if load is not None:
            driven = load
            thread = threading.Thread(
                target=lambda: result.append(
                    run_wrk(server.url, driven, api_key=api_key, duration=args.duration - 0.5, warmup=0)
                )
            )
            thread.start()
            thread.join()
        else:
            result.append(
                f"triggers-api worker pushing to {receiver.url if receiver else '?'} for {args.duration} s"
            )
        for spy in spies:
            spy.wait(timeout=60)
        if args.flamegraph:
            subprocess.run(
                [py_spy, "record", "-p", str(pids[0]), "-d", "3", "-o", str(args.flamegraph)],
                check=False,
                capture_output=True,
            )
    finally:
        target.stop()
        if target is not server:
            server.stop()
        if receiver is not None:
            receiver.stop()
    return result[0], outputs


if __name__ == "__main__":
    raise SystemExit(main())
