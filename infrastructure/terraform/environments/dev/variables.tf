variable "environment" {
  description = "dev, staging or production: names are triggers-<environment>-*"
  type        = string
}

variable "region" {
  description = "AWS region"
  type        = string
}

variable "deletion_protection" {
  description = "Protect the tables from deletion"
  type        = bool
}

variable "archive_bucket_name" {
  description = "Globally unique name of the archive bucket"
  type        = string
}

variable "archive_force_destroy" {
  description = "Allow destroying a non-empty archive bucket"
  type        = bool
}

variable "package_bucket" {
  description = "Bucket holding the Lambda deployment zip"
  type        = string
}

variable "package_key" {
  description = "Key of the Lambda deployment zip (CI uploads one per commit)"
  type        = string
}

variable "lambda_memory_mb" {
  description = "Memory per function"
  type        = map(number)
}

variable "lambda_reserved_concurrency" {
  description = "Reserved concurrency per function"
  type        = map(number)
}

variable "canary_percentage" {
  description = "Release canary: percent of traffic the new version gets first (section 13.1: 5)"
  type        = number
}

variable "canary_interval_minutes" {
  description = "Release canary: minutes at that share, watched by the rollback alarms (section 13.1: 10)"
  type        = number
}

variable "log_retention_days" {
  description = "Retention of the log groups"
  type        = number
}

variable "log_level" {
  description = "Log level of the functions"
  type        = string
}

variable "metrics_namespace" {
  description = "CloudWatch namespace of the EMF metrics"
  type        = string
}

variable "api_throttle_rate_limit" {
  description = "Stage-wide steady requests/s"
  type        = number
}

variable "api_throttle_burst_limit" {
  description = "Stage-wide burst"
  type        = number
}

variable "api_monthly_quota" {
  description = "Usage plan quota, requests per month"
  type        = number
}

variable "alarm_critical_endpoints" {
  description = "HTTPS endpoints paged by critical alarms"
  type        = list(string)
}

variable "alarm_warning_emails" {
  description = "Addresses notified by warning alarms"
  type        = list(string)
}

variable "dashboard_domain_name" {
  description = "The dashboard's domain (served at its root: https://<name>/dashboard/)"
  type        = string
}

variable "dashboard_certificate_arn" {
  description = "ACM certificate for dashboard_domain_name, in var.region"
  type        = string
}

variable "dashboard_throttle_rate_limit" {
  description = "Dashboard stage: steady requests/s"
  type        = number
}

variable "dashboard_throttle_burst_limit" {
  description = "Dashboard stage: burst"
  type        = number
}
