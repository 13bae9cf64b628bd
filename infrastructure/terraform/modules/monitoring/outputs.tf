output "critical_topic_arn" {
  description = "SNS topic of the critical alarms (page on-call)"
  value       = aws_sns_topic.critical.arn
}

output "warning_topic_arn" {
  description = "SNS topic of the warning alarms (notify the channel)"
  value       = aws_sns_topic.warning.arn
}

output "api_error_rate_alarm_arn" {
  description = "Alarm that rolls back a canary (section 13.1: error rate > 1 %)"
  value       = aws_cloudwatch_metric_alarm.api_error_rate.arn
}

output "dashboard_name" {
  description = "The CloudWatch dashboard of section 18.3"
  value       = aws_cloudwatch_dashboard.main.dashboard_name
}
