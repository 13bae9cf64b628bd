"""Create what is missing of the AWS data model (:mod:`.schema`), or only check it.

Create mode (local emulator, dev accounts) is idempotent: it creates missing tables, indexes,
TTL, streams, point-in-time recovery and queues, and sets queue attributes that drifted. It never
deletes or rebuilds: a table whose keys differ from the schema, an unknown index, or a stream of
another view type is reported as a problem, because fixing those loses data. Check mode (production,
where Terraform owns the resources) changes nothing and reports every difference.

``python -m triggers_api.storage.dynamodb.migrate --prefix P --region R [--endpoint-url URL] [--check]``
(``triggers-api migrate`` will call :func:`migrate` once ``dynamodb://`` URLs exist.)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from triggers_api.storage.dynamodb.schema import QUEUES, TABLES, GlobalIndex, Queue, Table, index_request

# botocore clients are untyped (no stubs in the dependencies): Any, kept at this module's edge.
Client = Any


@dataclass
class Report:
    """What a run did (create mode) and what is wrong (both modes). ``ok``: nothing wrong."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        return (
            [f"created  {c}" for c in self.created]
            + [f"updated  {u}" for u in self.updated]
            + [f"PROBLEM  {p}" for p in self.problems]
        )


def connect(region: str, endpoint_url: str | None = None) -> tuple[Client, Client]:
    """DynamoDB and SQS clients; ``endpoint_url`` points both at an emulator."""
    import boto3

    session = boto3.session.Session(region_name=region)
    return (
        session.client("dynamodb", endpoint_url=endpoint_url),
        session.client("sqs", endpoint_url=endpoint_url),
    )


def migrate(
    dynamodb: Client,
    sqs: Client,
    prefix: str,
    *,
    check_only: bool = False,
    poll_s: float = 1.0,
    timeout_s: float = 600.0,
    tables: Sequence[Table] = TABLES,
    queues: Sequence[Queue] = QUEUES,
) -> Report:
    """Create (or with ``check_only`` only compare) ``tables`` and ``queues``: all by default."""
    report = Report()
    wait = _Waiter(dynamodb, poll_s, timeout_s)
    for table in tables:
        _table(dynamodb, table, prefix, check_only, report, wait)
    dead_letter_arns: dict[str, str] = {}
    for queue in queues:  # dead-letter queues come first in QUEUES
        arn = _queue(sqs, queue, prefix, check_only, report, dead_letter_arns)
        if arn is not None:
            dead_letter_arns[queue.suffix] = arn
    return report


# -- tables -------------------------------------------------------------------------------------------
def _table(
    dynamodb: Client, table: Table, prefix: str, check_only: bool, report: Report, wait: _Waiter
) -> None:
    name = table.name(prefix)
    description = _describe(dynamodb, name)
    if description is None:
        if check_only:
            report.problems.append(f"table {name}: missing")
            return
        dynamodb.create_table(**table.create_table_request(prefix))
        wait.table_active(name)
        report.created.append(f"table {name}")
        description = _describe(dynamodb, name)
        assert description is not None
    else:
        _compare_keys(table, name, description, report)
        _indexes(dynamodb, table, name, description, check_only, report, wait)
        _stream(dynamodb, table, name, description, check_only, report, wait)
    _ttl(dynamodb, table, name, check_only, report)
    _pitr(dynamodb, table, name, check_only, report)


def _describe(dynamodb: Client, name: str) -> dict[str, Any] | None:
    try:
        return dict(dynamodb.describe_table(TableName=name)["Table"])
    except dynamodb.exceptions.ResourceNotFoundException:
        return None


def _key_tuple(schema: Sequence[dict[str, str]]) -> tuple[tuple[str, str], ...]:
    return tuple((k["AttributeName"], k["KeyType"]) for k in schema)


def _compare_keys(table: Table, name: str, description: dict[str, Any], report: Report) -> None:
    expected = table.create_table_request("")
    if _key_tuple(description["KeySchema"]) != _key_tuple(expected["KeySchema"]):
        report.problems.append(
            f"table {name}: key schema {_key_tuple(description['KeySchema'])} "
            f"!= {_key_tuple(expected['KeySchema'])} (a new table is needed)"
        )
    types = {a["AttributeName"]: a["AttributeType"] for a in description.get("AttributeDefinitions", [])}
    for attribute, kind in table.attribute_definitions().items():
        if attribute in types and types[attribute] != kind:
            report.problems.append(
                f"table {name}: attribute {attribute} is {types[attribute]}, schema says {kind}"
            )
    billing = description.get("BillingModeSummary", {}).get("BillingMode", "PROVISIONED")
    if billing != "PAY_PER_REQUEST":
        report.problems.append(f"table {name}: billing mode {billing}, schema says PAY_PER_REQUEST")


