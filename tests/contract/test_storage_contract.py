"""The storage contract: every method of :class:`Storage`, the same assertions on every backend."""

from __future__ import annotations

import asyncio
import uuid

import orjson
import pytest

from tests.contract.conftest import OpenTwin
from triggers_api.errors import StorageError
from triggers_api.storage.base import (
    INBOX_STATUSES,
    AckResult,
    ApiKeyRecord,
    AuditQuery,
    AuditRecord,
    EventQuery,
    EventRecord,
    EventStatus,
    IdempotencyRecord,
    Storage,
)

T0 = 1_700_000_000_000_000  # a fixed moment (µs) so orderings are exact


def event(
    user: str = "alice",
    ts: int = T0,
    event_type: str = "order.created",
    payload: bytes | None = b'{"n":1}',
    status: str = EventStatus.RECEIVED.value,
    expires_at: int | None = None,
    event_id: str | None = None,
) -> EventRecord:
    return EventRecord(
        event_id=event_id or str(uuid.uuid4()),
        user_id=user,
        event_type=event_type,
        payload=payload,
        status=status,
        ts_us=ts,
        expires_at=expires_at if expires_at is not None else ts // 1_000_000 + 86_400,
        metadata=b'{"source_ip":"203.0.113.7"}',
    )


def audit_for(record: EventRecord, action: str = "event.created", ts: int | None = None) -> AuditRecord:
    return AuditRecord(
        log_id=str(uuid.uuid4()),
        user_id=record.user_id,
        action=action,
        ts_us=ts if ts is not None else record.ts_us,
        event_id=record.event_id,
        details=orjson.dumps({"event_type": record.event_type}),
        ip_address="203.0.113.7",
        request_id="req-1",
    )


def idem(
    key: str, user: str = "alice", created: int = T0, ttl: int = 3_600_000_000, body: bytes = b"{}"
) -> IdempotencyRecord:
    return IdempotencyRecord(
        user_id=user,
        key=key,
        request_hash=f"hash-{key}-{body.decode()}",
        response_status=201,
        response_body=body,
        created_us=created,
        expires_us=created + ttl,
    )


def api_key(
    user: str = "alice", name: str = "ci", created: int = T0, key_id: str | None = None
) -> ApiKeyRecord:
    kid = key_id or str(uuid.uuid4())
    return ApiKeyRecord(
        key_id=kid,
        user_id=user,
        key_hash=f"hash-{kid}",
        key_prefix="tk_abcdefg",
        name=name,
        created_us=created,
        rate_limit=600,
        scopes=("events:write", "events:read"),
    )


async def store(storage: Storage, *records: EventRecord) -> None:
    outcome = await storage.insert_events(list(records), [audit_for(r) for r in records])
    assert outcome.stored


# -- lifecycle ----------------------------------------------------------------------------------------
async def test_migrate_is_idempotent_and_ping_answers(storage: Storage) -> None:
    await storage.migrate()
    await storage.migrate()
    await storage.open()  # already open: a no-op
    await storage.ping()


async def test_a_closed_store_refuses_with_storage_error(storage: Storage) -> None:
    await storage.close()
    with pytest.raises(StorageError):
        await storage.ping()
    with pytest.raises(StorageError):
        await storage.insert_events([event()], [])
    await storage.close()  # closing twice is harmless


async def test_data_survives_close_and_reopen(storage: Storage, open_twin: OpenTwin) -> None:
    record = event()
    await store(storage, record)
    await storage.close()
    again = await open_twin()
    assert await again.get_event("alice", record.event_id) == record


# -- events -------------------------------------------------------------------------------------------
async def test_insert_then_get_returns_every_field_byte_exact(storage: Storage) -> None:
    payload = (
        '{"nul":"a\\u0000b","emoji":"\U0001f600","big":123456789012345678901234567890,"f":1.5e300}'.encode()
    )
    record = event(payload=payload)
    record.retry_count, record.last_retry_us, record.delivered_us = 2, T0 + 5, None
    outcome = await storage.insert_events([record], [audit_for(record)])
    assert outcome.stored and outcome.existing is None
    assert [e.event_id for e in outcome.events] == [record.event_id]
    got = await storage.get_event("alice", record.event_id)
    assert got == record
    assert got is not None and got.payload == payload and got.metadata == record.metadata


