# Two commands for a newcomer: `make run` and `make test`. Both build .venv first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
SHARED ?= ../shared/datasets
# The example: a shared dataset when the checkout sits beside shared/, else scikit-learn's own.
EXAMPLE := $(firstword $(wildcard $(SHARED)/credit_g.parquet) examples/breast_cancer.csv)
EXAMPLE_TARGET := $(if $(findstring credit_g,$(EXAMPLE)),class,target)
ITERATIONS ?= 20
# Azurite, the Azure Blob emulator the Azure tests run against: pinned, in a local folder, never
# global. 3.35 is the last release that runs on Debian's Node.js 20 (3.36+ asks for Node 22).
AZURITE_VERSION := 3.35.0
AZURITE_STAMP := .azurite/.installed-$(AZURITE_VERSION)
NPM := $(shell command -v npm)

.PHONY: install run test lint bench bench-env bench-scale bench-foundation bench-parallel bench-budget clean deploy stop

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev,nn]"
	$(BIN)/python -c "from flows.api import prepare; prepare()"
	touch $(STAMP)

examples/breast_cancer.csv: | $(STAMP)
	mkdir -p examples
	$(BIN)/python -c "from sklearn.datasets import load_breast_cancer as f; \
	f(as_frame=True).frame.to_csv('$@', index=False)"

run: $(STAMP) $(EXAMPLE)
	$(BIN)/automl train --data $(EXAMPLE) --target $(EXAMPLE_TARGET) --iterations $(ITERATIONS)

# Lint (ruff, imports sorted) and type-check (mypy --strict) flows/ and tasks/, then the tests:
# two at a time (a file's tests in one process: most wait on subprocesses and servers), then the
# timing-sensitive ones (marked serial) alone. `pytest` alone runs them all one by one.
# Without npm the Azure tests skip with a message saying how to get them (and fail under CI).
test: lint $(if $(NPM),$(AZURITE_STAMP))
	$(BIN)/python -m pytest -n 2 --dist loadfile -m "not serial"
	$(BIN)/python -m pytest -m serial

lint: $(STAMP)
	$(BIN)/ruff check automl_flow flows tasks
	$(BIN)/mypy

$(AZURITE_STAMP):
	rm -rf .azurite
	npm install --prefix .azurite --no-audit --no-fund --loglevel=error azurite@$(AZURITE_VERSION)
	touch $@

# The peers live in their own venv so they never become runtime dependencies of .venv.
# STACK-NOTES recipe: torch's CPU wheel first (AutoGluon would otherwise pull a CUDA build),
# then AutoGluon-Tabular and FLAML. FLAML needs xgboost<3; AutoGluon asks for xgboost-cpu, a
# second distribution of the same files: both pinned below 3 so the files they share agree.
BENCH_VENV := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed-stamp
BENCH_PEERS := "autogluon.tabular[lightgbm,catboost,xgboost,fastai]==1.6.3" "flaml[automl]" "xgboost<3" "xgboost-cpu<3" psutil pyarrow

bench-env: $(BENCH_STAMP)

$(BENCH_STAMP):
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install --quiet "torch==2.13.0"
	$(BENCH_VENV)/bin/python -m pip install --quiet "torch==2.13.0" $(BENCH_PEERS)
	$(BENCH_VENV)/bin/python -m pip freeze > $(BENCH_VENV)/versions.txt
	touch $(BENCH_STAMP)

# Figures, not tests: automl-flow against HistGradientBoosting, FLAML and AutoGluon on the same
# split, budget and cores. BENCH_ARGS passes options, e.g. BENCH_ARGS="--datasets credit_g --budget 30".
BENCH_ARGS ?=
bench: $(STAMP) $(BENCH_STAMP)
	$(BIN)/python -m benchmarks.peers $(BENCH_ARGS)
	$(BIN)/python benchmarks/parallel.py

# The worker pool alone: trials per minute with 1 and 2 workers, the flow's overhead against a
# bare Optuna loop (part of make bench).
bench-parallel: $(STAMP)
	$(BIN)/python benchmarks/parallel.py

# Large tables: generated 1 and 5 million rows (and adult stacked 8 times, for memory) against
# LightGBM defaults and FLAML at the same budget; about an hour. SCALE_ARGS e.g. "--rows 1000000".
SCALE_ARGS ?=
bench-scale: $(STAMP) $(BENCH_STAMP)
	$(BIN)/python -m benchmarks.scale $(SCALE_ARGS)

# Does --timeout-minutes hold? Every shared dataset at a 1-minute budget (about 25 minutes).
bench-budget: $(STAMP)
	$(BIN)/python benchmarks/budget.py

# automl-flow against HistGradientBoosting defaults on the same folds (no peers needed).
bench-foundation: $(STAMP)
	$(BIN)/python benchmarks/foundation.py

# The local stack of prefect.yaml: Prefect server + UI, work pool, deployments, a worker, MLflow UI
# (127.0.0.1; PREFECT_PORT/MLFLOW_PORT when 4200/5000 are taken). `make stop` ends it.
PREFECT_PORT ?= 4200
MLFLOW_PORT ?= 5000
deploy: $(STAMP)
	$(BIN)/python -m flows.deploy up --prefect-port $(PREFECT_PORT) --mlflow-port $(MLFLOW_PORT)

stop:
	$(BIN)/python -m flows.deploy down

clean:
	rm -rf $(VENV) $(BENCH_VENV) .azurite automl-runs examples .pytest_cache .prefect-stack
