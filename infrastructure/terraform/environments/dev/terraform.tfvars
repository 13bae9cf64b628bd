# The dev environment. Names that must be globally unique (buckets, the dashboard's domain and
# certificate) are examples: change them.
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

# Releases (CodeDeploy, docs/deploy-aws.md "Releases"): dev: half, then all, after a minute (releases are quick; the alarms still watch).
canary_percentage       = 50
canary_interval_minutes = 1

log_retention_days = 14
log_level          = "DEBUG"
metrics_namespace  = "TriggersApi/dev"

api_throttle_rate_limit  = 100
api_throttle_burst_limit = 200
api_monthly_quota        = 10000000

alarm_critical_endpoints = []
alarm_warning_emails     = []

# The dashboard's own REST API, at the root of its own domain (a certificate in ACM for it, in
# `region`, issued before apply; point the name at the dashboard_dns_target output afterwards).
dashboard_domain_name          = "console.triggers-dev.example.com"
dashboard_certificate_arn      = "arn:aws:acm:us-east-1:123456789012:certificate/00000000-0000-0000-0000-000000000000"
dashboard_throttle_rate_limit  = 10
dashboard_throttle_burst_limit = 20
