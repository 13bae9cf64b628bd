# The production environment. Names that must be globally unique (buckets) are examples: change them.
environment           = "production"
region                = "us-east-1"
deletion_protection   = true
archive_bucket_name   = "triggers-production-archive-example"
archive_force_destroy = false

package_bucket = "triggers-artifacts-example"
package_key    = "triggers-api/production/lambda.zip"

lambda_memory_mb = {
  api        = 1769
  authorizer = 512
  worker     = 512
  archiver   = 512
}

lambda_reserved_concurrency = {
  api        = 700
  authorizer = 200
  worker     = 300
  archiver   = 20
}

# A canary (section 13.1): pin the serving versions here, publish the new code, then set
# canary_weight to 0.05 (10 min), 0.25 (30 min), and finally clear the pins and the weight.
lambda_stable_versions = {
  api        = ""
  authorizer = ""
  worker     = ""
  archiver   = ""
}
canary_weight = 0

log_retention_days = 90
log_level          = "INFO"
metrics_namespace  = "TriggersApi/production"

api_throttle_rate_limit  = 12000
api_throttle_burst_limit = 5000
api_monthly_quota        = 30000000000

alarm_critical_endpoints = []
alarm_warning_emails     = []
