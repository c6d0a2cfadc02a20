"""The model families (a registry of estimators and what each needs), the pipelines built from
them, and the estimator wrappers and ensembles the pickled models are made of."""
