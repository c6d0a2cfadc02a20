"""Names for the values the pipeline passes around, where a library gives no type of its own.

scikit-learn, LightGBM and XGBoost ship no type information, so to mypy their estimators are
`Any`; the names below say which kind of object a signature means, and are the only places the
code's own signatures fall back to `Any`.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt
import pandas as pd

__all__ = ["Estimator", "Transformer", "ParamValue", "Params", "Array", "Rows", "Json"]

# A scikit-learn estimator or Pipeline (fit, predict, predict_proba): untyped upstream.
Estimator: TypeAlias = Any
# A scikit-learn transformer (fit, transform): untyped upstream.
Transformer: TypeAlias = Any
# A hyperparameter's value, as Optuna suggests it and the search space files hold it.
ParamValue: TypeAlias = str | int | float | bool | None
Params: TypeAlias = dict[str, ParamValue]
Array: TypeAlias = npt.NDArray[Any]  # numbers, labels or codes: numpy's own element type
# What a pipeline takes: raw rows as a DataFrame, or a featurized matrix inside the pipeline.
Rows: TypeAlias = pd.DataFrame | npt.NDArray[np.float64]
# A JSON-like mapping: what MLflow logs as a dict, what the CLI prints.
Json: TypeAlias = dict[str, object]
