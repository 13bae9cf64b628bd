output "table_names" {
  description = "Table name by schema suffix"
  value = {
    events        = aws_dynamodb_table.events.name
    deliveries    = aws_dynamodb_table.deliveries.name
    api-keys      = aws_dynamodb_table.api_keys.name
    audit-logs    = aws_dynamodb_table.audit_logs.name
    idempotency   = aws_dynamodb_table.idempotency.name
    subscriptions = aws_dynamodb_table.subscriptions.name
    users         = aws_dynamodb_table.users.name
    counters      = aws_dynamodb_table.counters.name
    event-types   = aws_dynamodb_table.event_types.name
  }
}

output "table_arns" {
  description = "Table ARN by schema suffix (index ARNs are <arn>/index/*)"
  value = {
    events        = aws_dynamodb_table.events.arn
    deliveries    = aws_dynamodb_table.deliveries.arn
    api-keys      = aws_dynamodb_table.api_keys.arn
    audit-logs    = aws_dynamodb_table.audit_logs.arn
    idempotency   = aws_dynamodb_table.idempotency.arn
    subscriptions = aws_dynamodb_table.subscriptions.arn
    users         = aws_dynamodb_table.users.arn
    counters      = aws_dynamodb_table.counters.arn
    event-types   = aws_dynamodb_table.event_types.arn
  }
}

output "events_stream_arn" {
  description = "The events table's stream (NEW_AND_OLD_IMAGES), read by the archiver"
  value       = aws_dynamodb_table.events.stream_arn
}
