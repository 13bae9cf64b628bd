# The README's two commands: `make run` and `make test`. Everything else is set up from here.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
TYPES_DIR  := packages/shared-types
TYPES_NODE := $(TYPES_DIR)/node_modules/.package-lock.json
export PIP_DISABLE_PIP_VERSION_CHECK=1

.PHONY: run test lint typecheck unit venv clean dashboard dashboard-test types checkov terraform-check screenshots

$(BIN)/.installed: pyproject.toml clients/python/pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]' -e './clients/python[dev]'
	@touch $@

venv: $(BIN)/.installed

run: venv
	@if command -v $(NPM) >/dev/null 2>&1; then $(MAKE) --no-print-directory dashboard; \
	else echo "npm not found: serving the API without the dashboard (Node.js 20+ builds it)"; fi
	mkdir -p data
	TRIGGERS_DESTINATION_ALLOW_PRIVATE=$${TRIGGERS_DESTINATION_ALLOW_PRIVATE:-true} \
		$(BIN)/triggers-api serve --host 127.0.0.1 --port 8000

lint: venv
	$(BIN)/ruff check src tests hatch_build.py $(wildcard bench)
	$(BIN)/ruff format --check src tests hatch_build.py $(wildcard bench)
	$(BIN)/mypy
	cd clients/python && $(CURDIR)/$(BIN)/ruff check src tests && $(CURDIR)/$(BIN)/ruff format --check src tests \
	  && $(CURDIR)/$(BIN)/mypy

# The run must leave the working tree as it found it (tests write to temporary or ignored places):
# `git status` is compared before and after (a checkout without git skips the check).
test: lint dashboard-test $(TYPES_NODE) test-tools checkov terraform-check
	@git status --porcelain --untracked-files=all > $(VENV)/.status-before 2>/dev/null || rm -f $(VENV)/.status-before
	$(BIN)/pytest -q
	@# The HTTP and delivery suites again on DynamoDB + SQS (moto's server, started by the tests;
	@# ~15 min): the storage contract suites already ran on all three backends above.
	TRIGGERS_TEST_BACKEND=dynamodb $(BIN)/pytest -q -p no:cacheprovider tests/integration tests/delivery
	@if [ -f $(VENV)/.status-before ]; then \
	  git status --porcelain --untracked-files=all | diff $(VENV)/.status-before - >/dev/null || { \
	    echo "make test changed the working tree (git status before -> after):"; \
	    git status --porcelain --untracked-files=all | diff $(VENV)/.status-before -; exit 1; }; \
	  echo "git status: unchanged by the test run"; fi

# Refresh the committed screenshots in docs/screenshots on purpose (tests write theirs to a
# temporary directory): the browser test against a real server, as in `make test`.
screenshots: venv dashboard
	TRIGGERS_SCREENSHOT_DIR=$(CURDIR)/docs/screenshots $(BIN)/pytest -q -p no:cacheprovider tests/e2e

# -- TypeScript types (packages/shared-types/): generated from the app's OpenAPI by openapi-typescript.
# Run `make types` after any API change (or merge); tests/unit/test_shared_types.py fails on drift.
$(TYPES_NODE): $(TYPES_DIR)/package-lock.json
	cd $(TYPES_DIR) && $(NPM) ci --no-audit --no-fund
	@touch $@

types: venv $(TYPES_NODE)
	$(BIN)/python -m triggers_api.openapi_dump $(TYPES_DIR)/openapi.json
	cd $(TYPES_DIR) && $(NPM) run --silent generate

# Debian packages the deploy/ tests run (tests/deploy): promtool (`prometheus`) checks the alert
# rules, nginx runs deploy/nginx/triggers-api.conf. Installed when missing and allowed; without
# them those tests skip (and fail under TRIGGERS_TEST_STRICT=1).
.PHONY: test-tools env-example
test-tools:
	@command -v promtool >/dev/null 2>&1 && { command -v nginx >/dev/null 2>&1 || test -x /usr/sbin/nginx; } || \
	  { $(SUDO) apt-get install -y -q prometheus nginx-light || \
	    { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q prometheus nginx-light; } || \
	    echo "warning: could not install promtool/nginx (apt-get install prometheus nginx-light)"; }

# .env.example is generated from Settings (tests/deploy/test_env_example.py checks it).
env-example: venv
	$(BIN)/python -m triggers_api.envfile > .env.example

# -- AWS deployment checks (infrastructure/terraform, docs/deploy-aws.md) ----------------------------
# checkov gets a venv of its own: it pins boto3==1.35.49 and ships a `hcl2` module (bc-python-hcl2)
# that would replace python-hcl2's in the dev venv. tests/aws/test_terraform.py runs it offline.
CHECKOV_VENV := $(VENV)/checkov
CHECKOV      := $(CHECKOV_VENV)/bin/checkov

