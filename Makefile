# sessionscope: `make demo` to try it, `make test` to run the suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# `make demo` installs what the server runs; the test and lint tools only come with the targets
# that use them.
RUN    := $(VENV)/.installed-run
DEV    := $(VENV)/.installed-dev

.PHONY: venv demo serve test check lint fmt bench fuzz reliability clean

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

# Longer fuzzing than `make test` runs: examples per route and per parser strategy.
FUZZ_EXAMPLES ?= 250
fuzz: $(DEV)
	SESSIONSCOPE_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/pytest -q \
		tests/reliability/test_fuzz_schema.py tests/reliability/test_fuzz_parsers.py

# The reliability and security suite at full length; writes docs/reliability.md.
RELIABILITY_EXAMPLES ?= 100
CLI_REPEAT ?= 5
reliability: $(DEV)
	rm -f .reliability.jsonl
	SESSIONSCOPE_RELIABILITY_OUT=$(CURDIR)/.reliability.jsonl \
		SESSIONSCOPE_FUZZ_EXAMPLES=$(RELIABILITY_EXAMPLES) SESSIONSCOPE_CLI_REPEAT=$(CLI_REPEAT) \
		$(BIN)/pytest -q tests/reliability tests/test_cli_exit.py
	$(BIN)/python -m tests.reliability.report .reliability.jsonl docs/reliability.md \
		"$(RELIABILITY_EXAMPLES) examples per fuzzed route or parser, every command $(CLI_REPEAT) times"
	@echo "wrote docs/reliability.md"

clean:
	rm -rf $(VENV) sessionscope-data bench/.data .pytest_cache .mypy_cache .ruff_cache .reliability.jsonl
