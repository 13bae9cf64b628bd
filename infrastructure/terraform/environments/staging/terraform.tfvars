# The staging environment. Names that must be globally unique (buckets) are examples: change them.
environment           = "staging"
region                = "us-east-1"
deletion_protection   = true
archive_bucket_name   = "triggers-staging-archive-example"
archive_force_destroy = false

package_bucket = "triggers-artifacts-example"
package_key    = "triggers-api/staging/lambda.zip"

lambda_memory_mb = {
  api        = 1024
  authorizer = 512
  worker     = 512
  archiver   = 512
}

lambda_reserved_concurrency = {
  api        = 100
  authorizer = 50
  worker     = 50
  archiver   = 5
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

log_retention_days = 30
log_level          = "INFO"
metrics_namespace  = "TriggersApi/staging"

api_throttle_rate_limit  = 1000
api_throttle_burst_limit = 2000
api_monthly_quota        = 300000000

alarm_critical_endpoints = []
alarm_warning_emails     = []
