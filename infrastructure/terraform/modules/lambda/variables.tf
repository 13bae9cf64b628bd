variable "name_prefix" {
  description = "Function names are <name_prefix>-api, -authorizer, -worker, -archiver"
  type        = string
}

variable "region" {
  description = "AWS region of the tables and queues (part of TRIGGERS_DATABASE_URL)"
  type        = string
}

variable "package_bucket" {
  description = "S3 bucket holding the deployment zip built by `make lambda-package`"
  type        = string
}

variable "package_key" {
  description = "S3 key of the deployment zip (one zip serves the four handlers)"
  type        = string
}

variable "runtime" {
  description = "Lambda runtime"
  type        = string
  default     = "python3.12"
}

variable "memory_mb" {
  description = "Memory per function (CPU scales with it)"
  type        = map(number)
  default = {
    api        = 1024
    authorizer = 512
    worker     = 512
    archiver   = 512
  }
}

variable "reserved_concurrency" {
  description = "Reserved concurrent executions per function: a ceiling, and a guarantee against the others"
  type        = map(number)
  default = {
    api        = 100
    authorizer = 50
    worker     = 50
    archiver   = 10
  }
}

variable "canary_percentage" {
  description = "Share of `live` traffic (percent) the new version gets first during a release (section 13.1: 5)"
  type        = number
  default     = 5

  validation {
    condition     = var.canary_percentage >= 1 && var.canary_percentage <= 99
    error_message = "canary_percentage is a whole percentage in [1, 99]."
  }
}

variable "canary_interval_minutes" {
  description = "Minutes the canary serves that share, watched by the rollback alarms, before all traffic moves (section 13.1: 10)"
  type        = number
  default     = 10
}

variable "rollback_alarm_names" {
  description = "Per function (api, authorizer, worker, archiver): the alarms (module monitoring) that roll its release back"
  type        = map(list(string))
}

variable "rollback_alarm_arns" {
  description = "ARNs of every rollback alarm (CodeDeploy's role may describe these and no others)"
  type        = list(string)
}

variable "log_retention_days" {
  description = "CloudWatch Logs retention of each function's log group"
  type        = number
  default     = 30
}

variable "log_level" {
  description = "TRIGGERS_LOG_LEVEL / POWERTOOLS_LOG_LEVEL"
  type        = string
  default     = "INFO"
}

variable "metrics_namespace" {
  description = "CloudWatch namespace of the EMF metrics (Powertools Metrics)"
  type        = string
}

variable "table_arns" {
  description = "Table ARN by schema suffix (module dynamodb's table_arns)"
  type        = map(string)
}

variable "events_stream_arn" {
  description = "The events table's stream, for the archiver"
  type        = string
}

variable "delivery_queue_arn" {
  description = "The delivery queue"
  type        = string
}

variable "archive_bucket_arn" {
  description = "The archive bucket"
  type        = string
}

variable "archive_url" {
  description = "TRIGGERS_ARCHIVE_URL (s3://bucket/prefix)"
  type        = string
}

variable "sweep_schedule" {
  description = "How often the worker re-enqueues deliveries whose message was never sent"
  type        = string
  default     = "rate(1 minute)"
}
