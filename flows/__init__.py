"""Prefect flows and the `automl` command line."""
