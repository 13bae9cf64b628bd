"""What PostgreSQL must get right when several processes share it: each store instance here
stands for another process (its own pool, writers and LISTEN connection)."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg

from tests.postgres.conftest import OpenStore
from triggers_api.storage.base import (
    AttemptOutcome,
    AuditQuery,
    AuditRecord,
    DeliveryAttempt,
    EventRecord,
    ReplaySelector,
    now_us,
)
from triggers_api.storage.postgres import MIGRATIONS

T0 = 1_700_000_000_000_000
LEASE = 30_000_000


def event(user: str = "alice", ts: int = T0) -> EventRecord:
    return EventRecord(
        event_id=str(uuid.uuid4()),
        user_id=user,
        event_type="order.created",
        payload=b'{"n":1}',
        status="received",
        ts_us=ts,
        expires_at=ts // 1_000_000 + 86_400,
        metadata=b"{}",
    )


async def test_many_processes_migrate_at_once(open_store: OpenStore, pg_url: str, pg_schema: str) -> None:
    stores = await asyncio.gather(*(open_store() for _ in range(4)))
    for store in stores:
        await store.ping()
    conn = await asyncpg.connect(pg_url, server_settings={"search_path": pg_schema})
    try:
        versions = [r[0] for r in await conn.fetch("SELECT version FROM schema_migrations ORDER BY version")]
    finally:
        await conn.close()
    assert versions == list(range(1, len(MIGRATIONS) + 1))


async def test_workers_in_four_processes_claim_disjoint_events(open_store: OpenStore) -> None:
    writer = await open_store()
    records = [event(ts=T0 + i) for i in range(400)]
    for start in range(0, len(records), 100):
        await writer.insert_events(records[start : start + 100], [])
    workers = await asyncio.gather(*(open_store() for _ in range(4)))
    claimed: list[list[str]] = [[] for _ in workers]

    async def drain(n: int) -> None:
        round_ = 0
        while True:
            round_ += 1
            batch = await workers[n].claim_due_events(f"w{n}/{round_}", T0 + 10**6, T0 + 10**6 + LEASE, 7)
            if not batch:
                return
            claimed[n] += [c.event.event_id for c in batch]

    await asyncio.gather(*(drain(n) for n in range(len(workers))))
    everything = [i for ids in claimed for i in ids]
    assert sorted(everything) == sorted(r.event_id for r in records)  # all claimed, none twice
    assert sum(1 for ids in claimed if ids) >= 2  # the work really was shared


async def test_a_stream_reader_misses_nothing_while_three_processes_commit(open_store: OpenStore) -> None:
    """Positions follow commit order across processes: a reader that keeps the last position it
    saw, polling while others commit concurrently, sees every event exactly once, in order."""
    writers = await asyncio.gather(*(open_store() for _ in range(3)))
    reader = await open_store()
    written: list[str] = []
    done = asyncio.Event()

    async def write(store_index: int) -> None:
        store = writers[store_index]
        for round_ in range(30):
            batch = [[event(user="s", ts=T0 + round_)] for _ in range(10)]
            await asyncio.gather(*(store.insert_events(b, []) for b in batch))
            written.extend(b[0].event_id for b in batch)

    async def read() -> list[str]:
        """Until everything written has been seen (an event shows once every transaction that
        began before its commit has ended, so "all committed" is not yet "all visible")."""
        seen: list[str] = []
        position = await reader.stream_head()
        deadline: float | None = None
        while True:
            if done.is_set() and deadline is None:
                deadline = asyncio.get_running_loop().time() + 30
            items = await reader.events_after("s", position, None, 50)
            for item in items:
                assert item.position > position
                position = item.position
                seen.append(item.event.event_id)
            if done.is_set() and len(seen) >= len(written):
                return seen
            if deadline is not None and asyncio.get_running_loop().time() > deadline:
                return seen  # the assertions below say what is missing
            if not items:
                await asyncio.sleep(0.005)

    reading = asyncio.create_task(read())
    await asyncio.gather(*(write(i) for i in range(3)))
    done.set()
    seen = await reading
    assert len(seen) == len(set(seen)) == len(written) == 900
    assert set(seen) == set(written)
    for item_id in seen[:3]:
        assert await reader.stream_position("s", item_id) is not None


async def test_another_process_hears_new_events_through_listen_notify(
    open_store: OpenStore, pg_url: str
) -> None:
    listener = await open_store()
    heard: asyncio.Queue[frozenset[str] | None] = asyncio.Queue()
    listener.listen_for_events(heard.put_nowait)
    writer = await open_store()

    async def hear(user: str) -> None:
        while True:
            users = await asyncio.wait_for(heard.get(), timeout=20)
            if users is not None and user in users:
                return

    # the LISTEN connection opens in the background: write until it hears one
    async def write_until_heard(user: str) -> None:
        listening = asyncio.create_task(hear(user))
        while not listening.done():
            await writer.insert_events([event(user=user, ts=now_us())], [])
            await asyncio.wait({listening}, timeout=0.5)
        await listening

    await write_until_heard("first-user")

    # the connection dies (a restart, a failover): the store reconnects, tells its listeners that
    # anything may have happened meanwhile (None), and hears new events again
    conn = await asyncpg.connect(pg_url)
    try:
        killed = await conn.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE query LIKE 'LISTEN %' "
            "AND query LIKE '%' || $1 || '%'",
            listener.channel,
        )
    finally:
        await conn.close()
    assert killed == 1
    while await asyncio.wait_for(heard.get(), timeout=20) is not None:
        pass  # until the reconnect's "anything may have happened"
    await write_until_heard("second-user")


async def test_replay_elsewhere_wakes_listeners(open_store: OpenStore) -> None:
    listener = await open_store()
    heard: asyncio.Queue[frozenset[str] | None] = asyncio.Queue()
    listener.listen_for_events(heard.put_nowait)
    other = await open_store()
    # wait until the LISTEN connection is up: a write it hears
    while True:
        await other.insert_events([event(user="warmup", ts=now_us())], [])
        try:
            users = await asyncio.wait_for(heard.get(), timeout=0.5)
        except TimeoutError:
            continue
        if users is not None and "warmup" in users:
            break
    record = event(user="bob", ts=T0)
    await other.insert_events([record], [])
    (claim,) = [
        c for c in await other.claim_due_events("t", T0 + 1, T0 + 1 + LEASE, 10) if c.event.user_id == "bob"
    ]
    assert claim.event.event_id == record.event_id
    attempt = DeliveryAttempt(
        str(uuid.uuid4()), record.event_id, "bob", T0 + 2, 10, AttemptOutcome.FAILED.value
    )
    assert await other.record_attempt(attempt, "t")
    while not heard.empty():
        heard.get_nowait()

    def audit(event_id: str) -> AuditRecord:
        return AuditRecord(str(uuid.uuid4()), "bob", "event.replayed", T0 + 3, event_id)

    assert await other.replay_events(ReplaySelector(user_id="bob"), T0 + 3, 10, audit) == [record.event_id]
    while True:
        users = await asyncio.wait_for(heard.get(), timeout=20)
        if users is None or "bob" in users:
            break
    assert [
        a.event_id for a in await other.list_audit(AuditQuery(user_id="bob", action="event.replayed"))
    ] == [record.event_id]


async def test_the_pool_recovers_when_the_database_drops_every_connection(
    open_store: OpenStore, pg_url: str
) -> None:
    """A restart or failover closes every connection: idle ones are replaced on the next use,
    so requests after it succeed without the process being restarted."""
    store = await open_store(pool_min=2, pool_max=2)
    first = event()
    await store.insert_events([first], [])
    pool = store._pool
    assert pool is not None
    async with pool.acquire() as one, pool.acquire() as two:
        pids = [await one.fetchval("SELECT pg_backend_pid()"), await two.fetchval("SELECT pg_backend_pid()")]
    admin = await asyncpg.connect(pg_url)
    try:
        assert (
            await admin.fetchval("SELECT count(pg_terminate_backend(p)) FROM unnest($1::int[]) p", pids) == 2
        )
    finally:
        await admin.close()
    await asyncio.sleep(0.2)  # the closed sockets reach the event loop
    second = event(ts=T0 + 1)
    await store.insert_events([second], [])
    assert await store.get_event("alice", first.event_id) == first
    assert await store.get_event("alice", second.event_id) == second
    await store.ping()
