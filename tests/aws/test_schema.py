"""schema.py: the sharding arithmetic, the key formats, and the access patterns it promises,
exercised on the emulator (sparse indexes, item collections, the redrive to the DLQ)."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from tests.aws.conftest import Migrated
from triggers_api.storage.dynamodb import schema


def test_ten_thousand_events_per_second_from_one_user_needs_sixty_shards_of_at_most_500_wcu() -> None:
    # 10,000 events/s x 3 writes (insert, queued, delivered) x 1 WCU (<= 1 KB) = 30,000 WCU/s.
    assert schema.shards_needed(10_000) == 60
    assert 10_000 * 3 / schema.shards_needed(10_000) <= schema.SHARD_TARGET_WCU_PER_S
    # A 2.5 KB event costs 3 WCU per write: three times the shards.
    assert schema.shards_needed(10_000, item_bytes=2_500) == 180
    assert schema.shards_needed(100) == 1 and schema.shards_needed(0) == 1
    assert schema.shards_needed(200) == 2  # 600 WCU/s would pass the 500 target on one partition
    with pytest.raises(ValueError):
        schema.shards_needed(100_000)


def test_rate_limit_counters_split_only_past_500_hits_per_second() -> None:
    assert schema.counter_shards(1_000) == 1  # the default 1,000/min key: 17 hits/s, one item
    assert schema.counter_shards(30_000) == 1
    assert schema.counter_shards(600_000) == 20  # 10,000/s over 20 items of 500/s
    assert schema.counter_shards(30_001) == 2


def test_counter_quotas_sum_to_the_limit_exactly() -> None:
    assert schema.counter_quotas(1_000, 1) == [1_000]
    assert schema.counter_quotas(14, 4) == [4, 4, 3, 3]
    for limit in (30_001, 600_000, 1_234_567):
        quotas = schema.counter_quotas(limit, schema.counter_shards(limit))
        assert sum(quotas) == limit and max(quotas) - min(quotas) <= 1
        assert max(quotas) / 60 <= schema.SHARD_TARGET_WCU_PER_S  # each shard's share of a full window


def test_event_shards_are_stable_and_even() -> None:
    ids = [f"0190f1d2-0000-7000-8000-{i:012x}" for i in range(64_000)]
    counts = Counter(schema.event_shard(i, 64) for i in ids)
    assert set(counts) == set(range(64))
    assert max(counts.values()) < 1.1 * 1_000 and min(counts.values()) > 0.9 * 1_000
    assert schema.event_shard(ids[0], 64) == schema.stable_hash(ids[0]) % 64  # no per-process salt
    assert schema.event_shard(ids[0], 1) == 0
    with pytest.raises(ValueError):
        schema.event_shard(ids[0], 0)


def test_timestamps_sort_as_strings_in_time_order() -> None:
    stamps = [0, 1, 999_999, 1_000_000, 1_700_000_000_123_456, 4_102_444_800_000_000]
    keys = [schema.ts_id(t, "e") for t in stamps]
    assert keys == sorted(keys)
    assert schema.iso_us(1_700_000_000_123_456) == "2023-11-14T22:13:20.123456Z"
    assert len({len(k) for k in keys}) == 1


def test_a_raised_shard_count_is_read_at_once_and_written_only_after_every_cache_expired() -> None:
    now = 1_000_000_000
    count = schema.ShardCount().raised(8, now)
    assert count.for_reading() == 8
    assert count.for_writing(now) == 1
    assert count.for_writing(now + schema.SHARD_CACHE_US - 1) == 1
    assert count.for_writing(now + schema.SHARD_CACHE_US) == 8
    again = count.raised(16, now + 1)  # raised again before the first change took effect
    assert (again.for_reading(), again.for_writing(now + 1)) == (16, 1)
    assert count.raised(4, now) is count  # never shrinks


def test_every_index_key_is_declared_once_with_one_type() -> None:
    for table in schema.TABLES:
        definitions = table.attribute_definitions()
        for index in table.indexes:
            for attribute in index.key_attributes():
                assert definitions[attribute.name] == attribute.type
            if index.projection == "INCLUDE":
                assert index.include
            else:
                assert not index.include
    names = [t.suffix for t in schema.TABLES]
    assert len(names) == len(set(names))
    assert {"events", "api-keys", "audit-logs"} <= set(names)
    assert [q.suffix for q in schema.QUEUES] == ["delivery-dlq", "delivery"]


def _event_item(user: str, shards: int, ts_us: int, event_id: str, status: str) -> dict[str, Any]:
    key_ts_id = schema.ts_id(ts_us, event_id)
    item: dict[str, Any] = {
        "user_shard": {"S": schema.user_shard(user, schema.event_shard(event_id, shards))},
        "ts_id": {"S": key_ts_id},
        "event_id": {"S": event_id},
        "event_type": {"S": "order.created"},
        "status": {"S": status},
        "type_ts_id": {"S": f"order.created#{key_ts_id}"},
        "ttl": {"N": str(ts_us // 1_000_000 + 30 * 86_400)},
    }
    if status in ("received", "queued", "failed"):
        item["inbox_ts_id"] = {"S": key_ts_id}
    return item


def test_the_inbox_is_a_sparse_index_merged_across_a_users_shards(migrated: Migrated) -> None:
    dynamodb, prefix = migrated.dynamodb, migrated.prefix
    table = schema.EVENTS.name(prefix)
    shards = 4
    statuses = ["received", "delivered", "queued", "failed", "delivered"] * 8
    written = []
    for n, status in enumerate(statuses):
        item = _event_item("u1", shards, 1_700_000_000_000_000 + n, f"e{n:03d}", status)
        dynamodb.put_item(TableName=table, Item=item)
        written.append(item)
    dynamodb.put_item(TableName=table, Item=_event_item("u2", 1, 1_700_000_000_000_000, "other", "received"))

    merged: list[str] = []
    for shard in range(shards):
        page = dynamodb.query(
            TableName=table,
            IndexName="InboxIndex",
            KeyConditionExpression="user_shard = :p",
            ExpressionAttributeValues={":p": {"S": schema.user_shard("u1", shard)}},
        )
        merged += [i["inbox_ts_id"]["S"] for i in page["Items"]]
    expected = [i["ts_id"]["S"] for i in written if i["status"]["S"] != "delivered"]
    assert sorted(merged) == expected
    assert len({schema.event_shard(f"e{n:03d}", shards) for n in range(len(statuses))}) == shards

    # Acknowledgement removes the attribute: the event leaves the inbox index, stays in the table.
    first = written[0]
    key = {"user_shard": first["user_shard"], "ts_id": first["ts_id"]}
    dynamodb.update_item(
        TableName=table,
        Key=key,
        UpdateExpression="SET #s = :d REMOVE inbox_ts_id",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":d": {"S": "delivered"}},
    )
    page = dynamodb.query(
        TableName=table,
        IndexName="InboxIndex",
        KeyConditionExpression="user_shard = :p AND inbox_ts_id = :t",
        ExpressionAttributeValues={":p": first["user_shard"], ":t": first["ts_id"]},
    )
    assert page["Items"] == []
    assert (
        dynamodb.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"]["status"]["S"] == "delivered"
    )


def test_an_events_delivery_state_is_one_item_collection_and_the_due_index_is_sparse(
    migrated: Migrated,
) -> None:
    dynamodb, prefix = migrated.dynamodb, migrated.prefix
    table = schema.DELIVERIES.name(prefix)
    event_id = "0190f1d2-aaaa-7000-8000-000000000001"
    pointer = {
        "event_id": {"S": event_id},
        "item": {"S": schema.EVENT_POINTER},
        "user_id": {"S": "u1"},
        "user_shard": {"S": "u1#0"},
        "ts_id": {"S": schema.ts_id(1_700_000_000_000_000, event_id)},
    }
    dynamodb.put_item(TableName=table, Item=pointer, ConditionExpression="attribute_not_exists(event_id)")
    for destination, pending in (("workflow", True), ("sub-1", False)):
        item = {
            "event_id": {"S": event_id},
            "item": {"S": schema.DESTINATION_PREFIX + destination},
            "status": {"S": "pending" if pending else "delivered"},
            "next_attempt_us": {"N": "1700000000000000"},
        }
        if pending:
            item["due_shard"] = {"S": schema.due_shard(event_id, destination)}
        dynamodb.put_item(TableName=table, Item=item)
    dynamodb.put_item(
        TableName=table,
        Item={"event_id": {"S": event_id}, "item": {"S": schema.ATTEMPT_PREFIX + "0190f1d2-bbbb"}},
    )

    collection = dynamodb.query(
        TableName=table,
        KeyConditionExpression="event_id = :e",
        ExpressionAttributeValues={":e": {"S": event_id}},
        ConsistentRead=True,
    )["Items"]
    assert [i["item"]["S"] for i in collection] == [
        "#event",
        "attempt#0190f1d2-bbbb",
        "dest#sub-1",
        "dest#workflow",
    ]

    def due(shard: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = dynamodb.query(
            TableName=table,
            IndexName="DueIndex",
            KeyConditionExpression="due_shard = :s AND next_attempt_us <= :now",
            ExpressionAttributeValues={":s": {"S": shard}, ":now": {"N": "1700000000000001"}},
        )["Items"]
        return items

    pending_shard = schema.due_shard(event_id, "workflow")
    assert schema.due_shard(event_id, "sub-1") != pending_shard  # (else the check below proves less)
    assert due(schema.due_shard(event_id, "sub-1")) == []
    found = due(pending_shard)
    assert [(i["event_id"]["S"], i["item"]["S"]) for i in found] == [(event_id, "dest#workflow")]

    # The pointer is written once: a second insert of the same id is refused, not overwritten.
    with pytest.raises(dynamodb.exceptions.ConditionalCheckFailedException):
        dynamodb.put_item(TableName=table, Item=pointer, ConditionExpression="attribute_not_exists(event_id)")


def test_a_message_received_max_receive_count_times_moves_to_the_dead_letter_queue(
    migrated: Migrated,
) -> None:
    sqs, prefix = migrated.sqs, migrated.prefix
    url = sqs.get_queue_url(QueueName=schema.DELIVERY.name(prefix))["QueueUrl"]
    dlq = sqs.get_queue_url(QueueName=schema.DELIVERY_DLQ.name(prefix))["QueueUrl"]
    body = json.dumps({"event_id": "e1", "destination": "workflow"})
    sqs.send_message(QueueUrl=url, MessageBody=body)
    receives = 0
    while True:
        got = sqs.receive_message(QueueUrl=url, VisibilityTimeout=0, WaitTimeSeconds=0).get("Messages", [])
        if not got:
            break
        receives += 1
        assert receives <= schema.DELIVERY_MAX_RECEIVE_COUNT
    assert receives == schema.DELIVERY_MAX_RECEIVE_COUNT
    dead = sqs.receive_message(QueueUrl=dlq, WaitTimeSeconds=0)["Messages"]
    assert [m["Body"] for m in dead] == [body]
