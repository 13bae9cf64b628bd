output "rest_api_name" {
  description = "The REST API's name (CloudWatch dimension ApiName)"
  value       = aws_api_gateway_rest_api.api.name
}

output "stage_name" {
  description = "The stage (CloudWatch dimension Stage)"
  value       = aws_api_gateway_stage.api.stage_name
}

output "invoke_url" {
  description = "Base URL of the API"
  value       = aws_api_gateway_stage.api.invoke_url
}

output "dashboard_rest_api_name" {
  description = "The dashboard REST API's name (CloudWatch dimension ApiName)"
  value       = aws_api_gateway_rest_api.dashboard.name
}

output "dashboard_url" {
  description = "Where the dashboard is served (its domain's root; the execute-api endpoint is disabled)"
  value       = "https://${aws_api_gateway_base_path_mapping.dashboard.domain_name}/dashboard/"
}

output "dashboard_domain_target" {
  description = "Point dashboard_domain_name here: a Route 53 alias (name + zone id) or a CNAME to the name"
  value = {
    name    = aws_api_gateway_domain_name.dashboard.regional_domain_name
    zone_id = aws_api_gateway_domain_name.dashboard.regional_zone_id
  }
}
