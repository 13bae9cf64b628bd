"""The archiver (``aws/lambda_archiver.py``) and the S3 archive target, against the emulator.

Stream records are the emulator's own: an item is written to and deleted from the events table
and its stream is read with GetRecords. moto never expires TTL items and leaves ``userIdentity``
out of its records, so the test adds the identity AWS gives a TTL removal to the real record, and
the ``eventSourceARN`` Lambda adds when it hands the record over.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import gzip
import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.aws.conftest import REGION, Migrated
from tests.aws.lambda_events import LambdaContext
from tests.conftest import make_settings
from triggers_api.archive import S3Archive, archive_line, archive_target
from triggers_api.aws.lambda_archiver import Archiver
from triggers_api.storage.base import EventRecord
from triggers_api.storage.dynamodb import schema

TTL_IDENTITY = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}


@pytest.fixture(scope="module")
def s3(aws_endpoint: str, aws_env: None) -> Any:
    import boto3

    return boto3.session.Session(region_name=REGION).client("s3", endpoint_url=aws_endpoint)


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"archive-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


def objects(s3: Any, bucket: str) -> dict[str, list[dict[str, Any]]]:
    listing = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    out: dict[str, list[dict[str, Any]]] = {}
    for entry in listing:
        body = s3.get_object(Bucket=bucket, Key=entry["Key"])["Body"].read()
        out[entry["Key"]] = [json.loads(line) for line in gzip.decompress(body).splitlines()]
    return out


def event_item(user_id: str, ts_us: int, *, status: str = "delivered") -> dict[str, Any]:
    """An events-table item in the key formats of schema.py."""
    event_id = str(uuid.uuid4())
    return {
        "user_shard": {"S": f"{user_id}#0"},
        "ts_id": {"S": schema.ts_id(ts_us, event_id)},
        "event_id": {"S": event_id},
        "user_id": {"S": user_id},
        "event_type": {"S": "order.created"},
        "payload": {"S": json.dumps({"order": 7, "total": 12.5})},
        "metadata": {"S": json.dumps({"source": "shop"})},
        "status": {"S": status},
        "ts_us": {"N": str(ts_us)},
        "ttl": {"N": str(ts_us // 1_000_000 + 30 * 86_400)},
        "retry_count": {"N": "1"},
        "delivered_us": {"N": str(ts_us + 5_000_000)},
    }


def stream_records(migrated: Migrated, aws_endpoint: str, keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The stream records of the items with ``keys``, shaped as Lambda delivers them."""
    import boto3

    table = schema.EVENTS.name(migrated.prefix)
    arn = migrated.dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    streams = boto3.session.Session(region_name=REGION).client("dynamodbstreams", endpoint_url=aws_endpoint)
    wanted = {json.dumps(k, sort_keys=True) for k in keys}
    out: list[dict[str, Any]] = []
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        iterator = streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        for record in streams.get_records(ShardIterator=iterator, Limit=1000)["Records"]:
            if json.dumps(record["dynamodb"]["Keys"], sort_keys=True) not in wanted:
                continue
            created = record["dynamodb"].get("ApproximateCreationDateTime")
            if created is not None and not isinstance(created, int | float):
                record["dynamodb"]["ApproximateCreationDateTime"] = created.timestamp()
            out.append({**record, "eventSourceARN": arn})
    return out


