"""infrastructure/terraform, checked offline: every file parses (python-hcl2), every module input is
declared and supplied, every reference resolves, the tables and queues are exactly schema.py's, the
pieces issue 9 names are there (handlers, authorizer cache, alarms, append-only audit), and checkov
passes with only the committed, justified skips."""

from __future__ import annotations

import json
import os
import re
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from triggers_api.config import Settings
from triggers_api.dashboard.session import REFRESH_PATH
from triggers_api.storage.dynamodb import schema

ROOT = Path(__file__).resolve().parents[2]
TERRAFORM = ROOT / "infrastructure" / "terraform"
MODULES = TERRAFORM / "modules"
ENVIRONMENTS = TERRAFORM / "environments"
MODULE_NAMES = {"api-gateway", "lambda", "dynamodb", "sqs", "s3", "monitoring"}
ENVIRONMENT_NAMES = {"dev", "staging", "production"}
META_ARGUMENTS = {"source", "version", "providers", "depends_on", "count", "for_each"}
SKIPS_FILE = TERRAFORM / "checkov-skips.yaml"


@cache
def _load(path: Path) -> dict[str, Any]:
    import hcl2
    from hcl2 import SerializationOptions

    options = SerializationOptions(strip_string_quotes=True, explicit_blocks=False, with_comments=False)
    with path.open() as f:
        return dict(hcl2.load(f, serialization_options=options))


@cache
def _directory(path: Path) -> dict[str, list[Any]]:
    """Every .tf file of a directory, parsed, top-level blocks concatenated by kind."""
    merged: dict[str, list[Any]] = {}
    for file in sorted(path.glob("*.tf")):
        for kind, blocks in _load(file.resolve()).items():
            merged.setdefault(kind, []).extend(blocks if isinstance(blocks, list) else [blocks])
    return merged


def _named(blocks: list[dict[str, Any]]) -> dict[str, Any]:
    """[{name: body}, ...] -> {name: body}."""
    out: dict[str, Any] = {}
    for block in blocks:
        out.update(block)
    return out


def _variables(path: Path) -> dict[str, dict[str, Any]]:
    return _named(_directory(path).get("variable", []))


def _outputs(path: Path) -> set[str]:
    return set(_named(_directory(path).get("output", [])))


def _resources(path: Path, kind: str) -> dict[str, dict[str, Any]]:
    return {
        name: body
        for block in _directory(path).get("resource", [])
        for name, body in block.get(kind, {}).items()
    }


def _text(path: Path) -> str:
    """The directory's Terraform without comments (references are looked for in code only)."""
    return "\n".join(re.sub(r"(?m)^\s*#.*$|\s#\s.*$", "", f.read_text()) for f in sorted(path.glob("*.tf")))


def test_the_layout_is_section_11s() -> None:
    assert {p.name for p in MODULES.iterdir() if p.is_dir()} == MODULE_NAMES
    assert {p.name for p in ENVIRONMENTS.iterdir() if p.is_dir()} == ENVIRONMENT_NAMES
    for module in MODULE_NAMES:
        assert {"main.tf", "variables.tf", "outputs.tf"} <= {p.name for p in (MODULES / module).iterdir()}
    for environment in ENVIRONMENT_NAMES:
        files = {p.name for p in (ENVIRONMENTS / environment).iterdir()}
        assert {"main.tf", "variables.tf", "terraform.tfvars", "backend.tf"} <= files


def test_every_file_parses() -> None:
    files = sorted(TERRAFORM.rglob("*.tf")) + sorted(TERRAFORM.rglob("*.tfvars"))
    assert len(files) >= 6 * 3 + 3 * 5
    for file in files:
        assert _load(file), f"{file} parsed to nothing"


def test_each_environment_keeps_its_state_remotely_in_its_own_locked_key() -> None:
    for environment in ENVIRONMENT_NAMES:
        (terraform,) = _load(ENVIRONMENTS / environment / "backend.tf")["terraform"]
        (backend,) = terraform["backend"]
        s3 = backend["s3"]
        assert s3["key"] == f"triggers-api/{environment}/terraform.tfstate"
        assert s3["encrypt"] is True and s3["use_lockfile"] is True and s3["bucket"]


