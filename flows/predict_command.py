"""`automl predict` and `automl explain`: score (with the pickle or its ONNX graph) and explain a
table with a trained model. Each loads what it needs only once it runs."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import argparse

    import pandas as pd
    from rich.console import Console

    from tasks.types import Estimator, Json

__all__ = ["predict"]


def predict(args: argparse.Namespace, console: Console) -> int:
    """`automl predict` (--onnx, --explain) and `automl explain`."""
    from tasks.config import default_tracking_uri
    from tasks.data.credentials import storage_options
    from tasks.data.encodings import UNKNOWN_ENCODING, known_encoding
    from tasks.data.storage import public_url, read_table, write_table
    from tasks.errors import ConfigError
    from tasks.registry.scoring import load_model, predict_frame

    options = storage_options(args.storage_options, args.storage_secret)
    if getattr(args, "onnx", False):
        return _predict_onnx(args, console, options)
    model = load_model(args.model, args.tracking_uri or default_tracking_uri())
    if args.encoding is not None and not known_encoding(args.encoding):
        raise ConfigError(f"encoding={args.encoding!r} is invalid: {UNKNOWN_ENCODING}.")
    frame = read_table(args.data, what="data to score", storage_options=options,
                       encoding=args.encoding)
    if args.command == "explain" or args.explain:
        return _explain(args, console, model, frame, options)
    scored = predict_frame(model, frame)
    write_table(scored, args.output, storage_options=options)
    console.print(f"wrote {len(scored)} predictions to {public_url(args.output)}", highlight=False)
    return 0


def _predict_onnx(args: argparse.Namespace, console: Console, options: Json | None) -> int:
    """`automl predict --onnx`: the exported graph on onnxruntime, as outside Python."""
    from tasks.config import default_tracking_uri
    from tasks.data.storage import public_url, read_table, write_table
    from tasks.errors import ConfigError
    from tasks.onnx.runtime import OnnxScorer
    from tasks.registry.scoring import load_onnx

    if args.explain:
        raise ConfigError("--explain reads the pickled model, which --onnx does not load; "
                          "drop one of them")
    scorer = OnnxScorer(load_onnx(args.model, args.tracking_uri or default_tracking_uri()))
    frame = read_table(args.data, what="data to score", storage_options=options,
                       encoding=args.encoding)
    scored = scorer.predict_frame(frame)
    write_table(scored, args.output, storage_options=options)
    console.print(f"wrote {len(scored)} predictions to {public_url(args.output)} "
                  "(ONNX graph, onnxruntime)", highlight=False)
    return 0


def _explain(args: argparse.Namespace, console: Console, model: Estimator, frame: pd.DataFrame,
             options: Json | None) -> int:
    """`automl explain`, and `automl predict --explain` (the contributions beside the
    predictions); shap and the explainers load only here."""
    from tasks.data.storage import public_url, write_table
    from tasks.explain import explain, explanation_frame
    from tasks.registry.scoring import explained_as, predict_explained

    if args.command == "predict":
        out, explained = predict_explained(model, frame)
    else:
        explained = explain(model, frame)
        out = explanation_frame(explained)
    write_table(out, args.output, storage_options=options)
    console.print(f"wrote {len(out)} explained rows to {public_url(args.output)}: "
                  f"{explained_as(explained)}", highlight=False, soft_wrap=True)
    return 0
