"""Azure's StackEnsemble: a linear meta-learner on the top trials' out-of-fold predictions.

The trials already predicted every validation row once (out of fold under cross-validation), so
the meta-learner trains on those predictions without refitting any member; only the final model
refits the members on all rows. The stack's own score is cross-validated on the prediction matrix
(the meta-learner never scores rows it was fitted on), so it can be compared fairly with the best
single model and with the greedy VotingEnsemble.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np
from sklearn.base import clone
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from tasks.final.choice import predictions_of
from tasks.metrics import score_all
from tasks.models.ensembles import stack_features

if TYPE_CHECKING:
    from tasks.data.sets import SearchData
    from tasks.search.candidates import TrialResult
    from tasks.types import Array, Estimator

__all__ = ["MAX_MEMBERS", "MAX_META_WORK", "meta_learner", "pick_members", "stack_predictions",
           "stack_metrics", "ensemble_seconds"]

MAX_MEMBERS = 5  # more members add refit time and collinear columns, rarely skill
META_FOLDS = 5
# rows x meta-features x classes above which the meta-learner's six fits cost more than a few
# seconds of the budget (measured: 16,000 rows x 130 x 26 classes, 7.6 s per fit on 2 busy
# cores); such data keeps the VotingEnsemble only.
MAX_META_WORK = 5_000_000
# Seconds per unit of that work in one meta-learner fit (the same measurement: 7.6 s for
# 16,000 x 130 x 26), and what the rest of the ensemble step costs (the greedy blend, the
# calibration and the threshold: about half a second on the meta tables' validation rows).
META_SECONDS_PER_WORK = 7.6 / (16_000 * 130 * 26)
BLEND_SECONDS = 0.5


def meta_learner(task: str) -> Estimator:
    """Logistic regression on members' standardised log-probabilities; non-negative least
    squares for values (non-negative weights keep the blend from betting against a member, as
    Caruana's do).

    Standardised and strongly regularised (C=0.1), the logistic regression converges in a
    fraction of the time and scores better out of fold: on the members of three 60 s runs
    (hpc_jobs, nass_injury, wine_quality) its fits took 0.2-1.2 s instead of 2.2-3.1 s, with a
    log loss lower by 0.006, 0.016 and 0.009 than C=1.0 unscaled."""
    if task == "classification":
        return make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=200))
    return LinearRegression(positive=True)


def pick_members(pool: list[TrialResult], limit: int = MAX_MEMBERS) -> list[TrialResult]:
    """The best trial of each family first (diverse errors are what a stack combines), then the
    next best overall, in rank order, up to `limit`."""
    usable = [r for r in pool if r.predictions is not None]
    firsts: dict[str, TrialResult] = {}
    for r in usable:
        firsts.setdefault(r.candidate.family, r)
    chosen = list(firsts.values())[:limit]
    chosen += [r for r in usable if r not in chosen][: limit - len(chosen)]
    return sorted(chosen, key=usable.index)


def stack_predictions(
    members: list[TrialResult], data: SearchData, seed: int
) -> tuple[Array, Estimator] | None:
    """(cross-validated stack predictions of the validation rows, meta-learner fitted on all of
    them), or None when the rows cannot be split into folds for the meta-learner, or fitting it
    would cost too much of the budget."""
    X = stack_features([predictions_of(m) for m in members], data.task)
    y = data.y_valid
    classify = data.task == "classification"
    n_classes = _n_classes(data) if classify else 1
    if X.size * n_classes > MAX_META_WORK:
        return None
    cv = _meta_folds(y, classify, seed)
    if cv is None:
        return None
    meta = meta_learner(data.task)
    # A pipeline's fit takes the weights as <final step>__sample_weight.
    weight = f"{meta.steps[-1][0]}__sample_weight" if hasattr(meta, "steps") else "sample_weight"
    params = {} if data.weights_valid is None else {weight: data.weights_valid}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter on tiny folds
        pred = cross_val_predict(meta, X, y, cv=cv, params=params,
                                 method="predict_proba" if classify else "predict")
        fitted = clone(meta).fit(X, y, **params)
    if classify:
        full = np.zeros((len(y), n_classes))
        full[:, np.unique(y)] = pred  # a class absent from the validation rows: probability 0
        pred = full
    return pred, fitted


def ensemble_seconds(n_rows: int, n_classes: int) -> float:
    """About how long the ensemble step takes on n_rows validation rows (n_classes 0 for a
    regression): the blend, and the stack's META_FOLDS + 1 meta-learner fits on MAX_MEMBERS
    members where it would be tried. The search plans its end for it (Budget.ensemble)."""
    width = MAX_MEMBERS * (1 if n_classes <= 2 else n_classes)  # stack_features' columns
    work = n_rows * width * max(1, n_classes)
    if work > MAX_META_WORK:
        return BLEND_SECONDS
    return BLEND_SECONDS + (META_FOLDS + 1) * META_SECONDS_PER_WORK * work


def _n_classes(data: SearchData) -> int:
    assert data.classes is not None  # a classification's data has its labels
    return len(data.classes)


def _meta_folds(y: Array, classify: bool, seed: int) -> StratifiedKFold | KFold | None:
    """The meta-learner's folds, stratified for classes; None when a class has a single row."""
    if classify:
        rarest = int(np.unique(y, return_counts=True)[1].min())
        folds = min(META_FOLDS, rarest)
        if folds < 2:
            return None
        return StratifiedKFold(folds, shuffle=True, random_state=seed)
    return KFold(META_FOLDS, shuffle=True, random_state=seed)


def stack_metrics(pred: Array, data: SearchData) -> dict[str, float]:
    return score_all(data.task, data.y_valid, pred, data.weights_valid, data.y_range, data.positive)
