variable "bucket_name" {
  description = "The archive bucket (TRIGGERS_ARCHIVE_URL=s3://<bucket_name>/<archive_prefix>)"
  type        = string
}

variable "archive_prefix" {
  description = "Key prefix of the archive: <prefix>/user=<id>/date=<YYYY-MM-DD>/<file>.jsonl.gz"
  type        = string
  default     = "events"
}

variable "infrequent_access_after_days" {
  description = "Archives move to STANDARD_IA after this many days (30 is S3's minimum)"
  type        = number
  default     = 30
}

variable "glacier_after_days" {
  description = "Archives move to GLACIER (Flexible Retrieval) after this many days"
  type        = number
  default     = 90
}

variable "expire_after_days" {
  description = "Archives are deleted after this many days (2557 = 7 years, the audit retention)"
  type        = number
  default     = 2557
}

variable "force_destroy" {
  description = "Let `terraform destroy` delete a non-empty bucket (dev only)"
  type        = bool
  default     = false
}
