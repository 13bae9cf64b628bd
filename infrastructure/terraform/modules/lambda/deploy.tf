# Releases (section 13.1): CodeDeploy shifts each function's `live` alias from the version it serves
# to the one Terraform just published, canary_percentage of the traffic for canary_interval_minutes,
# then all of it, and shifts it back when one of the function's rollback alarms fires or the
# deployment fails. docs/deploy-aws.md, "Releases", has the steps.
#
# CodeDeploy's canary has one step: section 13.1's "5 % for 10 min, 25 % for 30 min, 100 %" becomes
# "5 % for 10 min, 100 %" (a Lambda deployment config cannot hold a second step).

resource "aws_codedeploy_app" "functions" {
  name             = "${var.name_prefix}-functions"
  compute_platform = "Lambda"
}

resource "aws_codedeploy_deployment_config" "canary" {
  deployment_config_name = "${var.name_prefix}-canary-${var.canary_percentage}pct-${var.canary_interval_minutes}min"
  compute_platform       = "Lambda"

  traffic_routing_config {
    type = "TimeBasedCanary"

    time_based_canary {
      percentage = var.canary_percentage
      interval   = var.canary_interval_minutes
    }
  }

  lifecycle {
    create_before_destroy = true # the name changes with the numbers; groups move to the new one first
  }
}

# -- CodeDeploy's role: read the alarms it watches, move the four `live` aliases; nothing else ------
# (AWS's managed AWSCodeDeployRoleForLambda grants the same actions on every resource, plus S3 reads
# and sns:Publish: the AppSpec is sent inline and no deployment trigger is configured, so neither
# is needed here.)
data "aws_iam_policy_document" "codedeploy_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["codedeploy.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "codedeploy" {
  name               = "${var.name_prefix}-codedeploy"
  assume_role_policy = data.aws_iam_policy_document.codedeploy_assume.json
}

data "aws_iam_policy_document" "codedeploy" {
  statement {
    sid       = "RollbackAlarms"
    actions   = ["cloudwatch:DescribeAlarms"]
    resources = var.rollback_alarm_arns
  }

  # Alias actions are authorised on the function's ARN or the alias's; both are named, no wildcard.
  statement {
    sid     = "ShiftLiveAliases"
    actions = ["lambda:GetAlias", "lambda:UpdateAlias", "lambda:GetProvisionedConcurrencyConfig"]
    resources = concat(
      [for f in aws_lambda_function.function : f.arn],
      [for a in aws_lambda_alias.live : a.arn],
    )
  }
}

resource "aws_iam_role_policy" "codedeploy" {
  name   = "shift-live-aliases"
  role   = aws_iam_role.codedeploy.id
  policy = data.aws_iam_policy_document.codedeploy.json
}

# -- one deployment group per function: its own alarms decide its rollback --------------------------
resource "aws_codedeploy_deployment_group" "function" {
  for_each               = local.functions
  app_name               = aws_codedeploy_app.functions.name
  deployment_group_name  = each.key
  service_role_arn       = aws_iam_role.codedeploy.arn
  deployment_config_name = aws_codedeploy_deployment_config.canary.deployment_config_name

  deployment_style {
    deployment_type   = "BLUE_GREEN"
    deployment_option = "WITH_TRAFFIC_CONTROL"
  }

  alarm_configuration {
    enabled                   = true
    alarms                    = var.rollback_alarm_names[each.key]
    ignore_poll_alarm_failure = false # an alarm CodeDeploy cannot read stops the release
  }

  auto_rollback_configuration {
    enabled = true
    events  = ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM"]
  }

  depends_on = [aws_iam_role_policy.codedeploy]
}
