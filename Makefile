# The two commands of the README: `make run` serves, `make test` tests.
# Each creates .venv on a fresh machine and installs the locked dependencies first.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test backend lint typecheck bench lock clean

# llama-cpp-python (the bundled model) compiles once per venv, on every core, for any
# AVX2 CPU (scripts/install-llama.sh says why); the rest comes from the lock.
$(STAMP): requirements.lock pyproject.toml scripts/install-llama.sh
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	sh scripts/install-llama.sh $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/promptserve serve

backend: $(STAMP)
	$(BIN)/promptserve backend

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check app chains promptserve tests bench
	$(BIN)/mypy

# Benchmarks of PRODUCT.md's targets (see BENCHMARKS.md); needs wrk and valgrind (apt-get install
# wrk valgrind).
# py-spy (profiling) goes into the venv only, it is not a project dependency.
# BENCH_ARGS="--quick" or "--only ingest" etc.
bench: $(STAMP)
	$(BIN)/py-spy --version >/dev/null 2>&1 || $(BIN)/python -m pip install --quiet py-spy
	$(BIN)/python -m bench.run $(BENCH_ARGS)

# Re-pin the whole tree after changing pyproject.toml.
lock: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[dev,local-model]"
	$(BIN)/python -m pip freeze --exclude-editable > requirements.lock

clean:
	rm -rf $(VENV) .promptserve .pytest_cache .mypy_cache
