# Section 18: the alarms of 18.4 (critical ones page, warnings notify) and the dashboard of 18.3.
# Delivery outcomes and cold starts come from the functions' EMF metrics (Powertools Metrics).

locals {
  api_dimensions    = { ApiName = var.api_name, Stage = var.api_stage }
  worker_dimensions = { service = "triggers-api-worker" }
  api_fn_dimensions = { service = "triggers-api-api" }
}

resource "aws_sns_topic" "critical" {
  name              = "${var.name_prefix}-critical"
  kms_master_key_id = "alias/aws/sns"
}

resource "aws_sns_topic" "warning" {
  name              = "${var.name_prefix}-warning"
  kms_master_key_id = "alias/aws/sns"
}

resource "aws_sns_topic_subscription" "critical" {
  for_each  = toset(var.critical_endpoints)
  topic_arn = aws_sns_topic.critical.arn
  protocol  = "https"
  endpoint  = each.value
}

resource "aws_sns_topic_subscription" "warning" {
  for_each  = toset(var.warning_emails)
  topic_arn = aws_sns_topic.warning.arn
  protocol  = "email"
  endpoint  = each.value
}

# -- critical -------------------------------------------------------------------------------------
# API error rate > 1 % for 5 minutes (also the canary's rollback signal).
resource "aws_cloudwatch_metric_alarm" "api_error_rate" {
  alarm_name          = "${var.name_prefix}-api-error-rate"
  alarm_description   = "API 5xx rate > 1 % for 5 minutes"
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0.01
  evaluation_periods  = 5
  datapoints_to_alarm = 5
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.critical.arn]
  ok_actions          = [aws_sns_topic.critical.arn]

  metric_query {
    id          = "rate"
    expression  = "IF(requests > 0, errors / requests, 0)"
    label       = "5xx rate"
    return_data = true
  }

  metric_query {
    id = "errors"
    metric {
      namespace   = "AWS/ApiGateway"
      metric_name = "5XXError"
      dimensions  = local.api_dimensions
      period      = 60
      stat        = "Sum"
    }
  }

  metric_query {
    id = "requests"
    metric {
      namespace   = "AWS/ApiGateway"
      metric_name = "Count"
      dimensions  = local.api_dimensions
      period      = 60
      stat        = "Sum"
    }
  }
}

# Delivery failure rate > 5 % for 10 minutes (failed attempts / attempts, from the worker).
resource "aws_cloudwatch_metric_alarm" "delivery_failure_rate" {
  alarm_name          = "${var.name_prefix}-delivery-failure-rate"
  alarm_description   = "Delivery attempts failing > 5 % for 10 minutes"
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0.05
  evaluation_periods  = 10
  datapoints_to_alarm = 10
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.critical.arn]
  ok_actions          = [aws_sns_topic.critical.arn]

  metric_query {
    id          = "rate"
    expression  = "IF(attempts > 0, failures / attempts, 0)"
    label       = "delivery failure rate"
    return_data = true
  }

  metric_query {
    id = "failures"
    metric {
      namespace   = var.metrics_namespace
      metric_name = "DeliveryFailures"
      dimensions  = local.worker_dimensions
      period      = 60
      stat        = "Sum"
    }
  }

  metric_query {
    id = "attempts"
    metric {
      namespace   = var.metrics_namespace
      metric_name = "DeliveryAttempts"
      dimensions  = local.worker_dimensions
      period      = 60
      stat        = "Sum"
    }
  }
}

# Lambda errors > 10 per minute, per function.
resource "aws_cloudwatch_metric_alarm" "lambda_errors" {
  for_each            = var.function_names
  alarm_name          = "${var.name_prefix}-${each.key}-errors"
  alarm_description   = "${each.value}: more than 10 errors in a minute"
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = each.value }
  statistic           = "Sum"
  period              = 60
  evaluation_periods  = 1
  threshold           = 10
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.critical.arn]
  ok_actions          = [aws_sns_topic.critical.arn]
}

