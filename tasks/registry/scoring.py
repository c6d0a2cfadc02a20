"""Load a trained model (registry URI, run URI or .pkl) and score raw rows with it."""

from __future__ import annotations

import pickle
from typing import TYPE_CHECKING

import fsspec
import numpy as np

from tasks.errors import DataError
from tasks.features.preprocess import required_columns

if TYPE_CHECKING:
    import pandas as pd

    from tasks.explain import Explanation
    from tasks.types import Estimator

__all__ = ["load_model", "load_onnx", "predict_frame", "predict_explained", "explained_as"]

_URI_SCHEMES = ("models:/", "runs:/")


def load_model(uri: str, tracking_uri: str | None = None) -> Estimator:
    """A fitted pipeline from models:/NAME/VERSION, models:/NAME@ALIAS, runs:/ID/PATH or a .pkl."""
    if uri.startswith(_URI_SCHEMES):
        from tasks.registry.tracking import load_logged_model

        return load_logged_model(uri, tracking_uri)
    if not uri.endswith(".pkl"):
        raise DataError(
            f"model '{uri}' is neither a .pkl file nor a models:/ or runs:/ URI; "
            "pass e.g. models:/NAME/1, models:/NAME@champion or path/to/model.pkl"
        )
    try:
        with fsspec.open(uri, "rb") as handle:
            return pickle.load(handle)  # noqa: S301 - the user names their own model file
    except FileNotFoundError:
        raise DataError(f"model file '{uri}' was not found") from None
    except (pickle.UnpicklingError, EOFError, AttributeError, ModuleNotFoundError) as exc:
        # Not a pickle, cut short, or naming a class this installation lacks.
        raise DataError(
            f"model file '{uri}' is not a readable model pickle ({type(exc).__name__}: {exc}); "
            "pass the model.pkl a run registered"
        ) from None


def load_onnx(uri: str, tracking_uri: str | None = None) -> bytes:
    """An exported graph: a .onnx path or URL, or the one logged beside a models:/ or runs:/
    model (tasks.registry.portable)."""
    if uri.startswith(_URI_SCHEMES):
        from tasks.registry.portable import ONNX_ARTIFACT
        from tasks.registry.tracking import load_logged_onnx

        return load_logged_onnx(uri, tracking_uri, ONNX_ARTIFACT)
    if not uri.endswith(".onnx"):
        raise DataError(
            f"model '{uri}' is neither a .onnx file nor a models:/ or runs:/ URI; with --onnx "
            "pass e.g. models:/NAME/1, models:/NAME@champion or path/to/model.onnx"
        )
    try:
        with fsspec.open(uri, "rb") as handle:
            graph: bytes = handle.read()
    except FileNotFoundError:
        raise DataError(f"model file '{uri}' was not found") from None
    return graph


def predict_frame(model: Estimator, frame: pd.DataFrame) -> pd.DataFrame:
    """The input rows with a `prediction` column and, for classifiers, `proba_<label>` columns."""
    missing = [c for c in required_columns(model) if c not in frame.columns]
    if missing:
        raise DataError(
            f"the data lacks column(s) the model needs: {', '.join(map(str, missing))}; "
            "score a table with the training columns"
        )
    out = frame.copy()
    out["prediction"] = model.predict(frame)
    if hasattr(model, "predict_proba"):
        proba = np.asarray(model.predict_proba(frame))
        for i, label in enumerate(model.classes_):
            out[f"proba_{label}"] = proba[:, i]
    return out


def predict_explained(model: Estimator, frame: pd.DataFrame) -> tuple[pd.DataFrame, Explanation]:
    """predict_frame's table with the explanation beside it (`automl predict --explain` and the
    score deployment's explain=True): contrib_<column> per raw column, base_value and
    explained_output, their sum. shap and the explainers load only here."""
    import pandas as pd

    from tasks.explain import explain, explanation_frame

    explained = explain(model, frame)
    predicted = predict_frame(model, frame).reset_index(drop=True)
    return pd.concat([predicted, explanation_frame(explained)], axis=1), explained


def explained_as(explanation: Explanation) -> str:
    """How to read the columns, for the line that reports them: what the sum is, and how it
    was found."""
    return (f"base_value + the contrib_ columns = explained_output, the "
            f"{explanation.output_name} ({explanation.method}, {explanation.seconds:.1f} s)")
