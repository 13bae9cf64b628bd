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

variable "stable_versions" {
  description = "Version the `live` alias serves per function; \"\" = the newest published (no canary)"
  type        = map(string)
  default = {
    api        = ""
    authorizer = ""
    worker     = ""
    archiver   = ""
  }
}

variable "canary_weight" {
  description = "Share of `live` traffic sent to the newest version while stable_versions pins the old one (section 13.1: 0.05, then 0.25, then promote)"
  type        = number
  default     = 0

  validation {
    condition     = var.canary_weight >= 0 && var.canary_weight < 1
    error_message = "canary_weight is a fraction in [0, 1)."
  }
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
