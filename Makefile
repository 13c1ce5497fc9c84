# sessionscope: `make demo` to try it, `make test` to run the suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# `make demo` installs what the server runs; the test and lint tools only come with the targets
# that use them.
RUN    := $(VENV)/.installed-run
DEV    := $(VENV)/.installed-dev

.PHONY: venv demo serve test check lint fmt bench clean

$(RUN): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e .
	@touch $(RUN)

$(DEV): $(RUN)
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(DEV)

venv: $(DEV)

demo: $(RUN)
	$(BIN)/sessionscope demo

serve: $(RUN)
	$(BIN)/sessionscope serve

test: $(DEV)
	$(BIN)/pytest -q

lint: $(DEV)
	$(BIN)/ruff format --check src tests bench
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

fmt: $(DEV)
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

check: lint test

bench: $(DEV)
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) sessionscope-data bench/.data .pytest_cache .mypy_cache .ruff_cache
