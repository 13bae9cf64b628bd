"""Push delivery to the workflow engine: worker, retry schedule, circuit breaker, signing, replay.

:func:`install` joins it to the app: the replay routes and the attempt history always; the
in-process worker when ``TRIGGERS_WORKFLOW_URL`` is set and ``serve`` was not told
``--no-worker`` (``triggers-api worker`` runs the same worker alone, see ``runner.py``).
"""

from __future__ import annotations

from functools import partial

from fastapi import FastAPI

from triggers_api.delivery.fanout import FanoutWorker
from triggers_api.delivery.replay import attempts_json, deliveries_json
from triggers_api.delivery.router import router
from triggers_api.delivery.signals import on_exit_signal
from triggers_api.delivery.worker import DeliveryWorker
from triggers_api.runtime import Services


def install(app: FastAPI, services: Services) -> None:
    settings = services.settings
    extras = services.extras
    app.include_router(router)
    extras["attempts_of"] = partial(attempts_json, services.storage)
    if _install_queue_worker(services):
        return
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

    # Fan-out (issue 10): deliveries to subscriptions (and to the workflow, for events that also
    # matched a subscription), scheduled across destinations. Runs whenever delivery runs in
    # process: subscriptions need no workflow URL.
    extras["deliveries_of"] = partial(deliveries_json, services.storage)
    if settings.delivery_in_process:
        hub = extras.get("stream_hub")
        fanout = FanoutWorker(
            services.storage,
            settings,
            metrics=extras.get("metrics"),
            guard=extras.get("destination_guard"),
            on_dead_letter=hub.notify_user if hub is not None else None,
            tracing=extras.get("tracing"),
        )
        extras["fanout_worker"] = fanout
        extras["fanout_wake"] = fanout.wake
        extras["destination_circuit"] = fanout.circuit_of
        legacy_wake = extras.get("delivery_wake")

        def wake_all() -> None:
            fanout.wake()
            if legacy_wake is not None:
                legacy_wake()

        extras["delivery_wake"] = wake_all
        services.ingestor.on_stored.append(fanout.on_stored)
        extras.setdefault("on_startup", []).append(fanout.start)
        extras.setdefault("on_shutdown", []).append(fanout.stop)
        on_exit_signal(services, fanout.stop_claiming)

    async def delivery_health() -> dict[str, object]:
        if worker is not None:
            return {"push": "enabled", **worker.snapshot()}
        if settings.workflow_url:
            return {"push": "enabled", "worker": "external"}  # serve --no-worker: triggers-api worker
        return {"push": "disabled", "worker": "off"}

    extras.setdefault("health_checks", {})["delivery"] = delivery_health


def _install_queue_worker(services: Services) -> bool:
    """DynamoDB + SQS: one worker consumes the delivery queue (``queue_consumer.QueueWorker``,
    the Lambda handler's code) in place of the claim loops. False on the other backends."""
    from triggers_api.delivery.queue_consumer import QueueWorker
    from triggers_api.storage.dynamodb import DynamoDBStorage

    if not isinstance(services.storage, DynamoDBStorage):
        return False
    settings, extras = services.settings, services.extras
    extras["deliveries_of"] = partial(deliveries_json, services.storage)
    worker: QueueWorker | None = None
    if settings.delivery_in_process:
        hub = extras.get("stream_hub")
        worker = QueueWorker(
            services.storage,
            settings,
            metrics=extras.get("metrics"),
            guard=extras.get("destination_guard"),
            on_dead_letter=hub.notify_user if hub is not None else None,
            tracing=extras.get("tracing"),
        )
        extras["fanout_worker"] = worker.fanout
        extras["delivery_wake"] = worker.wake
        extras["destination_circuit"] = worker.fanout.circuit_of
        if settings.workflow_url:  # the push circuit exists only with a workflow URL, as elsewhere
            extras["circuit_snapshot"] = worker.circuit
            extras.setdefault("metrics_refreshers", []).append(worker.refresh_metrics)
        extras.setdefault("on_startup", []).append(worker.start)
        extras.setdefault("on_shutdown", []).append(worker.stop)
        on_exit_signal(services, worker.stop_claiming)

    async def delivery_health() -> dict[str, object]:
        if not settings.workflow_url:  # as on the other backends (subscriptions are pushed anyway)
            return {"push": "disabled", "worker": "off"}
        if worker is not None:
            return {"push": "enabled", **worker.snapshot()}
        return {"push": "enabled", "worker": "external"}

    extras.setdefault("health_checks", {})["delivery"] = delivery_health
    return True
