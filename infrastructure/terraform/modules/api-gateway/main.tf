# API Gateway REST (section 1.4): every route goes to the API function through the REQUEST
# authorizer (X-API-Key, decisions cached 5 minutes per key), except the health check. The dashboard
# (cookies, no X-API-Key) has a REST API of its own on its own domain: dashboard.tf.

locals {
  error_body = "{\"error\":{\"code\":\"$${code}\",\"message\":\"$${message}\",\"details\":{},\"timestamp\":\"$context.requestTime\",\"request_id\":\"$context.requestId\"}}"
  gateway_errors = {
    UNAUTHORIZED  = { code = "UNAUTHORIZED", message = "Missing or invalid credentials", status = "401" }
    ACCESS_DENIED = { code = "UNAUTHORIZED", message = "Missing or invalid credentials", status = "401" }
    THROTTLED     = { code = "RATE_LIMIT_EXCEEDED", message = "Rate limit exceeded", status = "429" }
    DEFAULT_5XX   = { code = "SERVICE_UNAVAILABLE", message = "The service is temporarily unavailable", status = "503" }
  }
}

resource "aws_api_gateway_rest_api" "api" {
  name        = "${var.name_prefix}-api"
  description = "Triggers API"

  endpoint_configuration {
    types = ["REGIONAL"]
  }

  lifecycle {
    create_before_destroy = true
  }
}

# Required headers and query strings are checked before the function runs; bodies are validated
# by the app itself (Pydantic, the API's error shape), which a proxy integration cannot describe.
resource "aws_api_gateway_request_validator" "parameters" {
  name                        = "parameters"
  rest_api_id                 = aws_api_gateway_rest_api.api.id
  validate_request_body       = false
  validate_request_parameters = true
}

resource "aws_api_gateway_authorizer" "api_key" {
  name                             = "api-key"
  rest_api_id                      = aws_api_gateway_rest_api.api.id
  type                             = "REQUEST"
  authorizer_uri                   = var.authorizer_invoke_arn
  identity_source                  = "method.request.header.X-API-Key"
  authorizer_result_ttl_in_seconds = var.authorizer_cache_seconds
}

# -- /{proxy+}: everything, through the authorizer ------------------------------------------------
resource "aws_api_gateway_resource" "proxy" {
  rest_api_id = aws_api_gateway_rest_api.api.id
  parent_id   = aws_api_gateway_rest_api.api.root_resource_id
  path_part   = "{proxy+}"
}

resource "aws_api_gateway_method" "proxy" {
  rest_api_id          = aws_api_gateway_rest_api.api.id
  resource_id          = aws_api_gateway_resource.proxy.id
  http_method          = "ANY"
  authorization        = "CUSTOM"
  authorizer_id        = aws_api_gateway_authorizer.api_key.id
  request_validator_id = aws_api_gateway_request_validator.parameters.id
}

resource "aws_api_gateway_integration" "proxy" {
  rest_api_id             = aws_api_gateway_rest_api.api.id
  resource_id             = aws_api_gateway_resource.proxy.id
  http_method             = aws_api_gateway_method.proxy.http_method
  type                    = "AWS_PROXY"
  integration_http_method = "POST"
  uri                     = var.api_invoke_arn
  timeout_milliseconds    = 29000
}

# -- GET /v1/health without a key (load balancers, uptime checks); the app answers it --------------
resource "aws_api_gateway_resource" "v1" {
  rest_api_id = aws_api_gateway_rest_api.api.id
  parent_id   = aws_api_gateway_rest_api.api.root_resource_id
  path_part   = "v1"
}

resource "aws_api_gateway_resource" "health" {
  rest_api_id = aws_api_gateway_rest_api.api.id
  parent_id   = aws_api_gateway_resource.v1.id
  path_part   = "health"
}

resource "aws_api_gateway_method" "health" {
  rest_api_id          = aws_api_gateway_rest_api.api.id
  resource_id          = aws_api_gateway_resource.health.id
  http_method          = "GET"
  authorization        = "NONE"
  request_validator_id = aws_api_gateway_request_validator.parameters.id
}

resource "aws_api_gateway_integration" "health" {
  rest_api_id             = aws_api_gateway_rest_api.api.id
  resource_id             = aws_api_gateway_resource.health.id
  http_method             = aws_api_gateway_method.health.http_method
  type                    = "AWS_PROXY"
  integration_http_method = "POST"
  uri                     = var.api_invoke_arn
  timeout_milliseconds    = 29000
}

# /v1/{proxy+}: the same authorized route under the static /v1 resource the health check needs, so
# no /v1 path depends on REST routing falling back from a static resource to the root's {proxy+}.
resource "aws_api_gateway_resource" "v1_proxy" {
  rest_api_id = aws_api_gateway_rest_api.api.id
  parent_id   = aws_api_gateway_resource.v1.id
  path_part   = "{proxy+}"
}

