"""A fitted model's ONNX twin: the same fitted parts rearranged into what skl2onnx and onnxmltools
convert, predicting what the pickle predicts.

- this package's wrappers give way to the library estimator inside them (their own work is
  a label mapping, which soft voting does, or a code of -1 for an unseen level, which the
  booster's graph already sends where it sends a missing value);
- the module-level FunctionTransformers of featurization become identities: in the graph a
  number arrives as a float and a category as a string, so there is nothing left to coerce;
- a missing category arrives as an empty string, so the string imputers look for "";
- every classifier becomes a soft VotingClassifier (one member for a single pipeline), which
  maps the members' class indices back to the labels;
- what has no converter is refused with its reason (NotConvertible), named as a user knows it.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
from sklearn.ensemble import VotingClassifier, VotingRegressor
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, LabelEncoder, OneHotEncoder, StandardScaler

from tasks.features.columns import category_text, numeric_frame
from tasks.features.encoders import DatetimeFeatures, TextTfidf, as_features
from tasks.features.engineered import EngineeredFeatures
from tasks.models.ensembles import (
    EnsembleClassifier,
    EnsembleRegressor,
    StackEnsembleClassifier,
    StackEnsembleRegressor,
)
from tasks.models.wrappers import CalibratedClassifier, EncodedLabelClassifier, _NativeCategories

if TYPE_CHECKING:
    from tasks.types import Estimator

__all__ = ["CategoryText", "NumberImputer", "OneHotText", "TargetScale", "NotConvertible",
           "onnx_twin", "string_columns", "MISSING_TEXT"]

# How a missing category reaches the graph: ONNX strings have no NaN.
MISSING_TEXT = ""

# Libraries whose estimators onnxmltools or skl2onnx convert (CatBoost exports numeric-only
# models by itself, and a category is never numeric here; torch's MLP has no converter).
_CONVERTED = ("sklearn", "lightgbm", "xgboost")


class NotConvertible(ValueError):
    """A part of the model has no ONNX converter; the message names it."""


def onnx_twin(model: Estimator) -> Estimator:
    """The convertible twin of a fitted final model (a Pipeline, an ensemble, or a bare model)."""
    twin = _twin(copy.deepcopy(model))
    classes = getattr(model, "classes_", None)  # the labels: a wrapped booster's are codes
    if classes is not None and not isinstance(twin, VotingClassifier):
        twin = _voting_classifier([twin], [1.0], classes)
    return twin


def _twin(part: Estimator) -> Estimator:
    if isinstance(part, Pipeline):
        steps = [(name, _twin(step)) for name, step in part.steps if step != "passthrough"]
        if len(steps) == 1:
            return steps[0][1]
        part.steps = steps
        return part
    if isinstance(part, ColumnTransformer):
        part.transformers_ = [(n, _twin(t) if not isinstance(t, str) else t, c)
                              for n, t, c in part.transformers_]
        return part
    if isinstance(part, FunctionTransformer):
        return CategoryText() if part.func is category_text else _identity(part)
    if isinstance(part, OneHotEncoder):
        return OneHotText.of(part)
    if isinstance(part, SimpleImputer):
        if part.statistics_.dtype == object:
            part.missing_values = MISSING_TEXT
            return part
        return NumberImputer.of(part)
    if isinstance(part, DatetimeFeatures | TextTfidf):
        kind = "date" if isinstance(part, DatetimeFeatures) else "text"
        raise NotConvertible(f"the {kind} columns' featurization has no ONNX converter")
    if isinstance(part, EngineeredFeatures):
        raise NotConvertible("engineered features (target encoding, crosses) have no ONNX "
                             "converter")
    if isinstance(part, StackEnsembleClassifier | StackEnsembleRegressor):
        raise NotConvertible("a StackEnsemble has no ONNX converter")
    if isinstance(part, EnsembleClassifier):
        _plain(part)
        return _voting_classifier([_twin(m) for m in part.estimators_], part.weights,
                                  part.classes_)
    if isinstance(part, EnsembleRegressor):
        members = [_twin(m) for m in part.estimators_]
        vote = VotingRegressor([(f"m{i}", m) for i, m in enumerate(members)],
                               weights=np.asarray(part.weights, float))
        vote.estimators_ = members
        return vote
    if isinstance(part, _NativeCategories):
        inner = _twin(part.estimator_)
        library = type(inner).__module__.partition(".")[0]
        if library == "lightgbm" or not part.n_categorical:
            return inner  # its graph sends a code of -1 where LightGBM sends a missing value
        # scikit-learn's trees send that NaN where most training rows went, node by node; the
        # ONNX tree ensembles cannot.
        raise NotConvertible(f"{type(inner).__name__} on category codes has no ONNX converter "
                             "(enable_onnx_compatible_models encodes its categories one-hot)")
    if isinstance(part, EncodedLabelClassifier):
        return _twin(part.estimator_)
    if isinstance(part, TransformedTargetRegressor):
        scaler = part.transformer_
        if not isinstance(scaler, StandardScaler):
            raise NotConvertible(f"a target transformed by {type(scaler).__name__} has no ONNX "
                                 "converter")
        scale = 1.0 if scaler.scale_ is None else float(scaler.scale_[0])
        offset = 0.0 if scaler.mean_ is None else float(scaler.mean_[0])
        return Pipeline([("model", _twin(part.regressor_)),
                         ("target", TargetScale(scale, offset))])
    if isinstance(part, CalibratedClassifier):
        return part.calibrated_
    library = type(part).__module__.partition(".")[0]
    if library not in _CONVERTED:
        raise NotConvertible(f"{type(part).__name__} ({library}) has no ONNX converter")
    if library == "xgboost" and part.get_params().get("enable_categorical"):
        raise NotConvertible("XGBoost's native categories have no ONNX converter")
    return part


def _plain(ensemble: EnsembleClassifier) -> None:
    if getattr(ensemble, "temperature", 1.0) != 1.0:
        raise NotConvertible(f"temperature scaling (T={ensemble.temperature:.3g}) has no ONNX "
                             "converter")
    if getattr(ensemble, "threshold", None) is not None:
        raise NotConvertible(f"a tuned decision threshold ({ensemble.threshold:.3g}) has no "
                             "ONNX converter")


def _voting_classifier(members: list[Estimator], weights: list[float] | tuple[float, ...],
                       classes: np.ndarray) -> VotingClassifier:
    vote = VotingClassifier([(f"m{i}", m) for i, m in enumerate(members)], voting="soft",
                            weights=np.asarray(weights, float), flatten_transform=False)
    vote.estimators_ = members
    vote.le_ = LabelEncoder().fit(classes)
    vote.classes_ = vote.le_.classes_
    return vote


class CategoryText(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """The twin of category_text: a number (a discrete column one-hot encoded) becomes its text,
    as category_text writes it ("3" for 3.0), and a missing number the empty string."""

    def fit(self, X: object, y: object = None) -> CategoryText:
        return self


class NumberImputer(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """The twin of a fitted numeric SimpleImputer: NaN becomes the column's statistic, then a
    0/1 column per flagged feature (add_indicator), which skl2onnx's imputer does not write."""

    def __init__(self, statistics: list[float], flagged: list[int]) -> None:
        self.statistics = statistics
        self.flagged = flagged

    @classmethod
    def of(cls, imputer: SimpleImputer) -> NumberImputer:
        indicator = getattr(imputer, "indicator_", None)
        flagged = [] if indicator is None else [int(i) for i in indicator.features_]
        return cls([float(v) for v in imputer.statistics_], flagged)

    def fit(self, X: object, y: object = None) -> NumberImputer:
        return self


