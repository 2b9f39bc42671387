# The two commands a new user needs are `make demo` and `make test`; each does all set-up itself.
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.derisk-installed

.PHONY: demo test setup system-deps lint typecheck bench golden clean

demo: $(STAMP)
	$(BIN)/derisk data update
	$(BIN)/derisk demo

test: $(STAMP) system-deps
	$(BIN)/ruff check src tests scripts
	$(BIN)/ruff format --check src tests scripts
	$(BIN)/mypy
	$(BIN)/pytest

setup: $(STAMP)

$(STAMP): pyproject.toml requirements.lock requirements-dev.lock
	bash scripts/bootstrap "$(PY)" "$(VENV)"
	touch $(STAMP)

# Debian packages the browser tests and PDF rendering need (Chromium, fonts); installs only what is missing.
system-deps:
	bash scripts/system-deps

lint: $(STAMP)
	$(BIN)/ruff check src tests scripts
	$(BIN)/ruff format --check src tests scripts

typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP)
	bash scripts/system-deps bench
	$(BIN)/python scripts/bench.py

golden: $(STAMP)
	$(BIN)/python -m tests.golden regenerate

clean:
	rm -rf $(VENV) derisk-workspace derisk-demo .pytest_cache .mypy_cache .ruff_cache
