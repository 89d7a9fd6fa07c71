# The two commands: `make run` serves the API with an embedded worker (SQLite, no Redis or
# Postgres needed) and `make test` runs the checks. Both set everything up on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Two stamps: `make run` installs the service alone, the dev targets add the dev tools (so
# `make test` after `make run` still installs them).
RUN_STAMP := $(VENV)/.installed-run
STAMP := $(VENV)/.installed-dev
# `make bench-sweep` adds the benchmark-only peers (the `bench` extra: Ray Tune, MLflow).
BENCH_STAMP := $(VENV)/.installed-bench
# Tests and benchmarks read MNIST from here; the service itself uses TRAINLAB_DATA_DIR.
TEST_DATA_DIR ?= $(abspath ../shared/data)
PYTEST_ARGS ?=

.PHONY: run test drills soak lint typecheck layering unit integration fuzz clean
.PHONY: bench bench-api bench-api-embedded bench-fused bench-sparse bench-cost bench-cnn bench-gan bench-gan-cost
# The benchmarks import the service's packages by their names (core, worker, ...), which an
# install, an editable one too, keeps out of the top of site-packages (setup.py): they run
# from this checkout. (The tests get it from pytest; `trainlab` finds it itself.)
bench bench-api bench-api-embedded bench-fused bench-sparse bench-cost bench-cnn bench-gan bench-gan-cost bench-scale bench-sweep: \
	export PYTHONPATH := $(CURDIR)$(if $(PYTHONPATH),:$(PYTHONPATH))
.PHONY: bench-scale
.PHONY: bench-sweep

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Plain pip on purpose: it takes torch from the local wheel cache where one exists.
$(RUN_STAMP): pyproject.toml setup.py | $(VENV)/bin/python
	$(BIN)/pip install --quiet -e '.[server,worker]'
	touch $(RUN_STAMP)

$(STAMP): pyproject.toml setup.py | $(VENV)/bin/python
	$(BIN)/pip install --quiet -e '.[server,worker,dev]'
	touch $(STAMP)

$(BENCH_STAMP): pyproject.toml | $(VENV)/bin/python
	$(BIN)/pip install --quiet -e '.[server,worker,dev,bench]'
	touch $(BENCH_STAMP)

# Ctrl-C is how `make run` is meant to end: serve then stops cleanly and exits 130 (128 +
# SIGINT, what a supervisor should see), which here is no error ("make: *** Error 130").
run: $(RUN_STAMP)
	$(BIN)/trainlab serve --migrate || [ $$? -eq 130 ]

lint: $(STAMP)
	$(BIN)/ruff check core api worker cli trainlab tests bench migrations
	$(BIN)/ruff format --check core api worker cli trainlab tests bench migrations

typecheck: $(STAMP)
	$(BIN)/mypy

# Dependencies point one way: core <- api, worker, migrations <- cli -> trainlab (the client).
layering: $(STAMP)
	$(BIN)/python .ci/check_layering.py

test: lint typecheck layering
	TEST_DATA_DIR=$(TEST_DATA_DIR) $(BIN)/pytest $(PYTEST_ARGS)

unit: $(STAMP)
	TEST_DATA_DIR=$(TEST_DATA_DIR) $(BIN)/pytest -m "not integration" $(PYTEST_ARGS)

integration: $(STAMP)
	TEST_DATA_DIR=$(TEST_DATA_DIR) $(BIN)/pytest -m "integration and not drill" $(PYTEST_ARGS)

# Fault drills (a few minutes): real serve/worker processes on a Postgres and a Redis of their
# own, killed and restarted, and the previous release replaced by this one with runs in flight
# (tests/integration/test_upgrade_drill.py); each prints its times (DRILL lines), with
# tuned intervals and, where recovery rests on a timing setting, at the shipped defaults too
# ([defaults]: every one must recover within 30 s).
# They include the soak (below) at 6 minutes (`make soak` runs it for 30).
drills: $(STAMP)
	TEST_DATA_DIR=$(TEST_DATA_DIR) $(BIN)/pytest -m drill -s $(PYTEST_ARGS)

# The soak (tests/integration/test_soak.py): two API processes and two workers under a steady
# mix of submissions, cancels, deletes, polls, event streams and predictions for SOAK_SECONDS
# (here 30 minutes; `make drills` runs it for 6), then: no run stuck, every series exact, no
# process whose memory, descriptors or connections grew after the warm-up, no error logged.
# Prints its figures (SOAK lines). SOAK_SECONDS=N to change.
SOAK_SECONDS ?= 1800
soak: $(STAMP)
	SOAK_SECONDS=$(SOAK_SECONDS) TEST_DATA_DIR=$(TEST_DATA_DIR) \
		$(BIN)/pytest tests/integration/test_soak.py -m drill -s $(PYTEST_ARGS)

# Deeper fuzzing of the live API than `make test` does (tests/api/test_fuzz.py): many more
# examples per endpoint, many more stateful scenarios (linked calls: submit, read, cancel,
# delete), and a new random seed for each pass. FUZZ_MAX_EXAMPLES=N and
# FUZZ_STATEFUL_EXAMPLES=N to change.
FUZZ_MAX_EXAMPLES ?= 200
FUZZ_STATEFUL_EXAMPLES ?= 300
fuzz: $(STAMP)
	FUZZ_MAX_EXAMPLES=$(FUZZ_MAX_EXAMPLES) FUZZ_SEED=random \
		FUZZ_STATEFUL_EXAMPLES=$(FUZZ_STATEFUL_EXAMPLES) FUZZ_STATEFUL_SEED=random \
		TEST_DATA_DIR=$(TEST_DATA_DIR) $(BIN)/pytest tests/api/test_fuzz.py $(PYTEST_ARGS)