async def test_another_users_event_is_invisible(storage: Storage) -> None:
    record = event(user="alice")
    await store(storage, record)
    assert await storage.get_event("mallory", record.event_id) is None
    assert await storage.get_event("alice", str(uuid.uuid4())) is None
    assert await storage.list_events(EventQuery(user_id="mallory")) == []
    acked = await storage.acknowledge("mallory", [record.event_id], T0 + 1, {})
    assert acked == [AckResult.NOT_FOUND]
    still = await storage.get_event("alice", record.event_id)
    assert still is not None and still.acknowledged_us is None


async def test_insert_writes_the_audit_records(storage: Storage) -> None:
    records = [event(ts=T0 + i) for i in range(3)]
    await store(storage, *records)
    logs = await storage.list_audit(AuditQuery(user_id="alice"))
    assert sorted(a.event_id or "" for a in logs) == sorted(r.event_id for r in records)
    assert {a.action for a in logs} == {"event.created"}


async def test_concurrent_inserts_are_all_stored(storage: Storage) -> None:
    records = [event(ts=T0 + i) for i in range(300)]
    outcomes = await asyncio.gather(*(storage.insert_events([r], [audit_for(r)]) for r in records))
    assert all(o.stored for o in outcomes)
    listed = await storage.list_events(EventQuery(user_id="alice", limit=1000))
    assert [e.event_id for e in listed] == [r.event_id for r in records]


async def test_one_bad_write_does_not_spoil_its_neighbours(storage: Storage) -> None:
    first = event()
    await store(storage, first)
    duplicate = event(event_id=first.event_id, ts=T0 + 1)
    good = [event(ts=T0 + 10 + i) for i in range(20)]
    results = await asyncio.gather(
        *(storage.insert_events([r], [audit_for(r)]) for r in good[:10]),
        storage.insert_events([duplicate], [audit_for(duplicate)]),
        *(storage.insert_events([r], [audit_for(r)]) for r in good[10:]),
        return_exceptions=True,
    )
    assert isinstance(results[10], StorageError)
    assert all(not isinstance(r, BaseException) and r.stored for i, r in enumerate(results) if i != 10)
    for r in good:
        assert await storage.get_event("alice", r.event_id) == r
    assert await storage.get_event("alice", first.event_id) == first


async def test_a_batch_is_stored_whole(storage: Storage) -> None:
    records = [event(ts=T0 + i) for i in range(100)]
    await store(storage, *records)
    assert len(await storage.list_events(EventQuery(user_id="alice", limit=200))) == 100


# -- idempotency --------------------------------------------------------------------------------------
async def test_a_live_idempotency_record_replays_and_stores_nothing(storage: Storage) -> None:
    first = event()
    out1 = await storage.insert_events([first], [audit_for(first)], idem("k1", body=b'{"first":1}'))
    assert out1.stored
    second = event(ts=T0 + 1)
    out2 = await storage.insert_events(
        [second], [audit_for(second)], idem("k1", created=T0 + 1, body=b'{"second":2}')
    )
    assert not out2.stored and out2.existing is not None
    assert out2.existing.response_body == b'{"first":1}'
    assert out2.existing.request_hash == "hash-k1-" + '{"first":1}'
    assert out2.existing.response_status == 201
    assert (out2.existing.created_us, out2.existing.expires_us) == (T0, T0 + 3_600_000_000)
    assert await storage.get_event("alice", second.event_id) is None
    logs = await storage.list_audit(AuditQuery(user_id="alice"))
    assert [a.event_id for a in logs] == [first.event_id]


async def test_an_expired_idempotency_record_is_replaced(storage: Storage) -> None:
    first = event()
    await storage.insert_events([first], [audit_for(first)], idem("k", ttl=10, body=b'{"a":1}'))
    later = event(ts=T0 + 100)
    out = await storage.insert_events(
        [later], [audit_for(later)], idem("k", created=T0 + 100, body=b'{"b":2}')
    )
    assert out.stored
    again = event(ts=T0 + 200)
    replay = await storage.insert_events([again], [], idem("k", created=T0 + 200))
    assert replay.existing is not None and replay.existing.response_body == b'{"b":2}'


