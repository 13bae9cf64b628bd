variable "name_prefix" {
  description = "Names are <name_prefix>-events, <name_prefix>-api-keys, ... (TRIGGERS_DATABASE_URL=dynamodb://<name_prefix>)"
  type        = string
}

variable "deletion_protection" {
  description = "Refuse `terraform destroy` of the tables (on in production)"
  type        = bool
  default     = true
}
