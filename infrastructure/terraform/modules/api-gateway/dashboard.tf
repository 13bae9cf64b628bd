# The dashboard's REST API. The browser authenticates with the session cookie, never X-API-Key, and
# the main API's REQUEST authorizer (identity source: the X-API-Key header) refuses such a request
# before it runs. So the dashboard gets its own API whose routes have no authorizer: every path goes
# to the same API function (the `live` alias), which authenticates each request itself, as under
# `triggers-api serve` (no authorizer context: the session cookie, CSRF-checked, or an X-API-Key
# looked up by hash). Lower throttling than the API: a console, not an ingestion path.
#
# It is served at the root of its own domain: the built app requests /dashboard/assets/... and
# /v1/... by absolute path, and the session cookies are scoped to / and /v1/auth, so the stage
# prefix of an execute-api URL (https://<id>.execute-api.<region>.amazonaws.com/<stage>/...) would
# break both. The execute-api endpoint is disabled; the custom domain is the only way in.

resource "aws_api_gateway_rest_api" "dashboard" {
  name                         = "${var.name_prefix}-dashboard"
  description                  = "Triggers API dashboard (session cookies; the API function authenticates)"
  disable_execute_api_endpoint = true

  endpoint_configuration {
    types = ["REGIONAL"]
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_api_gateway_request_validator" "dashboard" {
  name                        = "parameters"
  rest_api_id                 = aws_api_gateway_rest_api.dashboard.id
  validate_request_body       = false
  validate_request_parameters = true
}

# /{proxy+}: /dashboard/* (the static app), /v1/auth/* (login, refresh, logout) and the /v1 routes
# the app calls with the cookie. Nothing to route separately: the app answers 401 without a session.
resource "aws_api_gateway_resource" "dashboard_proxy" {
  rest_api_id = aws_api_gateway_rest_api.dashboard.id
  parent_id   = aws_api_gateway_rest_api.dashboard.root_resource_id
  path_part   = "{proxy+}"
}

resource "aws_api_gateway_method" "dashboard_proxy" {
  rest_api_id          = aws_api_gateway_rest_api.dashboard.id
  resource_id          = aws_api_gateway_resource.dashboard_proxy.id
  http_method          = "ANY"
  authorization        = "NONE"
  request_validator_id = aws_api_gateway_request_validator.dashboard.id
}

resource "aws_api_gateway_integration" "dashboard_proxy" {
  rest_api_id             = aws_api_gateway_rest_api.dashboard.id
  resource_id             = aws_api_gateway_resource.dashboard_proxy.id
  http_method             = aws_api_gateway_method.dashboard_proxy.http_method
  type                    = "AWS_PROXY"
  integration_http_method = "POST"
  uri                     = var.api_invoke_arn
  timeout_milliseconds    = 29000
}

resource "aws_api_gateway_gateway_response" "dashboard_errors" {
  for_each      = local.gateway_errors
  rest_api_id   = aws_api_gateway_rest_api.dashboard.id
  response_type = each.key
  status_code   = each.value.status

  response_templates = {
    "application/json" = replace(replace(local.error_body, "$${code}", each.value.code), "$${message}", each.value.message)
  }
}

resource "aws_api_gateway_deployment" "dashboard" {
  rest_api_id = aws_api_gateway_rest_api.dashboard.id

  triggers = {
    redeployment = sha1(jsonencode([
      aws_api_gateway_resource.dashboard_proxy.id,
      aws_api_gateway_method.dashboard_proxy.id,
      aws_api_gateway_integration.dashboard_proxy.id,
      [for k, r in aws_api_gateway_gateway_response.dashboard_errors : r.id],
    ]))
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_cloudwatch_log_group" "dashboard_access" {
  name              = "/aws/apigateway/${var.name_prefix}-dashboard/${var.stage_name}"
  retention_in_days = var.log_retention_days
}

resource "aws_api_gateway_stage" "dashboard" {
  rest_api_id          = aws_api_gateway_rest_api.dashboard.id
  deployment_id        = aws_api_gateway_deployment.dashboard.id
  stage_name           = var.stage_name
  xray_tracing_enabled = true

  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.dashboard_access.arn
    format = jsonencode({
      requestId     = "$context.requestId"
      ip            = "$context.identity.sourceIp"
      method        = "$context.httpMethod"
      path          = "$context.path"
      status        = "$context.status"
      latencyMs     = "$context.responseLatency"
      integrationMs = "$context.integration.latency"
    })
  }
}

resource "aws_api_gateway_method_settings" "dashboard" {
  rest_api_id = aws_api_gateway_rest_api.dashboard.id
  stage_name  = aws_api_gateway_stage.dashboard.stage_name
  method_path = "*/*"

  settings {
    metrics_enabled        = true
    logging_level          = "ERROR"
    data_trace_enabled     = false
    throttling_rate_limit  = var.dashboard_throttle_rate_limit
    throttling_burst_limit = var.dashboard_throttle_burst_limit
  }
}

# -- the domain: https://<dashboard_domain_name>/dashboard/ -------------------------------------------
# The certificate (ACM, same region, covering the name) and the DNS record (an alias or CNAME to
# dashboard_domain_target) are the operator's: docs/deploy-aws.md, "The dashboard".
resource "aws_api_gateway_domain_name" "dashboard" {
  domain_name              = var.dashboard_domain_name
  regional_certificate_arn = var.dashboard_certificate_arn
  security_policy          = "TLS_1_2"

  endpoint_configuration {
    types = ["REGIONAL"]
  }
}

# No base_path: the stage answers at the domain's root.
resource "aws_api_gateway_base_path_mapping" "dashboard" {
  api_id      = aws_api_gateway_rest_api.dashboard.id
  stage_name  = aws_api_gateway_stage.dashboard.stage_name
  domain_name = aws_api_gateway_domain_name.dashboard.domain_name
}

resource "aws_lambda_permission" "dashboard" {
  statement_id  = "AllowDashboardApiInvoke"
  action        = "lambda:InvokeFunction"
  function_name = var.api_function_name
  qualifier     = var.alias_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_api_gateway_rest_api.dashboard.execution_arn}/*/*"
}