async def test_idempotency_keys_are_per_user(storage: Storage) -> None:
    a, b = event(user="alice"), event(user="bob")
    assert (await storage.insert_events([a], [], idem("same", user="alice"))).stored
    assert (await storage.insert_events([b], [], idem("same", user="bob"))).stored


async def test_concurrent_requests_with_one_key_store_once(storage: Storage, open_twin: OpenTwin) -> None:
    twin = await open_twin()  # half of the requests through a second instance: another process
    records = [event(ts=T0 + i) for i in range(40)]
    outcomes = await asyncio.gather(
        *(
            (storage if i % 2 else twin).insert_events(
                [r], [audit_for(r)], idem("race", body=f"{i}".encode())
            )
            for i, r in enumerate(records)
        )
    )
    stored = [o for o in outcomes if o.stored]
    assert len(stored) == 1
    winner = stored[0].events[0]
    bodies = {o.existing.response_body for o in outcomes if o.existing is not None}
    assert len(bodies) == 1 and len(outcomes) - len(stored) == 39
    listed = await storage.list_events(EventQuery(user_id="alice"))
    assert [e.event_id for e in listed] == [winner.event_id]


async def test_purge_idempotency_drops_only_expired_records(storage: Storage) -> None:
    await storage.insert_events([event()], [], idem("old", ttl=10))
    await storage.insert_events([event()], [], idem("new", ttl=10_000))
    assert await storage.purge_idempotency(T0 + 100) == 1
    old = await storage.insert_events([event()], [], idem("old", created=T0 + 200))
    assert old.stored  # its record was gone
    new = await storage.insert_events([event()], [], idem("new", created=T0 + 200))
    assert not new.stored


