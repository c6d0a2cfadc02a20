"""Boosting rounds decided by early stopping on the fold's validation rows (LightGBM, XGBoost,
CatBoost), or on a slice of its fit rows (stopping_split)."""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

import numpy as np
from sklearn.model_selection import train_test_split

from tasks.models.mlp import MLPClassifier, MLPRegressor
from tasks.models.wrappers import inner_estimator

if TYPE_CHECKING:
    from tasks.types import Array, Estimator, Rows

__all__ = ["EARLY_STOPPING_ROUNDS", "STOP_MIN_ROWS", "STOP_SHARE", "always_stops",
           "early_stopping", "rounds_param", "rounds_used", "stop_after", "stopping_split"]

# A boosting model stops adding rounds once its loss on the validation rows has not improved for
# this many (LightGBM's and XGBoost's own mechanism; AutoGluon stops on its holdout the same way).
EARLY_STOPPING_ROUNDS = 50

# With TrialSettings.stop_share: the share of a fold's fit rows a boosting model stops on
# instead of fitting on them, and the fewest rows it stops on (at most a quarter of the fit
# rows). Not the default: on the meta tables it made the boosters' CV scores pessimistic, not
# honest, and the choices worse (benchmarks/results/2026-12-06-issue16.md, "Honest early
# stopping").
STOP_SHARE = 0.1
STOP_MIN_ROWS = 50


