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

variable "lambda_stable_versions" {
  description = "Pinned version per function during a canary (\"\" = newest)"
  type        = map(string)
}

variable "canary_weight" {
  description = "Share of traffic to the newest version during a canary (0 = none)"
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