def test_ttl_removals_are_archived_by_user_and_date_and_everything_else_ignored(
    migrated: Migrated, aws_endpoint: str, s3: Any, bucket: str
) -> None:
    table = schema.EVENTS.name(migrated.prefix)
    ts = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z
    expired = [event_item("alice", ts), event_item("alice", ts + 86_400_000_000), event_item("bob/x", ts)]
    user_deleted = event_item("carol", ts)
    for item in [*expired, user_deleted]:
        migrated.dynamodb.put_item(TableName=table, Item=item)
    migrated.dynamodb.update_item(  # a MODIFY record
        TableName=table,
        Key={"user_shard": expired[0]["user_shard"], "ts_id": expired[0]["ts_id"]},
        UpdateExpression="SET retry_count = :n",
        ExpressionAttributeValues={":n": {"N": "2"}},
    )
    for item in [*expired, user_deleted]:
        migrated.dynamodb.delete_item(
            TableName=table, Key={"user_shard": item["user_shard"], "ts_id": item["ts_id"]}
        )
    keys = [{"user_shard": i["user_shard"], "ts_id": i["ts_id"]} for i in [*expired, user_deleted]]
    records = stream_records(migrated, aws_endpoint, keys)
    assert sorted(r["eventName"] for r in records) == ["INSERT"] * 4 + ["MODIFY"] + ["REMOVE"] * 4
    expired_keys = {json.dumps(k, sort_keys=True) for k in keys[:3]}
    for record in records:  # what AWS sets on the removals its TTL made (moto leaves it out)
        if (
            record["eventName"] == "REMOVE"
            and json.dumps(record["dynamodb"]["Keys"], sort_keys=True) in expired_keys
        ):
            record["userIdentity"] = dict(TTL_IDENTITY)
    other_table = dict(records[-1], userIdentity=dict(TTL_IDENTITY))
    other_table["eventSourceARN"] = other_table["eventSourceARN"].replace(
        table, f"{migrated.prefix}-audit-logs"
    )

    archiver = Archiver(make_settings(Path("/nonexistent")), target=S3Archive(bucket, "prod/", client=s3))
    result = archiver({"Records": [*records, other_table]}, LambdaContext())
    assert result["archived"] == 3

    stored = objects(s3, bucket)
    by_partition = {key.rsplit("/", 1)[0]: lines for key, lines in stored.items()}
    assert set(by_partition) == {
        "prod/events/user=alice/date=2026-01-01",
        "prod/events/user=alice/date=2026-01-02",
        "prod/events/user=bob%2Fx/date=2026-01-01",
    }
    line = by_partition["prod/events/user=alice/date=2026-01-01"][0]
    # The retention sweep's record: the event JSON plus acknowledged_at, from the last image
    # (retry_count 2: the image before the removal, not the first one).
    expected = EventRecord(
        event_id=expired[0]["event_id"]["S"],
        user_id="alice",
        event_type="order.created",
        payload=b'{"order": 7, "total": 12.5}',
        status="delivered",
        ts_us=ts,
        expires_at=ts // 1_000_000 + 30 * 86_400,
        metadata=b'{"source": "shop"}',
        retry_count=2,
        delivered_us=ts + 5_000_000,
    )
    assert line == json.loads(archive_line(expected))
    assert line["payload"] == {"order": 7, "total": 12.5} and line["metadata"] == {"source": "shop"}
    assert line["event_id"] == expired[0]["event_id"]["S"] and line["retry_count"] == 2
    assert line["timestamp"] == "2026-01-01T00:00:00.000000Z"
    assert all(k.endswith(".jsonl.gz") for k in stored)


def test_a_batch_without_ttl_removals_writes_nothing(s3: Any, bucket: str) -> None:
    archiver = Archiver(make_settings(Path("/nonexistent")), target=S3Archive(bucket, client=s3))
    assert archiver({"Records": []}, LambdaContext()) == {"archived": 0, "files": []}
    assert objects(s3, bucket) == {}


def test_an_archive_that_cannot_be_written_fails_the_batch(
    migrated: Migrated, aws_endpoint: str, s3: Any
) -> None:
    table = schema.EVENTS.name(migrated.prefix)
    item = event_item("dave", 1_767_225_600_000_000)
    key = {"user_shard": item["user_shard"], "ts_id": item["ts_id"]}
    migrated.dynamodb.put_item(TableName=table, Item=item)
    migrated.dynamodb.delete_item(TableName=table, Key=key)
    records = [
        dict(r, userIdentity=dict(TTL_IDENTITY)) for r in stream_records(migrated, aws_endpoint, [key])
    ]
    archiver = Archiver(
        make_settings(Path("/nonexistent")), target=S3Archive("no-such-bucket-here", client=s3)
    )
    with pytest.raises(s3.exceptions.NoSuchBucket):  # Lambda retries the batch: nothing is lost
        archiver({"Records": records}, LambdaContext())