class TargetScale(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """The twin of a standardised target's inverse: prediction * scale + offset."""

    def __init__(self, scale: float, offset: float) -> None:
        self.scale = scale
        self.offset = offset

    def fit(self, X: object, y: object = None) -> TargetScale:
        return self


class OneHotText(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """The twin of a fitted OneHotEncoder of text: for each column, every training level's output
    column (an infrequent level: the infrequent column) and where an unseen level goes (the
    infrequent column if there is one, else nowhere: all zeros), as scikit-learn encodes."""

    def __init__(self, levels: list[dict[str, int]], widths: list[int],
                 unseen: list[int | None]) -> None:
        self.levels = levels
        self.widths = widths
        self.unseen = unseen

    @classmethod
    def of(cls, encoder: OneHotEncoder) -> OneHotText:
        if getattr(encoder, "drop_idx_", None) is not None:
            raise NotConvertible("a one-hot encoding that drops a level has no ONNX converter")
        levels: list[dict[str, int]] = []
        widths, unseen = [], []
        infrequent = getattr(encoder, "infrequent_categories_", None)
        for i, categories in enumerate(encoder.categories_):
            rare_levels = {str(c) for c in (infrequent[i] if infrequent else None) or ()}
            # scikit-learn's output: the frequent levels in order, then one infrequent column.
            out = [str(c) for c in categories if str(c) not in rare_levels]
            rare = len(out) if rare_levels else None
            levels.append({str(c): out.index(str(c)) if str(c) in out else len(out)
                           for c in categories})
            widths.append(len(out) + (1 if rare_levels else 0))
            unseen.append(rare if encoder.handle_unknown == "infrequent_if_exist" else None)
        return cls(levels, widths, unseen)

    def fit(self, X: object, y: object = None) -> OneHotText:
        return self


def _identity(part: FunctionTransformer) -> FunctionTransformer:
    if part.func not in (None, numeric_frame, category_text, as_features):
        raise NotConvertible(f"the function {part.func.__name__} has no ONNX converter")
    twin = FunctionTransformer(None, feature_names_out="one-to-one")
    twin.fit(np.zeros((1, 1)))
    return twin


def string_columns(model: Estimator) -> set[str]:
    """The raw columns the model reads as category text only (the graph's string inputs); a
    column also read as a number (a discrete column) is a float input."""
    texts: set[str] = set()
    numbers: set[str] = set()
    _walk(model, texts, numbers)
    return texts - numbers


def _walk(part: Estimator, found: set[str], numbers: set[str]) -> None:
    if isinstance(part, ColumnTransformer):
        for _, transformer, columns in part.transformers_:
            texts = isinstance(transformer, Pipeline) and _reads_text(transformer)
            (found if texts else numbers).update(str(c) for c in columns)
        return
    for child in _children(part):
        _walk(child, found, numbers)


def _reads_text(pipeline: Pipeline) -> bool:
    first = pipeline.steps[0][1]
    return isinstance(first, FunctionTransformer) and first.func is category_text


def _children(part: Estimator) -> list[Estimator]:
    if isinstance(part, Pipeline):
        return [step for _, step in part.steps]
    for name in ("estimators_", "estimator_"):
        value = getattr(part, name, None)
        if isinstance(value, list):
            return value
        if value is not None:
            return [value]
    return []
