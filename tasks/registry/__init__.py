"""Tracking and registry: the MLflow runs (tracking/, the only package that talks to MLflow), the
charts and the model card logged with the model, the champion/challenger decision, and loading a
registered model to score with it."""
