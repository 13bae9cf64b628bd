# One environment of the AWS deployment (docs/deploy-aws.md): the modules of section 11, wired.
terraform {
  required_version = ">= 1.10" # S3 state locking with use_lockfile

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.80"
    }
  }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = {
      Project     = "triggers-api"
      Environment = var.environment
      ManagedBy   = "terraform"
    }
  }
}

locals {
  name_prefix = "triggers-${var.environment}"
}

module "dynamodb" {
  source              = "../../modules/dynamodb"
  name_prefix         = local.name_prefix
  deletion_protection = var.deletion_protection
}

module "sqs" {
  source      = "../../modules/sqs"
  name_prefix = local.name_prefix
}

module "s3" {
  source        = "../../modules/s3"
  bucket_name   = var.archive_bucket_name
  force_destroy = var.archive_force_destroy
}

module "lambda" {
  source                  = "../../modules/lambda"
  name_prefix             = local.name_prefix
  region                  = var.region
  package_bucket          = var.package_bucket
  package_key             = var.package_key
  memory_mb               = var.lambda_memory_mb
  reserved_concurrency    = var.lambda_reserved_concurrency
  canary_percentage       = var.canary_percentage
  canary_interval_minutes = var.canary_interval_minutes
  rollback_alarm_names    = module.monitoring.rollback_alarm_names
  rollback_alarm_arns     = module.monitoring.rollback_alarm_arns
  log_retention_days      = var.log_retention_days
  log_level               = var.log_level
  metrics_namespace       = var.metrics_namespace
  table_arns              = module.dynamodb.table_arns
  events_stream_arn       = module.dynamodb.events_stream_arn
  delivery_queue_arn      = module.sqs.delivery_queue_arn
  archive_bucket_arn      = module.s3.bucket_arn
  archive_url             = module.s3.archive_url
}

module "api_gateway" {
  source                   = "../../modules/api-gateway"
  name_prefix              = local.name_prefix
  stage_name               = var.environment
  api_function_name        = module.lambda.function_names["api"]
  api_invoke_arn           = module.lambda.live_alias_invoke_arns["api"]
  authorizer_function_name = module.lambda.function_names["authorizer"]
  authorizer_invoke_arn    = module.lambda.live_alias_invoke_arns["authorizer"]
  alias_name               = module.lambda.live_alias_names
  throttle_rate_limit      = var.api_throttle_rate_limit
  throttle_burst_limit     = var.api_throttle_burst_limit
  monthly_quota            = var.api_monthly_quota
  log_retention_days       = var.log_retention_days

  dashboard_domain_name          = var.dashboard_domain_name
  dashboard_certificate_arn      = var.dashboard_certificate_arn
  dashboard_throttle_rate_limit  = var.dashboard_throttle_rate_limit
  dashboard_throttle_burst_limit = var.dashboard_throttle_burst_limit
}

module "monitoring" {
  source              = "../../modules/monitoring"
  name_prefix         = local.name_prefix
  region              = var.region
  api_name            = module.api_gateway.rest_api_name
  api_stage           = module.api_gateway.stage_name
  function_names      = module.lambda.function_names
  table_names         = module.dynamodb.table_names
  delivery_queue_name = module.sqs.delivery_queue_name
  dlq_name            = module.sqs.dlq_name
  metrics_namespace   = var.metrics_namespace
  critical_endpoints  = var.alarm_critical_endpoints
  warning_emails      = var.alarm_warning_emails
}
