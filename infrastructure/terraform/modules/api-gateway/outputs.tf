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
