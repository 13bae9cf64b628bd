"""migrate.py against the emulator: create mode builds exactly schema.py, is idempotent and fixes
what it safely can; check mode changes nothing and reports every difference."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.aws.conftest import Migrated
from triggers_api.errors import StorageError
from triggers_api.storage.dynamodb import DynamoDBStorage, schema
from triggers_api.storage.dynamodb.migrate import main, migrate


def _tables(dynamodb: Any, prefix: str) -> set[str]:
    names: set[str] = set()
    for page in dynamodb.get_paginator("list_tables").paginate():
        names |= {n for n in page["TableNames"] if n.startswith(f"{prefix}-")}
    return names


def _queue_attributes(sqs: Any, name: str) -> dict[str, str]:
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    return dict(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"])


def test_create_mode_builds_every_table_index_ttl_stream_and_queue_of_the_schema(migrated: Migrated) -> None:
    dynamodb, sqs, prefix, report = migrated.dynamodb, migrated.sqs, migrated.prefix, migrated.report

    assert report.ok, report.problems
    assert {f"table {t.name(prefix)}" for t in schema.TABLES} | {
        f"queue {q.name(prefix)}" for q in schema.QUEUES
    } == set(report.created)
    assert _tables(dynamodb, prefix) == {t.name(prefix) for t in schema.TABLES}
    for table in schema.TABLES:
        described = dynamodb.describe_table(TableName=table.name(prefix))["Table"]
        assert described["KeySchema"] == table.create_table_request(prefix)["KeySchema"]
        assert described["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
        indexes = {i["IndexName"]: i for i in described.get("GlobalSecondaryIndexes", [])}
        assert set(indexes) == {i.name for i in table.indexes}
        for index in table.indexes:
            assert indexes[index.name]["KeySchema"] == schema.index_request(index)["KeySchema"]
            assert indexes[index.name]["Projection"]["ProjectionType"] == index.projection
            assert sorted(indexes[index.name]["Projection"].get("NonKeyAttributes", [])) == sorted(
                index.include
            )
        ttl = dynamodb.describe_time_to_live(TableName=table.name(prefix))["TimeToLiveDescription"]
        if table.ttl_attribute is None:
            assert ttl["TimeToLiveStatus"] == "DISABLED"
        else:
            assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "ttl")
        stream = described.get("StreamSpecification", {})
        assert stream.get("StreamViewType") == table.stream_view
        pitr = dynamodb.describe_continuous_backups(TableName=table.name(prefix))[
            "ContinuousBackupsDescription"
        ]
        assert (pitr["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED") is (
            table.point_in_time_recovery
        )
    assert schema.EVENTS.stream_view == "NEW_AND_OLD_IMAGES"

    delivery = _queue_attributes(sqs, schema.DELIVERY.name(prefix))
    dlq = _queue_attributes(sqs, schema.DELIVERY_DLQ.name(prefix))
    assert json.loads(delivery["RedrivePolicy"]) == {
        "deadLetterTargetArn": dlq["QueueArn"],
        "maxReceiveCount": schema.DELIVERY_MAX_RECEIVE_COUNT,
    }
    assert int(delivery["VisibilityTimeout"]) == schema.DELIVERY_VISIBILITY_TIMEOUT_S == 180
    assert int(delivery["MessageRetentionPeriod"]) == schema.DELIVERY_RETENTION_S
    assert int(dlq["MessageRetentionPeriod"]) == 14 * 86_400
    assert "RedrivePolicy" not in dlq


def test_a_second_run_changes_nothing_and_check_mode_then_agrees(migrated: Migrated) -> None:
    dynamodb, sqs, prefix = migrated.dynamodb, migrated.sqs, migrated.prefix
    again = migrate(dynamodb, sqs, prefix, poll_s=0.01)
    assert (again.created, again.updated, again.problems) == ([], [], [])
    checked = migrate(dynamodb, sqs, prefix, check_only=True)
    assert (checked.created, checked.updated, checked.problems) == ([], [], [])


def test_check_mode_on_an_empty_account_reports_everything_and_creates_nothing(
    aws_clients: tuple[Any, Any], prefix: str
) -> None:
    dynamodb, sqs = aws_clients
    report = migrate(dynamodb, sqs, prefix, check_only=True)
    assert not report.ok and not report.created and not report.updated
    for table in schema.TABLES:
        assert f"table {table.name(prefix)}: missing" in report.problems
    assert f"queue {schema.DELIVERY_DLQ.name(prefix)}: missing" in report.problems
    assert f"queue {schema.DELIVERY.name(prefix)}: its dead-letter queue is missing" in report.problems
    assert _tables(dynamodb, prefix) == set()
    assert not sqs.list_queues(QueueNamePrefix=f"{prefix}-").get("QueueUrls")


def test_a_missing_index_stream_and_ttl_are_reported_then_added_without_touching_data(
    aws_clients: tuple[Any, Any], prefix: str
) -> None:
    dynamodb, sqs = aws_clients
    events = schema.EVENTS
    bare = events.create_table_request(prefix)
    del bare["GlobalSecondaryIndexes"], bare["StreamSpecification"]
    bare["AttributeDefinitions"] = [
        a for a in bare["AttributeDefinitions"] if a["AttributeName"] in ("user_shard", "ts_id")
    ]
    dynamodb.create_table(**bare)
    item = {"user_shard": {"S": "u1#0"}, "ts_id": {"S": schema.ts_id(1_700_000_000_000_000, "e1")}}
    dynamodb.put_item(TableName=events.name(prefix), Item=item)

    checked = migrate(dynamodb, sqs, prefix, check_only=True, tables=[events], queues=[])
    name = events.name(prefix)
    assert f"table {name}: index InboxIndex missing" in checked.problems
    assert f"table {name}: index EventTypeIndex missing" in checked.problems
    assert f"table {name}: stream (NEW_AND_OLD_IMAGES) missing" in checked.problems
    assert f"table {name}: TTL on ttl not enabled" in checked.problems

    fixed = migrate(dynamodb, sqs, prefix, poll_s=0.01, tables=[events], queues=[])
    assert fixed.ok, fixed.problems
    assert sorted(fixed.created) == sorted(f"index {name}/{i.name}" for i in events.indexes)
    assert fixed.updated == [
        f"table {name}: stream NEW_AND_OLD_IMAGES",
        f"table {name}: TTL on ttl",
        f"table {name}: point-in-time recovery",
    ]
    assert dynamodb.get_item(TableName=name, Key=item, ConsistentRead=True)["Item"] == item
    assert migrate(dynamodb, sqs, prefix, check_only=True, tables=[events], queues=[]).ok


def test_a_table_with_other_keys_is_a_problem_never_a_rebuild(
    aws_clients: tuple[Any, Any], prefix: str
) -> None:
    dynamodb, sqs = aws_clients
    name = schema.API_KEYS.name(prefix)
    dynamodb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "key_id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "key_id", "KeyType": "HASH"}],
    )
    report = migrate(dynamodb, sqs, prefix, poll_s=0.01, tables=[schema.API_KEYS], queues=[])
    assert any(p.startswith(f"table {name}: key schema") for p in report.problems)
    assert dynamodb.describe_table(TableName=name)["Table"]["KeySchema"] == [
        {"AttributeName": "key_id", "KeyType": "HASH"}
    ]


def test_queue_drift_is_reported_by_check_mode_and_set_back_by_create_mode(migrated: Migrated) -> None:
    dynamodb, sqs, prefix = migrated.dynamodb, migrated.sqs, migrated.prefix
    name = schema.DELIVERY.name(prefix)
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "30"})

    checked = migrate(dynamodb, sqs, prefix, check_only=True)
    assert checked.problems == [f"queue {name}: VisibilityTimeout is '30', schema says '180'"]
    fixed = migrate(dynamodb, sqs, prefix, poll_s=0.01)
    assert fixed.updated == [f"queue {name}: VisibilityTimeout"]
    assert _queue_attributes(sqs, name)["VisibilityTimeout"] == "180"


def test_the_command_line_exits_nonzero_on_problems_and_zero_when_the_schema_matches(
    aws_endpoint: str, migrated: Migrated, prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    def run(name_prefix: str, *extra: str) -> int:
        return main(
            ["--prefix", name_prefix, "--region", "us-east-1", "--endpoint-url", aws_endpoint, *extra]
        )

    assert run(prefix, "--check") == 1
    assert f"PROBLEM  table {prefix}-events: missing" in capsys.readouterr().out
    assert run(migrated.prefix, "--check") == 0
    assert capsys.readouterr().out.strip() == "matches the schema"


async def test_on_aws_the_storage_migrate_only_checks(
    aws_endpoint: str, migrated: Migrated, prefix: str
) -> None:
    """``triggers-api migrate`` against AWS (no endpoint_url: ``create_missing`` off) compares and
    reports; Terraform creates. Shown on the emulator with ``create_missing=False``."""
    matching = DynamoDBStorage(
        migrated.prefix, region="us-east-1", endpoint_url=aws_endpoint, create_missing=False
    )
    await matching.open()
    try:
        await matching.migrate()  # the schema matches: nothing to say, nothing changed
    finally:
        await matching.close()

    # only the events table exists (what open() pings): the rest is missing
    migrate(migrated.dynamodb, migrated.sqs, prefix, tables=[schema.EVENTS], queues=[], poll_s=0.01)
    partial = DynamoDBStorage(prefix, region="us-east-1", endpoint_url=aws_endpoint, create_missing=False)
    await partial.open()
    try:
        with pytest.raises(StorageError, match="Terraform owns them on AWS") as refused:
            await partial.migrate()
        assert f"{prefix}-api-keys" in str(refused.value) and f"{prefix}-delivery" in str(refused.value)
    finally:
        await partial.close()
    assert _tables(migrated.dynamodb, prefix) == {f"{prefix}-events"}  # nothing was created
    assert not migrated.sqs.list_queues(QueueNamePrefix=prefix).get("QueueUrls")
