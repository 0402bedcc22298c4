# Everyday tasks. Needs only GNU make and Python 3.11 or newer; everything else
# is installed into a virtual environment ($(VENV)) on first use.
#
#   make run                      install, migrate, load demo data, serve on :8084
#   make test PYTEST_ARGS="-k cli"
#   make lint | make format | make clean

PYTHON ?= python3
VENV ?= .venv
PYTEST_ARGS ?=
BENCH_ARGS ?=

BIN := $(VENV)/bin
# Reinstall only when pyproject.toml changes.
INSTALLED := $(VENV)/.installed
INSTALLED_TEST := $(VENV)/.installed-test
# Written last, so a half-made environment is made again on the next run.
VENV_READY := $(VENV)/.ready

.DEFAULT_GOAL := help
.PHONY: help run test lint format bench clean

help:
	@echo "make run     install, migrate, create a demo organisation, serve on :8084"
	@echo "make test    run the test suite (PYTEST_ARGS=... is passed to pytest)"
	@echo "make lint    ruff check, ruff format --check and mypy"
	@echo "make bench   the read-path benchmark on PostgreSQL and Redis (bench/RESULTS.md)"
	@echo "make format  sort imports and format the code"
	@echo "make clean   remove the virtual environment and caches (keeps data)"

run: $(INSTALLED)
	$(BIN)/signal-admin migrate
	$(BIN)/signal-admin seed-demo
	$(BIN)/signal-admin serve

test: $(INSTALLED_TEST)
	$(BIN)/pytest $(PYTEST_ARGS)

bench: $(INSTALLED_TEST)
	$(BIN)/python -m bench.run $(BENCH_ARGS)

lint: $(INSTALLED_TEST)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(INSTALLED_TEST)
	$(BIN)/ruff check --select I --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find src tests -type d -name __pycache__ -prune -exec rm -rf {} +

$(INSTALLED): pyproject.toml | $(VENV_READY)
	$(BIN)/python -m pip install --quiet --editable .
	touch $@

$(INSTALLED_TEST): pyproject.toml | $(VENV_READY)
	$(BIN)/python -m pip install --quiet --editable '.[test]'
	touch $@ $(INSTALLED)

$(VENV_READY):
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
		echo "signal-admin needs Python 3.11 or newer; '$(PYTHON)' is:" \
			"$$($(PYTHON) --version 2>/dev/null || echo 'not found')." \
			"Run make with PYTHON=/path/to/python3.11 or newer." >&2; \
		exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	touch $@