# DynamoDB throttling > 50 events per minute, per table (reads + writes, table and its indexes).
resource "aws_cloudwatch_metric_alarm" "dynamodb_throttles" {
  for_each            = var.table_names
  alarm_name          = "${var.name_prefix}-${each.key}-throttles"
  alarm_description   = "${each.value}: more than 50 throttled requests in a minute"
  comparison_operator = "GreaterThanThreshold"
  threshold           = 50
  evaluation_periods  = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.critical.arn]
  ok_actions          = [aws_sns_topic.critical.arn]

  metric_query {
    id          = "throttles"
    expression  = "reads + writes"
    label       = "throttle events"
    return_data = true
  }

  metric_query {
    id = "reads"
    metric {
      namespace   = "AWS/DynamoDB"
      metric_name = "ReadThrottleEvents"
      dimensions  = { TableName = each.value }
      period      = 60
      stat        = "Sum"
    }
  }

  metric_query {
    id = "writes"
    metric {
      namespace   = "AWS/DynamoDB"
      metric_name = "WriteThrottleEvents"
      dimensions  = { TableName = each.value }
      period      = 60
      stat        = "Sum"
    }
  }
}

# The archiver falling behind: stream records live 24 h, so an hour of lag pages before data is lost.
resource "aws_cloudwatch_metric_alarm" "archiver_iterator_age" {
  alarm_name          = "${var.name_prefix}-archiver-iterator-age"
  alarm_description   = "Archiver more than 1 h behind the events stream (records expire after 24 h)"
  namespace           = "AWS/Lambda"
  metric_name         = "IteratorAge"
  dimensions          = { FunctionName = var.function_names["archiver"] }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 3600000
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.critical.arn]
}

# -- warnings -------------------------------------------------------------------------------------
# p95 latency > 150 ms for 10 minutes.
resource "aws_cloudwatch_metric_alarm" "api_p95_latency" {
  alarm_name          = "${var.name_prefix}-api-p95-latency"
  alarm_description   = "API p95 latency > 150 ms for 10 minutes"
  namespace           = "AWS/ApiGateway"
  metric_name         = "Latency"
  dimensions          = local.api_dimensions
  extended_statistic  = "p95"
  period              = 60
  evaluation_periods  = 10
  datapoints_to_alarm = 10
  threshold           = 150
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.warning.arn]
  ok_actions          = [aws_sns_topic.warning.arn]
}

# Dead-letter queue depth > 10.
resource "aws_cloudwatch_metric_alarm" "dlq_depth" {
  alarm_name          = "${var.name_prefix}-dlq-depth"
  alarm_description   = "More than 10 poison messages in the dead-letter queue"
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = var.dlq_name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 1
  threshold           = 10
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.warning.arn]
  ok_actions          = [aws_sns_topic.warning.arn]
}

# Delivery queue depth > 1,000 for 5 minutes (processing delay).
resource "aws_cloudwatch_metric_alarm" "queue_depth" {
  alarm_name          = "${var.name_prefix}-queue-depth"
  alarm_description   = "More than 1,000 deliveries waiting for 5 minutes"
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = var.delivery_queue_name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 5
  datapoints_to_alarm = 5
  threshold           = 1000
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.warning.arn]
  ok_actions          = [aws_sns_topic.warning.arn]
}

# Cold starts > 20 % of the API function's invocations (Powertools' ColdStart metric).
resource "aws_cloudwatch_metric_alarm" "api_cold_starts" {
  alarm_name          = "${var.name_prefix}-api-cold-starts"
  alarm_description   = "Cold starts > 20 % of API invocations for 15 minutes"
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0.2
  evaluation_periods  = 3
  datapoints_to_alarm = 3
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.warning.arn]

  metric_query {
    id          = "share"
    expression  = "IF(invocations > 0, cold / invocations, 0)"
    label       = "cold start share"
    return_data = true
  }

  metric_query {
    id = "cold"
    metric {
      namespace   = var.metrics_namespace
      metric_name = "ColdStart"
      dimensions  = merge(local.api_fn_dimensions, { function_name = var.function_names["api"] })
      period      = 300
      stat        = "Sum"
    }
  }

  metric_query {
    id = "invocations"
    metric {
      namespace   = "AWS/Lambda"
      metric_name = "Invocations"
      dimensions  = { FunctionName = var.function_names["api"] }
      period      = 300
      stat        = "Sum"
    }
  }
}

