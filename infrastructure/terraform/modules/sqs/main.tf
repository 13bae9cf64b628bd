# The delivery queues of src/triggers_api/storage/dynamodb/schema.py (QUEUES): one message per
# (event, destination) delivery. tests/aws/test_terraform.py compares these numbers with schema.py.

# Poison messages: deliveries the worker failed to finish maxReceiveCount times. Kept 14 days (the
# SQS maximum) for someone to look at; `replay` puts the deliveries back through DynamoDB.
resource "aws_sqs_queue" "delivery_dlq" {
  name                       = "${var.name_prefix}-delivery-dlq"
  visibility_timeout_seconds = 180
  message_retention_seconds  = 1209600
  receive_wait_time_seconds  = 20
  sqs_managed_sse_enabled    = true
}

# Visibility timeout 180 s = 6 x the worker's 30 s timeout (AWS's rule for Lambda consumers).
# maxReceiveCount 10 = 4 scheduled receives (first attempt + retries at 5 min, 30 min, 2 h, set with
# ChangeMessageVisibility) + 6 for crashes and timeouts.
resource "aws_sqs_queue" "delivery" {
  name                       = "${var.name_prefix}-delivery"
  visibility_timeout_seconds = 180
  message_retention_seconds  = 345600
  receive_wait_time_seconds  = 20
  sqs_managed_sse_enabled    = true

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.delivery_dlq.arn
    maxReceiveCount     = 10
  })
}

# Only the delivery queue may send to the DLQ.
resource "aws_sqs_queue_redrive_allow_policy" "delivery_dlq" {
  queue_url = aws_sqs_queue.delivery_dlq.id

  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.delivery.arn]
  })
}