def stopping_split(y: Array, share: float, seed: int, classify: bool) -> tuple[Array, Array]:
    """Positions into `y` (a fold's fit rows' targets) of the rows a boosting model fits on and
    of the rows it stops on, sorted: `share` of them, at least STOP_MIN_ROWS, at most a quarter;
    stratified by class, the rows of a class seen once always fitted on."""
    positions = np.arange(len(y))
    n_stop = min(max(math.ceil(share * len(y)), STOP_MIN_ROWS), len(y) // 4)
    spare, stratify = positions, None
    if classify:
        _, codes, counts = np.unique(y, return_inverse=True, return_counts=True)
        # train_test_split cannot stratify a class of one row, nor give fewer rows than classes
        spare = positions[counts[codes] > 1]
        n_stop = min(n_stop, len(spare) // 2)
        if n_stop >= len(np.unique(codes[spare])):
            stratify = y[spare]
    if n_stop < 1:
        return positions, positions[:0]
    _, stop = train_test_split(spare, test_size=n_stop, random_state=seed, stratify=stratify)
    return np.setdiff1d(positions, stop), np.sort(stop)


def _library(model: Estimator) -> str:
    """The top-level package of the estimator inside the model's wrappers."""
    return type(inner_estimator(model)).__module__.partition(".")[0]


def early_stopping(model: Estimator, X_eval: Rows, y_eval: Array, watch: str | None = None
                   ) -> dict[str, object] | None:
    """The fit arguments that stop a LightGBM, XGBoost or CatBoost model early on (X_eval,
    y_eval), or None for a model without boosting rounds. `watch` is what is watched: "auc" (the
    libraries call it so), else the model's own objective (log loss, squared error)."""
    inner, library = inner_estimator(model), _library(model)
    if library == "lightgbm":
        import lightgbm

        stop = lightgbm.early_stopping(EARLY_STOPPING_ROUNDS, first_metric_only=True, verbose=False)
        metric = {"eval_metric": watch} if watch else {}
        # eval_set, deprecated in LightGBM 4.7 for eval_X/eval_y; but LGBMClassifier 4.7 does not
        # encode eval_y's labels (string labels fail), so the old argument stays for now.
        return {"eval_set": [(X_eval, y_eval)], "callbacks": [stop], **metric}
    if library == "xgboost":
        inner.set_params(early_stopping_rounds=EARLY_STOPPING_ROUNDS,
                         **({"eval_metric": watch} if watch else {}))
        return {"eval_set": [(X_eval, y_eval)], "verbose": False}
    if library == "catboost":
        # It keeps the best round's trees (use_best_model, on by default with an eval_set).
        if watch == "auc":
            inner.set_params(eval_metric="AUC")
        return {"eval_set": [(X_eval, y_eval)], "early_stopping_rounds": EARLY_STOPPING_ROUNDS}
    return None


class _Clock:
    """Stops a boosting fit once it has run `seconds`: the rounds fitted so far make the model,
    as early stopping's would. One class for the three libraries' callback protocols; it holds
    no reference to the data, so a model that keeps its callbacks (XGBoost) still pickles."""

    def __init__(self, seconds: float, stopper: object = None) -> None:
        self.seconds = seconds
        self.started: float | None = None
        # LightGBM's early-stopping callback: a stop on the clock keeps its best round, as
        # XGBoost and CatBoost keep theirs, not the up to 50 rounds fitted past it.
        self.stopper = stopper

    def _over(self) -> bool:
        now = time.monotonic()
        if self.started is None:
            self.started = now
        return now - self.started > self.seconds

    def __call__(self, env: object) -> None:  # LightGBM: a callable of its CallbackEnv
        if self._over():
            import lightgbm

            best = getattr(self.stopper, "best_iter", None)
            if best:  # first_metric_only: the first metric's best round and scores
                raise lightgbm.callback.EarlyStopException(
                    best[0], self.stopper.best_score_list[0])  # type: ignore[attr-defined]
            iteration = getattr(env, "iteration", 0)
            raise lightgbm.callback.EarlyStopException(
                iteration, getattr(env, "evaluation_result_list", None) or [])

    def after_iteration(self, *args: object) -> bool:
        """XGBoost's (model, epoch, log) -> stop?, CatBoost's (info) -> go on?"""
        over = self._over()
        return over if len(args) == 3 else not over

    # No before_iteration: LightGBM would run the clock before each round, outside the loop
    # that catches its stop. XGBoost's own base class gives its clock the other hooks.


def stop_after(model: Estimator, seconds: float, fit_args: dict[str, object]) -> None:
    """Add to a stopped-early fit's arguments (early_stopping's) a clock that ends it after
    `seconds` with the rounds it has: a trial's share of the budget, not the kill at its end."""
    inner, library = inner_estimator(model), _library(model)
    if library in ("lightgbm", "catboost"):
        callbacks = list(fit_args.get("callbacks") or [])  # type: ignore[call-overload]
        stopper = next((c for c in callbacks if hasattr(c, "best_iter")), None)
        fit_args["callbacks"] = [*callbacks, _Clock(seconds, stopper)]
    elif library == "xgboost":
        from xgboost.callback import TrainingCallback

        clock = type("XGBoostClock", (_Clock, TrainingCallback), {})(seconds)
        inner.set_params(callbacks=[clock])


def always_stops(model: Estimator) -> bool:
    """Whether the model stops early even when the primary metric names nothing to watch (AUC
    of many classes, accuracy, F1, MAE...): the boosters' rounds are never searched, only capped,
    so they watch their own loss there. On the meta tables that cost CatBoost no AUC against
    watching a multiclass AUC, and gave LightGBM and XGBoost a better multiclass AUC than 100
    unwatched rounds on 4 of 6 tables (benchmarks/results/2026-12-06-issue16.md, "Rounds by
    early stopping")."""
    return _library(model) in ("catboost", "lightgbm", "xgboost")


def rounds_used(model: Estimator) -> int | None:
    """How many boosting rounds a model fitted with early_stopping kept, or None; an MLP: the
    epochs its clock left its schedule, so that its refit on all rows takes about as long."""
    inner = inner_estimator(model, fitted=True)
    if isinstance(inner, MLPClassifier | MLPRegressor):
        return int(inner.scheduled_epochs_)
    if type(inner).__module__.startswith("catboost"):
        return int(inner.tree_count_) if inner.get_best_iteration() is not None else None
    best = getattr(inner, "best_iteration_", None)  # LightGBM: a count
    if best is None and type(inner).__module__.startswith("xgboost"):
        best = getattr(inner, "best_iteration", None)  # XGBoost: an index
        best = None if best is None else best + 1
    return int(best) if best else None


def rounds_param(model: Estimator) -> str:
    """The estimator parameter that sets the rounds rounds_used counts, at the refit."""
    is_mlp = isinstance(inner_estimator(model), MLPClassifier | MLPRegressor)
    return "max_epochs" if is_mlp else "n_estimators"