resource "aws_api_gateway_method" "v1_proxy" {
  rest_api_id          = aws_api_gateway_rest_api.api.id
  resource_id          = aws_api_gateway_resource.v1_proxy.id
  http_method          = "ANY"
  authorization        = "CUSTOM"
  authorizer_id        = aws_api_gateway_authorizer.api_key.id
  request_validator_id = aws_api_gateway_request_validator.parameters.id
}

resource "aws_api_gateway_integration" "v1_proxy" {
  rest_api_id             = aws_api_gateway_rest_api.api.id
  resource_id             = aws_api_gateway_resource.v1_proxy.id
  http_method             = aws_api_gateway_method.v1_proxy.http_method
  type                    = "AWS_PROXY"
  integration_http_method = "POST"
  uri                     = var.api_invoke_arn
  timeout_milliseconds    = 29000
}

# The API Gateway's own refusals answer in the API's error shape (section 17.2).
resource "aws_api_gateway_gateway_response" "errors" {
  for_each      = local.gateway_errors
  rest_api_id   = aws_api_gateway_rest_api.api.id
  response_type = each.key
  status_code   = each.value.status

  response_templates = {
    "application/json" = replace(replace(local.error_body, "$${code}", each.value.code), "$${message}", each.value.message)
  }
}

# -- deployment, stage, logs, throttling ------------------------------------------------------------
resource "aws_api_gateway_deployment" "api" {
  rest_api_id = aws_api_gateway_rest_api.api.id

  triggers = {
    redeployment = sha1(jsonencode([
      aws_api_gateway_resource.proxy.id,
      aws_api_gateway_method.proxy.id,
      aws_api_gateway_integration.proxy.id,
      aws_api_gateway_authorizer.api_key.id,
      aws_api_gateway_method.health.id,
      aws_api_gateway_integration.health.id,
      aws_api_gateway_method.v1_proxy.id,
      aws_api_gateway_integration.v1_proxy.id,
      [for k, r in aws_api_gateway_gateway_response.errors : r.id],
    ]))
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_cloudwatch_log_group" "access" {
  name              = "/aws/apigateway/${var.name_prefix}-api/${var.stage_name}"
  retention_in_days = var.log_retention_days
}

resource "aws_api_gateway_stage" "api" {
  rest_api_id          = aws_api_gateway_rest_api.api.id
  deployment_id        = aws_api_gateway_deployment.api.id
  stage_name           = var.stage_name
  xray_tracing_enabled = true

  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.access.arn
    format = jsonencode({
      requestId     = "$context.requestId"
      ip            = "$context.identity.sourceIp"
      method        = "$context.httpMethod"
      path          = "$context.path"
      status        = "$context.status"
      latencyMs     = "$context.responseLatency"
      authorizer    = "$context.authorizer.status"
      authorizerMs  = "$context.authorizer.latency"
      integrationMs = "$context.integration.latency"
      userId        = "$context.authorizer.user_id"
    })
  }
}

resource "aws_api_gateway_method_settings" "all" {
  rest_api_id = aws_api_gateway_rest_api.api.id
  stage_name  = aws_api_gateway_stage.api.stage_name
  method_path = "*/*"

  settings {
    metrics_enabled        = true
    logging_level          = "ERROR"
    data_trace_enabled     = false
    throttling_rate_limit  = var.throttle_rate_limit
    throttling_burst_limit = var.throttle_burst_limit
  }
}

# The stage-wide guard is the method settings' throttling above: it applies to every request. A
# usage plan meters API Gateway API keys only, and none is attached (api_key_source stays HEADER,
# no method requires one), so this plan limits nobody today; per-key limits are the app's DynamoDB
# counters (section 14.1). docs/deploy-aws.md, "Per-key limits", says why and what attaching keys
# would take.
resource "aws_api_gateway_usage_plan" "default" {
  name        = "${var.name_prefix}-default"
  description = "No API keys attached: meters nobody. Stage throttling is the guard; per-key limits are DynamoDB counters"

  api_stages {
    api_id = aws_api_gateway_rest_api.api.id
    stage  = aws_api_gateway_stage.api.stage_name
  }

  throttle_settings {
    rate_limit  = var.throttle_rate_limit
    burst_limit = var.throttle_burst_limit
  }

  quota_settings {
    limit  = var.monthly_quota
    period = "MONTH"
  }
}

# -- invoke permissions (on the `live` aliases, from this API only) ---------------------------------
resource "aws_lambda_permission" "api" {
  statement_id  = "AllowApiGatewayInvoke"
  action        = "lambda:InvokeFunction"
  function_name = var.api_function_name
  qualifier     = var.alias_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_api_gateway_rest_api.api.execution_arn}/*/*"
}

resource "aws_lambda_permission" "authorizer" {
  statement_id  = "AllowApiGatewayAuthorizer"
  action        = "lambda:InvokeFunction"
  function_name = var.authorizer_function_name
  qualifier     = var.alias_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_api_gateway_rest_api.api.execution_arn}/authorizers/${aws_api_gateway_authorizer.api_key.id}"
}
