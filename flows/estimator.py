"""scikit-learn estimators over the training flow, for notebooks and scripts.

`AutoMLClassifier().fit(X, y)` runs the same Prefect flow as `automl train`: one flow run (on the
Prefect server PREFECT_API_URL names, else Prefect's embedded one), every trial an MLflow run, the
model registered. X and y may be a pandas DataFrame and Series, NumPy arrays, or X a path or URL.
In-memory tables never become flow parameters: they are held in this process for the fit
(tasks.data.memory) and the run records a `dataframe://` URL of their shape and digest.

The constructor takes AutoMLConfig's knobs (Azure's names, the same defaults), stored as given and
validated by AutoMLConfig when fit starts, so a mistake raises the project's one-sentence
ConfigError or DataError before any training.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from tasks.config import AutoMLConfig
from tasks.errors import ConfigError, DataError

if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Self

    from flows.result import TrainResult
    from tasks.features.settings import FeaturizationSettings
    from tasks.types import Estimator

__all__ = ["AutoMLClassifier", "AutoMLRegressor", "AutoMLEstimator"]

# As the command line: no telemetry from Prefect's embedded server (read when it starts).
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

log = logging.getLogger("automl")

# AutoMLConfig's fields that fit's arguments fill, not the constructor.
DATA_FIELDS = ("training_data", "validation_data", "test_data", "task", "target")
WEIGHT_COLUMN = "sample_weight"  # the column fit's sample_weight becomes
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
        task_runner: Literal["local", "dask"] = DEFAULTS["task_runner"],
        dask_address: str | None = DEFAULTS["dask_address"],
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
        self.task_runner = task_runner
        self.dask_address = dask_address
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
        target = self._target_name(target, y)
        if target is None and y is None and not isinstance(X, str | os.PathLike):
            raise DataError(
                "fit was given no target: pass y, or target= naming the column of X to predict"
            )
        tables: dict[str, pd.DataFrame] = {}
        train = _Input.of(X, y, target, feature_names, sample_weight, "X", "y")
        weight_column = self.weight_column
        if train.frame is not None and sample_weight is not None:
            if weight_column is not None:
                raise ConfigError(
                    f"weight_column={weight_column!r} and sample_weight were both given; "
                    "pass the weights one way"
                )
            weight_column = train.weight_column
        validation = None
        if X_valid is not None:
            # An array's columns are the training columns; a DataFrame names its own.
            names = None if isinstance(X_valid, pd.DataFrame) else train.feature_names
            validation = _Input.of(X_valid, y_valid, target, names, None, "X_valid", "y_valid")
            if validation.frame is not None and weight_column == train.weight_column:
                validation = validation.with_weights(weight_column)
        elif y_valid is not None:
            raise DataError("y_valid was given without X_valid; pass both or neither")
        for table in (train, validation):
            if table is not None and table.frame is not None:
                tables[table.url] = table.frame
        # The knobs changed from their defaults, as the command line passes the options given:
        # the config tells a given `iterations` from its default (deterministic runs).
        knobs = {name: getattr(self, name) for name in AutoMLConfig.model_fields
                 if name not in DATA_FIELDS and getattr(self, name) != DEFAULTS[name]}
        from tasks.config import parse_config

        config = parse_config(
            **{**knobs, "weight_column": weight_column}, task=self._task,
            target=target or train.target, training_data=train.url,
            validation_data=None if validation is None else validation.url,
        )
        result = _run(config, tables, started, self.verbose)
        self._fitted(result, train.feature_names)
        return self

    def _target_name(self, target: str | None, y: object) -> str | None:
        if target is not None and self.target is not None and target != self.target:
            raise ConfigError(
                f"fit's target={target!r} differs from the estimator's target={self.target!r}; "
                "name the target once"
            )
        name = getattr(y, "name", None) if y is not None else None
        return target or self.target or (None if name is None else str(name))

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
        names = [str(c) for c in self.feature_names_in_]
        if isinstance(X, pd.DataFrame):
            return _frame(X, None, "X")
        shape = np.shape(X)  # type: ignore[call-overload]
        if len(shape) != 2 or shape[1] != len(names):
            raise DataError(
                f"X has shape {shape}, and this model takes a 2-D array of {len(names)} "
                f"columns ({', '.join(names[:5])}{', ...' if len(names) > 5 else ''}); "
                "pass rows with the training columns"
            )
        return _frame(X, names, "X")

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


class _Input:
    """One table given to fit: in memory (frame, held under url) or a path or URL."""

    def __init__(self, url: str, frame: pd.DataFrame | None, target: str | None,
                 feature_names: list[str] | None, weight_column: str | None) -> None:
        self.url, self.frame, self.target = url, frame, target
        self.feature_names, self.weight_column = feature_names, weight_column

    @classmethod
    def of(
        cls, X: object, y: object, target: str | None,
        feature_names: Sequence[str] | None, weight: object, x_name: str, y_name: str,
    ) -> _Input:
        if isinstance(X, str | os.PathLike):
            for given, name in ((y, y_name), (weight, "sample_weight")):
                if given is not None:
                    raise DataError(
                        f"{x_name} is the path {os.fspath(X)!r}, so {name} must be None: the "
                        f"table holds the target (target=) and the weights (weight_column=)"
                    )
            return cls(os.fspath(X), None, target, None, None)
        frame = _frame(X, feature_names, x_name)
        features = [str(c) for c in frame.columns]
        if y is not None:
            name = target or "target"
            if name in frame.columns:
                raise DataError(
                    f"{x_name} already has a column named {name!r}, the name given to {y_name}; "
                    f"pass target={name!r} without {y_name}, or name {y_name} otherwise"
                )
            frame = frame.assign(**{name: _column(y, len(frame), y_name, x_name)})
            target = name
        elif target is not None:
            features = [c for c in features if c != target]
        weight_column = None
        if weight is not None:
            weight_column = _free_name(WEIGHT_COLUMN, frame.columns)
            frame = frame.assign(**{weight_column: _column(weight, len(frame), "sample_weight",
                                                           x_name)})
        from tasks.data.memory import table_url

        role = "train" if x_name == "X" else "valid"
        return cls(table_url(frame, role), frame, target, features, weight_column)

    def with_weights(self, column: str | None) -> _Input:
        """Validation rows weigh 1 each when the training rows carry sample_weight."""
        if column is None or self.frame is None or column in self.frame.columns:
            return self
        frame = self.frame.assign(**{column: 1.0})
        from tasks.data.memory import table_url

        return _Input(table_url(frame, "valid"), frame, self.target, self.feature_names, None)


def _frame(X: object, names: Sequence[str] | None, x_name: str) -> pd.DataFrame:
    if isinstance(X, pd.DataFrame):
        if names is not None:
            raise DataError(
                f"feature_names was given, and {x_name} is a DataFrame with its own column "
                "names; drop feature_names"
            )
        if not all(isinstance(c, str) for c in X.columns):
            return X.rename(columns=str)  # the flow names columns by text, as a file would
        return X
    array = np.asarray(X)
    if array.ndim != 2:
        raise DataError(
            f"{x_name} must be 2-D (rows by columns), got an array of shape {array.shape}; "
            "reshape a single feature with X.reshape(-1, 1)"
        )
    columns = [f"x{i}" for i in range(array.shape[1])] if names is None else list(names)
    if len(columns) != array.shape[1]:
        raise DataError(
            f"feature_names has {len(columns)} names and {x_name} has {array.shape[1]} columns; "
            "give one name per column"
        )
    return pd.DataFrame(array, columns=columns).infer_objects()


def _column(values: object, rows: int, name: str, x_name: str) -> np.ndarray:
    array = np.asarray(values.to_numpy() if isinstance(values, pd.Series | pd.DataFrame)
                       else values)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array.ravel()
    if array.ndim != 1:
        raise DataError(f"{name} must be one value per row, got an array of shape {array.shape}")
    if len(array) != rows:
        raise DataError(
            f"{x_name} has {rows} rows and {name} has {len(array)} values; pass one value per "
            f"row of {x_name}"
        )
    return array


def _free_name(name: str, taken: pd.Index) -> str:
    while name in taken:
        name = f"_{name}"
    return name


def _model_columns(model: Estimator) -> list[str]:
    from tasks.features.preprocess import required_columns

    return [str(c) for c in required_columns(model)]


def _run(config: AutoMLConfig, tables: dict[str, pd.DataFrame], started: float,
         verbose: int) -> TrainResult:
    from flows.progress import progress_line, quiet_console
    from tasks.data.memory import held

    with ExitStack() as stack:
        if verbose < 2:
            # The progress line tells the story: no warnings from the libraries (tqdm's about
            # widgets in a notebook, scikit-learn's and MLflow's), as the command line.
            stack.enter_context(warnings.catch_warnings())
            warnings.simplefilter("ignore")
        from flows.automl import train  # Prefect, and its console handler, first

        if verbose < 2:
            stack.enter_context(quiet_console())
        stack.enter_context(held(tables))
        line = stack.enter_context(progress_line(verbose))
        result = train(config, started_at=started)
        line.finish(f"{result.best_model}: {result.primary_metric}="
                    f"{result.primary_metric_value:.4f} after {result.trials} trials in "
                    f"{result.wall_seconds:.0f} s; registered as {result.model_uri}")
    return result
