# The tables of src/triggers_api/storage/dynamodb/schema.py, written out. tests/aws/test_terraform.py
# parses this file and compares every table, key, index, projection, TTL and stream with schema.py:
# change both together. Access patterns, sharding and costs: docs/deploy-aws.md.

# Events (section 8.1). Listings are Queries on the user's shards, merged by ts_id.
resource "aws_dynamodb_table" "events" {
  name                        = "${var.name_prefix}-events"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "user_shard"
  range_key                   = "ts_id"
  deletion_protection_enabled = var.deletion_protection
  stream_enabled              = true
  stream_view_type            = "NEW_AND_OLD_IMAGES"

  attribute {
    name = "expiry_shard"
    type = "S"
  }

  attribute {
    name = "inbox_ts_id"
    type = "S"
  }

  attribute {
    name = "stream_pos"
    type = "N"
  }

  attribute {
    name = "stream_shard"
    type = "S"
  }

  attribute {
    name = "ttl"
    type = "N"
  }

  attribute {
    name = "ts_id"
    type = "S"
  }

  attribute {
    name = "type_ts_id"
    type = "S"
  }

  attribute {
    name = "user_shard"
    type = "S"
  }

  global_secondary_index {
    name               = "InboxIndex"
    hash_key           = "user_shard"
    range_key          = "inbox_ts_id"
    projection_type    = "INCLUDE"
    non_key_attributes = ["status", "event_type"]
  }

  global_secondary_index {
    name            = "EventTypeIndex"
    hash_key        = "user_shard"
    range_key       = "type_ts_id"
    projection_type = "KEYS_ONLY"
  }

  global_secondary_index {
    name               = "StreamIndex"
    hash_key           = "user_shard"
    range_key          = "stream_pos"
    projection_type    = "INCLUDE"
    non_key_attributes = ["event_type"]
  }

  global_secondary_index {
    name            = "StreamHeadIndex"
    hash_key        = "stream_shard"
    range_key       = "stream_pos"
    projection_type = "KEYS_ONLY"
  }

  global_secondary_index {
    name            = "ExpiryIndex"
    hash_key        = "expiry_shard"
    range_key       = "ttl"
    projection_type = "KEYS_ONLY"
  }

  ttl {
    attribute_name = "ttl"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled = true
  }
}

# An event's delivery state as one item collection: the '#event' pointer (user, shard, ts_id:
# get_event by id with two consistent GetItems, no scan), one 'dest#<destination>' item per (event,
# destination) delivery (issue 10's unit; one SQS message each), and the 'attempt#<UUIDv7>' history.
# The random event id spreads these writes over all partitions.
resource "aws_dynamodb_table" "deliveries" {
  name                        = "${var.name_prefix}-deliveries"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "event_id"
  range_key                   = "item"
  deletion_protection_enabled = var.deletion_protection

  attribute {
    name = "attempt_started_us"
    type = "N"
  }

  attribute {
    name = "dead_ts_id"
    type = "S"
  }

  attribute {
    name = "due_shard"
    type = "S"
  }

  attribute {
    name = "event_id"
    type = "S"
  }

  attribute {
    name = "item"
    type = "S"
  }

  attribute {
    name = "next_attempt_us"
    type = "N"
  }

  attribute {
    name = "sub_pending"
    type = "S"
  }

  attribute {
    name = "user_shard"
    type = "S"
  }

  global_secondary_index {
    name               = "DueIndex"
    hash_key           = "due_shard"
    range_key          = "next_attempt_us"
    projection_type    = "INCLUDE"
    non_key_attributes = ["lease_until_us"]
  }

  global_secondary_index {
    name            = "DeadLetterIndex"
    hash_key        = "user_shard"
    range_key       = "dead_ts_id"
    projection_type = "KEYS_ONLY"
  }

  global_secondary_index {
    name               = "AttemptIndex"
    hash_key           = "user_shard"
    range_key          = "attempt_started_us"
    projection_type    = "INCLUDE"
    non_key_attributes = ["outcome", "destination"]
  }

  global_secondary_index {
    name            = "SubscriptionPendingIndex"
    hash_key        = "sub_pending"
    range_key       = "event_id"
    projection_type = "KEYS_ONLY"
  }

  ttl {
    attribute_name = "ttl"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled = true
  }
}

# API keys (section 8.2); list_keys is a Query on the user.
resource "aws_dynamodb_table" "api_keys" {
  name                        = "${var.name_prefix}-api-keys"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "user_id"
  range_key                   = "key_id"
  deletion_protection_enabled = var.deletion_protection

  attribute {
    name = "key_hash"
    type = "S"
  }

  attribute {
    name = "key_id"
    type = "S"
  }

  attribute {
    name = "user_id"
    type = "S"
  }

  global_secondary_index {
    name            = "KeyHashIndex"
    hash_key        = "key_hash"
    projection_type = "ALL"
  }

  global_secondary_index {
    name            = "KeyIdIndex"
    hash_key        = "key_id"
    projection_type = "KEYS_ONLY"
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled = true
  }
}

