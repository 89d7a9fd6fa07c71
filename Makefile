# The two commands: `make run` serves the API with an embedded worker (SQLite, no Redis or
# Postgres needed) and `make test` runs the checks. Both set everything up on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Tests and benchmarks read MNIST from here; the service itself uses TRAINLAB_DATA_DIR.
TEST_DATA_DIR ?= $(abspath ../shared/data)
PYTEST_ARGS ?=

.PHONY: run test lint typecheck unit integration bench bench-api clean
.PHONY: bench-fused bench-sparse

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# Plain pip on purpose: it takes torch from the local wheel cache where one exists.
	$(BIN)/pip install --quiet -e '.[worker,dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/trainlab serve --migrate

lint: $(STAMP)
	$(BIN)/ruff check core api worker cli tests bench migrations
	$(BIN)/ruff format --check core api worker cli tests bench migrations

typecheck: $(STAMP)
	$(BIN)/mypy

test: lint typecheck
	TEST_DATA_DIR=$(TEST_DATA_DIR) $(BIN)/pytest $(PYTEST_ARGS)

unit: $(STAMP)
	TEST_DATA_DIR=$(TEST_DATA_DIR) $(BIN)/pytest -m "not integration" $(PYTEST_ARGS)

integration: $(STAMP)
	TEST_DATA_DIR=$(TEST_DATA_DIR) $(BIN)/pytest -m integration $(PYTEST_ARGS)

# Engine vs the plain PyTorch loop, side by side (SEED.md's five recipes, 3 epochs, 1 thread).
bench: $(STAMP)
	$(BIN)/python bench/engine_bench.py --data-dir $(TEST_DATA_DIR)

# The service's own figures: end to end through the API vs the engine, and GET /loss latency.
bench-api: $(STAMP)
	$(BIN)/python bench/api_bench.py --data-dir $(TEST_DATA_DIR)

clean:
	rm -rf $(VENV) .trainlab .mypy_cache .ruff_cache .pytest_cache

# Fused groups vs the same runs one after another (1, 2, 4, 8, 16 seeds of seed-adam and
# seed-baseline, 1 epoch of 20,000 records, 1 thread), then a table and one JSON line.
bench-fused: $(STAMP)
	$(BIN)/python bench/fused_bench.py --data-dir $(TEST_DATA_DIR)

# The sparse first layer vs the dense one, today's engine and the tuned reference loop (the
# three SGD presets, 1 thread).
bench-sparse: $(STAMP)
	$(BIN)/python bench/sparse_bench.py --data-dir $(TEST_DATA_DIR)
