# Two commands for a new user: `make run` and `make test`. Everything else is for development.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/pip --disable-pip-version-check -q

.PHONY: run test install install-dev services browser proxy worker lint format bench-ingest bench-mqtt bench-forecast bench-ui bench-accuracy clean

$(VENV)/.runtime: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install -r requirements.txt
	touch $@

$(VENV)/.dev: requirements-dev.txt $(VENV)/.runtime
	$(PIP) install -r requirements-dev.txt
	touch $@

install: $(VENV)/.runtime
install-dev: $(VENV)/.dev

## Serve the app on embedded defaults (SQLite in ./var, in-process jobs, local object store) with demo data.
run: $(VENV)/.runtime
	$(BIN)/python app.py

## Run the whole suite against real PostgreSQL, Redis, the S3 server (started by the tests) and Chromium.
test: $(VENV)/.dev services browser proxy
	$(BIN)/python -m pytest -n 2 --dist loadscope

services:
	@bash scripts/ensure-services.sh

## Debian's nginx (light) for the TLS proxy test (tests/integration/test_tls_proxy.py)
proxy:
	@command -v nginx >/dev/null 2>&1 || test -x /usr/sbin/nginx || { echo "Installing Debian nginx-light for the proxy test"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light) >/dev/null; }

browser:
	@command -v chromium >/dev/null 2>&1 || { echo "Installing Debian chromium for the browser tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) >/dev/null; }

## The RQ workers (needs REDIS_URL): training + maintenance (forking, failover in ~30 s, retries with
## back-off) and forecasts (non-forking, models stay cached). `make worker KINDS=forecast` starts one kind.
worker: $(VENV)/.runtime
	$(BIN)/python -m jobs.worker $(KINDS)

## Style, formatting and the layer rules (import-linter contracts in .importlinter; docs/architecture.md).
lint: $(VENV)/.dev
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && PYTHONPATH=. $(BIN)/lint-imports

format: $(VENV)/.dev
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

## Ingestion throughput and ingest-to-visible latency through gunicorn + PostgreSQL (docs/benchmarks.md).
bench-ingest: $(VENV)/.dev services
	$(BIN)/python scripts/bench_ingest.py

## MQTT ingestion: publishers -> Mosquitto (a private one) -> `python -m dashboard mqtt-bridge` -> PostgreSQL:
## readings/s, publish-to-visible p50/p95/p99, the bridge's RSS and CPU per reading (docs/benchmarks.md).
bench-mqtt: $(VENV)/.dev services
	$(BIN)/python scripts/bench_mqtt.py $(ARGS)

## Forecast latency (warm/cold) and training time through gunicorn, RQ workers, PostgreSQL and S3.
bench-forecast: $(VENV)/.dev services
	$(BIN)/python scripts/bench_forecast.py

## Every page in chromium on 200 houses x 1 year in PostgreSQL: page render, callback p50/p95, points per trace.
## The seeded database (aggbench_ui) is kept between runs; `ARGS=--reseed` seeds it again.
bench-ui: $(VENV)/.dev services browser
	$(BIN)/python scripts/bench_ui.py $(ARGS)

## Forecast accuracy beside the baselines: Victoria 2014 (../shared/data), the demo aggregate and demo houses.
## `ARGS=--quick` runs the Victoria cases on 14 test days.
bench-accuracy: $(VENV)/.dev
	$(BIN)/python scripts/bench_accuracy.py $(ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache test-artifacts
