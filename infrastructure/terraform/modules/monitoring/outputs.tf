output "critical_topic_arn" {
  description = "SNS topic of the critical alarms (page on-call)"
  value       = aws_sns_topic.critical.arn
}

output "warning_topic_arn" {
  description = "SNS topic of the warning alarms (notify the channel)"
  value       = aws_sns_topic.warning.arn
}

output "api_error_rate_alarm_arn" {
  description = "The API error-rate alarm (section 13.1: error rate > 1 % rolls a release back)"
  value       = aws_cloudwatch_metric_alarm.api_error_rate.arn
}

output "dashboard_name" {
  description = "The CloudWatch dashboard of section 18.3"
  value       = aws_cloudwatch_dashboard.main.dashboard_name
}

# What rolls a release of each function back (module lambda's CodeDeploy groups). The API-wide
# alarms see a 5 % canary diluted twenty-fold; each function's own error alarm catches a version
# that fails outright (a broken import fails every invocation). docs/deploy-aws.md, "Releases".
locals {
  rollback_alarms = {
    api        = [aws_cloudwatch_metric_alarm.api_error_rate, aws_cloudwatch_metric_alarm.api_p95_latency, aws_cloudwatch_metric_alarm.lambda_errors["api"]]
    authorizer = [aws_cloudwatch_metric_alarm.api_error_rate, aws_cloudwatch_metric_alarm.lambda_errors["authorizer"]]
    worker     = [aws_cloudwatch_metric_alarm.delivery_failure_rate, aws_cloudwatch_metric_alarm.lambda_errors["worker"]]
    archiver   = [aws_cloudwatch_metric_alarm.lambda_errors["archiver"], aws_cloudwatch_metric_alarm.archiver_iterator_age]
  }
}

output "rollback_alarm_names" {
  description = "Per function: the alarms whose ALARM state stops its release and rolls it back"
  value       = { for fn, alarms in local.rollback_alarms : fn => [for a in alarms : a.alarm_name] }
}

output "rollback_alarm_arns" {
  description = "ARNs of every rollback alarm (CodeDeploy's role may describe these only)"
  value       = distinct(flatten([for fn, alarms in local.rollback_alarms : [for a in alarms : a.arn]]))
}
