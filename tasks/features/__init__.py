"""Featurization: what each column is (its role), and the preprocessing that turns raw rows into
model input, built into every pipeline so the registered model takes raw rows."""