# -- listings -----------------------------------------------------------------------------------------
@pytest.fixture
async def mixed(storage: Storage) -> list[EventRecord]:
    """Ten events of alice (two types, all statuses), one of bob, at distinct and equal times."""
    statuses = [s.value for s in EventStatus]
    records = [
        event(ts=T0 + (i // 2) * 10, event_type="a.one" if i % 3 else "b.two", status=statuses[i % 4])
        for i in range(10)
    ]
    await store(storage, *records, event(user="bob", ts=T0))
    return sorted(records, key=lambda r: (r.ts_us, r.event_id))


async def test_list_orders_by_time_then_id_both_ways(storage: Storage, mixed: list[EventRecord]) -> None:
    oldest = await storage.list_events(EventQuery(user_id="alice", limit=100))
    assert [r.event_id for r in oldest] == [r.event_id for r in mixed]
    newest = await storage.list_events(EventQuery(user_id="alice", limit=100, newest_first=True))
    assert [r.event_id for r in newest] == [r.event_id for r in reversed(mixed)]


async def test_list_filters_by_status_type_and_time(storage: Storage, mixed: list[EventRecord]) -> None:
    inbox = tuple(s.value for s in INBOX_STATUSES)

    async def ids(**kw: object) -> list[str]:
        return [r.event_id for r in await storage.list_events(EventQuery(user_id="alice", limit=100, **kw))]  # type: ignore[arg-type]

    assert await ids(statuses=inbox) == [r.event_id for r in mixed if r.status in inbox]
    assert await ids(statuses=("failed",)) == [r.event_id for r in mixed if r.status == "failed"]
    assert await ids(statuses=("delivered", "queued")) == [
        r.event_id for r in mixed if r.status in ("delivered", "queued")
    ]
    assert await ids(event_type="b.two") == [r.event_id for r in mixed if r.event_type == "b.two"]
    assert await ids(event_type="b.two", statuses=inbox) == [
        r.event_id for r in mixed if r.event_type == "b.two" and r.status in inbox
    ]
    assert await ids(from_us=T0 + 10, to_us=T0 + 30) == [
        r.event_id for r in mixed if T0 + 10 <= r.ts_us <= T0 + 30
    ]
    assert await ids(event_type="nope") == []
    # the widest 64-bit bounds select nothing (or everything), never an error
    assert await ids(from_us=2**63 - 1) == []
    assert await ids(to_us=-(2**63)) == []
    assert len(await ids(from_us=-(2**63), to_us=2**63 - 1)) == 10


async def test_keyset_pages_cover_every_row_once(storage: Storage, mixed: list[EventRecord]) -> None:
    for newest_first in (False, True):
        seen: list[str] = []
        after: tuple[int, str] | None = None
        while True:
            rows = await storage.list_events(
                EventQuery(user_id="alice", limit=3, after=after, newest_first=newest_first)
            )
            if not rows:
                break
            seen += [r.event_id for r in rows]
            after = (rows[-1].ts_us, rows[-1].event_id)
        expected = [r.event_id for r in mixed]
        assert seen == (list(reversed(expected)) if newest_first else expected)


async def test_ids_order_bytewise_at_equal_times(storage: Storage) -> None:
    ids = [
        "0000aaaa-0000-0000-0000-000000000000",
        "0000AAAA-0000-0000-0000-000000000000",
        "0000-aaa",
        "0000_aaa",
    ]
    await store(storage, *(event(event_id=i, ts=T0) for i in ids))
    rows = await storage.list_events(EventQuery(user_id="alice"))
    assert [r.event_id for r in rows] == sorted(ids, key=lambda s: s.encode())


async def test_pages_encoded_by_the_database_match_the_rendered_records(storage: Storage) -> None:
    """``list_events_json`` is the same page as ``list_events``, rendered like ``render_event``:
    byte for byte for ordinary events, the same JSON for exotic text."""
    from triggers_api.events.service import render_event

    plain = [event(ts=T0 + i, payload=b'{"n":%d,"s":"x"}' % i) for i in range(7)]
    exotic = event(
        ts=T0 + 7, payload='{"s":"ü \\u0000 \\" \\\\ \\n","big":123456789012345678901234}'.encode()
    )
    exotic.metadata = b'{"source_ip":null,"user_agent":"\xc3\xa9\\t"}'
    done = event(ts=T0 + 8, status=EventStatus.DELIVERED.value)
    done.delivered_us, done.retry_count, done.last_retry_us = T0 + 9, 2, 1_700_000_123_000_001
    await store(storage, *plain, exotic, done, event(user="bob", ts=T0 + 3))
    await storage.acknowledge("alice", [done.event_id], 1_700_000_999_000_000, {})
    queries = [
        EventQuery(user_id="alice", statuses=tuple(s.value for s in INBOX_STATUSES), limit=3),
        EventQuery(user_id="alice", limit=200, newest_first=True),
        EventQuery(user_id="alice", limit=4, after=(T0 + 2, plain[2].event_id)),
        EventQuery(user_id="alice", statuses=("delivered",), limit=5),
        EventQuery(user_id="nobody", limit=5),
    ]
    for query in queries:
        for with_ack in (False, True):
            page = await storage.list_events_json(query, with_ack=with_ack)
            assert page is not None
            probe = EventQuery(
                **{**{f: getattr(query, f) for f in query.__slots__}, "limit": query.limit + 1}
            )
            records = await storage.list_events(probe)
            shown = records[: query.limit]
            assert page.count == len(shown)
            assert page.has_more == (len(records) > query.limit)
            assert page.last == ((shown[-1].ts_us, shown[-1].event_id) if page.has_more else None)
            expected = [render_event(r, with_ack=with_ack) for r in shown]
            assert orjson.loads(page.events) == orjson.loads(orjson.dumps(expected))
            ordinary = [r for r in shown if r.event_id != exotic.event_id]
            if len(ordinary) == len(shown):
                assert page.events == orjson.dumps(expected)


# -- acknowledgement ----------------------------------------------------------------------------------
async def test_acknowledge_drops_the_payload_and_audits_once(storage: Storage) -> None:
    a, b = event(), event(ts=T0 + 1)
    await store(storage, a, b)
    missing = str(uuid.uuid4())
    ack_audit = {a.event_id: audit_for(a, "event.acknowledged", T0 + 50)}
    results = await storage.acknowledge("alice", [a.event_id, missing, a.event_id], T0 + 50, ack_audit)
    assert results == [AckResult.ACKNOWLEDGED, AckResult.NOT_FOUND, AckResult.ALREADY_ACKNOWLEDGED]
    got = await storage.get_event("alice", a.event_id)
    assert got is not None
    assert (got.status, got.payload, got.acknowledged_us, got.delivered_us) == (
        "delivered",
        None,
        T0 + 50,
        T0 + 50,
    )
    again = await storage.acknowledge(
        "alice", [a.event_id], T0 + 60, {a.event_id: audit_for(a, "event.acknowledged", T0 + 60)}
    )
    assert again == [AckResult.ALREADY_ACKNOWLEDGED]
    acks = await storage.list_audit(AuditQuery(user_id="alice", action="event.acknowledged"))
    assert [(x.event_id, x.ts_us) for x in acks] == [(a.event_id, T0 + 50)]
    inbox = await storage.list_events(
        EventQuery(user_id="alice", statuses=tuple(s.value for s in INBOX_STATUSES))
    )
    assert [r.event_id for r in inbox] == [b.event_id]
    assert await storage.acknowledge("alice", [], T0, {}) == []


async def test_acknowledge_keeps_an_earlier_delivery_time(storage: Storage) -> None:
    record = event(status=EventStatus.DELIVERED.value)
    record.delivered_us = T0 + 5
    await store(storage, record)
    assert await storage.acknowledge("alice", [record.event_id], T0 + 9, {}) == [AckResult.ACKNOWLEDGED]
    got = await storage.get_event("alice", record.event_id)
    assert got is not None and (got.delivered_us, got.acknowledged_us) == (T0 + 5, T0 + 9)


async def test_concurrent_acknowledgements_change_an_event_once(
    storage: Storage, open_twin: OpenTwin
) -> None:
    twin = await open_twin()
    records = [event(ts=T0 + i) for i in range(20)]
    await store(storage, *records)
    ids = [r.event_id for r in records]

    async def ack(s: Storage, n: int) -> list[AckResult]:
        return await s.acknowledge(
            "alice",
            ids,
            T0 + 100 + n,
            {i: audit_for(r, "event.acknowledged") for i, r in zip(ids, records, strict=True)},
        )

    results = await asyncio.gather(*(ack(storage if n % 2 else twin, n) for n in range(6)))
    for column in zip(*results, strict=True):
        assert sorted(column).count(AckResult.ACKNOWLEDGED) == 1
        assert column.count(AckResult.ALREADY_ACKNOWLEDGED) == 5
    audits = await storage.list_audit(AuditQuery(user_id="alice", action="event.acknowledged", limit=200))
    assert sorted(a.event_id or "" for a in audits) == sorted(ids)


async def test_acknowledgements_committed_together_keep_every_result_exact(storage: Storage) -> None:
    """Acknowledgements made at once share one group commit (SQLite) or statement (PostgreSQL):
    each still answers as if it had run alone, one after the other."""
    mine = [event(ts=T0 + i) for i in range(6)]
    theirs, done = event(user="bob", ts=T0 + 10), event(ts=T0 + 11)
    await store(storage, *mine, theirs, done)
    assert await storage.acknowledge("alice", [done.event_id], T0 + 20, {}) == [AckResult.ACKNOWLEDGED]
    missing = str(uuid.uuid4())
    batch = [m.event_id for m in mine[1:]] + [mine[1].event_id]
    calls = [
        ("alice", [mine[0].event_id], T0 + 100),
        ("alice", [mine[0].event_id], T0 + 101),  # the same event again
        ("alice", [theirs.event_id], T0 + 102),  # another user's: exactly like an unknown one
        ("bob", [theirs.event_id], T0 + 103),  # its owner
        ("alice", [done.event_id, missing], T0 + 104),
        ("alice", batch, T0 + 105),  # a batch holding a duplicate
    ]

    def audit(user: str, ids: list[str], at: int) -> dict[str, AuditRecord]:
        return {
            i: AuditRecord(str(uuid.uuid4()), user, "event.acknowledged", at, i, b"{}", "", "r") for i in ids
        }

    results = await asyncio.gather(
        *(storage.acknowledge(user, ids, at, audit(user, ids, at)) for user, ids, at in calls)
    )
    first, second = results[0][0], results[1][0]
    assert sorted([first, second]) == sorted([AckResult.ACKNOWLEDGED, AckResult.ALREADY_ACKNOWLEDGED])
    assert results[2:] == [
        [AckResult.NOT_FOUND],
        [AckResult.ACKNOWLEDGED],
        [AckResult.ALREADY_ACKNOWLEDGED, AckResult.NOT_FOUND],
        [AckResult.ACKNOWLEDGED] * 5 + [AckResult.ALREADY_ACKNOWLEDGED],
    ]
    winner_at = T0 + 100 if first is AckResult.ACKNOWLEDGED else T0 + 101
    got = await storage.get_event("alice", mine[0].event_id)
    assert got is not None and (got.status, got.payload, got.acknowledged_us) == (
        "delivered",
        None,
        winner_at,
    )
    bob = await storage.get_event("bob", theirs.event_id)
    assert bob is not None and bob.acknowledged_us == T0 + 103
    acks = await storage.list_audit(AuditQuery(user_id="alice", action="event.acknowledged", limit=50))
    expected = [(mine[0].event_id, winner_at)] + [(m.event_id, T0 + 105) for m in mine[1:]]
    assert sorted((a.event_id or "", a.ts_us) for a in acks) == sorted(expected)
    bob_acks = await storage.list_audit(AuditQuery(user_id="bob", action="event.acknowledged"))
    assert [(a.event_id, a.ts_us) for a in bob_acks] == [(theirs.event_id, T0 + 103)]


# -- keys ---------------------------------------------------------------------------------------------
async def test_keys_insert_find_list_and_count(storage: Storage) -> None:
    assert await storage.count_keys() == 0
    k1 = api_key(created=T0, name="first")
    k2 = api_key(created=T0 + 1, name="nul \x00 and ü")
    k1.expires_us = T0 + 10**9
    await storage.insert_key(k1, None)
    await storage.insert_key(k2, AuditRecord(str(uuid.uuid4()), "alice", "key.created", T0 + 1))
    await storage.insert_key(api_key(user="bob"), None)
    assert await storage.count_keys() == 3
    assert await storage.find_key_by_hash(k1.key_hash) == k1
    assert await storage.find_key_by_hash("nope") is None
    assert await storage.list_keys("alice") == [k2, k1]
    assert await storage.list_keys("carol") == []
    assert [a.action for a in await storage.list_audit(AuditQuery(user_id="alice"))] == ["key.created"]


async def test_get_key_reads_one_key_of_its_owner_only(storage: Storage) -> None:
    mine = api_key(name="nul \x00 and ü")
    mine.expires_us = T0 + 10**9
    theirs = api_key(user="bob")
    await storage.insert_key(mine, None)
    await storage.insert_key(api_key(created=T0 + 1), None)  # a sibling: not what is asked for
    await storage.insert_key(theirs, None)
    assert await storage.get_key("alice", mine.key_id) == mine
    assert await storage.get_key("bob", theirs.key_id) == theirs
    # another user's key id answers exactly like an unknown one (tenant isolation)
    assert await storage.get_key("bob", mine.key_id) is None
    assert await storage.get_key("alice", theirs.key_id) is None
    for user, key_id in [
        ("alice", str(uuid.uuid4())),
        ("carol", mine.key_id),
        ("", mine.key_id),
        ("alice", ""),
        ("alice\x00", mine.key_id),
        ("alice", mine.key_id + "\x00"),
        ("alice", "k" * 1100),
    ]:
        assert await storage.get_key(user, key_id) is None


async def test_get_key_sees_a_revocation_at_once(storage: Storage) -> None:
    key = api_key()
    await storage.insert_key(key, None)
    await storage.revoke_key(key.key_id, "alice", T0 + 5, None)
    # the next read already has it: what a revoked key being refused from the next request needs
    found = await storage.get_key("alice", key.key_id)
    assert found is not None and (found.is_active, found.revoked_us) == (False, T0 + 5)
    assert found.key_hash == key.key_hash and found.scopes == key.scopes


async def test_a_duplicate_key_hash_is_refused(storage: Storage) -> None:
    k1 = api_key()
    await storage.insert_key(k1, None)
    clash = api_key()
    clash.key_hash = k1.key_hash
    with pytest.raises(StorageError):
        await storage.insert_key(clash, None)
    assert await storage.count_keys() == 1


async def test_revoke_is_owner_scoped_and_audited_once(storage: Storage) -> None:
    key = api_key()
    await storage.insert_key(key, None)
    assert await storage.revoke_key(key.key_id, "mallory", T0 + 5, None) is None
    assert await storage.revoke_key(str(uuid.uuid4()), None, T0 + 5, None) is None
    audit = AuditRecord(str(uuid.uuid4()), "", "key.revoked", T0 + 5)
    revoked = await storage.revoke_key(key.key_id, "alice", T0 + 5, audit)
    assert revoked is not None and not revoked.is_active and revoked.revoked_us == T0 + 5
    assert audit.user_id == "alice"  # the audit record is attributed to the key's owner
    again = await storage.revoke_key(
        key.key_id, None, T0 + 9, AuditRecord(str(uuid.uuid4()), "", "key.revoked", T0 + 9)
    )
    assert again is not None and again.revoked_us == T0 + 5
    found = await storage.find_key_by_hash(key.key_hash)
    assert found is not None and not found.is_active
    assert len(await storage.list_audit(AuditQuery(user_id="alice", action="key.revoked"))) == 1


async def test_record_key_use_only_moves_forward(storage: Storage) -> None:
    k1, k2 = api_key(), api_key()
    await storage.insert_key(k1, None)
    await storage.insert_key(k2, None)
    await storage.record_key_use({k1.key_id: T0 + 10, k2.key_id: T0 + 20, "unknown": T0})
    await storage.record_key_use({k1.key_id: T0 + 5})
    await storage.record_key_use({})
    assert (await storage.find_key_by_hash(k1.key_hash)).last_used_us == T0 + 10  # type: ignore[union-attr]
    assert (await storage.find_key_by_hash(k2.key_hash)).last_used_us == T0 + 20  # type: ignore[union-attr]


# -- audit ----------------------------------------------------------------------------------------------
async def test_audit_lists_newest_first_with_filters_and_cursor(storage: Storage) -> None:
    records = [event(ts=T0 + i) for i in range(5)]
    await store(storage, *records)
    await storage.acknowledge(
        "alice",
        [records[0].event_id],
        T0 + 100,
        {records[0].event_id: audit_for(records[0], "event.acknowledged", T0 + 100)},
    )
    await store(storage, event(user="bob"))
    everything = await storage.list_audit(AuditQuery(user_id="alice", limit=100))
    assert [a.ts_us for a in everything] == [T0 + 100, T0 + 4, T0 + 3, T0 + 2, T0 + 1, T0]
    by_event = await storage.list_audit(AuditQuery(user_id="alice", event_id=records[0].event_id))
    assert [a.action for a in by_event] == ["event.acknowledged", "event.created"]
    assert len(await storage.list_audit(AuditQuery(user_id="alice", action="event.created"))) == 5
    pages: list[str] = []
    before: tuple[int, str] | None = None
    while True:
        page = await storage.list_audit(AuditQuery(user_id="alice", limit=2, before=before))
        if not page:
            break
        pages += [a.log_id for a in page]
        before = (page[-1].ts_us, page[-1].log_id)
    assert pages == [a.log_id for a in everything]
    assert (
        everything[0].details
        and everything[0].ip_address == "203.0.113.7"
        and everything[0].request_id == "req-1"
    )


async def test_filtered_audit_pages_by_cursor_through_equal_times(storage: Storage) -> None:
    """Filtered by event or by action, the audit log pages newest first by (time, log id) like the
    unfiltered listing, through rows that share one time too (SQLite reads a filter's own index
    and orders such ties by log id)."""
    record, other = event(), event()
    rows = [audit_for(record, "event.replayed", T0 + 5) for _ in range(4)]
    rows += [audit_for(record, "event.created", T0), audit_for(other, "event.replayed", T0 + 5)]
    await storage.insert_events([record, other], rows)
    for field, value in (("event_id", record.event_id), ("action", "event.replayed")):
        expected = sorted(((a.ts_us, a.log_id) for a in rows if getattr(a, field) == value), reverse=True)
        listed = await storage.list_audit(AuditQuery(user_id="alice", limit=100, **{field: value}))
        assert [(a.ts_us, a.log_id) for a in listed] == expected
        paged: list[tuple[int, str]] = []
        before: tuple[int, str] | None = None
        while True:
            query = AuditQuery(user_id="alice", limit=2, before=before, **{field: value})
            page = await storage.list_audit(query)
            if not page:
                break
            paged += [(a.ts_us, a.log_id) for a in page]
            before = paged[-1]
        assert paged == expected


async def test_purge_audit_removes_only_older_rows(storage: Storage) -> None:
    records = [event(ts=T0 + i) for i in range(4)]
    await store(storage, *records)
    assert await storage.purge_audit(T0 + 2) == 2
    left = await storage.list_audit(AuditQuery(user_id="alice"))
    assert sorted(a.ts_us for a in left) == [T0 + 2, T0 + 3]


# -- retention ------------------------------------------------------------------------------------------
async def test_expired_events_are_listed_in_expiry_order_and_deleted(storage: Storage) -> None:
    now_s = T0 // 1_000_000
    soon = [event(expires_at=now_s - 10 + i, ts=T0 + i) for i in range(5)]
    later = event(expires_at=now_s + 1000)
    await store(storage, *reversed(soon), later)
    expired = await storage.expired_events(now_s, 3)
    assert [e.event_id for e in expired] == [e.event_id for e in soon[:3]]
    assert len(await storage.expired_events(now_s, 100)) == 5
    # only rows that are still expired go, whatever ids are passed
    deleted = await storage.delete_events([e.event_id for e in soon[:3]] + [later.event_id, "missing"], now_s)
    assert deleted == 3
    assert await storage.get_event("alice", soon[0].event_id) is None
    assert await storage.get_event("alice", later.event_id) == later
    assert await storage.delete_events([], now_s) == 0


async def test_retention_deletes_and_purges_more_than_one_bounded_write(storage: Storage) -> None:
    """Retention works in bounded writes (SQLite and PostgreSQL: 200 rows per statement); a call
    given more than that removes them all and counts each once."""
    now_s = T0 // 1_000_000
    expired = [event(ts=T0 + i, expires_at=now_s - 1) for i in range(250)]
    kept = event(ts=T0 + 999, expires_at=now_s + 1000)
    await storage.insert_events([*expired, kept], [audit_for(e) for e in expired])
    assert len(await storage.expired_events(now_s, 1000)) == 250
    assert await storage.delete_events([e.event_id for e in expired] + [kept.event_id], now_s) == 250
    assert await storage.expired_events(now_s, 1000) == []
    assert await storage.get_event("alice", kept.event_id) == kept
    assert await storage.purge_audit(T0 + 1000) == 250
    assert await storage.list_audit(AuditQuery(user_id="alice")) == []
    await asyncio.gather(*(storage.insert_events([event()], [], idem(f"k{i}", ttl=10)) for i in range(250)))
    assert await storage.purge_idempotency(T0 + 100) == 250
    assert await storage.purge_idempotency(T0 + 100) == 0


async def test_write_failure_is_none_while_writes_commit(storage: Storage) -> None:
    """``write_failure`` names a failing disk or connection (what /v1/health reports); a healthy
    store that commits reports none. The failing side is tests/integration/test_disk_full.py
    (SQLite) and tests/postgres/test_outage.py (PostgreSQL)."""
    assert storage.write_failure() is None
    record = event()
    await storage.insert_events([record], [audit_for(record)])
    assert storage.write_failure() is None