def test_every_module_input_is_declared_and_every_required_one_supplied() -> None:
    for environment in ENVIRONMENT_NAMES:
        calls = _named(_directory(ENVIRONMENTS / environment)["module"])
        assert {Path(c["source"]).name for c in calls.values()} == MODULE_NAMES
        for call_name, call in calls.items():
            module_dir = (ENVIRONMENTS / environment / call["source"]).resolve()
            declared = _variables(module_dir)
            supplied = set(call) - META_ARGUMENTS
            assert supplied <= set(declared), (
                f"{environment}/{call_name}: undeclared {supplied - set(declared)}"
            )
            required = {name for name, v in declared.items() if "default" not in v}
            assert required <= supplied, f"{environment}/{call_name}: missing {required - supplied}"


def test_every_environment_variable_has_a_value_and_every_value_a_variable() -> None:
    for environment in ENVIRONMENT_NAMES:
        declared = _variables(ENVIRONMENTS / environment)
        values = _load(ENVIRONMENTS / environment / "terraform.tfvars")
        required = {name for name, v in declared.items() if "default" not in v}
        assert required <= set(values), f"{environment}: no value for {required - set(values)}"
        assert set(values) <= set(declared), f"{environment}: undeclared {set(values) - set(declared)}"
        assert values["environment"] == environment
    names = [set(_load(ENVIRONMENTS / e / "terraform.tfvars")) for e in sorted(ENVIRONMENT_NAMES)]
    assert names[0] == names[1] == names[2]  # the environments differ in values only


def test_every_reference_resolves() -> None:
    for directory in [MODULES / m for m in MODULE_NAMES] + [ENVIRONMENTS / e for e in ENVIRONMENT_NAMES]:
        text = _text(directory)
        variables = set(_variables(directory))
        used = set(re.findall(r"\bvar\.([A-Za-z_][\w-]*)", text))
        assert used <= variables, f"{directory.name}: undeclared variables {used - variables}"
        assert variables <= used, f"{directory.name}: unused variables {variables - used}"
        locals_ = {k for block in _directory(directory).get("locals", []) for k in block}
        used_locals = set(re.findall(r"\blocal\.([A-Za-z_]\w*)", text))
        assert used_locals <= locals_, f"{directory.name}: undefined locals {used_locals - locals_}"
        if directory.parent == ENVIRONMENTS:
            calls = _named(_directory(directory)["module"])
            for name, output in re.findall(r"\bmodule\.([\w-]+)\.(\w+)", text):
                module_dir = (directory / calls[name]["source"]).resolve()
                assert output in _outputs(module_dir), (
                    f"{directory.name}: module.{name}.{output} is not an output"
                )


def test_the_tables_are_exactly_schema_py() -> None:
    tables = _resources(MODULES / "dynamodb", "aws_dynamodb_table")
    assert len(tables) == len(schema.TABLES)
    by_name = {t["name"].removeprefix("${var.name_prefix}-"): t for t in tables.values()}
    assert set(by_name) == {t.suffix for t in schema.TABLES}
    for table in schema.TABLES:
        tf = by_name[table.suffix]
        assert tf["billing_mode"] == "PAY_PER_REQUEST"
        assert tf["hash_key"] == table.partition.name
        assert tf.get("range_key") == (table.sort.name if table.sort else None)
        assert {a["name"]: a["type"] for a in tf["attribute"]} == table.attribute_definitions()
        indexes = {i["name"]: i for i in tf.get("global_secondary_index", [])}
        assert set(indexes) == {i.name for i in table.indexes}, table.suffix
        for index in table.indexes:
            got = indexes[index.name]
            assert got["hash_key"] == index.partition.name
            assert got.get("range_key") == (index.sort.name if index.sort else None)
            assert got["projection_type"] == index.projection
            assert sorted(got.get("non_key_attributes", [])) == sorted(index.include)
        ttl = tf.get("ttl", [{}])[0]
        assert (ttl.get("attribute_name") if ttl.get("enabled") else None) == table.ttl_attribute
        assert (tf.get("stream_view_type") if tf.get("stream_enabled") else None) == table.stream_view
        assert tf["point_in_time_recovery"][0]["enabled"] is table.point_in_time_recovery
        assert tf["server_side_encryption"][0]["enabled"] is True


