# Two commands set up a fresh machine and run brandmon (see README):
#   make demo   - install the runtime, start a local Kafka broker and a worker on the shipped
#                 default model, feed simulated posts, print them scored (and any alerts)
#   make test   - install runtime + export + test extras and run the whole test suite
#                 (unit tests and integration tests against a real Kafka broker)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip

.PHONY: demo test lint typecheck bench kafka-jars clean

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

kafka-jars: $(VENV)/.runtime
	$(BIN)/python -c "from brandmon.broker import fetch_jars; print('Kafka jars in', fetch_jars())"

demo: $(VENV)/.runtime kafka-jars
	$(BIN)/brandmon demo

test: $(VENV)/.full kafka-jars
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -ra

lint: $(VENV)/.full
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.full
	$(BIN)/mypy

clean:
	rm -rf .brandmon .pytest_cache
