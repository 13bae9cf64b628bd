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
  description = "CloudWatch dashboard name (the metrics of section 18.3; the product's dashboard is dashboard_url)"
  value       = module.monitoring.dashboard_name
}

output "dashboard_url" {
  description = "The dashboard (its own REST API, on dashboard_domain_name)"
  value       = module.api_gateway.dashboard_url
}

output "dashboard_dns_target" {
  description = "Point dashboard_domain_name at this (Route 53 alias: name + zone_id; or a CNAME to name)"
  value       = module.api_gateway.dashboard_domain_target
}

output "lambda_versions" {
  description = "Newest published version per function: what a release moves `live` to"
  value       = module.lambda.published_versions
}

output "codedeploy_application" {
  description = "CodeDeploy application of the releases"
  value       = module.lambda.codedeploy_application
}

output "codedeploy_deployment_groups" {
  description = "CodeDeploy deployment group per function"
  value       = module.lambda.codedeploy_deployment_groups
}
