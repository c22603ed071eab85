# Two commands set up a fresh machine and run brandmon (see README):
#   make demo   - install the runtime, start a local Kafka broker and a worker on the shipped
#                 default model, feed simulated posts, print them scored (and any alerts)
#   make test   - install the system packages the tests need (it says which, and why, before
#                 it starts), install runtime + export + test extras, and run ruff, mypy and
#                 every test: unit tests, the wheel check, integration tests against a real
#                 Kafka broker and a real Label Studio (its own venv, cached under
#                 ~/.cache/brandmon), the Prometheus rule and scrape tests
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip

.PHONY: demo test lint typecheck system-packages kafka-jars wheel clean label-studio

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
	@echo "  tmux                     a real terminal for the live 'brandmon top' test"
	bash .ci/install-system.sh

kafka-jars: $(VENV)/.runtime
	$(BIN)/python -c "from brandmon.broker import KAFKA_VERSION, KAFKA4_VERSION, fetch_jars; [print('Kafka jars in', fetch_jars(v)) for v in (KAFKA_VERSION, KAFKA4_VERSION)]"

# Label Studio, the annotation server of `brandmon label` (docs/labeling.md), in a venv of its
# own: it pins Django and many more packages that must not meet brandmon's. Cached under
# ~/.cache/brandmon, so only the first run installs it (about 5 minutes on 2 busy cores, plus
# 1.5 minutes to migrate the empty database new data folders start from).
# The version must match LABEL_STUDIO_VERSION in model_export/labeling/server.py.
LABEL_STUDIO_VERSION ?= 1.23.2
LABEL_STUDIO_VENV    ?= $(HOME)/.cache/brandmon/label-studio-venv
$(LABEL_STUDIO_VENV)/.installed-$(LABEL_STUDIO_VERSION):
	$(PYTHON) -m venv $(LABEL_STUDIO_VENV)
	$(LABEL_STUDIO_VENV)/bin/python -m pip install -q --upgrade pip
	$(LABEL_STUDIO_VENV)/bin/python -m pip install -q "label-studio==$(LABEL_STUDIO_VERSION)"
	# an empty migrated database: new data folders start from a copy in seconds
	rm -rf $(LABEL_STUDIO_VENV)/empty-data
	LABEL_STUDIO_LATEST_VERSION_CHECK=false LABEL_STUDIO_COLLECT_ANALYTICS=false \
	    $(LABEL_STUDIO_VENV)/bin/label-studio version --data-dir $(LABEL_STUDIO_VENV)/empty-data >/dev/null
	touch $@

label-studio: $(LABEL_STUDIO_VENV)/.installed-$(LABEL_STUDIO_VERSION)

demo: $(VENV)/.runtime kafka-jars
	$(BIN)/brandmon demo

test: system-packages $(VENV)/.full kafka-jars label-studio
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	BRANDMON_LABEL_STUDIO_VENV=$(LABEL_STUDIO_VENV) $(BIN)/python -m pytest -q -ra

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