# Audit records (section 8.3), append-only (no function's IAM role may update or delete them),
# 7-year TTL. Sharded like the user's events: a 10,000 events/s user writes 10,000 event.created
# records/s.
resource "aws_dynamodb_table" "audit_logs" {
  name                        = "${var.name_prefix}-audit-logs"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "user_shard"
  range_key                   = "ts_log_id"
  deletion_protection_enabled = var.deletion_protection

  attribute {
    name = "age_shard"
    type = "S"
  }

  attribute {
    name = "event_id"
    type = "S"
  }

  attribute {
    name = "ts_log_id"
    type = "S"
  }

  attribute {
    name = "user_action_shard"
    type = "S"
  }

  attribute {
    name = "user_shard"
    type = "S"
  }

  global_secondary_index {
    name            = "AuditEventIndex"
    hash_key        = "event_id"
    range_key       = "ts_log_id"
    projection_type = "ALL"
  }

  global_secondary_index {
    name            = "AuditActionIndex"
    hash_key        = "user_action_shard"
    range_key       = "ts_log_id"
    projection_type = "ALL"
  }

  global_secondary_index {
    name            = "AuditAgeIndex"
    hash_key        = "age_shard"
    range_key       = "ts_log_id"
    projection_type = "KEYS_ONLY"
  }

  ttl {
    attribute_name = "ttl"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled = true
  }
}

# Idempotency records: '<user_id>#<Idempotency-Key>', written with a condition (absent or expired)
# before the events they answer for are stored (docs/deploy-aws.md).
resource "aws_dynamodb_table" "idempotency" {
  name                        = "${var.name_prefix}-idempotency"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "user_key"
  deletion_protection_enabled = var.deletion_protection

  attribute {
    name = "expires_us"
    type = "N"
  }

  attribute {
    name = "expiry_shard"
    type = "S"
  }

  attribute {
    name = "user_key"
    type = "S"
  }

  global_secondary_index {
    name            = "IdempotencyExpiryIndex"
    hash_key        = "expiry_shard"
    range_key       = "expires_us"
    projection_type = "KEYS_ONLY"
  }

  ttl {
    attribute_name = "ttl"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled = true
  }
}

# Subscriptions (issue 10): a user's are one Query, oldest first (UUIDv7 ids).
resource "aws_dynamodb_table" "subscriptions" {
  name                        = "${var.name_prefix}-subscriptions"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "user_id"
  range_key                   = "subscription_id"
  deletion_protection_enabled = var.deletion_protection

  attribute {
    name = "failing_bucket"
    type = "S"
  }

  attribute {
    name = "failing_since_us"
    type = "N"
  }

  attribute {
    name = "subscription_id"
    type = "S"
  }

  attribute {
    name = "user_id"
    type = "S"
  }

  global_secondary_index {
    name            = "SubscriptionIdIndex"
    hash_key        = "subscription_id"
    projection_type = "ALL"
  }

  global_secondary_index {
    name            = "FailingIndex"
    hash_key        = "failing_bucket"
    range_key       = "failing_since_us"
    projection_type = "KEYS_ONLY"
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled = true
  }
}

# Per-user settings the backend needs: the event shard count and when it changed (see ShardCount).
# Absent item = 1 shard.
resource "aws_dynamodb_table" "users" {
  name                        = "${var.name_prefix}-users"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "user_id"
  deletion_protection_enabled = var.deletion_protection

  attribute {
    name = "user_id"
    type = "S"
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled = true
  }
}

# Fixed-window counters with TTL: rate limits per key per 60 s window (section 14.1) and
# events/attempts per user per minute (the overview chart, the metrics summary), each sharded when
# one item would pass the per-partition write limit (counter_shards).
resource "aws_dynamodb_table" "counters" {
  name                        = "${var.name_prefix}-counters"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "counter"
  deletion_protection_enabled = var.deletion_protection

  attribute {
    name = "counter"
    type = "S"
  }

  ttl {
    attribute_name = "ttl"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = false
  }

  server_side_encryption {
    enabled = true
  }
}


# The schema catalog (issue 11): per user 'type#<name>' (current), 'version#<name>#<n>' (every
# version, kept after a delete) and 'stamp' (grows with each change).
resource "aws_dynamodb_table" "event_types" {
  name                        = "${var.name_prefix}-event-types"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "user_id"
  range_key                   = "item"
  deletion_protection_enabled = var.deletion_protection

  attribute {
    name = "item"
    type = "S"
  }

  attribute {
    name = "stamp_bucket"
    type = "S"
  }

  attribute {
    name = "user_id"
    type = "S"
  }

  global_secondary_index {
    name               = "StampIndex"
    hash_key           = "stamp_bucket"
    range_key          = "user_id"
    projection_type    = "INCLUDE"
    non_key_attributes = ["stamp"]
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled = true
  }
}