def test_the_queues_are_exactly_schema_py() -> None:
    queues = _resources(MODULES / "sqs", "aws_sqs_queue")
    by_name = {q["name"].removeprefix("${var.name_prefix}-"): (key, q) for key, q in queues.items()}
    assert set(by_name) == {q.suffix for q in schema.QUEUES}
    for queue in schema.QUEUES:
        _, tf = by_name[queue.suffix]
        assert tf["visibility_timeout_seconds"] == queue.visibility_timeout_s
        assert tf["message_retention_seconds"] == queue.retention_s
        assert tf["receive_wait_time_seconds"] == queue.receive_wait_s
        assert tf["sqs_managed_sse_enabled"] is True
        if queue.dead_letter_suffix is None:
            assert "redrive_policy" not in tf
            continue
        dead_letter_key, _ = by_name[queue.dead_letter_suffix]
        policy = tf["redrive_policy"]
        assert re.search(rf"deadLetterTargetArn\s*=\s*aws_sqs_queue\.{dead_letter_key}\.arn", policy)
        assert int(re.search(r"maxReceiveCount\s*=\s*(\d+)", policy).group(1)) == queue.max_receive_count  # type: ignore[union-attr]


def _lambda_locals() -> dict[str, Any]:
    return {k: v for block in _directory(MODULES / "lambda")["locals"] for k, v in block.items()}


def test_the_four_handlers_of_issue_9_with_xray_aliases_and_the_queue_timeout_rule() -> None:
    functions = _lambda_locals()["functions"]
    assert {name: f["handler"] for name, f in functions.items()} == {
        "api": "triggers_api.aws.lambda_api.handler",
        "authorizer": "triggers_api.aws.lambda_authorizer.handler",
        "worker": "triggers_api.aws.lambda_worker.handler",
        "archiver": "triggers_api.aws.lambda_archiver.handler",
    }
    assert functions["worker"]["timeout"] == schema.WORKER_TIMEOUT_S
    assert schema.DELIVERY.visibility_timeout_s >= 6 * functions["worker"]["timeout"]
    assert functions["api"]["timeout"] <= 29  # API Gateway's integration timeout
    (function,) = _resources(MODULES / "lambda", "aws_lambda_function").values()
    assert function["tracing_config"][0]["mode"] == "Active"
    assert function["publish"] is True
    (alias,) = _resources(MODULES / "lambda", "aws_lambda_alias").values()
    assert alias["name"] == "live"
    mappings = _resources(MODULES / "lambda", "aws_lambda_event_source_mapping")
    assert mappings["worker"]["batch_size"] == 10
    assert mappings["worker"]["function_response_types"] == ["ReportBatchItemFailures"]
    archiver_filter = mappings["archiver"]["filter_criteria"][0]["filter"][0]["pattern"]
    assert "dynamodb.amazonaws.com" in archiver_filter and "REMOVE" in archiver_filter
    assert "live" in mappings["worker"]["function_name"] and "live" in mappings["archiver"]["function_name"]


