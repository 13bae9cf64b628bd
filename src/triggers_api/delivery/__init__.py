"""Push delivery to the workflow engine: worker, retry schedule, circuit breaker, signing, replay.

:func:`install` joins it to the app: the replay routes and the attempt history always; the
in-process worker when ``TRIGGERS_WORKFLOW_URL`` is set and ``serve`` was not told
``--no-worker`` (``triggers-api worker`` runs the same worker alone, see ``runner.py``).
"""

from __future__ import annotations

from functools import partial

from fastapi import FastAPI

from triggers_api.delivery.replay import attempts_json
from triggers_api.delivery.router import router
from triggers_api.delivery.signals import on_exit_signal
from triggers_api.delivery.worker import DeliveryWorker
from triggers_api.runtime import Services


def install(app: FastAPI, services: Services) -> None:
    settings = services.settings
    extras = services.extras
    app.include_router(router)
    extras["attempts_of"] = partial(attempts_json, services.storage)
    worker: DeliveryWorker | None = None
    if settings.workflow_url and settings.delivery_in_process:
        hub = extras.get("stream_hub")
        worker = DeliveryWorker(
            services.storage,
            settings,
            metrics=extras.get("metrics"),
            on_dead_letter=hub.notify_user if hub is not None else None,
            tracing=extras.get("tracing"),
        )
        extras["delivery_worker"] = worker
        extras["delivery_wake"] = worker.wake
        extras["circuit_snapshot"] = worker.breaker.snapshot
        extras.setdefault("metrics_refreshers", []).append(worker.refresh_metrics)
        services.ingestor.on_stored.append(worker.on_stored)
        extras.setdefault("on_startup", []).append(worker.start)
        extras.setdefault("on_shutdown", []).append(worker.stop)
        on_exit_signal(services, worker.stop_claiming)

    async def delivery_health() -> dict[str, object]:
        if worker is not None:
            return {"push": "enabled", **worker.snapshot()}
        if settings.workflow_url:
            return {"push": "enabled", "worker": "external"}  # serve --no-worker: triggers-api worker
        return {"push": "disabled", "worker": "off"}

    extras.setdefault("health_checks", {})["delivery"] = delivery_health
