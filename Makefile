# CIM: `make run` starts the product with demo data; `make test` runs every check.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
VENDOR := src/cim/core/static/vendor
export CIM_DATA_DIR ?= $(CURDIR)/var

.PHONY: run test lint bench assets messages install install-dev migrations-check test-sqlite test-postgres browser-deps prod-smoke

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -e .

install-dev: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'

assets: $(VENDOR)/.stamp

$(VENDOR)/.stamp: package.json package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	mkdir -p $(VENDOR)/bootstrap $(VENDOR)/htmx $(VENDOR)/echarts
	cp node_modules/bootstrap/dist/css/bootstrap.min.css node_modules/bootstrap/dist/css/bootstrap.min.css.map $(VENDOR)/bootstrap/
	cp node_modules/bootstrap/dist/js/bootstrap.bundle.min.js node_modules/bootstrap/dist/js/bootstrap.bundle.min.js.map $(VENDOR)/bootstrap/
	cp node_modules/htmx.org/dist/htmx.min.js $(VENDOR)/htmx/
	cp node_modules/echarts/dist/echarts.min.js $(VENDOR)/echarts/
	touch $@

messages:
	cd src/cim && ../../$(BIN)/django-admin compilemessages --ignore=.venv -v0

run: install assets messages
	$(BIN)/cim migrate --no-input -v0
	$(BIN)/cim collectstatic --no-input -v0
	$(BIN)/cim bootstrap
	$(BIN)/cim serve --with-worker

lint: install-dev
	$(BIN)/ruff check src tests bench deploy
	$(BIN)/ruff format --check src tests bench deploy

migrations-check: install-dev
	$(BIN)/cim makemigrations --check --dry-run

# SQLite always; PostgreSQL too when CIM_TEST_POSTGRES_URL is set or a server answers on 127.0.0.1:5432 (without the
# Spark engine's tests: they compare engines, not databases).
test: install-dev assets messages lint migrations-check
	$(BIN)/pytest -n 2 -q
	@pg_url="$${CIM_TEST_POSTGRES_URL:-}"; \
	if [ -z "$$pg_url" ] && $(BIN)/python -c "import socket; socket.create_connection(('127.0.0.1', 5432), 1)" 2>/dev/null; then \
	  pg_url="postgres://postgres@127.0.0.1:5432/cim"; fi; \
	if [ -n "$$pg_url" ]; then echo "== PostgreSQL: $${pg_url%%@*}@…"; \
	  CIM_DATABASE_URL="$$pg_url" $(BIN)/pytest -n 2 -q -m "not browser and not spark"; \
	else echo "== PostgreSQL: no server, skipped"; fi

# The production stack of docs/deploy.md on loopback (PostgreSQL, Redis, gunicorn, 2 workers, nginx with TLS),
# driven through a journey in Chromium over HTTPS, then stopped.
prod-smoke: install-dev assets messages
	$(BIN)/python deploy/smoke.py

# Each writes its section of bench/RESULTS.md. The first run builds a 1M-customer database (~15 min).
bench: install-dev
	$(BIN)/python bench/search_bench.py
	$(BIN)/python bench/import_bench.py --rows 1000000
	$(BIN)/python bench/ingest_bench.py
	$(BIN)/python bench/dedupe_bench.py
	$(BIN)/python bench/dedupe_speed.py
	$(BIN)/python bench/care_bench.py
	$(BIN)/python bench/dedupe_spark_bench.py
	$(BIN)/python bench/history_bench.py
	$(BIN)/python bench/clv_bench.py
	$(BIN)/python bench/segments_bench.py
	$(BIN)/python bench/campaign_bench.py
	$(BIN)/python bench/sharing_bench.py
	$(BIN)/python bench/audit_bench.py --events 1000000
	$(BIN)/python bench/backup_bench.py
	$(BIN)/python bench/pg_sizing.py
	$(BIN)/python bench/request_cost.py
	$(BIN)/python bench/load_bench.py
	$(BIN)/python bench/fault_drill.py