def test_the_sweep_schedule_sends_what_the_worker_handler_recognises() -> None:
    """lambda_worker.handler runs the sweep for EventBridge's own Scheduled Event (source
    aws.events, no Records): a target with a custom ``input`` would replace that event and the
    sweep would never run (it did, until this test)."""
    (target,) = _resources(MODULES / "lambda", "aws_cloudwatch_event_target").values()
    assert "input" not in target and "input_transformer" not in target
    assert "worker" in target["arn"] and "live" in target["arn"]
    (rule,) = _resources(MODULES / "lambda", "aws_cloudwatch_event_rule").values()
    assert rule["schedule_expression"] == "${var.sweep_schedule}"
    (permission,) = _resources(MODULES / "lambda", "aws_lambda_permission").values()
    assert permission["principal"] == "events.amazonaws.com"


def test_no_function_may_change_or_delete_audit_records() -> None:
    documents = {
        name: body
        for block in _directory(MODULES / "lambda")["data"]
        for name, body in block.get("aws_iam_policy_document", {}).items()
    }
    granted_on_audit: set[str] = set()
    for document in documents.values():
        for statement in document.get("statement", []):
            if any("audit-logs" in str(r) for r in statement.get("resources", [])):
                granted_on_audit |= set(statement["actions"])
    assert granted_on_audit == {"dynamodb:PutItem", "dynamodb:BatchWriteItem", "dynamodb:Query"}
    authorizer = documents["authorizer"]["statement"]
    assert [s["actions"] for s in authorizer] == [["dynamodb:Query"]]  # read one index, nothing else


def test_the_authorizer_is_a_request_authorizer_cached_five_minutes() -> None:
    (authorizer,) = _resources(MODULES / "api-gateway", "aws_api_gateway_authorizer").values()
    assert authorizer["type"] == "REQUEST"
    assert authorizer["identity_source"] == "method.request.header.X-API-Key"
    assert authorizer["authorizer_result_ttl_in_seconds"] == "${var.authorizer_cache_seconds}"
    assert _variables(MODULES / "api-gateway")["authorizer_cache_seconds"]["default"] == 300
    assert _resources(MODULES / "api-gateway", "aws_api_gateway_usage_plan")
    stages = _resources(MODULES / "api-gateway", "aws_api_gateway_stage")
    assert set(stages) == {"api", "dashboard"}
    for stage in stages.values():
        assert stage["xray_tracing_enabled"] is True
        assert stage["access_log_settings"][0]["destination_arn"]


def _api_of(resource: dict[str, Any]) -> str:
    """Which REST API a resource belongs to: ``api`` or ``dashboard``."""
    match = re.fullmatch(r"\$\{aws_api_gateway_rest_api\.(\w+)\.id\}", resource["rest_api_id"])
    assert match, resource["rest_api_id"]
    return match.group(1)


def test_the_main_api_authorizes_every_method_but_the_health_check() -> None:
    methods = _resources(MODULES / "api-gateway", "aws_api_gateway_method")
    main = {name: m for name, m in methods.items() if _api_of(m) == "api"}
    assert main, "the main API has no methods"
    for name, method in main.items():
        if name == "health":
            assert (method["http_method"], method["authorization"]) == ("GET", "NONE")
            continue
        assert method["authorization"] == "CUSTOM", name
        assert method["authorizer_id"] == "${aws_api_gateway_authorizer.api_key.id}", name
    resources = _resources(MODULES / "api-gateway", "aws_api_gateway_resource")
    under_v1 = {
        r["path_part"] for r in resources.values() if r["parent_id"] == "${aws_api_gateway_resource.v1.id}"
    }
    assert under_v1 == {"health", "{proxy+}"}  # no /v1/auth, no /dashboard: those are the dashboard API's
    assert [n for n, m in main.items() if m["authorization"] == "NONE"] == ["health"]


