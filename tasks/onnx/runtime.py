"""Scoring with an exported graph on onnxruntime, as a program outside Python would: each raw
column an [N, 1] input, a float for numbers (NaN when missing), a string for categories (""
when missing); the outputs `label` and, for a classifier, `probabilities` in the order of the
metadata's classes."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import numpy as np

from tasks.errors import DataError, first_line
from tasks.features.columns import category_text, numeric_frame
from tasks.onnx.twin import MISSING_TEXT

if TYPE_CHECKING:
    import pandas as pd

    from tasks.types import Array

__all__ = ["OnnxScorer", "onnx_inputs", "METADATA"]

METADATA = "automl_flow"  # the metadata key holding {"inputs": ..., "classes": ...}


def onnx_inputs(frame: pd.DataFrame, inputs: dict[str, str]) -> dict[str, Array]:
    """The graph's feed for these rows: the same reading of each column as the pickle's."""
    missing = [c for c in inputs if c not in frame.columns]
    if missing:
        raise DataError(f"the data lacks column(s) the model needs: {', '.join(missing)}; "
                        "score a table with the training columns")
    feed: dict[str, Array] = {}
    for column, kind in inputs.items():
        part = frame[[column]]
        if kind == "string":
            text = category_text(part)[column]
            values = text.where(text.notna(), MISSING_TEXT).astype(str).to_numpy(object)
        else:
            values = numeric_frame(part)[column].to_numpy(np.float32)
        feed[column] = values.reshape(-1, 1)
    return feed


class OnnxScorer:
    """An exported model on onnxruntime (imported here only)."""

    def __init__(self, graph: bytes) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3  # errors only: its notes on unused initializers are noise
        try:
            self.session = onnxruntime.InferenceSession(graph, options,
                                                        providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - onnxruntime's errors share no base class
            raise DataError(f"the model is not a readable ONNX graph ({first_line(exc, 160)}); "
                            "pass the onnx/model.onnx a run logged") from None
        meta = self.session.get_modelmeta().custom_metadata_map.get(METADATA)
        if meta is None:
            raise DataError("the ONNX graph was not exported by automl-flow (no metadata "
                            f"'{METADATA}'); export it with a training run")
        facts = json.loads(meta)
        self.inputs: dict[str, str] = facts["inputs"]
        self.classes: list[object] | None = facts.get("classes")

    def predict_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """As tasks.registry.scoring.predict_frame: the rows, `prediction`, `proba_<label>`."""
        outputs = self.session.run(None, onnx_inputs(frame, self.inputs))
        out = frame.copy()
        if self.classes is None:
            out["prediction"] = np.asarray(outputs[0], dtype=float).ravel()
            return out
        proba = np.asarray(outputs[1])
        out["prediction"] = np.asarray(self.classes, dtype=object)[np.argmax(proba, axis=1)]
        for i, label in enumerate(self.classes):
            out[f"proba_{label}"] = proba[:, i]
        return out
