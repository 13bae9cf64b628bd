"""The inbox queries, the id look-ups, claims and the stream are served by indexes, never by a
sequential scan: checked with EXPLAIN on a populated, analysed table."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import orjson
import pytest

from tests.postgres.conftest import OpenStore
from triggers_api.storage.base import (
    INBOX_STATUSES,
    ApiKeyRecord,
    AuditRecord,
    EventQuery,
    EventRecord,
    EventStatus,
)
from triggers_api.storage.postgres import _CLAIM, _SAFE_POSITION, EVENT_COLUMNS, event_listing_sql

T0 = 1_700_000_000_000_000
USERS = 4
PER_USER = 3000  # enough rows per user that reading in index order beats sorting
STATUSES = [s.value for s in EventStatus]


def _plan_nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    nodes = [plan]
    for child in plan.get("Plans", []):
        nodes += _plan_nodes(child)
    return nodes


@pytest.fixture
async def explain(open_store: OpenStore, pg_url: str, pg_schema: str) -> Any:
    store = await open_store()
    for u in range(USERS):
        records = [
            EventRecord(
                event_id=str(uuid.uuid4()),
                user_id=f"user-{u}",
                event_type=f"type.{i % 10}",
                payload=b"{}",
                status=STATUSES[i % 4] if i % 50 else EventStatus.FAILED.value,
                ts_us=T0 + i * 1000,
                expires_at=T0 // 1_000_000 + 86_400,
                metadata=b"{}",
            )
            for i in range(PER_USER)
        ]
        for start in range(0, PER_USER, 500):
            chunk = records[start : start + 500]
            audit = [
                AuditRecord(str(uuid.uuid4()), r.user_id, "event.created", r.ts_us, r.event_id) for r in chunk
            ]
            await store.insert_events(chunk, audit)
    keys = [
        ApiKeyRecord(
            f"key-{k}", f"user-{k % USERS}", f"hash-{k}", "tk_abcdefg", "k", T0, 60, ("events:read",)
        )
        for k in range(2000)  # a key table of a few pages: big enough that a seek beats a scan
    ]
    for start in range(0, len(keys), 100):
        await asyncio.gather(*(store.insert_key(k, None) for k in keys[start : start + 100]))
    conn = await asyncpg.connect(pg_url, server_settings={"search_path": pg_schema})
    await conn.execute("ANALYZE")

    async def run(sql: str, *params: Any) -> tuple[set[str], set[str]]:
        raw = await conn.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *params)
        nodes = _plan_nodes(orjson.loads(raw)[0]["Plan"])
        return {n["Node Type"] for n in nodes}, {n["Index Name"] for n in nodes if "Index Name" in n}

    try:
        yield run
    finally:
        await conn.close()


INBOX = tuple(s.value for s in INBOX_STATUSES)


LISTINGS = [
    ("inbox", EventQuery(user_id="user-2", statuses=INBOX, limit=51), "ix_events_inbox"),
    (
        "inbox-page-2",
        EventQuery(user_id="user-2", statuses=INBOX, after=(T0 + 5000, "f" * 36), limit=51),
        "ix_events_inbox",
    ),
    (
        "one-status",
        EventQuery(user_id="user-2", statuses=("delivered",), limit=51),
        "ix_events_user_status_ts",
    ),
    ("dead-letters", EventQuery(user_id="user-2", statuses=("failed",), limit=51), "ix_events_dead"),
    (
        "status-and-time",
        EventQuery(user_id="user-2", statuses=("received",), from_us=T0, to_us=T0 + 10**6, limit=51),
        "ix_events_user_status_ts",
    ),
    (
        "inbox-of-a-type",
        EventQuery(user_id="user-2", statuses=INBOX, event_type="type.3", limit=51),
        "ix_events_user_type_ts",
    ),
    (
        "type-any-status",
        EventQuery(user_id="user-2", event_type="type.3", newest_first=True, limit=51),
        "ix_events_user_type_ts",
    ),
    ("all-events", EventQuery(user_id="user-2", newest_first=True, limit=51), "ix_events_user_ts"),
]


async def test_hot_queries_are_served_by_their_indexes(explain: Any) -> None:
    """One populated table for every check (building it is the slow part)."""
    checks: list[tuple[str, str, tuple[Any, ...], str]] = [
        (name, *_listing(query), index) for name, query, index in LISTINGS
    ]
    checks += [
        (
            "event-by-id",
            f"SELECT {EVENT_COLUMNS} FROM events WHERE event_id = $1 AND user_id = $2",
            ("x", "user-1"),
            "events_pkey",
        ),
        ("key-by-hash", "SELECT key_id FROM api_keys WHERE key_hash = $1", ("h",), "api_keys_key_hash_key"),
        ("claim", _CLAIM, ("token", T0 + 10**9, T0 + 10**6, 32), "ix_events_due"),
        (
            "stream",
            f"SELECT position FROM events WHERE user_id = $1 AND position > $2 AND position < {_SAFE_POSITION} "
            "ORDER BY position LIMIT 200",
            ("user-3", 0),
            "ix_events_user_position",
        ),
        (
            "audit",
            "SELECT log_id FROM audit_logs WHERE user_id = $1 ORDER BY ts_us DESC, log_id DESC LIMIT 51",
            ("user-3",),
            "ix_audit_user_ts",
        ),
    ]
    wrong = {}
    for name, sql, params, index in checks:
        nodes, indexes = await explain(sql, *params)
        if "Seq Scan" in nodes or index not in indexes:
            wrong[name] = (sorted(nodes), sorted(indexes), f"wanted {index}")
    assert wrong == {}


def _listing(query: EventQuery) -> tuple[str, tuple[Any, ...]]:
    sql, params = event_listing_sql(query)
    return sql, tuple(params)