# -- the dashboard (section 18.3) ----------------------------------------------------------------------
locals {
  fn        = var.function_names
  api_dims  = ["ApiName", var.api_name, "Stage", var.api_stage]
  table_ids = sort(keys(var.table_names))
  widgets = [
    {
      title = "API health: requests, 5xx, p95 latency (5 min)"
      metrics = [
        concat(["AWS/ApiGateway", "Count"], local.api_dims, [{ stat = "Sum" }]),
        concat(["AWS/ApiGateway", "5XXError"], local.api_dims, [{ stat = "Sum" }]),
        concat(["AWS/ApiGateway", "4XXError"], local.api_dims, [{ stat = "Sum" }]),
        concat(["AWS/ApiGateway", "Latency"], local.api_dims, [{ stat = "p95", yAxis = "right" }]),
      ]
    },
    {
      title = "Event processing: ingested/min, deliveries, retries"
      metrics = [
        [var.metrics_namespace, "EventsIngested", "service", "triggers-api-api", { stat = "Sum", period = 60 }],
        [var.metrics_namespace, "DeliveryAttempts", "service", "triggers-api-worker", { stat = "Sum" }],
        [var.metrics_namespace, "DeliveryFailures", "service", "triggers-api-worker", { stat = "Sum" }],
        [var.metrics_namespace, "DeliveryRetries", "service", "triggers-api-worker", { stat = "Sum" }],
      ]
    },
    {
      title = "Database: consumed capacity and throttles"
      metrics = flatten([for t in local.table_ids : [
        ["AWS/DynamoDB", "ConsumedWriteCapacityUnits", "TableName", var.table_names[t], { stat = "Sum" }],
        ["AWS/DynamoDB", "ConsumedReadCapacityUnits", "TableName", var.table_names[t], { stat = "Sum" }],
        ["AWS/DynamoDB", "WriteThrottleEvents", "TableName", var.table_names[t], { stat = "Sum", yAxis = "right" }],
      ]])
    },
    {
      title = "Lambda: duration p95, errors, concurrency"
      metrics = flatten([for k in sort(keys(local.fn)) : [
        ["AWS/Lambda", "Duration", "FunctionName", local.fn[k], { stat = "p95" }],
        ["AWS/Lambda", "Errors", "FunctionName", local.fn[k], { stat = "Sum", yAxis = "right" }],
        ["AWS/Lambda", "ConcurrentExecutions", "FunctionName", local.fn[k], { stat = "Maximum", yAxis = "right" }],
      ]])
    },
    {
      title = "Queues: visible, in flight, DLQ depth"
      metrics = [
        ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", var.delivery_queue_name, { stat = "Maximum" }],
        ["AWS/SQS", "ApproximateNumberOfMessagesNotVisible", "QueueName", var.delivery_queue_name, { stat = "Maximum" }],
        ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", var.dlq_name, { stat = "Maximum", yAxis = "right" }],
      ]
    },
    {
      title  = "Cost: estimated charges by service (billing metrics, us-east-1)"
      region = "us-east-1"
      metrics = [for service in ["AmazonApiGateway", "AWSLambda", "AmazonDynamoDB", "AWSQueueService", "AmazonS3", "AmazonCloudWatch"] :
        ["AWS/Billing", "EstimatedCharges", "ServiceName", service, "Currency", "USD", { stat = "Maximum", period = 86400 }]
      ]
    },
  ]
}

resource "aws_cloudwatch_dashboard" "main" {
  dashboard_name = "${var.name_prefix}-overview"
  dashboard_body = jsonencode({
    widgets = [for i, w in local.widgets : {
      type   = "metric"
      x      = (i % 2) * 12
      y      = floor(i / 2) * 6
      width  = 12
      height = 6
      properties = {
        title   = w.title
        region  = lookup(w, "region", var.region)
        metrics = w.metrics
        period  = 300
        view    = "timeSeries"
        stacked = false
      }
    }]
  })
}
