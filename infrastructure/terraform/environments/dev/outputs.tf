output "api_url" {
  description = "Base URL of the API (append /v1/...)"
  value       = module.api_gateway.invoke_url
}

output "database_url" {
  description = "TRIGGERS_DATABASE_URL for `triggers-api migrate --check` and the CLI"
  value       = "dynamodb://${local.name_prefix}?region=${var.region}"
}

output "archive_url" {
  description = "TRIGGERS_ARCHIVE_URL"
  value       = module.s3.archive_url
}

output "dashboard" {
  description = "CloudWatch dashboard name"
  value       = module.monitoring.dashboard_name
}
