"""The steps of the AutoML pipeline as plain functions, grouped by stage; flows/ wraps each as a
Prefect task.

data -> features -> models -> search -> final -> registry, with the run's shared pieces beside
them: config (the one typed configuration), errors, metrics and budget (the time budget's rules).
"""

from tasks import _legacy

# Models pickled by earlier releases name modules that have moved since (see tasks._legacy).
_legacy.install()
