"""scikit-learn estimators over the training flow, for notebooks and scripts.

`AutoMLClassifier().fit(X, y)` runs the same Prefect flow as `automl train`: one flow run (on the
Prefect server PREFECT_API_URL names, else Prefect's embedded one), every trial an MLflow run, the
model registered. X and y may be a pandas DataFrame and Series, NumPy arrays, or X a path or URL.
In-memory tables never become flow parameters: they are held in this process for the fit
(tasks.data.memory) and the run records a `dataframe://` URL of their shape and digest.

The constructor takes AutoMLConfig's knobs (Azure's names, the same defaults), stored as given and
validated by AutoMLConfig when fit starts, so a mistake raises the project's one-sentence
ConfigError or DataError before any training. fit's arguments become the flow's inputs in
flows.estimator_inputs; flows.estimator_run runs the flow with its progress line.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from flows.estimator_inputs import fit_inputs, predict_frame
from flows.estimator_run import run_fit
from tasks.config import AutoMLConfig, parse_config

if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Self

    from flows.result import TrainResult
    from tasks.features.settings import FeaturizationSettings
    from tasks.types import Estimator

__all__ = ["AutoMLClassifier", "AutoMLRegressor", "AutoMLEstimator"]

# As the command line: no telemetry from Prefect's embedded server (read when it starts).
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

# AutoMLConfig's fields that fit's arguments fill, not the constructor.
DATA_FIELDS = ("training_data", "validation_data", "test_data", "task", "target")
PathLike = str | os.PathLike[str]
# AutoMLConfig's defaults: one source for the command line, the flow and this API.
DEFAULTS: dict[str, Any] = {name: f.default for name, f in AutoMLConfig.model_fields.items()}


class AutoMLEstimator(BaseEstimator):  # type: ignore[misc]  # scikit-learn ships no types
    """The estimator both tasks share; use AutoMLClassifier or AutoMLRegressor."""

    _task: ClassVar[Literal["classification", "regression"]]

    def __init__(
        self,
        *,
        target: str | None = None,
        primary_metric: str | None = DEFAULTS["primary_metric"],
        iterations: int = DEFAULTS["iterations"],
        experiment_timeout_minutes: float = DEFAULTS["experiment_timeout_minutes"],
        iteration_timeout_minutes: float | None = DEFAULTS["iteration_timeout_minutes"],
        validation_size: float | None = DEFAULTS["validation_size"],
        n_cross_validations: int | None = DEFAULTS["n_cross_validations"],
        test_size: float | None = DEFAULTS["test_size"],
        max_concurrent_iterations: int | None = DEFAULTS["max_concurrent_iterations"],
        max_cores_per_iteration: int = DEFAULTS["max_cores_per_iteration"],
        max_memory_mb: float | None = DEFAULTS["max_memory_mb"],
        max_memory_mb_per_iteration: float | None = DEFAULTS["max_memory_mb_per_iteration"],
        max_predict_ms_per_row: float | None = DEFAULTS["max_predict_ms_per_row"],
        task_runner: Literal["local", "dask"] = DEFAULTS["task_runner"],
        dask_address: str | None = DEFAULTS["dask_address"],
        training_mode: Literal["non_distributed", "distributed"] = DEFAULTS["training_mode"],
        max_nodes: int | None = DEFAULTS["max_nodes"],
        optuna_storage: str | None = DEFAULTS["optuna_storage"],
        resume: bool = DEFAULTS["resume"],
        experiment_exit_score: float | None = DEFAULTS["experiment_exit_score"],
        enable_early_stopping: bool = DEFAULTS["enable_early_stopping"],
        early_stopping_patience: int = DEFAULTS["early_stopping_patience"],
        enable_pruning: bool = DEFAULTS["enable_pruning"],
        deterministic: bool | None = None,
        sampler: Literal["tpe", "random"] = DEFAULTS["sampler"],
        allowed_models: list[str] | None = DEFAULTS["allowed_models"],
        blocked_models: list[str] | None = DEFAULTS["blocked_models"],
        featurization: str | dict[str, Any] | FeaturizationSettings = DEFAULTS["featurization"],
        weight_column: str | None = DEFAULTS["weight_column"],
        positive_label: str | None = DEFAULTS["positive_label"],
        enable_ensembling: bool = DEFAULTS["enable_ensembling"],
        enable_onnx_compatible_models: bool = DEFAULTS["enable_onnx_compatible_models"],
        ensemble_iterations: int = DEFAULTS["ensemble_iterations"],
        random_state: int = DEFAULTS["random_state"],
        experiment_name: str = DEFAULTS["experiment_name"],
        model_name: str | None = DEFAULTS["model_name"],
        promote: bool = DEFAULTS["promote"],
        tracking_uri: str | None = DEFAULTS["tracking_uri"],
        workdir: str = DEFAULTS["workdir"],
        storage_options: dict[str, object] | None = DEFAULTS["storage_options"],
        storage_secret: str | None = DEFAULTS["storage_secret"],
        encoding: str | None = DEFAULTS["encoding"],
        verbose: int = 1,
    ) -> None:
        # scikit-learn's rule: store every parameter as given; fit validates.
        self.target = target
        self.primary_metric = primary_metric
        self.iterations = iterations
        self.experiment_timeout_minutes = experiment_timeout_minutes
        self.iteration_timeout_minutes = iteration_timeout_minutes
        self.validation_size = validation_size
        self.n_cross_validations = n_cross_validations
        self.test_size = test_size
        self.max_concurrent_iterations = max_concurrent_iterations
        self.max_cores_per_iteration = max_cores_per_iteration
        self.max_memory_mb = max_memory_mb
        self.max_memory_mb_per_iteration = max_memory_mb_per_iteration
        self.max_predict_ms_per_row = max_predict_ms_per_row
        self.task_runner = task_runner
        self.dask_address = dask_address
        self.training_mode = training_mode
        self.max_nodes = max_nodes
        self.optuna_storage = optuna_storage
        self.resume = resume
        self.experiment_exit_score = experiment_exit_score
        self.enable_early_stopping = enable_early_stopping
        self.early_stopping_patience = early_stopping_patience
        self.enable_pruning = enable_pruning
        self.deterministic = deterministic
        self.sampler = sampler
        self.allowed_models = allowed_models
        self.blocked_models = blocked_models
        self.featurization = featurization
        self.weight_column = weight_column
        self.positive_label = positive_label
        self.enable_ensembling = enable_ensembling
        self.enable_onnx_compatible_models = enable_onnx_compatible_models
        self.ensemble_iterations = ensemble_iterations
        self.random_state = random_state
        self.experiment_name = experiment_name
        self.model_name = model_name
        self.promote = promote
        self.tracking_uri = tracking_uri
        self.workdir = workdir
        self.storage_options = storage_options
        self.storage_secret = storage_secret
        self.encoding = encoding
        self.verbose = verbose

    def fit(
        self,
        X: pd.DataFrame | np.ndarray | Sequence[Sequence[object]] | PathLike,
        y: pd.Series | np.ndarray | Sequence[object] | None = None,
        X_valid: pd.DataFrame | np.ndarray | PathLike | None = None,
        y_valid: pd.Series | np.ndarray | Sequence[object] | None = None,
        sample_weight: pd.Series | np.ndarray | Sequence[float] | None = None,
        *,
        feature_names: Sequence[str] | None = None,
        target: str | None = None,
    ) -> Self:
        """Search, ensemble, refit and register a model; returns the fitted estimator.

        Args:
            X: The features: a DataFrame, a 2-D array (columns named x0..xn, or feature_names),
                or the path or URL of a table (which then holds the target column too).
            y: The labels, one per row of X; None when X holds the target column.
            X_valid, y_valid: A validation table in the same forms (validation_data); the
                search scores on it instead of cross-validation or a holdout.
            sample_weight: One weight per row of X (the weight_column knob for a table).
            feature_names: Names of an array's columns.
            target: The target column's name: the column of X (or of the table) to predict, or
                the name y is given; defaults to the constructor's target, then y's name.
        """
        started = time.time()  # the budget counts from the call, as the command's from its start
        given = fit_inputs(
            X, y, X_valid, y_valid, sample_weight, feature_names=feature_names, target=target,
            estimator_target=self.target, weight_column=self.weight_column,
        )
        # The knobs changed from their defaults, as the command line passes the options given:
        # the config tells a given `iterations` from its default (deterministic runs).
        knobs = {name: getattr(self, name) for name in AutoMLConfig.model_fields
                 if name not in DATA_FIELDS and getattr(self, name) != DEFAULTS[name]}
        config = parse_config(
            **{**knobs, "weight_column": given.weight_column}, task=self._task,
            target=given.target, training_data=given.training_data,
            validation_data=given.validation_data,
        )
        result = run_fit(config, given.tables, started, self.verbose)
        self._fitted(result, given.feature_names)
        return self

    def _fitted(self, result: TrainResult, features: list[str] | None) -> None:
        from tasks.registry.scoring import load_model

        # The registered version itself: what predict gives is what a deployment scores with.
        self.best_model_: Estimator = load_model(result.model_uri, result.tracking_uri)
        self.result_ = result
        self.run_id_ = result.run_id
        self.flow_run_id_ = result.flow_run_id
        self.model_uri_ = result.model_uri
        self.pkl_uri_ = result.pkl_uri
        self.primary_metric_ = result.primary_metric
        self.best_score_ = result.primary_metric_value
        self.refit_time_ = result.phase_seconds.get("refit", float("nan"))
        self.leaderboard_ = pd.DataFrame(result.leaderboard)
        self.guardrails_ = pd.DataFrame(result.guardrails)
        names = features if features is not None else _model_columns(self.best_model_)
        self.feature_names_in_ = np.asarray(names, dtype=object)
        self.n_features_in_ = len(names)

    def _features(self, X: object) -> pd.DataFrame:
        check_is_fitted(self, "best_model_")
        return predict_frame(X, [str(c) for c in self.feature_names_in_])

    def predict(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Predictions of the registered model for the rows of X."""
        return np.asarray(self.best_model_.predict(self._features(X)))


class AutoMLClassifier(ClassifierMixin, AutoMLEstimator):  # type: ignore[misc]
    """Automated ML for classification; predict_proba and score (accuracy) as in scikit-learn.

    Fitted attributes: best_model_ (the registered pipeline), classes_, leaderboard_ (every
    trial), guardrails_, run_id_ (MLflow), flow_run_id_ (Prefect), model_uri_, pkl_uri_,
    primary_metric_, best_score_, refit_time_, feature_names_in_, result_ (everything
    `automl train --json` gives).
    """

    _task = "classification"

    def predict_proba(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        return np.asarray(self.best_model_.predict_proba(self._features(X)))

    def _fitted(self, result: TrainResult, features: list[str] | None) -> None:
        super()._fitted(result, features)
        self.classes_ = np.asarray(self.best_model_.classes_)


class AutoMLRegressor(RegressorMixin, AutoMLEstimator):  # type: ignore[misc]
    """Automated ML for regression; score is R², as in scikit-learn.

    Fitted attributes as AutoMLClassifier's, without classes_.
    """

    _task = "regression"


def _model_columns(model: Estimator) -> list[str]:
    from tasks.features.preprocess import required_columns

    return [str(c) for c in required_columns(model)]