def test_the_dashboard_api_has_no_authorizer_and_reaches_the_same_api_function() -> None:
    """The browser sends the session cookie, never X-API-Key, so the main API's REQUEST authorizer
    (identity source X-API-Key) would refuse it unread: the dashboard's API has no authorizer at
    all, and the API function authenticates the cookie itself (tests/aws/test_lambda_api.py)."""
    api_gateway = MODULES / "api-gateway"
    methods = {
        n: m
        for n, m in _resources(api_gateway, "aws_api_gateway_method").items()
        if _api_of(m) == "dashboard"
    }
    assert methods
    for method in methods.values():
        assert method["authorization"] == "NONE" and "authorizer_id" not in method
    assert all(_api_of(a) == "api" for a in _resources(api_gateway, "aws_api_gateway_authorizer").values())
    (proxy,) = [
        r for r in _resources(api_gateway, "aws_api_gateway_resource").values() if _api_of(r) == "dashboard"
    ]
    assert proxy["path_part"] == "{proxy+}" and "root_resource_id" in proxy["parent_id"]
    integrations = [i for i in _resources(api_gateway, "aws_api_gateway_integration").values()]
    assert {_api_of(i) for i in integrations} == {"api", "dashboard"}
    for integration in integrations:  # both APIs: the API function's `live` alias, proxied whole
        assert (integration["type"], integration["uri"]) == ("AWS_PROXY", "${var.api_invoke_arn}")

    (rest_api,) = [
        a for n, a in _resources(api_gateway, "aws_api_gateway_rest_api").items() if n == "dashboard"
    ]
    # The built app asks for /dashboard/assets/... and /v1/... by absolute path and the refresh
    # cookie's path is /v1/auth: served under a stage prefix, none of them would resolve.
    assert rest_api["disable_execute_api_endpoint"] is True
    (mapping,) = _resources(api_gateway, "aws_api_gateway_base_path_mapping").values()
    assert "base_path" not in mapping and mapping["api_id"] == "${aws_api_gateway_rest_api.dashboard.id}"
    assert REFRESH_PATH == "/v1/auth"
    (domain,) = _resources(api_gateway, "aws_api_gateway_domain_name").values()
    assert domain["security_policy"] == "TLS_1_2"

    settings = {
        s["stage_name"]: s["settings"][0]
        for s in _resources(api_gateway, "aws_api_gateway_method_settings").values()
    }
    dashboard = settings["${aws_api_gateway_stage.dashboard.stage_name}"]
    assert dashboard["throttling_rate_limit"] == "${var.dashboard_throttle_rate_limit}"
    assert dashboard["throttling_burst_limit"] == "${var.dashboard_throttle_burst_limit}"
    assert dashboard["metrics_enabled"] is True and dashboard["data_trace_enabled"] is False
    for environment in ENVIRONMENT_NAMES:
        values = _load(ENVIRONMENTS / environment / "terraform.tfvars")
        assert 0 < values["dashboard_throttle_rate_limit"] < values["api_throttle_rate_limit"]
        assert "dashboard_url" in _outputs(ENVIRONMENTS / environment)

    permissions = _resources(api_gateway, "aws_lambda_permission")
    assert permissions["dashboard"]["qualifier"] == "${var.alias_name}"
    assert permissions["dashboard"]["source_arn"].startswith(
        "${aws_api_gateway_rest_api.dashboard.execution_arn}"
    )


def test_every_api_container_signs_sessions_with_the_same_secret() -> None:
    """A cookie signed by one API container must verify in the next: the API function gets one
    generated TRIGGERS_SESSION_SECRET (unset, each container would make its own)."""

    assert (
        Settings.model_config.get("env_prefix") == "TRIGGERS_" and "session_secret" in Settings.model_fields
    )
    (function,) = _resources(MODULES / "lambda", "aws_lambda_function").values()
    variables = function["environment"][0]["variables"]
    assert re.search(
        r'each\.key == "api" \? tomap\(\{TRIGGERS_SESSION_SECRET = terraform_data\.session_secret\.output\}\)',
        variables,
    )
    (secret,) = _resources(MODULES / "lambda", "terraform_data").values()
    assert secret["input"].count("uuid()") == 2 and "sensitive(" in secret["input"]
    # drawn once: without this, every plan would draw again and log every dashboard user out
    assert secret["lifecycle"][0]["ignore_changes"] == ["input"]