# Engine vs the plain PyTorch loop, side by side (SEED.md's five recipes, 3 epochs, 1 thread).
bench: $(STAMP)
	$(BIN)/python bench/engine_bench.py --data-dir $(TEST_DATA_DIR)

# The GAN engine's step against the book's notebook loop (bench/gan_bench.py).
bench-gan: $(STAMP)
	$(BIN)/python bench/gan_bench.py --data-dir $(TEST_DATA_DIR) --preset gan-mnist
	$(BIN)/python bench/gan_bench.py --data-dir $(TEST_DATA_DIR) --preset gan-first-attempt

# The GAN cost model's rate (core/kinds/gan.py) against the engine's CPU time per step.
bench-gan-cost: $(STAMP)
	$(BIN)/python bench/gan_cost.py --data-dir $(TEST_DATA_DIR)

# The service's overhead (bench/api_bench.py's docstring): end to end through the API vs the
# engine alone and where the time goes, API CPU per 1,000 polls, training under 20 pollers,
# POST latency under 20 clients, GET /loss latency. PostgreSQL + Redis, then the embedded
# default; a table and a JSON line each. BENCH_API_ARGS="--epochs 1 --train-limit 6000" for a
# quick look, "--profile" to add py-spy's top functions.
BENCH_API_ARGS ?=
bench-api: $(STAMP)
	$(BIN)/python bench/api_bench.py --data-dir $(TEST_DATA_DIR) $(BENCH_API_ARGS)
	$(BIN)/python bench/api_bench.py --data-dir $(TEST_DATA_DIR) --embedded $(BENCH_API_ARGS)

bench-api-embedded: $(STAMP)
	$(BIN)/python bench/api_bench.py --data-dir $(TEST_DATA_DIR) --embedded $(BENCH_API_ARGS)

# A team's year of runs (bench/scale_bench.py): a store of N experiments per size, on
# PostgreSQL (a database of its own on the server, dropped after) and on SQLite, built in the
# store's own format; the reads over HTTP (p50 / p95), `trainlab prune` of half the store
# with the reads going on, bytes on disk; a table and one JSON line per size and store.
# PostgreSQL and Redis as for bench-api. BENCH_SCALE_SIZES=1000,10000 for a quicker look
# (all three sizes took about 25 minutes here); BENCH_SCALE_ARGS="--stores sqlite".
BENCH_SCALE_SIZES ?= 1000,10000,100000
BENCH_SCALE_ARGS ?=
bench-scale: $(BENCH_STAMP)
	BENCH_SCALE_SIZES=$(BENCH_SCALE_SIZES) $(BIN)/python bench/scale_bench.py $(BENCH_SCALE_ARGS)

clean:
	rm -rf $(VENV) .trainlab .mypy_cache .ruff_cache .pytest_cache

# Fused groups vs the same runs one after another (1, 2, 4, 8, 16 seeds of seed-adam and
# seed-baseline, 1 epoch of 20,000 records, 1 thread), then a table and one JSON line.
bench-fused: $(STAMP)
	$(BIN)/python bench/fused_bench.py --data-dir $(TEST_DATA_DIR)

# The book's CNN (cnn-mnist) through the engine vs the notebook's plain loop, 1 thread: test
# accuracy and training time of each. BENCH_CNN_ARGS="--epochs 3" for the book's 3 epochs.
BENCH_CNN_ARGS ?=
bench-cnn: $(STAMP)
	$(BIN)/python bench/book_cnn.py --data-dir $(TEST_DATA_DIR) $(BENCH_CNN_ARGS)

# The sparse first layer vs the dense one, today's engine and the tuned reference loop (the
# three SGD presets, 1 thread).
bench-sparse: $(STAMP)
	$(BIN)/python bench/sparse_bench.py --data-dir $(TEST_DATA_DIR)

# The cost model's CPU time per step against the engine's, over 54 specs (a few minutes, one
# thread): a table, the worst ratio each way (goal: 1.5x), a JSON line. BENCH_COST_ARGS="--fit"
# also fits classifier_cost.STEP_SECONDS to what it measured.
BENCH_COST_ARGS ?=
bench-cost: $(STAMP)
	$(BIN)/python bench/cost_calibration.py --data-dir $(TEST_DATA_DIR) $(BENCH_COST_ARGS)

# Sweeps: trainlab's paired pruning through a live service (PostgreSQL + Redis) against Optuna's
# TPE + SuccessiveHalving and Ray Tune's ASHA on one seed, on a 32-configuration grid around the
# book's recipes (1 epoch of 20,000 records, 10,000 validation records), 5 repetitions each at
# an equal step budget, judged on a 5-seed ground truth (cached under bench/results/). About
# an hour on 2 cores; BENCH_SWEEP_ARGS="--quick" (or BENCH_SWEEP_QUICK=1) for a small grid.
BENCH_SWEEP_ARGS ?=
bench-sweep: $(BENCH_STAMP)
	TEST_DATA_DIR=$(TEST_DATA_DIR) $(BIN)/python bench/sweep_bench.py --data-dir $(TEST_DATA_DIR) \
		$(BENCH_SWEEP_ARGS)
