# Two commands set up a fresh machine and run brandmon (see README):
#   make demo   - install the runtime, start a local Kafka broker and a worker on the shipped
#                 default model, feed simulated posts, print them scored (and any alerts)
#   make test   - install the system packages the tests need (it says which, and why, before
#                 it starts), install runtime + export + test extras, and run ruff, mypy and
#                 every test: unit tests, the wheel check, integration tests against a real
#                 Kafka broker, the Prometheus rule and scrape tests
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip

.PHONY: demo test lint typecheck system-packages kafka-jars wheel clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# stamp files: reinstall only when pyproject.toml changes (pip's cache makes reruns cheap)
$(VENV)/.runtime: pyproject.toml | $(BIN)/python
	$(PIP) install -q -e .
	touch $@

$(VENV)/.full: pyproject.toml | $(BIN)/python
	$(PIP) install -q -e ".[export,test]"
	touch $@ $(VENV)/.runtime

# Debian/Ubuntu packages the tests need; .ci/install-system.sh installs the missing ones with
# apt-get (through sudo when not root) and does nothing when all are there.
system-packages:
	@echo "make test needs these system packages; missing ones are installed with apt-get now:"
	@echo "  openjdk-17-jre-headless  (java) runs the local Kafka broker of the integration tests"
	@echo "  maven                    (mvn)  fetches Kafka's jars from Maven Central, once"
	@echo "  prometheus               (promtool, prometheus) the rule tests and the live scrape test"
	@echo "  docker-compose           validates docker-compose.yml where 'docker compose' is missing"
	bash .ci/install-system.sh

kafka-jars: $(VENV)/.runtime
	$(BIN)/python -c "from brandmon.broker import KAFKA_VERSION, KAFKA4_VERSION, fetch_jars; [print('Kafka jars in', fetch_jars(v)) for v in (KAFKA_VERSION, KAFKA4_VERSION)]"

demo: $(VENV)/.runtime kafka-jars
	$(BIN)/brandmon demo

test: system-packages $(VENV)/.full kafka-jars
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -ra

lint: $(VENV)/.full
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.full
	$(BIN)/mypy

# The wheel users install: brandmon with the default model and Kafka's POMs inside it.
wheel: $(VENV)/.runtime
	$(PIP) wheel --no-deps --wheel-dir dist .

clean:
	rm -rf .brandmon .pytest_cache build dist