def test_the_retention_sweep_archives_to_s3_when_the_archive_url_says_so(
    tmp_path: Path, aws_endpoint: str, aws_env: None, s3: Any, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from triggers_api.app import create_app
    from triggers_api.keys.service import create_key
    from triggers_api.retention import sweep

    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_endpoint)  # boto3's own setting (no dynamodb:// URL here)
    settings = make_settings(tmp_path, archive_url=f"s3://{bucket}/sweep", event_ttl_days=1e-5)
    target = archive_target(settings)
    assert isinstance(target, S3Archive) and target.bucket == bucket and target.prefix == "sweep"

    async def scenario() -> tuple[list[str], int]:
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            storage = app.state.services.storage
            key = await create_key(
                storage, user_id="erin", name="k", scopes=["events:write"], rate_limit=100, expires_us=None
            )
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                ids = []
                for i in range(2):
                    answer = await client.post(
                        "/v1/events",
                        headers={"X-API-Key": key.api_key},
                        json={"event_type": "a.b", "payload": {"i": i}},
                    )
                    assert answer.status_code == 201
                    ids.append(answer.json()["event_id"])
            time.sleep(2.0)  # past the events' TTL (0.86 s, counted in whole seconds)
            return ids, await sweep(storage, target, batch=10)

    ids, removed = asyncio.run(scenario())
    assert removed == 2
    stored = objects(s3, bucket)
    assert len(stored) == 1
    ((key_name, lines),) = stored.items()
    assert key_name.startswith("sweep/events/user=erin/date=")
    assert sorted(line["event_id"] for line in lines) == sorted(ids)
    assert {json.dumps(line["payload"]) for line in lines} == {'{"i": 0}', '{"i": 1}'}
    assert all("acknowledged_at" in line for line in lines)


def test_the_archiver_decodes_the_backends_own_items_with_the_backends_codec(tmp_path: Path) -> None:
    """Items the DynamoDB backend writes (``core.event_item``), as TTL removals whose old image
    Lambda hands over in JSON (attribute values, binary ones base64-encoded), come out of the
    handler as the very records that were stored, and the archive holds their lines."""
    from triggers_api.archive import LocalArchive
    from triggers_api.storage.dynamodb.core import event_item

    record = EventRecord(
        event_id=str(uuid.uuid4()),
        user_id="user-a#odd",
        event_type="order.completed",
        payload=b'{"amount":5,"note":"\\u00e9"}',
        status="failed",
        ts_us=1_796_000_000_123_456,
        expires_at=1_796_086_400,
        metadata=b'{"source_ip":"203.0.113.9"}',
        retry_count=2,
        last_retry_us=1_796_000_100_000_000,
    )
    acknowledged = dataclasses.replace(
        record,
        event_id=str(uuid.uuid4()),
        payload=None,
        status="delivered",
        acknowledged_us=1_796_000_200_000_000,
        delivered_us=1_796_000_200_000_000,
    )
    # not UTF-8: the backend stores it as B, which a Lambda event carries base64-encoded
    binary = dataclasses.replace(record, event_id=str(uuid.uuid4()), payload=b'{"raw":"\xff\xfe"}')
    arn = f"arn:aws:dynamodb:{REGION}:123456789012:table/p-{schema.EVENTS.suffix}/stream/2026-01-01T00:00:00.000"
    records = []
    for position, stored in enumerate([record, acknowledged, binary]):
        item = event_item(stored, schema.user_shard(stored.user_id, position), position=position)
        assert ("B" in item.get("payload", {})) is (stored is binary)
        wire = json.loads(json.dumps(item, default=lambda b: base64.b64encode(b).decode()))
        records.append(
            {
                "eventID": uuid.uuid4().hex,
                "eventName": "REMOVE",
                "eventVersion": "1.1",
                "eventSource": "aws:dynamodb",
                "awsRegion": REGION,
                "dynamodb": {
                    "ApproximateCreationDateTime": 1_796_086_500,
                    "Keys": {"user_shard": wire["user_shard"], "ts_id": wire["ts_id"]},
                    "OldImage": wire,
                    "SequenceNumber": str(1000 + position),
                    "SizeBytes": 512,
                    "StreamViewType": "NEW_AND_OLD_IMAGES",
                },
                "userIdentity": dict(TTL_IDENTITY),
                "eventSourceARN": arn,
            }
        )
    archiver = Archiver(make_settings(tmp_path), target=LocalArchive(tmp_path / "archive"))
    assert archiver.expired_events({"Records": records}) == [record, acknowledged, binary]
    result = archiver({"Records": records}, LambdaContext())
    assert result["archived"] == 3
    ((path,),) = [result["files"]]
    # byte for byte the retention sweep's lines (the binary payload's is not JSON-parsable)
    assert gzip.decompress(Path(path).read_bytes()) == b"".join(
        archive_line(r) for r in (record, acknowledged, binary)
    )
