# The staging environment. Names that must be globally unique (buckets, the dashboard's domain and
# certificate) are examples: change them.
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

# Releases (CodeDeploy, docs/deploy-aws.md "Releases"): staging: 10 % for 5 minutes.
canary_percentage       = 10
canary_interval_minutes = 5

log_retention_days = 30
log_level          = "INFO"
metrics_namespace  = "TriggersApi/staging"

api_throttle_rate_limit  = 1000
api_throttle_burst_limit = 2000
api_monthly_quota        = 300000000

alarm_critical_endpoints = []
alarm_warning_emails     = []

# The dashboard's own REST API, at the root of its own domain (a certificate in ACM for it, in
# `region`, issued before apply; point the name at the dashboard_dns_target output afterwards).
dashboard_domain_name          = "console.triggers-staging.example.com"
dashboard_certificate_arn      = "arn:aws:acm:us-east-1:123456789012:certificate/00000000-0000-0000-0000-000000000000"
dashboard_throttle_rate_limit  = 50
dashboard_throttle_burst_limit = 100
