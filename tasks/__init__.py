"""The steps of the AutoML pipeline: plain functions, each wrapped as a Prefect task in flows/."""
