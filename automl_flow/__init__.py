"""automl-flow from Python: scikit-learn estimators over the training flow, and its config.

    from automl_flow import AutoMLClassifier
    model = AutoMLClassifier(experiment_timeout_minutes=1).fit(X_train, y_train)
"""

from flows.estimator import AutoMLClassifier, AutoMLRegressor
from tasks.config import AutoMLConfig

__all__ = ["AutoMLClassifier", "AutoMLRegressor", "AutoMLConfig"]
