"""The ONNX export of a fitted final model: one graph from raw columns to the prediction and, for
a classifier, the class probabilities (skl2onnx for scikit-learn, onnxmltools for the boosters).

The graph's inputs are the raw columns the model reads, each an [N, 1] tensor: float for the
numbers (NaN for a missing value), string for the categories (an empty string when missing).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tasks.features.preprocess import required_columns
from tasks.onnx.converters import register_converters
from tasks.onnx.runtime import METADATA
from tasks.onnx.twin import MISSING_TEXT, NotConvertible, onnx_twin, string_columns

if TYPE_CHECKING:
    import onnx

    from tasks.types import Estimator

__all__ = ["Export", "export_onnx", "TARGET_OPSET"]

TARGET_OPSET = {"": 18, "ai.onnx.ml": 3}


@dataclass(frozen=True)
class Export:
    model: onnx.ModelProto | None  # None: not exported
    inputs: dict[str, str]  # raw column -> "float" or "string"
    reason: str  # why it was not exported ("" when it was)
    seconds: float


def export_onnx(model: Estimator) -> Export:
    """The model as an ONNX graph, or the reason it has none (never raises for a model part that
    does not convert)."""
    started = time.perf_counter()
    columns = [str(c) for c in required_columns(model)]
    text = string_columns(model)
    inputs = {c: "string" if c in text else "float" for c in columns}
    try:
        twin = onnx_twin(model)
        graph = _convert(twin, inputs)
        classes = getattr(model, "classes_", None)
        facts = {"inputs": inputs,
                 "classes": None if classes is None else [_plain(c) for c in classes],
                 "missing": {"float": "NaN", "string": MISSING_TEXT}}
        graph.metadata_props.add(key=METADATA, value=json.dumps(facts))
    except NotConvertible as exc:
        return Export(None, inputs, str(exc), time.perf_counter() - started)
    except (RuntimeError, NotImplementedError, ValueError, TypeError, KeyError) as exc:
        # A converter's own refusal: its first line says which part.
        reason = f"conversion failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
        return Export(None, inputs, reason, time.perf_counter() - started)
    return Export(graph, inputs, "", time.perf_counter() - started)


def _plain(value: object) -> object:
    return value.item() if hasattr(value, "item") else value


def _convert(twin: Estimator, inputs: dict[str, str]) -> onnx.ModelProto:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    register_converters()
    types = [(c, StringTensorType([None, 1]) if kind == "string" else FloatTensorType([None, 1]))
             for c, kind in inputs.items()]
    options = {id(twin): {"zipmap": False}} if hasattr(twin, "classes_") else None
    graph: onnx.ModelProto = convert_sklearn(twin, initial_types=types, options=options,
                                             target_opset=TARGET_OPSET)
    # skl2onnx's voting converter leaves a constant no node reads; every runtime warns of it.
    read = {name for node in graph.graph.node for name in node.input}
    unread = [i for i in graph.graph.initializer if i.name not in read]
    for initializer in unread:
        graph.graph.initializer.remove(initializer)
    return graph
