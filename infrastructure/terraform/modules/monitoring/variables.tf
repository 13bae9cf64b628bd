variable "name_prefix" {
  description = "Alarm, topic and dashboard names start with it"
  type        = string
}

variable "region" {
  description = "Region of the dashboard's widgets"
  type        = string
}

variable "api_name" {
  description = "The REST API's name (dimension ApiName)"
  type        = string
}

variable "api_stage" {
  description = "The stage (dimension Stage)"
  type        = string
}

variable "function_names" {
  description = "Function name by role (api, authorizer, worker, archiver)"
  type        = map(string)
}

variable "table_names" {
  description = "Table name by schema suffix"
  type        = map(string)
}

variable "delivery_queue_name" {
  description = "The delivery queue"
  type        = string
}

variable "dlq_name" {
  description = "The dead-letter queue"
  type        = string
}

variable "metrics_namespace" {
  description = "Namespace of the functions' EMF metrics"
  type        = string
}

variable "critical_endpoints" {
  description = "HTTPS endpoints paged by critical alarms (e.g. the PagerDuty CloudWatch integration URL)"
  type        = list(string)
  default     = []
}

variable "warning_emails" {
  description = "Addresses notified by warning alarms"
  type        = list(string)
  default     = []
}
