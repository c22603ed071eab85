# Two commands set up a fresh machine and run brandmon (see README):
#   make demo   - install the runtime, start a local Kafka broker and a worker on the shipped
#                 default model, feed simulated posts, print them scored (and any alerts)
#   make test   - install the system packages the tests need (it says which, and why, before
#                 it starts), install runtime + export + test extras, and run ruff, mypy and
#                 every test: unit tests, the wheel check, integration tests against a real
#                 Kafka broker and a real Label Studio (its own venv, cached under
#                 ~/.cache/brandmon), the Prometheus rule and scrape tests
# Every Python environment installs from the hashed locks in locks/ only (`make lock` rewrites
# them from pyproject.toml). `make check` is the fast inner loop: no broker, no server.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

# Every environment installs from a lock file in locks/ (exact versions and sha256 hashes of
# every package, transitive ones included), never from pyproject.toml's ranges: a fresh
# machine gets what CI got. `make lock` rewrites the locks (README, "Locked installs").
# uv does the locking and the installs; it lives in a venv of its own, itself installed from
# a hashed lock, so `uv pip sync` can make a project venv exactly the lock without removing uv.
UV_VERSION := 0.13.10
UV_HOME    ?= $(HOME)/.cache/brandmon/uv-$(UV_VERSION)
UV         := $(UV_HOME)/bin/uv
# The platform the locks are resolved for: CPython 3.11 on x86-64 Linux (glibc >= 2.28), the
# machines CI and the images run on.
LOCK_FLAGS := --generate-hashes --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
              --quiet --custom-compile-command "make lock"
# sync: install exactly the lock (and remove anything else); every file's hash is checked;
# the few packages published as sources only build with the locked setuptools and wheel.
SYNC       := $(UV) pip sync --quiet --require-hashes --build-constraints locks/build-constraints.txt

.PHONY: demo test check lock lint typecheck system-packages kafka-jars wheel clean \
        label-studio label-studio-check

$(UV): locks/uv.txt
	$(PYTHON) -m venv $(UV_HOME)
	$(UV_HOME)/bin/python -m pip install -q --disable-pip-version-check --require-hashes -r locks/uv.txt
	touch $@

$(BIN)/python: | $(UV)
	$(PYTHON) -m venv $(VENV)

# stamp files: resync only when the lock changes. brandmon itself goes in editable, without
# dependencies (the lock has them) and without build isolation (the locked setuptools builds it).
$(VENV)/.runtime: locks/runtime.txt | $(BIN)/python
	VIRTUAL_ENV=$(VENV) $(SYNC) locks/runtime.txt
	VIRTUAL_ENV=$(VENV) $(UV) pip install --quiet --no-deps --no-build-isolation -e .
	rm -f $(VENV)/.full
	touch $@

$(VENV)/.full: locks/test.txt | $(BIN)/python
	VIRTUAL_ENV=$(VENV) $(SYNC) locks/test.txt
	VIRTUAL_ENV=$(VENV) $(UV) pip install --quiet --no-deps --no-build-isolation -e .
	touch $@ $(VENV)/.runtime

# Rewrites every lock from pyproject.toml (and locks/*.in), at the newest versions its ranges
# allow. Run it after changing a dependency in pyproject.toml; commit pyproject.toml and locks/
# together (tests/test_locks.py fails when they disagree).
lock: | $(UV)
	$(UV) pip compile $(LOCK_FLAGS) locks/uv.in -o locks/uv.txt
	$(UV) pip compile $(LOCK_FLAGS) locks/build.in -o locks/build-constraints.txt
	$(UV) pip compile $(LOCK_FLAGS) pyproject.toml locks/build.in -o locks/runtime.txt
	$(UV) pip compile $(LOCK_FLAGS) pyproject.toml locks/build.in --extra export -o locks/export.txt
	$(UV) pip compile $(LOCK_FLAGS) pyproject.toml locks/build.in --extra export --extra test \
	    -o locks/test.txt
	# the GPU image: onnxruntime-gpu in place of onnxruntime (both install the same package)
	$(UV) pip compile $(LOCK_FLAGS) pyproject.toml locks/build.in --extra gpu \
	    --no-emit-package onnxruntime -o locks/gpu.txt
	$(UV) pip compile $(LOCK_FLAGS) locks/label-studio.in -o locks/label-studio.txt

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
$(LABEL_STUDIO_VENV)/.installed-$(LABEL_STUDIO_VERSION): locks/label-studio.txt | $(UV)
	rm -rf $(LABEL_STUDIO_VENV)
	$(UV) venv --quiet --python $(PYTHON) $(LABEL_STUDIO_VENV)
	VIRTUAL_ENV=$(LABEL_STUDIO_VENV) $(SYNC) locks/label-studio.txt
	# an empty migrated database: new data folders start from a copy in seconds
	LABEL_STUDIO_LATEST_VERSION_CHECK=false LABEL_STUDIO_COLLECT_ANALYTICS=false \
	    $(LABEL_STUDIO_VENV)/bin/label-studio version --data-dir $(LABEL_STUDIO_VENV)/empty-data >/dev/null
	touch $@

label-studio: $(LABEL_STUDIO_VENV)/.installed-$(LABEL_STUDIO_VERSION)

# Before the suite: does Label Studio's venv start? A venv built by hand, or before the locks,
# can hold a package that breaks it (sentry-sdk 3 did); say so now, not in a fixture's log.
label-studio-check: label-studio
	@LABEL_STUDIO_LATEST_VERSION_CHECK=false LABEL_STUDIO_COLLECT_ANALYTICS=false \
	    $(LABEL_STUDIO_VENV)/bin/label-studio version \
	    --data-dir $(LABEL_STUDIO_VENV)/empty-data >$(LABEL_STUDIO_VENV)/check.log 2>&1 \
	|| { tail -20 $(LABEL_STUDIO_VENV)/check.log; \
	     echo "Label Studio's venv $(LABEL_STUDIO_VENV) does not start (\`label-studio version\`" \
	          "failed, output above). Rebuild it from locks/label-studio.txt:" \
	          "rm -rf $(LABEL_STUDIO_VENV) && make label-studio"; exit 1; }

demo: $(VENV)/.runtime kafka-jars
	$(BIN)/brandmon demo

test: system-packages $(VENV)/.full kafka-jars label-studio-check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	BRANDMON_LABEL_STUDIO_VENV=$(LABEL_STUDIO_VENV) $(BIN)/python -m pytest -q -ra

# The inner loop: lint, types and every quick test that starts no broker and no server (tests that
# do carry the `kafka` or `server` mark; tests/conftest.py refuses one that does not).
check: $(VENV)/.full
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -ra -n auto -m "not kafka and not server and not slow"

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
