# The four Lambda entry points of issue 9, one deployment zip, one least-privilege role each, X-Ray
# active, and a `live` alias per function that API Gateway, SQS, the stream and the schedule
# invoke. Terraform publishes versions; CodeDeploy (deploy.tf) moves `live` to a new one, a canary
# first (section 13.1), and moves it back when an alarm fires. The callers never change.

locals {
  functions = {
    api = {
      handler     = "triggers_api.aws.lambda_api.handler"
      timeout     = 29 # API Gateway's integration timeout
      description = "The whole FastAPI app through Mangum (API Gateway REST proxy)"
    }
    authorizer = {
      handler     = "triggers_api.aws.lambda_authorizer.handler"
      timeout     = 5
      description = "REQUEST authorizer: X-API-Key -> SHA-256 -> KeyHashIndex"
    }
    worker = {
      handler     = "triggers_api.aws.lambda_worker.handler"
      timeout     = 30 # schema.WORKER_TIMEOUT_S; the queue's visibility timeout is 6x this
      description = "Delivery worker: SQS batches with partial failures; the sweep on a schedule"
    }
    archiver = {
      handler     = "triggers_api.aws.lambda_archiver.handler"
      timeout     = 60
      description = "TTL removals from the events stream -> gzip JSON Lines in S3"
    }
  }

  table      = var.table_arns
  index_arns = { for k, arn in var.table_arns : k => "${arn}/index/*" }
  environment = {
    TRIGGERS_DATABASE_URL        = "dynamodb://${var.name_prefix}?region=${var.region}"
    TRIGGERS_ARCHIVE_URL         = var.archive_url
    TRIGGERS_LOG_LEVEL           = var.log_level
    POWERTOOLS_LOG_LEVEL         = var.log_level
    POWERTOOLS_METRICS_NAMESPACE = var.metrics_namespace
  }
  archive_objects = "${var.archive_bucket_arn}/*" # the bucket holds the archive only
}

# The HMAC key of the dashboard's session cookies (TRIGGERS_SESSION_SECRET). Every API container
# must hold the same one, or a cookie signed by one is refused by the next; unset, each container
# would try to write its own beside the archive directory (read-only under /var/task). Two UUIDs
# (crypto/rand: 244 random bits) drawn once at the first apply and kept in the (encrypted, remote)
# state: ignore_changes stops the next plan from drawing again. Built in, no provider beyond aws.
# `terraform apply -replace=module.lambda.terraform_data.session_secret` draws a new one, which logs
# every dashboard user out and changes nothing else.
resource "terraform_data" "session_secret" {
  input = sensitive("${replace(uuid(), "-", "")}${replace(uuid(), "-", "")}")

  lifecycle {
    ignore_changes = [input]
  }
}

# -- roles ---------------------------------------------------------------------------------------
data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "function" {
  for_each           = local.functions
  name               = "${var.name_prefix}-${each.key}"
  assume_role_policy = data.aws_iam_policy_document.assume.json
}

# Every function: its own log group, X-Ray segments (X-Ray's API takes no resource ARNs).
data "aws_iam_policy_document" "common" {
  for_each = local.functions

  statement {
    sid       = "OwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.function[each.key].arn}:*"]
  }

  statement {
    sid       = "XRay"
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"]
  }
}

# The API: read and write the data it serves; audit records are append-only (no Update/Delete on
# audit-logs for anyone); sends deliveries to the queue.
data "aws_iam_policy_document" "api" {
  statement {
    sid = "Data"
    actions = [
      "dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:PutItem",
      "dynamodb:UpdateItem", "dynamodb:BatchWriteItem", "dynamodb:ConditionCheckItem",
    ]
    resources = [
      local.table["events"], local.index_arns["events"],
      local.table["deliveries"], local.index_arns["deliveries"],
      local.table["api-keys"], local.index_arns["api-keys"],
      local.table["idempotency"],
      local.table["subscriptions"], local.index_arns["subscriptions"],
      local.table["users"],
      local.table["counters"],
      local.table["event-types"], local.index_arns["event-types"],
    ]
  }

  statement {
    sid       = "DeleteSubscriptionsAndEventTypes"
    actions   = ["dynamodb:DeleteItem"]
    resources = [local.table["subscriptions"], local.table["event-types"]]
  }

  statement {
    sid       = "AuditAppendAndRead"
    actions   = ["dynamodb:PutItem", "dynamodb:BatchWriteItem", "dynamodb:Query"]
    resources = [local.table["audit-logs"], local.index_arns["audit-logs"]]
  }

  statement {
    sid       = "Enqueue"
    actions   = ["sqs:SendMessage"]
    resources = [var.delivery_queue_arn]
  }
}

# The authorizer: one index, read only.
data "aws_iam_policy_document" "authorizer" {
  statement {
    sid       = "KeyByHash"
    actions   = ["dynamodb:Query"]
    resources = ["${local.table["api-keys"]}/index/KeyHashIndex"]
  }
}

# The worker: consume the queue (the event source mapping), re-send on release and sweep, update
# delivery state, append audit records, count.
data "aws_iam_policy_document" "worker" {
  statement {
    sid = "Consume"
    actions = [
      "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility",
      "sqs:GetQueueAttributes", "sqs:SendMessage",
    ]
    resources = [var.delivery_queue_arn]
  }

  statement {
    sid = "DeliveryState"
    actions = [
      "dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:PutItem",
      "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem",
    ]
    resources = [
      local.table["events"],
      local.table["deliveries"], local.index_arns["deliveries"],
      local.table["subscriptions"], local.index_arns["subscriptions"],
      local.table["counters"],
    ]
  }

  statement {
    sid       = "ReadShardCounts"
    actions   = ["dynamodb:GetItem"]
    resources = [local.table["users"]]
  }

  statement {
    sid       = "AuditAppend"
    actions   = ["dynamodb:PutItem", "dynamodb:BatchWriteItem"]
    resources = [local.table["audit-logs"]]
  }
}