def _projection(index: GlobalIndex) -> tuple[str, tuple[str, ...]]:
    return index.projection, tuple(sorted(index.include))


def _indexes(
    dynamodb: Client,
    table: Table,
    name: str,
    description: dict[str, Any],
    check_only: bool,
    report: Report,
    wait: _Waiter,
) -> None:
    existing = {i["IndexName"]: i for i in description.get("GlobalSecondaryIndexes", [])}
    wanted = {i.name: i for i in table.indexes}
    for extra in sorted(set(existing) - set(wanted)):
        report.problems.append(f"table {name}: index {extra} is not in the schema (left alone)")
    definitions = table.attribute_definitions()
    for index in table.indexes:
        found = existing.get(index.name)
        if found is None:
            if check_only:
                report.problems.append(f"table {name}: index {index.name} missing")
                continue
            # One index per UpdateTable call (DynamoDB's rule); each must finish before the next.
            dynamodb.update_table(
                TableName=name,
                AttributeDefinitions=[
                    {"AttributeName": a.name, "AttributeType": definitions[a.name]}
                    for a in index.key_attributes()
                ],
                GlobalSecondaryIndexUpdates=[{"Create": index_request(index)}],
            )
            wait.index_active(name, index.name)
            report.created.append(f"index {name}/{index.name}")
            continue
        wanted_keys = _key_tuple(index_request(index)["KeySchema"])
        if _key_tuple(found["KeySchema"]) != wanted_keys:
            report.problems.append(
                f"table {name}: index {index.name} keys {_key_tuple(found['KeySchema'])} != {wanted_keys}"
            )
        projection = found.get("Projection", {})
        got = (projection.get("ProjectionType"), tuple(sorted(projection.get("NonKeyAttributes", []))))
        if got != _projection(index):
            report.problems.append(
                f"table {name}: index {index.name} projection {got} != {_projection(index)}"
            )


def _stream(
    dynamodb: Client,
    table: Table,
    name: str,
    description: dict[str, Any],
    check_only: bool,
    report: Report,
    wait: _Waiter,
) -> None:
    spec = description.get("StreamSpecification") or {}
    enabled = bool(spec.get("StreamEnabled"))
    if table.stream_view is None:
        if enabled:
            report.problems.append(f"table {name}: has a stream the schema does not define (left alone)")
        return
    if enabled and spec.get("StreamViewType") == table.stream_view:
        return
    if enabled:
        report.problems.append(
            f"table {name}: stream view {spec.get('StreamViewType')} != {table.stream_view} "
            "(disable it and migrate again: the archiver needs the old image)"
        )
        return
    if check_only:
        report.problems.append(f"table {name}: stream ({table.stream_view}) missing")
        return
    dynamodb.update_table(
        TableName=name, StreamSpecification={"StreamEnabled": True, "StreamViewType": table.stream_view}
    )
    wait.table_active(name)
    report.updated.append(f"table {name}: stream {table.stream_view}")


def _ttl(dynamodb: Client, table: Table, name: str, check_only: bool, report: Report) -> None:
    ttl = dynamodb.describe_time_to_live(TableName=name).get("TimeToLiveDescription", {})
    status = ttl.get("TimeToLiveStatus", "DISABLED")
    enabled = status in ("ENABLED", "ENABLING")
    if table.ttl_attribute is None:
        if enabled:
            report.problems.append(f"table {name}: TTL on {ttl.get('AttributeName')} is not in the schema")
        return
    if enabled:
        if ttl.get("AttributeName") != table.ttl_attribute:
            report.problems.append(
                f"table {name}: TTL on {ttl.get('AttributeName')}, schema says {table.ttl_attribute}"
            )
        return
    if check_only:
        report.problems.append(f"table {name}: TTL on {table.ttl_attribute} not enabled")
        return
    dynamodb.update_time_to_live(
        TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": table.ttl_attribute}
    )
    report.updated.append(f"table {name}: TTL on {table.ttl_attribute}")


