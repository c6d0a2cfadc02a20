"""One YAML file per model family, in Optuna's distribution vocabulary (see tasks/search/spaces.py)."""
