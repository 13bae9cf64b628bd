"""``triggers-api worker``: the push worker alone, until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import signal

import structlog
from prometheus_client import start_http_server

from triggers_api.config import Settings
from triggers_api.delivery.fanout import FanoutWorker
from triggers_api.delivery.queue_consumer import QueueWorker
from triggers_api.delivery.worker import DeliveryWorker
from triggers_api.metrics import Metrics
from triggers_api.storage import build_storage
from triggers_api.storage.dynamodb import DynamoDBStorage
from triggers_api.tracing import Tracing, build_tracing

log = structlog.get_logger(__name__)


def run_worker_process(
    settings: Settings, metrics_port: int | None = None, metrics_host: str = "127.0.0.1"
) -> None:
    """``run_worker`` on uvloop when it is installed: a push is a few small socket reads and
    writes, and uvloop's streams cost about half of asyncio's per push (measured)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvicorn[standard] brings it
        asyncio.run(run_worker(settings, metrics_port, metrics_host))
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(run_worker(settings, metrics_port, metrics_host))


async def run_worker(
    settings: Settings, metrics_port: int | None = None, metrics_host: str = "127.0.0.1"
) -> None:
    storage = build_storage(settings)
    await storage.open()
    try:
        metrics = Metrics()
        if metrics_port is not None:
            start_http_server(metrics_port, addr=metrics_host, registry=metrics.registry)
        tracing = build_tracing(settings, service_name="triggers-api-worker")
        if isinstance(storage, DynamoDBStorage):  # DynamoDB: consume the delivery queue (Lambda's code)
            await _run_queue_worker(storage, settings, metrics, tracing)
            return
        worker = (
            DeliveryWorker(storage, settings, metrics=metrics, tracing=tracing)
            if settings.workflow_url
            else None
        )
        fanout = FanoutWorker(storage, settings, metrics=metrics, tracing=tracing)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        if worker is not None:
            await worker.start()
        await fanout.start()
        await stop.wait()
        in_flight = fanout.in_flight + (worker.in_flight if worker is not None else 0)
        log.info("delivery_worker_stopping", worker_id=fanout.worker_id, in_flight=in_flight)
        fanout.stop_claiming()
        await asyncio.gather(*(w.stop() for w in (worker, fanout) if w is not None))
        if tracing is not None:
            tracing.shutdown()
    finally:
        await storage.close()


async def _run_queue_worker(
    storage: DynamoDBStorage, settings: Settings, metrics: Metrics, tracing: Tracing | None
) -> None:
    worker = QueueWorker(storage, settings, metrics=metrics, tracing=tracing)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await worker.start()
    await stop.wait()
    log.info("delivery_worker_stopping", worker_id=worker.worker_id, in_flight=worker.in_flight)
    await worker.stop()
    if tracing is not None:
        tracing.shutdown()