def _pitr(dynamodb: Client, table: Table, name: str, check_only: bool, report: Report) -> None:
    backups = dynamodb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]
    status = backups.get("PointInTimeRecoveryDescription", {}).get("PointInTimeRecoveryStatus", "DISABLED")
    if not table.point_in_time_recovery or status == "ENABLED":
        return  # PITR on a table that does not need it is harmless: left as found
    if check_only:
        report.problems.append(f"table {name}: point-in-time recovery not enabled")
        return
    dynamodb.update_continuous_backups(
        TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
    )
    report.updated.append(f"table {name}: point-in-time recovery")


class _Waiter:
    """Polls until DynamoDB says ACTIVE (instant on the emulator, minutes on AWS for an index)."""

    def __init__(self, dynamodb: Client, poll_s: float, timeout_s: float) -> None:
        self._dynamodb, self._poll_s, self._timeout_s = dynamodb, poll_s, timeout_s

    def _until(self, what: str, done: Callable[[dict[str, Any]], bool], name: str) -> None:
        deadline = time.monotonic() + self._timeout_s
        while True:
            description = _describe(self._dynamodb, name)
            if description is not None and done(description):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what} not ACTIVE after {self._timeout_s:.0f} s")
            time.sleep(self._poll_s)

    def table_active(self, name: str) -> None:
        self._until(f"table {name}", lambda d: d.get("TableStatus") == "ACTIVE", name)

    def index_active(self, name: str, index: str) -> None:
        def active(description: dict[str, Any]) -> bool:
            return any(
                i["IndexName"] == index and i.get("IndexStatus", "ACTIVE") == "ACTIVE"
                for i in description.get("GlobalSecondaryIndexes", [])
            )

        self._until(f"index {name}/{index}", active, name)


# -- queues -------------------------------------------------------------------------------------------
def _queue(
    sqs: Client, queue: Queue, prefix: str, check_only: bool, report: Report, dead_letter_arns: dict[str, str]
) -> str | None:
    """Returns the queue's ARN (None when it is missing in check mode)."""
    name = queue.name(prefix)
    dead_letter_arn = None
    if queue.dead_letter_suffix is not None:
        dead_letter_arn = dead_letter_arns.get(queue.dead_letter_suffix)
        if dead_letter_arn is None:  # check mode, dead-letter queue missing: reported already
            report.problems.append(f"queue {name}: its dead-letter queue is missing")
            return None
    wanted = queue.attributes(dead_letter_arn)
    try:
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    except sqs.exceptions.QueueDoesNotExist:
        if check_only:
            report.problems.append(f"queue {name}: missing")
            return None
        url = sqs.create_queue(QueueName=name, Attributes=wanted)["QueueUrl"]
        report.created.append(f"queue {name}")
        return str(
            sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        )
    current = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    drift = {k: v for k, v in wanted.items() if not _same_attribute(k, current.get(k), v)}
    if drift:
        if check_only:
            for k, v in sorted(drift.items()):
                report.problems.append(f"queue {name}: {k} is {current.get(k)!r}, schema says {v!r}")
        else:
            sqs.set_queue_attributes(QueueUrl=url, Attributes=drift)
            report.updated.append(f"queue {name}: {', '.join(sorted(drift))}")
    return str(current["QueueArn"])


def _same_attribute(key: str, current: str | None, wanted: str) -> bool:
    if current is None:
        return False
    if key == "RedrivePolicy":  # JSON: compare values, not spelling
        try:
            got = json.loads(current)
        except ValueError:
            return False
        want = json.loads(wanted)
        return bool(
            got.get("deadLetterTargetArn") == want["deadLetterTargetArn"]
            and int(got.get("maxReceiveCount", -1)) == int(want["maxReceiveCount"])
        )
    return current.lower() == wanted.lower()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--prefix", required=True, help="names are <prefix>-events, <prefix>-delivery, ...")
    parser.add_argument("--region", required=True)
    parser.add_argument("--endpoint-url", default=None, help="an emulator, e.g. http://127.0.0.1:5000")
    parser.add_argument("--check", action="store_true", help="change nothing, report differences")
    args = parser.parse_args(argv)
    dynamodb, sqs = connect(args.region, args.endpoint_url)
    report = migrate(dynamodb, sqs, args.prefix, check_only=args.check)
    for line in report.lines():
        print(line)  # noqa: T201 - a command-line tool's output
    if report.ok and not report.created and not report.updated:
        print("up to date" if not args.check else "matches the schema")  # noqa: T201
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
