# The dev environment. Names that must be globally unique (buckets) are examples: change them.
environment           = "dev"
region                = "us-east-1"
deletion_protection   = false
archive_bucket_name   = "triggers-dev-archive-example"
archive_force_destroy = true

package_bucket = "triggers-artifacts-example"
package_key    = "triggers-api/dev/lambda.zip"

lambda_memory_mb = {
  api        = 1024
  authorizer = 512
  worker     = 512
  archiver   = 512
}

lambda_reserved_concurrency = {
  api        = 20
  authorizer = 10
  worker     = 10
  archiver   = 2
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

log_retention_days = 14
log_level          = "DEBUG"
metrics_namespace  = "TriggersApi/dev"

api_throttle_rate_limit  = 100
api_throttle_burst_limit = 200
api_monthly_quota        = 10000000

alarm_critical_endpoints = []
alarm_warning_emails     = []