# The archiver: read the events stream, write archive objects under the prefix.
data "aws_iam_policy_document" "archiver" {
  statement {
    sid       = "Stream"
    actions   = ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams"]
    resources = [var.events_stream_arn]
  }

  statement {
    sid       = "Archive"
    actions   = ["s3:PutObject"]
    resources = [local.archive_objects]
  }
}

locals {
  policies = {
    api        = data.aws_iam_policy_document.api.json
    authorizer = data.aws_iam_policy_document.authorizer.json
    worker     = data.aws_iam_policy_document.worker.json
    archiver   = data.aws_iam_policy_document.archiver.json
  }
}

resource "aws_iam_role_policy" "common" {
  for_each = local.functions
  name     = "common"
  role     = aws_iam_role.function[each.key].id
  policy   = data.aws_iam_policy_document.common[each.key].json
}

resource "aws_iam_role_policy" "function" {
  for_each = local.functions
  name     = each.key
  role     = aws_iam_role.function[each.key].id
  policy   = local.policies[each.key]
}

# -- functions -----------------------------------------------------------------------------------
resource "aws_cloudwatch_log_group" "function" {
  for_each          = local.functions
  name              = "/aws/lambda/${var.name_prefix}-${each.key}"
  retention_in_days = var.log_retention_days
}

resource "aws_lambda_function" "function" {
  for_each                       = local.functions
  function_name                  = "${var.name_prefix}-${each.key}"
  description                    = each.value.description
  role                           = aws_iam_role.function[each.key].arn
  s3_bucket                      = var.package_bucket
  s3_key                         = var.package_key
  handler                        = each.value.handler
  runtime                        = var.runtime
  architectures                  = ["arm64"]
  memory_size                    = var.memory_mb[each.key]
  timeout                        = each.value.timeout
  reserved_concurrent_executions = var.reserved_concurrency[each.key]
  publish                        = true

  environment {
    variables = merge(
      local.environment,
      { POWERTOOLS_SERVICE_NAME = "triggers-api-${each.key}" },
      each.key == "api" ? tomap({ TRIGGERS_SESSION_SECRET = terraform_data.session_secret.output }) : tomap({}),
    )
  }

  tracing_config {
    mode = "Active"
  }

  logging_config {
    log_format = "JSON"
    log_group  = aws_cloudwatch_log_group.function[each.key].name
  }

  depends_on = [aws_iam_role_policy.common]
}

# `live`: what every caller invokes. Created on the first published version; from then on
# CodeDeploy owns where it points (a release shifts it to the version Terraform just published, a
# rollback shifts it back), so Terraform ignores its version and weights instead of undoing them.
resource "aws_lambda_alias" "live" {
  for_each         = local.functions
  name             = "live"
  function_name    = aws_lambda_function.function[each.key].function_name
  function_version = aws_lambda_function.function[each.key].version

  lifecycle {
    ignore_changes = [function_version, routing_config]
  }
}

# -- triggers ------------------------------------------------------------------------------------
# One SQS message = one delivery; partial batch failures (Powertools BatchProcessor).
resource "aws_lambda_event_source_mapping" "worker" {
  event_source_arn                   = var.delivery_queue_arn
  function_name                      = aws_lambda_alias.live["worker"].arn
  batch_size                         = 10
  maximum_batching_window_in_seconds = 0
  function_response_types            = ["ReportBatchItemFailures"]

  scaling_config {
    maximum_concurrency = var.reserved_concurrency["worker"]
  }
}

# Only TTL removals reach the archiver (the event source mapping's filter; user writes never do).
resource "aws_lambda_event_source_mapping" "archiver" {
  event_source_arn               = var.events_stream_arn
  function_name                  = aws_lambda_alias.live["archiver"].arn
  starting_position              = "TRIM_HORIZON"
  batch_size                     = 100
  maximum_retry_attempts         = -1 # until the record leaves the stream (24 h): never drop an archive
  bisect_batch_on_function_error = true
  function_response_types        = ["ReportBatchItemFailures"]

  filter_criteria {
    filter {
      pattern = jsonencode({
        eventName = ["REMOVE"]
        userIdentity = {
          type        = ["Service"]
          principalId = ["dynamodb.amazonaws.com"]
        }
      })
    }
  }
}

# The sweep: re-enqueue pending deliveries whose SQS message was never sent (DueIndex).
resource "aws_cloudwatch_event_rule" "sweep" {
  name                = "${var.name_prefix}-sweep"
  description         = "Re-enqueue deliveries stuck without a message"
  schedule_expression = var.sweep_schedule
}

# No `input`: the worker receives EventBridge's own "Scheduled Event" (source aws.events), which
# is how lambda_worker.handler tells a sweep from an SQS batch.
resource "aws_cloudwatch_event_target" "sweep" {
  rule = aws_cloudwatch_event_rule.sweep.name
  arn  = aws_lambda_alias.live["worker"].arn
}

resource "aws_lambda_permission" "sweep" {
  statement_id  = "AllowSweepSchedule"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.function["worker"].function_name
  qualifier     = aws_lambda_alias.live["worker"].name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.sweep.arn
}
