variable "name_prefix" {
  description = "The REST API is named <name_prefix>-api"
  type        = string
}

variable "stage_name" {
  description = "Stage name (part of the URL: https://<id>.execute-api.<region>.amazonaws.com/<stage>)"
  type        = string
}

variable "api_function_name" {
  description = "The API function (module lambda's function_names.api)"
  type        = string
}

variable "api_invoke_arn" {
  description = "Invoke ARN of the API function's `live` alias"
  type        = string
}

variable "authorizer_function_name" {
  description = "The authorizer function (module lambda's function_names.authorizer)"
  type        = string
}

variable "authorizer_invoke_arn" {
  description = "Invoke ARN of the authorizer's `live` alias"
  type        = string
}

variable "alias_name" {
  description = "The alias both invoke ARNs point at (Lambda permission qualifier)"
  type        = string
}

variable "authorizer_cache_seconds" {
  description = "How long API Gateway caches an authorizer decision per X-API-Key (section 14.2: 5 minutes)"
  type        = number
  default     = 300
}

variable "throttle_rate_limit" {
  description = "Steady requests/s for the stage (method settings: the stage-wide guard) and the usage plan; per-key limits are DynamoDB counters"
  type        = number
}

variable "throttle_burst_limit" {
  description = "Burst for the stage and the usage plan"
  type        = number
}

variable "monthly_quota" {
  description = "Requests per month in the usage plan"
  type        = number
}

variable "log_retention_days" {
  description = "Retention of the access log group"
  type        = number
  default     = 30
}

variable "dashboard_domain_name" {
  description = "The dashboard's own domain (e.g. console.example.com): the app is served at its root, /dashboard/"
  type        = string
}

variable "dashboard_certificate_arn" {
  description = "ACM certificate for dashboard_domain_name, in the API's region"
  type        = string
}

variable "dashboard_throttle_rate_limit" {
  description = "Steady requests/s for the dashboard's stage (a console: far below the API's)"
  type        = number
}

variable "dashboard_throttle_burst_limit" {
  description = "Burst for the dashboard's stage"
  type        = number
}
