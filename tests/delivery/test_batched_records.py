"""``Storage.record_attempts``: the worker's batched outcomes, on every backend (the contract's
``storage`` fixture). A batch must mean exactly what the same records one by one would."""

from __future__ import annotations

from tests.contract.conftest import backend, storage, storage_factory  # noqa: F401 (fixtures)
from tests.contract.test_delivery_contract import LEASE, attempt, audit, store
from tests.contract.test_storage_contract import T0, event
from triggers_api.storage.base import AttemptOutcome, AttemptRecord, AuditQuery, EventStatus, Storage


async def test_a_batch_applies_each_record_in_order(storage: Storage) -> None:  # noqa: F811
    retried, refused, delivered, acked = await store(
        storage, event(ts=T0 + 1), event(ts=T0 + 2), event(ts=T0 + 3), event(ts=T0 + 4)
    )
    claims = await storage.claim_due_events("w", T0 + 10, T0 + 10 + LEASE, 10)
    assert len(claims) == 4
    await storage.acknowledge("alice", [acked.event_id], T0 + 11, {})
    ghost = event(ts=T0 + 5)  # never stored
    applied = await storage.record_attempts(
        [
            AttemptRecord(attempt(retried, AttemptOutcome.RETRY, T0 + 20, 503, "http_503"), "w", T0 + 500),
            AttemptRecord(
                attempt(refused, AttemptOutcome.FAILED, T0 + 20, 410, "http_410"),
                "w",
                audit=audit(refused, "event.delivery_failed", T0 + 21),
            ),
            AttemptRecord(
                attempt(delivered, AttemptOutcome.DELIVERED, T0 + 20, 200),
                "w",
                audit=audit(delivered, "event.delivered", T0 + 21),
            ),
            AttemptRecord(attempt(acked, AttemptOutcome.DELIVERED, T0 + 20, 200), "w"),
            AttemptRecord(attempt(ghost, AttemptOutcome.DELIVERED, T0 + 20, 200), "w"),
            # the same event twice: the second sees the first applied (its lease is gone)
            AttemptRecord(attempt(retried, AttemptOutcome.FAILED, T0 + 30, 500, "http_500"), "w"),
        ]
    )
    assert applied == [True, True, True, False, False, False]
    got = {}
    for record in (retried, refused, delivered, acked):
        stored = await storage.get_event("alice", record.event_id)
        assert stored is not None
        got[record.event_id] = stored
    assert got[retried.event_id].status == EventStatus.QUEUED
    assert got[retried.event_id].retry_count == 1  # both attempts counted
    assert got[refused.event_id].status == EventStatus.FAILED
    assert got[delivered.event_id].status == EventStatus.DELIVERED
    assert got[delivered.event_id].delivered_us == T0 + 20 + 1_000
    assert got[acked.event_id].acknowledged_us == T0 + 11
    assert [len(await storage.list_attempts("alice", r.event_id)) for r in (retried, refused, acked)] == [
        2,
        1,
        1,
    ]
    assert await storage.next_delivery_due(T0 + 10**9) == T0 + 500  # the retry, lease cleared
    (again,) = await storage.claim_due_events("w2", T0 + 500, T0 + 500 + LEASE, 10)
    assert again.event.event_id == retried.event_id and again.attempts == 2 and again.round_attempts == 1
    actions = sorted(a.action for a in await storage.list_audit(AuditQuery(user_id="alice")))
    assert actions.count("event.delivered") == 1 and actions.count("event.delivery_failed") == 1


async def test_an_empty_batch_is_nothing(storage: Storage) -> None:  # noqa: F811
    assert await storage.record_attempts([]) == []
