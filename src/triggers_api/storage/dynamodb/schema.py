"""The AWS data model as plain data: the one source of truth for tables, indexes, TTL, the events
stream and the delivery queues.

``migrate.py`` creates or checks exactly this; ``tests/aws/test_terraform.py`` parses
``infrastructure/terraform/modules/{dynamodb,sqs}`` and compares them with it, so the Terraform
cannot drift from what the code reads and writes. Why each table, key and index looks the way it
does (access patterns, sharding arithmetic, costs) is in ``docs/deploy-aws.md``.

Key formats (all strings sort the way the contract orders rows):

- an event lives at ``user_shard = "<user_id>#<shard>"``, ``ts_id = "<ISO µs timestamp>#<event_id>"``;
  the shard is a stable hash of the event id modulo the user's shard count (1 for most users);
- its pointer (look-up by id without a scan) is ``(event_id, "#event")`` in the deliveries table,
  next to its per-destination deliveries ``(event_id, "dest#<destination>")`` and attempts
  ``(event_id, "attempt#<attempt_id>")``: one item collection holds an event's whole delivery state.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

AttributeType = Literal["S", "N", "B"]
Projection = Literal["ALL", "KEYS_ONLY", "INCLUDE"]

# -- limits the design is sized against (AWS published quotas) --------------------------------------
PARTITION_WCU_PER_S = 1_000  # one partition key value: writes (1 WCU per KB written)
PARTITION_RCU_PER_S = 3_000  # one partition key value: strongly consistent 4 KB reads
SHARD_TARGET_WCU_PER_S = 500  # plan each shard at half the limit: hashing is even only on average
MAX_EVENT_SHARDS = 256  # 128,000 WCU/s of headroom for one user: far past the 10,000 events/s goal
TRANSACT_MAX_ITEMS = 100
BATCH_WRITE_MAX_ITEMS = 25
ITEM_MAX_BYTES = 400 * 1024

# -- retention ----------------------------------------------------------------------------------------
AUDIT_RETENTION_DAYS = 2_557  # 7 years (section 8.3)
TTL_ATTRIBUTE = "ttl"  # Unix seconds; DynamoDB deletes within ~48 h after it passes (never relied on)

# -- names of items and index keys -----------------------------------------------------------------------
EVENT_POINTER = "#event"  # the deliveries-table item that maps an event id to its events-table key
DESTINATION_PREFIX = "dest#"
ATTEMPT_PREFIX = "attempt#"
DUE_SHARDS = 64  # DueIndex partitions: see due_shard()
SUB_PENDING_SHARDS = 16  # SubscriptionPendingIndex partitions per subscription
FAILING_BUCKET = "failing"  # the single partition of the (small, sparse) FailingIndex
# Partitions of the indexes read across every user (stream head, expiry, audit age, idempotency
# expiry): each takes one KEYS_ONLY write per item, so 32 of them carry 16,000 writes/s at
# SHARD_TARGET_WCU_PER_S; a reader queries all 32 (concurrently) and merges.
GLOBAL_SHARDS = 32
#: Stream positions are ``<µs of the write> * POSITIONS_PER_US + <slot>``: a batch takes
#: consecutive slots (batches hold at most 1,000 events), below 2**63 until the year 2262.
POSITIONS_PER_US = 1_000

# -- the delivery queues ---------------------------------------------------------------------------------
WORKER_TIMEOUT_S = 30  # lambda_worker's timeout: 10 pushes of <= 10 s each, concurrently, plus margin
# AWS: a queue feeding a Lambda function needs a visibility timeout of at least 6x the function's
# timeout, so a batch retried after a throttle is not received twice.
DELIVERY_VISIBILITY_TIMEOUT_S = 6 * WORKER_TIMEOUT_S
# Receives a message may take before SQS moves it to the DLQ. The retry schedule (5 min, 30 min,
# 2 h) is applied with ChangeMessageVisibility, and every retry is a receive: 4 scheduled receives
# (first attempt + 3 retries) plus 6 for crashes and timeouts of the worker. Exhausting the
# schedule is the worker's own decision (the delivery becomes ``failed`` in DynamoDB); the DLQ only
# catches messages the worker could never finish (poison messages).
DELIVERY_MAX_RECEIVE_COUNT = 10
DELIVERY_RETENTION_S = 4 * 86_400  # the schedule ends after ~2.6 h: 4 days covers a long outage
DLQ_RETENTION_S = 14 * 86_400  # SQS's maximum: time for someone to look at a poison message
RECEIVE_WAIT_S = 20  # long polling (SQS maximum), for the in-process worker of `triggers-api worker`


@dataclass(frozen=True)
class KeyAttribute:
    name: str
    type: AttributeType = "S"


@dataclass(frozen=True)
class GlobalIndex:
    name: str
    partition: KeyAttribute
    sort: KeyAttribute | None
    projection: Projection
    purpose: str
    include: tuple[str, ...] = ()  # non-key attributes projected when ``projection`` is INCLUDE
    sparse: bool = False  # its sort key is set only on the items it should hold

    def key_attributes(self) -> tuple[KeyAttribute, ...]:
        return (self.partition,) if self.sort is None else (self.partition, self.sort)


@dataclass(frozen=True)
class Table:
    suffix: str  # the table is named "<prefix>-<suffix>"
    partition: KeyAttribute
    sort: KeyAttribute | None
    purpose: str
    indexes: tuple[GlobalIndex, ...] = ()
    ttl_attribute: str | None = TTL_ATTRIBUTE
    stream_view: Literal["NEW_AND_OLD_IMAGES"] | None = None
    point_in_time_recovery: bool = True

    def name(self, prefix: str) -> str:
        return f"{prefix}-{self.suffix}"

    def key_attributes(self) -> tuple[KeyAttribute, ...]:
        return (self.partition,) if self.sort is None else (self.partition, self.sort)

    def attribute_definitions(self) -> dict[str, AttributeType]:
        """Every attribute used as a key of the table or one of its indexes, with its type."""
        types: dict[str, AttributeType] = {}
        for attribute in self.key_attributes() + tuple(a for i in self.indexes for a in i.key_attributes()):
            if types.setdefault(attribute.name, attribute.type) != attribute.type:
                raise ValueError(f"{self.suffix}: {attribute.name} used with two types")
        return types

    def create_table_request(self, prefix: str) -> dict[str, Any]:
        """The CreateTable parameters (on-demand; TTL and PITR are separate calls, see migrate)."""
        request: dict[str, Any] = {
            "TableName": self.name(prefix),
            "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": [
                {"AttributeName": n, "AttributeType": t}
                for n, t in sorted(self.attribute_definitions().items())
            ],
            "KeySchema": _key_schema(self.partition, self.sort),
        }
        if self.indexes:
            request["GlobalSecondaryIndexes"] = [index_request(i) for i in self.indexes]
        if self.stream_view is not None:
            request["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": self.stream_view}
        return request


@dataclass(frozen=True)
class Queue:
    suffix: str  # the queue is named "<prefix>-<suffix>"
    purpose: str
    visibility_timeout_s: int
    retention_s: int
    receive_wait_s: int = RECEIVE_WAIT_S
    dead_letter_suffix: str | None = None
    max_receive_count: int | None = None

    def name(self, prefix: str) -> str:
        return f"{prefix}-{self.suffix}"

    def attributes(self, dead_letter_arn: str | None = None) -> dict[str, str]:
        """The SQS attributes as CreateQueue/SetQueueAttributes take them (strings)."""
        attributes = {
            "VisibilityTimeout": str(self.visibility_timeout_s),
            "MessageRetentionPeriod": str(self.retention_s),
            "ReceiveMessageWaitTimeSeconds": str(self.receive_wait_s),
            "SqsManagedSseEnabled": "true",
        }
        if self.dead_letter_suffix is not None:
            if dead_letter_arn is None:
                raise ValueError(f"{self.suffix}: the dead-letter queue's ARN is needed")
            attributes["RedrivePolicy"] = _redrive_policy(dead_letter_arn, self.max_receive_count)
        return attributes


def _redrive_policy(dead_letter_arn: str, max_receive_count: int | None) -> str:
    # SQS answers the policy back as this exact JSON (maxReceiveCount as a number).
    return f'{{"deadLetterTargetArn":"{dead_letter_arn}","maxReceiveCount":{max_receive_count}}}'


def _key_schema(partition: KeyAttribute, sort: KeyAttribute | None) -> list[dict[str, str]]:
    schema = [{"AttributeName": partition.name, "KeyType": "HASH"}]
    if sort is not None:
        schema.append({"AttributeName": sort.name, "KeyType": "RANGE"})
    return schema


def index_request(index: GlobalIndex) -> dict[str, Any]:
    projection: dict[str, Any] = {"ProjectionType": index.projection}
    if index.projection == "INCLUDE":
        projection["NonKeyAttributes"] = list(index.include)
    return {
        "IndexName": index.name,
        "KeySchema": _key_schema(index.partition, index.sort),
        "Projection": projection,
    }


S = KeyAttribute
USER_SHARD = S("user_shard")  # "<user_id>#<shard>"
TS_ID = S("ts_id")  # "<ISO timestamp, µs>#<event_id>"

EVENTS = Table(
    suffix="events",
    partition=USER_SHARD,
    sort=TS_ID,
    purpose="Events (section 8.1). Listings are Queries on the user's shards, merged by ts_id.",
    indexes=(
        GlobalIndex(
            name="InboxIndex",
            partition=USER_SHARD,
            sort=S("inbox_ts_id"),
            projection="INCLUDE",
            include=("status", "event_type"),
            sparse=True,
            purpose=(
                "Replaces the document's StatusIndex: inbox_ts_id (= ts_id) is set only while the "
                "status is received, queued or failed, so the inbox is one range per shard in time "
                "order, acknowledged events drop out, and received->queued changes no index key "
                "(StatusIndex's status#timestamp key costs a delete + put on every status change). "
                "Rows are then read from the table with ConsistentRead, which also re-checks status."
            ),
        ),
        GlobalIndex(
            name="EventTypeIndex",
            partition=USER_SHARD,
            sort=S("type_ts_id"),
            projection="KEYS_ONLY",
            purpose=(
                "Listing by type (section 8.1): type_ts_id = '<event_type>#<ts_id>'. KEYS_ONLY, so "
                "status changes never write to it: one index write per event, at insert."
            ),
        ),
        GlobalIndex(
            name="StreamIndex",
            partition=USER_SHARD,
            sort=S("stream_pos", "N"),
            projection="INCLUDE",
            include=("event_type",),
            purpose=(
                "The live stream and long poll (events_after): a user's events in stream-position "
                "order (write time, see stream.py), with the type to filter on."
            ),
        ),
        GlobalIndex(
            name="StreamHeadIndex",
            partition=S("stream_shard"),
            sort=S("stream_pos", "N"),
            projection="KEYS_ONLY",
            purpose=(
                "stream_head: the newest settled position of anyone, one Query (Limit 1, newest "
                "first) per stream#0..31 partition."
            ),
        ),
        GlobalIndex(
            name="ExpiryIndex",
            partition=S("expiry_shard"),
            sort=S(TTL_ATTRIBUTE, "N"),
            projection="KEYS_ONLY",
            purpose=(
                "Retention without a Scan (expired_events): events by expiry in expiry#0..31, for "
                "the in-process retention loop; on AWS TTL deletes and the archiver reads the stream."
            ),
        ),
    ),
    stream_view="NEW_AND_OLD_IMAGES",
)

DELIVERIES = Table(
    suffix="deliveries",
    partition=S("event_id"),
    sort=S("item"),
    purpose=(
        "An event's delivery state as one item collection: the '#event' pointer (user, shard, "
        "ts_id: get_event by id with two consistent GetItems, no scan), one 'dest#<destination>' "
        "item per (event, destination) delivery (issue 10's unit; one SQS message each), and the "
        "'attempt#<UUIDv7>' history. The random event id spreads these writes over all partitions."
    ),
    indexes=(
        GlobalIndex(
            name="DueIndex",
            partition=S("due_shard"),
            sort=S("next_attempt_us", "N"),
            projection="INCLUDE",
            include=("lease_until_us",),
            sparse=True,
            purpose=(
                "Claims and the sweep: due_shard is 'due#<n>' (single destination) or 'fan#<n>' "
                "(fanned out) only while a delivery is pending, 'dead#<n>' while dead-lettered; "
                "next_attempt_us is the due time; lease_until_us is projected so a claim's Query "
                "filters out live leases and reads deliveries earliest due first. Deliveries "
                "whose SQS message was never sent (a crash between commit and send) are found by "
                "small Queries, not a Scan."
            ),
        ),
        GlobalIndex(
            name="DeadLetterIndex",
            partition=USER_SHARD,
            sort=S("dead_ts_id"),
            projection="KEYS_ONLY",
            sparse=True,
            purpose=(
                "Dead letters per user for replay by filter and per destination: dead_ts_id = "
                "'<ts_id>#<destination>' is set only while the delivery is failed."
            ),
        ),
        GlobalIndex(
            name="AttemptIndex",
            partition=USER_SHARD,
            sort=S("attempt_started_us", "N"),
            projection="INCLUDE",
            include=("outcome", "destination"),
            sparse=True,
            purpose=(
                "A user's attempts by start time (the metrics summary's counts per destination): "
                "only attempt items carry attempt_started_us; sharded like the user's events."
            ),
        ),
        GlobalIndex(
            name="SubscriptionPendingIndex",
            partition=S("sub_pending"),
            sort=S("event_id"),
            projection="KEYS_ONLY",
            sparse=True,
            purpose=(
                "Pending deliveries of one subscription, to cancel them when it is deleted or "
                "disabled: sub_pending = '<subscription_id>#<0..15>' only while pending."
            ),
        ),
    ),
)

API_KEYS = Table(
    suffix="api-keys",
    partition=S("user_id"),
    sort=S("key_id"),
    purpose="API keys (section 8.2); list_keys is a Query on the user.",
    indexes=(
        GlobalIndex(
            name="KeyHashIndex",
            partition=S("key_hash"),
            sort=None,
            projection="ALL",
            purpose="The authorizer's look-up: SHA-256 of X-API-Key -> the key, in one Query.",
        ),
        GlobalIndex(
            name="KeyIdIndex",
            partition=S("key_id"),
            sort=None,
            projection="KEYS_ONLY",
            purpose="`triggers-api keys revoke <key_id>` without a user: key id -> (user_id, key_id).",
        ),
    ),
    ttl_attribute=None,
)

AUDIT_LOGS = Table(
    suffix="audit-logs",
    partition=USER_SHARD,
    sort=S("ts_log_id"),
    purpose=(
        "Audit records (section 8.3), append-only (no function's IAM role may update or delete "
        "them), 7-year TTL. Sharded like the user's events: a 10,000 events/s user writes 10,000 "
        "event.created records/s."
    ),
    indexes=(
        GlobalIndex(
            name="AuditEventIndex",
            partition=S("event_id"),
            sort=S("ts_log_id"),
            projection="ALL",
            purpose="An event's audit trail (records without an event id are not in it).",
        ),
        GlobalIndex(
            name="AuditActionIndex",
            partition=S("user_action_shard"),
            sort=S("ts_log_id"),
            projection="ALL",
            purpose="Audit by action: '<user_id>#<action>#<shard>', sharded like the table.",
        ),
        GlobalIndex(
            name="AuditAgeIndex",
            partition=S("age_shard"),
            sort=S("ts_log_id"),
            projection="KEYS_ONLY",
            purpose=(
                "purge_audit(before) without a Scan: records by time in age#0..31 (TTL removes "
                "them after 7 years anyway; this serves a shorter TRIGGERS_AUDIT_RETENTION_DAYS)."
            ),
        ),
    ),
)

IDEMPOTENCY = Table(
    suffix="idempotency",
    partition=S("user_key"),
    sort=None,
    purpose=(
        "Idempotency records: '<user_id>#<Idempotency-Key>', written with a condition (absent or "
        "expired) before the events they answer for are stored (docs/deploy-aws.md)."
    ),
    indexes=(
        GlobalIndex(
            name="IdempotencyExpiryIndex",
            partition=S("expiry_shard"),
            sort=S("expires_us", "N"),
            projection="KEYS_ONLY",
            purpose="purge_idempotency(now) without a Scan: records by expiry in expiry#0..31.",
        ),
    ),
)

SUBSCRIPTIONS = Table(
    suffix="subscriptions",
    partition=S("user_id"),
    sort=S("subscription_id"),
    purpose="Subscriptions (issue 10): a user's are one Query, oldest first (UUIDv7 ids).",
    indexes=(
        GlobalIndex(
            name="SubscriptionIdIndex",
            partition=S("subscription_id"),
            sort=None,
            projection="ALL",
            purpose="The worker loads its destinations by id, whoever owns them.",
        ),
        GlobalIndex(
            name="FailingIndex",
            partition=S("failing_bucket"),
            sort=S("failing_since_us", "N"),
            projection="KEYS_ONLY",
            sparse=True,
            purpose="Active subscriptions failing since before a bound (disable-after), no Scan.",
        ),
    ),
    ttl_attribute=None,
)

USERS = Table(
    suffix="users",
    partition=S("user_id"),
    sort=None,
    purpose=(
        "Per-user settings the backend needs: the event shard count and when it changed "
        "(see ShardCount). Absent item = 1 shard."
    ),
    ttl_attribute=None,
)

COUNTERS = Table(
    suffix="counters",
    partition=S("counter"),
    sort=None,
    purpose=(
        "Fixed-window counters with TTL: rate limits per key per 60 s window (section 14.1) and "
        "events/attempts per user per minute (the overview chart, the metrics summary), each "
        "sharded when one item would pass the per-partition write limit (counter_shards)."
    ),
    point_in_time_recovery=False,
)

EVENT_TYPES = Table(
    suffix="event-types",
    partition=S("user_id"),
    sort=S("item"),
    purpose=(
        "The schema catalog (issue 11): per user 'type#<name>' (current), 'version#<name>#<n>' "
        "(every version, kept after a delete) and 'stamp' (grows with each change)."
    ),
    indexes=(
        GlobalIndex(
            name="StampIndex",
            partition=S("stamp_bucket"),
            sort=S("user_id"),
            projection="INCLUDE",
            include=("stamp",),
            sparse=True,
            purpose=(
                "event_type_stamps: every user's stamp in one Query (stamp_bucket = 'stamps' is set "
                "only on stamp items; catalog changes are rare, so one partition takes them)."
            ),
        ),
    ),
    ttl_attribute=None,
)

TABLES: tuple[Table, ...] = (
    EVENTS,
    DELIVERIES,
    API_KEYS,
    AUDIT_LOGS,
    IDEMPOTENCY,
    SUBSCRIPTIONS,
    USERS,
    COUNTERS,
    EVENT_TYPES,
)

DELIVERY_DLQ = Queue(
    suffix="delivery-dlq",
    purpose="Poison messages: deliveries the worker failed to finish DELIVERY_MAX_RECEIVE_COUNT times.",
    visibility_timeout_s=DELIVERY_VISIBILITY_TIMEOUT_S,
    retention_s=DLQ_RETENTION_S,
)
DELIVERY = Queue(
    suffix="delivery",
    purpose="One message per (event, destination) delivery (section 7.1, issue 10).",
    visibility_timeout_s=DELIVERY_VISIBILITY_TIMEOUT_S,
    retention_s=DELIVERY_RETENTION_S,
    dead_letter_suffix=DELIVERY_DLQ.suffix,
    max_receive_count=DELIVERY_MAX_RECEIVE_COUNT,
)
QUEUES: tuple[Queue, ...] = (DELIVERY_DLQ, DELIVERY)  # dead-letter queue first: the other names it


def table(suffix: str) -> Table:
    for t in TABLES:
        if t.suffix == suffix:
            return t
    raise KeyError(suffix)


# -- keys ----------------------------------------------------------------------------------------------
def iso_us(ts_us: int) -> str:
    """Fixed-width ISO 8601 with microseconds, so string order is time order."""
    seconds, micros = divmod(ts_us, 1_000_000)
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{micros:06d}Z"


def ts_id(ts_us: int, item_id: str) -> str:
    return f"{iso_us(ts_us)}#{item_id}"


def stable_hash(value: str) -> int:
    """A hash that is the same in every process (Python's hash() is salted per process)."""
    return int.from_bytes(hashlib.blake2b(value.encode(), digest_size=8).digest(), "big")


def event_shard(event_id: str, shards: int) -> int:
    if not 1 <= shards <= MAX_EVENT_SHARDS:
        raise ValueError(f"shards must be 1..{MAX_EVENT_SHARDS}")
    return stable_hash(event_id) % shards


def user_shard(user_id: str, shard: int) -> str:
    # The shard is the last '#'-separated part, so user ids containing '#' stay unambiguous.
    return f"{user_id}#{shard}"


def global_shard(kind: str, item_id: str) -> str:
    """``<kind>#<n>``, n in 0..GLOBAL_SHARDS-1: the partition of a cross-user index entry."""
    return f"{kind}#{stable_hash(item_id) % GLOBAL_SHARDS}"


def global_shards(kind: str) -> list[str]:
    return [f"{kind}#{i}" for i in range(GLOBAL_SHARDS)]


def due_shard(event_id: str, destination: str, kind: str = "due", shards: int = DUE_SHARDS) -> str:
    """The DueIndex partition of a delivery: ``kind`` is 'due' (single destination), 'fan'
    (fanned out) or 'dead' (dead letter)."""
    return f"{kind}#{stable_hash(f'{event_id}#{destination}') % shards}"


def sub_pending(subscription_id: str, event_id: str) -> str:
    return f"{subscription_id}#{stable_hash(event_id) % SUB_PENDING_SHARDS}"


# -- sharding arithmetic (docs/deploy-aws.md shows it worked through) -------------------------------------
#: Writes one event costs on its user's events partition (base table): the insert, the change to
#: ``queued`` when its first delivery is claimed, the change to ``delivered`` (push or ack).
EVENT_WRITES_PER_EVENT = 3


def write_units(item_bytes: int) -> int:
    """WCUs one write of an item this size costs (1 per started KB)."""
    return max(1, math.ceil(item_bytes / 1024))


def shards_needed(
    events_per_s: float,
    item_bytes: int = 1024,
    writes_per_event: int = EVENT_WRITES_PER_EVENT,
    target_wcu: int = SHARD_TARGET_WCU_PER_S,
) -> int:
    """The shard count that keeps each of a user's partitions at ``target_wcu`` or less.

    The same count serves the InboxIndex (its writes per event are the insert, the status change
    to queued and the removal at delivered: also three, of index-sized items) and the audit table
    (one event.created record per event)."""
    wcu = events_per_s * write_units(item_bytes) * writes_per_event
    shards = max(1, math.ceil(wcu / target_wcu))
    if shards > MAX_EVENT_SHARDS:
        raise ValueError(f"{events_per_s}/s of {item_bytes} B needs {shards} shards (> {MAX_EVENT_SHARDS})")
    return shards


def counter_shards(
    hits_per_window: int, window_s: int = 60, target_wcu: float = SHARD_TARGET_WCU_PER_S
) -> int:
    """Shards for one counter (a key's rate-limit window): one atomic ADD per hit, so a counter
    whose limit lets it take more than ``target_wcu`` hits/s is split (see :func:`counter_quotas`)."""
    return max(1, math.ceil(hits_per_window / window_s / target_wcu))


def counter_quotas(limit: int, shards: int) -> list[int]:
    """How a sharded counter's ``limit`` splits over its shards: each shard admits at most its
    quota (a conditional ADD) and the quotas sum to exactly ``limit``, so the shards together never
    admit one hit too many; a hit finding its shard full tries the others, so none is refused
    before all are full. ``aws/rate_limits.py`` uses it."""
    base, extra = divmod(limit, shards)
    return [base + (1 if i < extra else 0) for i in range(shards)]


@dataclass(frozen=True)
class ShardCount:
    """A user's event shard count as stored in the users table.

    The count only grows. A change is published with ``effective_us`` = now + the longest time a
    process caches it (SHARD_CACHE_S): readers use ``current`` at once (querying shards nobody
    writes yet costs one empty Query each), writers keep ``previous`` until ``effective_us``. So
    no reader ever misses a shard some writer already uses, with no coordination on the hot path.
    """

    current: int = 1
    previous: int = 1
    effective_us: int = 0

    def for_writing(self, now_us: int) -> int:
        return self.current if now_us >= self.effective_us else self.previous

    def for_reading(self) -> int:
        return max(self.current, self.previous)

    def raised(self, to: int, now_us: int) -> ShardCount:
        if to <= self.for_reading():
            return self
        return ShardCount(current=to, previous=self.for_writing(now_us), effective_us=now_us + SHARD_CACHE_US)


SHARD_CACHE_S = 60
SHARD_CACHE_US = SHARD_CACHE_S * 1_000_000