$(CHECKOV):
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install -q 'checkov~=3.3.30'
	@touch $@

checkov: $(CHECKOV)

# `terraform fmt -check` whenever a terraform binary is installed; `validate` too when `init` finds
# the AWS provider: in TF_PLUGIN_DIR (a local provider mirror, /opt/tf-plugins on this machine) or
# from the registry. The offline checks (parse, inputs, references, schema.py, checkov) run in
# pytest either way.
TF_PLUGIN_DIR ?= /opt/tf-plugins
TF_INIT_FLAGS = -backend=false -input=false $(if $(wildcard $(TF_PLUGIN_DIR)),-plugin-dir=$(TF_PLUGIN_DIR))
terraform-check:
	@if command -v terraform >/dev/null 2>&1; then \
	  terraform fmt -check -recursive infrastructure/terraform || exit 1; \
	  for env in infrastructure/terraform/environments/*/; do \
	    if (cd $$env && terraform init $(TF_INIT_FLAGS) >/dev/null 2>&1); then \
	      (cd $$env && terraform validate -no-color) || exit 1; \
	    else echo "terraform validate not run in $$env: the AWS provider could not be downloaded"; fi; \
	  done; \
	else echo "terraform not installed: fmt/validate not run (tests/aws/test_terraform.py checks it offline)"; fi

# -- Lambda (src/triggers_api/aws/, docs/deploy-aws.md) -----------------------------------------------
# The deployment zips, build/lambda/triggers-api-{x86_64,arm64}.zip (git-ignored): the package and
# its runtime dependencies as Linux wheels for Lambda's Python (pip --platform --only-binary).
# tests/aws/test_package.py builds the package part (--no-deps) and imports the handlers from it.
.PHONY: lambda-package aws-local
lambda-package: venv
	$(BIN)/python -m triggers_api.aws.package --out build/lambda

# The AWS deployment on moto's server (127.0.0.1:4566): tables, queues and bucket, then `serve`.
aws-local: venv
	@if command -v $(NPM) >/dev/null 2>&1; then $(MAKE) --no-print-directory dashboard; \
	else echo "npm not found: serving the API without the dashboard (Node.js 20+ builds it)"; fi
	$(BIN)/python -m triggers_api.aws.local --port $${AWS_LOCAL_PORT:-4566} -- --host 127.0.0.1 --port 8000

# -- dashboard (dashboard/): built into the package (git-ignored), served at /dashboard ------------
NPM           ?= npm
DASHBOARD_OUT := src/triggers_api/dashboard/static/index.html
DASHBOARD_SRC := $(shell find dashboard/src dashboard/public dashboard/scripts -type f 2>/dev/null) \
                 dashboard/index.html dashboard/vite.config.ts dashboard/tsconfig.json dashboard/package.json

dashboard/node_modules/.package-lock.json: dashboard/package-lock.json
	cd dashboard && $(NPM) ci --no-audit --no-fund
	@touch $@

$(DASHBOARD_OUT): dashboard/node_modules/.package-lock.json $(DASHBOARD_SRC)
	cd dashboard && $(NPM) run build

dashboard: $(DASHBOARD_OUT)

# Vitest + Testing Library, then the JS budget on the build the browser test (tests/e2e) uses.
dashboard-test: $(DASHBOARD_OUT)
	cd dashboard && $(NPM) test && $(NPM) run --silent size

# -- benchmarks (bench/, docs/benchmarks.md): loopback only, a few minutes, never part of `make test` --
# wrk and nginx come from Debian's packages (installed here when missing), Locust and py-spy from
# PyPI (the `bench` extra). TRIGGERS_TEST_POSTGRES_URL adds the PostgreSQL column.
.PHONY: bench bench-tools

$(BIN)/.bench-installed: $(BIN)/.installed
	$(BIN)/pip install -q -e '.[dev,bench]'
	@touch $@

bench-tools:
	@command -v wrk >/dev/null 2>&1 && { command -v nginx >/dev/null 2>&1 || test -x /usr/sbin/nginx; } || \
	  { $(SUDO) apt-get install -y -q wrk nginx-light || \
	    { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q wrk nginx-light; }; }

bench: bench-tools $(BIN)/.bench-installed
	$(BIN)/python -m bench $(BENCH_ARGS)

# -- faults and limits (issue 15): minutes each, reports for docs/benchmarks.md, never in `make test` --
.PHONY: soak scale
SOAK_SECONDS ?= 600
soak: venv
	SOAK_SECONDS=$(SOAK_SECONDS) $(BIN)/python -m bench.soak

scale: venv
	$(BIN)/python -m bench.scale $(SCALE_ARGS)

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache
