# The production environment. Names that must be globally unique (buckets, the dashboard's domain and
# certificate) are examples: change them.
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

# Releases (CodeDeploy, docs/deploy-aws.md "Releases"): section 13.1: 5 % for 10 minutes, then 100 %.
canary_percentage       = 5
canary_interval_minutes = 10

log_retention_days = 90
log_level          = "INFO"
metrics_namespace  = "TriggersApi/production"

api_throttle_rate_limit  = 12000
api_throttle_burst_limit = 5000
api_monthly_quota        = 30000000000

alarm_critical_endpoints = []
alarm_warning_emails     = []

# The dashboard's own REST API, at the root of its own domain (a certificate in ACM for it, in
# `region`, issued before apply; point the name at the dashboard_dns_target output afterwards).
dashboard_domain_name          = "console.triggers.example.com"
dashboard_certificate_arn      = "arn:aws:acm:us-east-1:123456789012:certificate/00000000-0000-0000-0000-000000000000"
dashboard_throttle_rate_limit  = 200
dashboard_throttle_burst_limit = 400
