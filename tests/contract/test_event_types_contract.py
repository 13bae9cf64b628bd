"""The event-type registry's contract (``EventTypeRegistry``), the same assertions on every backend."""

from __future__ import annotations

import uuid

import orjson

from tests.contract.conftest import OpenTwin
from tests.contract.test_storage_contract import T0, audit_for, event
from triggers_api.storage.base import (
    AuditQuery,
    AuditRecord,
    EventTypeRecord,
    PutOutcome,
    Storage,
)

SCHEMA_A = orjson.dumps({"type": "object"}, option=orjson.OPT_SORT_KEYS)
SCHEMA_B = orjson.dumps({"required": ["id"], "type": "object"}, option=orjson.OPT_SORT_KEYS)
HOUR = 3_600_000_000
DAY = 24 * HOUR


def registration(
    schema: bytes = SCHEMA_A,
    mode: str = "enforce",
    user: str = "alice",
    at: int = T0,
    name: str = "order.paid",
) -> EventTypeRecord:
    return EventTypeRecord(user, name, 0, schema, mode, "orders", at, at)


def auditor(action: str, stored: EventTypeRecord) -> AuditRecord:
    return AuditRecord(
        log_id=str(uuid.uuid4()),
        user_id=stored.user_id,
        action=action,
        ts_us=stored.updated_us,
        details=orjson.dumps({"event_type": stored.event_type, "version": stored.version}),
    )


def deletion(user: str = "alice") -> AuditRecord:
    return AuditRecord(str(uuid.uuid4()), user, "event_type.deleted", T0 + 10 * HOUR)


async def test_versions_grow_only_when_the_schema_changes(storage: Storage) -> None:
    stored, outcome = await storage.put_event_type(registration(), auditor)
    assert (stored.version, outcome) == (1, PutOutcome.CREATED)
    same, outcome = await storage.put_event_type(registration(at=T0 + 1), auditor)
    assert (same.version, outcome, same.updated_us) == (1, PutOutcome.UNCHANGED, T0)
    moded, outcome = await storage.put_event_type(registration(mode="warn", at=T0 + 2), auditor)
    assert (moded.version, moded.mode, outcome) == (1, "warn", PutOutcome.UPDATED)
    changed, outcome = await storage.put_event_type(registration(SCHEMA_B, "warn", at=T0 + 3), auditor)
    assert (changed.version, outcome, changed.created_us, changed.updated_us) == (
        2,
        PutOutcome.UPDATED,
        T0,
        T0 + 3,
    )
    current = await storage.get_event_type("alice", "order.paid")
    assert current is not None and (current.version, current.schema, current.description) == (
        2,
        SCHEMA_B,
        "orders",
    )
    versions = await storage.event_type_versions("alice", "order.paid")
    assert [(v.version, v.schema, v.mode) for v in versions] == [(1, SCHEMA_A, "warn"), (2, SCHEMA_B, "warn")]
    assert versions[0].created_us == T0 and versions[1].created_us == T0 + 3
    actions = [a.action for a in await storage.list_audit(AuditQuery(user_id="alice"))]
    assert actions == ["event_type.updated", "event_type.updated", "event_type.created"]


async def test_delete_stops_the_type_keeps_history_and_numbering_goes_on(storage: Storage) -> None:
    await storage.put_event_type(registration(), auditor)
    await storage.put_event_type(registration(SCHEMA_B), auditor)
    assert await storage.delete_event_type("alice", "order.paid", deletion()) is True
    assert await storage.get_event_type("alice", "order.paid") is None
    assert await storage.list_event_types("alice") == []
    assert await storage.delete_event_type("alice", "order.paid", deletion()) is False
    assert [v.version for v in await storage.event_type_versions("alice", "order.paid")] == [1, 2]
    again, outcome = await storage.put_event_type(registration(), auditor)
    assert (again.version, outcome) == (3, PutOutcome.CREATED)
    deleted = await storage.list_audit(AuditQuery(user_id="alice", action="event_type.deleted"))
    assert len(deleted) == 1  # the second, refused delete audited nothing


async def test_users_never_see_each_others_types(storage: Storage) -> None:
    await storage.put_event_type(registration(user="alice"), auditor)
    await storage.put_event_type(registration(SCHEMA_B, user="bob"), auditor)
    assert (await storage.get_event_type("bob", "order.paid")).schema == SCHEMA_B  # type: ignore[union-attr]
    assert [r.user_id for r in await storage.list_event_types("alice")] == ["alice"]
    assert await storage.delete_event_type("carol", "order.paid", deletion("carol")) is False
    assert await storage.event_type_versions("carol", "order.paid") == []


async def test_stamps_grow_with_every_change_and_are_seen_by_another_process(
    storage: Storage, open_twin: OpenTwin
) -> None:
    assert await storage.event_type_stamps() == {}
    await storage.put_event_type(registration(), auditor)
    other = await open_twin()
    first = (await other.event_type_stamps())["alice"]
    await storage.put_event_type(registration(), auditor)  # unchanged: no new stamp
    assert (await other.event_type_stamps())["alice"] == first
    await storage.put_event_type(registration(mode="off"), auditor)
    second = (await other.event_type_stamps())["alice"]
    assert second > first
    await storage.delete_event_type("alice", "order.paid", deletion())
    stamps = await other.event_type_stamps()
    assert stamps["alice"] > second and "bob" not in stamps


async def test_activity_lists_types_seen_since_with_their_last_day(storage: Storage) -> None:
    now = T0 + 40 * DAY
    old = event(ts=now - 35 * DAY, event_type="legacy.thing")
    seen = [
        event(ts=now - 3 * DAY, event_type="order.paid"),
        event(ts=now - 2 * HOUR, event_type="order.paid"),
        event(ts=now - HOUR, event_type="order.paid"),
        event(ts=now - 5 * DAY, event_type="user.created"),
        event(ts=now - 1, event_type="user.created", user="bob"),
    ]
    records = [old, *seen]
    await storage.insert_events(records, [audit_for(r) for r in records])
    found = await storage.event_type_activity("alice", now - 30 * DAY, now - DAY)
    assert [(a.event_type, a.last_seen_us, a.events_last_24h) for a in found] == [
        ("order.paid", now - HOUR, 2),
        ("user.created", now - 5 * DAY, 0),
    ]
    one = await storage.event_type_activity("alice", now - 30 * DAY, now - DAY, "order.paid")
    assert [(a.event_type, a.events_last_24h) for a in one] == [("order.paid", 2)]
    assert await storage.event_type_activity("alice", now - 30 * DAY, now - DAY, "legacy.thing") == []
    assert await storage.event_type_activity("carol", now - 30 * DAY, now - DAY) == []


async def test_recent_payloads_are_the_newest_with_a_payload(storage: Storage) -> None:
    records = [event(ts=T0 + i, payload=orjson.dumps({"n": i})) for i in range(5)]
    records.append(event(ts=T0 + 10, payload=None))  # acknowledged: no payload left
    records.append(event(ts=T0 + 11, event_type="other", payload=b'{"x":1}'))
    await storage.insert_events(records, [audit_for(r) for r in records])
    payloads = await storage.recent_payloads("alice", "order.created", 3)
    assert [orjson.loads(p)["n"] for p in payloads] == [4, 3, 2]
    assert await storage.recent_payloads("bob", "order.created", 3) == []
