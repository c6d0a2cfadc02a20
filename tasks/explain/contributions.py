"""Per-row additive contributions of a registered model (a pipeline of preprocessing + model, or
an ensemble of such pipelines) on the raw columns the user gave.

For every row: base_value + sum of the contributions = output, where the output is
- regression: the prediction;
- binary classification: the positive (second sorted) class's probability, or its margin
  (log-odds) when the method is exact there (LightGBM, XGBoost, CatBoost, logistic models);
- multiclass: the predicted class's probability (sampled).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from tasks.errors import DataError
from tasks.explain.columns import raw_mapping
from tasks.explain.exact import PROBABILITY, VALUE, exact_contributions
from tasks.explain.sampling import TARGET_SECONDS, sampled_contributions
from tasks.features.preprocess import required_columns
from tasks.models.ensembles import EnsembleClassifier, EnsembleRegressor

if TYPE_CHECKING:
    from tasks.types import Array, Estimator

__all__ = ["Explanation", "explain", "explanation_frame"]

# An exact method's sum must meet the model's own output this closely (relative to the
# output's size when above 1), else it is not used.
# Not 1e-6: the features step emits float32 and XGBoost and linear models compute their margin
# in it; the log-odds of a probability near 0 or 1 amplify that rounding to ~1e-5.
EXACT_TOLERANCE = 1e-4
_EPS = 1e-12


@dataclass(frozen=True)
class Explanation:
    contributions: pd.DataFrame  # one column per raw input column, one row per explained row
    base_value: Array
    output: Array  # the model's own output, computed apart from the contributions
    output_name: str  # e.g. "margin (log-odds) of 'good'", "prediction"
    method: str  # e.g. "lightgbm", "weighted members", "sampled"
    seconds: float


def explain(model: Estimator, frame: pd.DataFrame, background: pd.DataFrame | None = None,
            seed: int = 0, seconds: float = TARGET_SECONDS,
            rate: float | None = None) -> Explanation:
    """Contributions of `model` for the rows of `frame`. `background` (default: `frame`) holds
    the rows a sampled explanation compares with; `seconds`: about the most a sampled one may
    spend predicting (tasks.explain.sampling.affordable), at `rate` rows a second (measured
    when not given)."""
    started = time.perf_counter()
    columns = [str(c) for c in required_columns(model)]
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(
            f"the data lacks column(s) the model needs: {', '.join(missing)}; "
            "explain a table with the training columns"
        )
    rows = frame.reset_index(drop=True)
    classes = getattr(model, "classes_", None)
    if classes is not None and len(classes) > 2:
        return _sampled(model, rows, columns, background, seed, started, seconds, rate)
    positive = None if classes is None else classes[1]
    found = _exact(model, rows, columns, positive is not None)
    if found is None:
        return _sampled(model, rows, columns, background, seed, started, seconds, rate)
    values, base, space, method = found
    output = _output(model, rows, space)
    gap = np.max(np.abs(base + values.sum(axis=1) - output), initial=0.0)
    if gap > EXACT_TOLERANCE * max(1.0, np.max(np.abs(output), initial=0.0)):
        # A wrapper this module does not know (a temperature, a calibrator) bent the output.
        return _sampled(model, rows, columns, background, seed, started, seconds, rate)
    name = space if positive is None else f"{space} of {positive!r}"
    return Explanation(pd.DataFrame(values, columns=columns), base, output, name, method,
                       time.perf_counter() - started)


def explanation_frame(explanation: Explanation, prefix: str = "contrib_") -> pd.DataFrame:
    """contrib_<column> per raw column, base_value, and the explained output (named after it)
    so that a reader can check the sum."""
    out = explanation.contributions.add_prefix(prefix)
    out["base_value"] = explanation.base_value
    out["explained_output"] = explanation.output
    out.attrs["explained_output"] = explanation.output_name
    return out


def _exact(model: Estimator, rows: pd.DataFrame, columns: list[str],
           classification: bool) -> tuple[Array, Array, str, str] | None:
    step = model[-1] if isinstance(model, Pipeline) and len(model) == 1 else model
    if isinstance(step, EnsembleClassifier | EnsembleRegressor):
        if getattr(step, "temperature", 1.0) != 1.0:
            return None  # rescaled probabilities are no weighted sum of the members'
        parts: list[tuple[Array, Array, str]] = []
        for member in step.estimators_:
            part = _member(member, rows, columns, classification)
            # Weighted averages add up only in one shared space: probabilities or values. The
            # first member that breaks it ends the attempt, before the others are explained
            # for nothing (20 credit_g rows, six members: 4.0-4.8 s, now 0.4-0.55 s).
            if part is None or part[2] not in (PROBABILITY, VALUE) or (
                    parts and part[2] != parts[0][2]):
                return None
            parts.append(part)
        if not parts:
            return None
        weights = np.asarray(step.weights, dtype=float) / np.sum(step.weights)
        values = sum(w * p[0] for w, p in zip(weights, parts, strict=True))
        base = sum(w * p[1] for w, p in zip(weights, parts, strict=True))
        return np.asarray(values), np.asarray(base), parts[0][2], "weighted members"
    found = _member(model, rows, columns, classification)
    return None if found is None else (*found, type(_final(model)).__name__)


def _member(pipeline: Estimator, rows: pd.DataFrame, columns: list[str],
            classification: bool) -> tuple[Array, Array, str] | None:
    if not isinstance(pipeline, Pipeline) or len(pipeline) < 2:
        return None
    features, model = pipeline[:-1], pipeline[-1]
    Xt = np.asarray(features.transform(rows))  # its dtype: the model's own arithmetic
    found = exact_contributions(model, Xt, classification)
    if found is None:
        return None
    values, base, space = found
    return values @ raw_mapping(features, rows, columns), base, space


def _final(model: Estimator) -> Estimator:
    step = model[-1] if isinstance(model, Pipeline) else model
    # Through this project's wrappers and a scaled target; a forest's estimator_ is its template.
    while type(step).__module__.startswith("tasks.") or hasattr(step, "regressor_"):
        inner = getattr(step, "estimator_", None) or getattr(step, "regressor_", None)
        if inner is None:
            break
        step = inner
    return step


def _output(model: Estimator, rows: pd.DataFrame, space: str) -> Array:
    if space == VALUE:
        return np.asarray(model.predict(rows), dtype=float)
    p = np.clip(np.asarray(model.predict_proba(rows), dtype=float)[:, 1], _EPS, 1 - _EPS)
    margin: Array = np.log(p / (1 - p))
    return p if space == PROBABILITY else margin


def _sampled(model: Estimator, rows: pd.DataFrame, columns: list[str],
             background: pd.DataFrame | None, seed: int, started: float,
             seconds: float = TARGET_SECONDS, rate: float | None = None) -> Explanation:
    classes = getattr(model, "classes_", None)
    if classes is None:
        def f(x: pd.DataFrame) -> Array:
            return np.asarray(model.predict(x), dtype=float)[:, None]

        targets = np.zeros(len(rows), dtype=int)
        name = VALUE
    else:
        def f(x: pd.DataFrame) -> Array:
            return np.asarray(model.predict_proba(x), dtype=float)

        proba = f(rows)
        binary = len(classes) == 2
        targets = np.ones(len(rows), dtype=int) if binary else np.argmax(proba, axis=1)
        name = (f"{PROBABILITY} of {classes[1]!r}" if binary
                else "probability of the predicted class")
    values, base = sampled_contributions(f, rows, columns,
                                         rows if background is None else background, targets, seed,
                                         seconds, rate)
    output = f(rows)[np.arange(len(rows)), targets]
    return Explanation(pd.DataFrame(values, columns=columns), base, output, name, "sampled",
                       time.perf_counter() - started)
