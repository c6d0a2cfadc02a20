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

.PHONY: install run test bench clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

examples/breast_cancer.csv: | $(STAMP)
	mkdir -p examples
	$(BIN)/python -c "from sklearn.datasets import load_breast_cancer as f; \
	f(as_frame=True).frame.to_csv('$@', index=False)"

run: $(STAMP) $(EXAMPLE)
	$(BIN)/automl train --data $(EXAMPLE) --target $(EXAMPLE_TARGET) --iterations $(ITERATIONS)

test: $(STAMP)
	$(BIN)/python -m pytest

# Figures, not tests: automl-flow against HistGradientBoosting defaults on the same folds.
bench: $(STAMP)
	$(BIN)/python benchmarks/foundation.py

clean:
	rm -rf $(VENV) automl-runs examples .pytest_cache