def test_the_alarms_of_section_18_4() -> None:
    alarms = _resources(MODULES / "monitoring", "aws_cloudwatch_metric_alarm")

    def window(alarm: dict[str, Any]) -> int:
        """Seconds the condition must hold: periods x period (of the metric queries if any)."""
        period = alarm.get("period") or next(
            q["metric"][0]["period"] for q in alarm["metric_query"] if "metric" in q
        )
        return int(alarm.get("datapoints_to_alarm", alarm["evaluation_periods"])) * int(period)

    expected = {  # alarm: (threshold, seconds it must hold)
        "api_error_rate": (0.01, 300),
        "delivery_failure_rate": (0.05, 600),
        "lambda_errors": (10, 60),
        "dynamodb_throttles": (50, 60),
        "api_p95_latency": (150, 600),
        "dlq_depth": (10, 60),
        "queue_depth": (1000, 300),
    }
    for name, (threshold, seconds) in expected.items():
        alarm = alarms[name]
        assert alarm["threshold"] == threshold, name
        assert alarm["comparison_operator"] == "GreaterThanThreshold", name
        assert window(alarm) == seconds, name
    assert alarms["api_p95_latency"]["extended_statistic"] == "p95"
    assert set(_resources(MODULES / "monitoring", "aws_cloudwatch_dashboard"))


def test_releases_are_codedeploy_canaries_rolled_back_by_the_monitoring_alarms() -> None:
    lambda_dir, monitoring = MODULES / "lambda", MODULES / "monitoring"
    (app,) = _resources(lambda_dir, "aws_codedeploy_app").values()
    assert app["compute_platform"] == "Lambda"
    (config,) = _resources(lambda_dir, "aws_codedeploy_deployment_config").values()
    routing = config["traffic_routing_config"][0]
    assert routing["type"] == "TimeBasedCanary"
    assert routing["time_based_canary"][0] == {
        "percentage": "${var.canary_percentage}",
        "interval": "${var.canary_interval_minutes}",
    }
    declared = _variables(lambda_dir)
    assert (declared["canary_percentage"]["default"], declared["canary_interval_minutes"]["default"]) == (
        5,
        10,
    )
    production = _load(ENVIRONMENTS / "production" / "terraform.tfvars")
    assert (production["canary_percentage"], production["canary_interval_minutes"]) == (5, 10)  # section 13.1

    (group,) = _resources(lambda_dir, "aws_codedeploy_deployment_group").values()
    assert group["for_each"] == "${local.functions}"
    assert (
        group["deployment_config_name"] == "${aws_codedeploy_deployment_config.canary.deployment_config_name}"
    )
    assert group["deployment_style"][0] == {
        "deployment_type": "BLUE_GREEN",
        "deployment_option": "WITH_TRAFFIC_CONTROL",
    }
    rollback = group["auto_rollback_configuration"][0]
    assert rollback["enabled"] is True
    assert set(rollback["events"]) == {"DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM"}
    alarms = group["alarm_configuration"][0]
    assert alarms["enabled"] is True and alarms["alarms"] == "${var.rollback_alarm_names[each.key]}"

    # CodeDeploy, not Terraform, moves `live` once it exists: an apply must not undo a release.
    (alias,) = _resources(lambda_dir, "aws_lambda_alias").values()
    assert set(alias["lifecycle"][0]["ignore_changes"]) == {"function_version", "routing_config"}
    assert "routing_config" not in alias

    # Every rollback alarm is an alarm of the monitoring module; each function has its own error
    # alarm among them, and the API's include section 13.1's error rate and 18.4's p95 latency.
    (rollback_alarms,) = [
        b["rollback_alarms"] for b in _directory(monitoring)["locals"] if "rollback_alarms" in b
    ]
    defined = _resources(monitoring, "aws_cloudwatch_metric_alarm")
    functions = set(_lambda_locals()["functions"])
    assert set(rollback_alarms) == functions
    for fn, refs in rollback_alarms.items():
        used: set[tuple[str, str | None]] = set()  # (alarm resource, for_each key)
        for ref in refs:
            match = re.fullmatch(r'\$\{aws_cloudwatch_metric_alarm\.(\w+)(?:\["(\w+)"\])?\}', ref)
            assert match and match.group(1) in defined, ref
            if match.group(2):
                assert defined[match.group(1)]["for_each"] == "${var.function_names}"
                assert match.group(2) in functions
            used.add((match.group(1), match.group(2)))
        assert ("lambda_errors", fn) in used, fn
        if fn == "api":
            assert {("api_error_rate", None), ("api_p95_latency", None)} <= used
    for environment in ENVIRONMENT_NAMES:
        call = _named(_directory(ENVIRONMENTS / environment)["module"])["lambda"]
        assert call["rollback_alarm_names"] == "${module.monitoring.rollback_alarm_names}"
        assert call["rollback_alarm_arns"] == "${module.monitoring.rollback_alarm_arns}"


