output "function_names" {
  description = "Function name by role (api, authorizer, worker, archiver)"
  value       = { for k, f in aws_lambda_function.function : k => f.function_name }
}

output "live_alias_arns" {
  description = "ARN of each function's `live` alias"
  value       = { for k, a in aws_lambda_alias.live : k => a.arn }
}

output "live_alias_invoke_arns" {
  description = "Invoke ARN of each `live` alias (API Gateway integrations)"
  value       = { for k, a in aws_lambda_alias.live : k => a.invoke_arn }
}

output "live_alias_names" {
  description = "The alias name (qualifier for permissions)"
  value       = "live"
}

output "published_versions" {
  description = "The newest published version of each function: a release's TargetVersion"
  value       = { for k, f in aws_lambda_function.function : k => f.version }
}

output "codedeploy_application" {
  description = "The CodeDeploy application that releases the functions"
  value       = aws_codedeploy_app.functions.name
}

output "codedeploy_deployment_groups" {
  description = "Deployment group by function (api, authorizer, worker, archiver)"
  value       = { for k, g in aws_codedeploy_deployment_group.function : k => g.deployment_group_name }
}
