"""Event types: the per-user schema catalog and the validators ingestion asks (``EventValidator``).

``install`` joins the app: the routes, the catalog service, and the metric of violations let
through in ``warn`` mode. The cache itself belongs to the :class:`~triggers_api.events.service.Ingestor`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import Counter

if TYPE_CHECKING:  # the validators module is imported by ingestion: keep this package light
    from fastapi import FastAPI

    from triggers_api.runtime import Services

#: Distinct ``event_type`` label values the violations metric keeps; the rest count as "other".
MAX_METRIC_TYPES = 100


def install(app: FastAPI, services: Services) -> None:
    from triggers_api.event_types.router import router
    from triggers_api.event_types.service import EventTypes

    services.extras["event_types"] = EventTypes(services.storage, services.ingestor.schemas)
    app.include_router(router)
    metrics = services.extras.get("metrics")
    if metrics is None:
        return
    counter = Counter(
        "triggers_schema_violations",
        "Events stored in warn mode although their payload broke the type's schema",
        ["event_type"],
        registry=metrics.registry,
    )
    labelled: set[str] = set()

    def count(event_type: str) -> None:
        if event_type not in labelled:
            if len(labelled) >= MAX_METRIC_TYPES:
                event_type = "other"
            else:
                labelled.add(event_type)
        counter.labels(event_type=event_type).inc()

    services.ingestor.on_violation.append(count)
