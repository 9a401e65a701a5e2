# Everything a fresh machine needs is installed by these targets: a virtualenv with the Python
# packages, and the devnet node (anvil, from the npm registry) into tools/.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
ANVIL_VERSION := 1.7.1
ANVIL := tools/node_modules/.bin/anvil
# headless Chromium for the report's browser test (Debian's packages; root, or sudo)
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup demo ui test test-slow lint bench clean

setup: $(BIN)/.installed $(ANVIL)

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

$(ANVIL):
	@command -v npm >/dev/null 2>&1 || { echo "npm not found: install Node.js and npm (e.g. apt-get install nodejs npm), then re-run make"; exit 1; }
	mkdir -p tools
	npm install --prefix tools --no-audit --no-fund --no-save --loglevel=error @foundry-rs/anvil@$(ANVIL_VERSION)
	$(ANVIL) --version

$(CHROMIUM):
	@command -v apt-get >/dev/null 2>&1 || { echo "cannot install Chromium: no apt-get on this machine; install chromium and chromium-driver so that $(CHROMIUM) exists (tests/report opens the health report in it)"; exit 1; }
	$(SUDO) apt-get update && $(SUDO) apt-get install -y chromium chromium-driver || { echo "cannot install Chromium with apt-get (root or sudo needed, and the Debian archive reachable): run 'apt-get install -y chromium chromium-driver' as root, then make test again"; exit 1; }

demo: setup
	$(BIN)/contagion demo

# The Dagster UI on the demo's folder: every asset's lineage, the checks, the schedule and
# sensor, and the demo's runs. CONTAGION_DATA_DIR points it at another folder. The instance's
# dagster.yaml (one run at a time holds the lake) is installed unless one is there already.
UI_DATA ?= data/demo
ui: setup
	mkdir -p $(UI_DATA)/dagster
	test -e $(UI_DATA)/dagster/dagster.yaml || cp dagster_project/dagster.yaml $(UI_DATA)/dagster/
	CONTAGION_DATA_DIR=$(UI_DATA) DAGSTER_HOME=$(abspath $(UI_DATA))/dagster \
		$(BIN)/dagster dev -w workspace.yaml

test: setup $(CHROMIUM)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest -m "not slow"

test-slow: setup
	$(BIN)/pytest -m slow

# Throughput against peers measured in the same run (ratios printed), never timed unit tests.
bench: setup
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	$(BIN)/python bench/decode.py
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/engine.py
	$(BIN)/python bench/scenario.py

clean:
	rm -rf $(VENV) tools .pytest_cache .mypy_cache .ruff_cache