def test_codedeploys_role_may_read_its_alarms_and_move_the_live_aliases_only() -> None:
    documents = {
        name: body
        for block in _directory(MODULES / "lambda")["data"]
        for name, body in block.get("aws_iam_policy_document", {}).items()
    }
    (assume,) = documents["codedeploy_assume"]["statement"]
    assert assume["principals"][0]["identifiers"] == ["codedeploy.amazonaws.com"]
    statements = {s["sid"]: s for s in documents["codedeploy"]["statement"]}
    assert statements["RollbackAlarms"]["actions"] == ["cloudwatch:DescribeAlarms"]
    assert statements["RollbackAlarms"]["resources"] == "${var.rollback_alarm_arns}"
    assert set(statements["ShiftLiveAliases"]["actions"]) == {
        "lambda:GetAlias",
        "lambda:UpdateAlias",
        "lambda:GetProvisionedConcurrencyConfig",
    }
    aliases = statements["ShiftLiveAliases"]["resources"]
    assert "aws_lambda_function.function" in aliases and "aws_lambda_alias.live" in aliases
    assert set(statements) == {"RollbackAlarms", "ShiftLiveAliases"}
    assert not any('"*"' in json.dumps(s.get("resources")) for s in statements.values())
    assert not _resources(MODULES / "lambda", "aws_iam_role_policy_attachment")  # no managed policy


# -- checkov ----------------------------------------------------------------------------------------
def _checkov() -> Path | None:
    path = Path(os.environ.get("TRIGGERS_CHECKOV", ROOT / ".venv" / "checkov" / "bin" / "checkov"))
    return path if path.exists() else None


@pytest.fixture(scope="module")
def checkov_failures() -> set[str]:
    """Run checkov once, offline, over the whole tree; the ids of the checks that failed."""
    checkov = _checkov()
    if checkov is None:
        pytest.skip("checkov is not installed: `make checkov` puts it in .venv/checkov")
    result = subprocess.run(
        [
            str(checkov),
            "-d",
            str(TERRAFORM),
            "--framework",
            "terraform",
            "--skip-download",
            "-o",
            "json",
            "--compact",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"},
    )
    assert result.returncode in (0, 1), result.stderr[-2000:]
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    assert any(r.get("summary", {}).get("passed", 0) > 0 for r in reports), "checkov checked nothing"
    return {c["check_id"] for r in reports for c in r.get("results", {}).get("failed_checks", [])}


def test_checkov_passes_with_only_the_committed_justified_skips(checkov_failures: set[str]) -> None:
    skips = yaml.safe_load(SKIPS_FILE.read_text())["skips"]
    reasons = {s["id"]: s["reason"] for s in skips}
    assert len(reasons) == len(skips), "a check is listed twice"
    assert all(len(r.split()) >= 8 for r in reasons.values()), "every skip needs a real reason"
    assert checkov_failures - set(reasons) == set(), "fix these or justify them in checkov-skips.yaml"
    assert set(reasons) - checkov_failures == set(), "these skips are no longer needed: remove them"
