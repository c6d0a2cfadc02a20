"""The ONNX graph of a registered model predicts what its pickle predicts, on rows it never saw,
with levels unseen in training and missing values; what does not convert says why."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from explain_models import fit_final, table

from tasks.onnx.export import export_onnx
from tasks.onnx.runtime import OnnxScorer
from tasks.registry.scoring import predict_frame

FIT_ROWS = 500


def _held_out(name: str):
    """The table's rows past FIT_ROWS (300 of them), with a level no training row has, missing
    levels and missing numbers written in."""
    frame, target, task = table(name)
    rows = frame.iloc[FIT_ROWS:FIT_ROWS + 300].drop(columns=[target]).reset_index(drop=True)
    text = [c for c in rows.columns if not pd.api.types.is_numeric_dtype(rows[c])]
    numbers = [c for c in rows.columns if c not in text]
    rows = rows.astype({c: object for c in text})
    rows.loc[:9, text[0]] = "a level never seen"
    rows.loc[10:19, text[-1]] = None
    rows.loc[20:29, numbers[0]] = np.nan
    rows.loc[30:39, numbers[-1]] = np.nan
    return frame.iloc[:FIT_ROWS], target, task, rows


def _same_predictions(model, rows: pd.DataFrame, task: str) -> None:
    export = export_onnx(model)
    assert export.model is not None, export.reason
    onnx = OnnxScorer(export.model.SerializeToString()).predict_frame(rows)
    pickle = predict_frame(model, rows)
    assert list(onnx.columns) == list(pickle.columns)
    if task == "classification":
        assert (onnx["prediction"].astype(str) == pickle["prediction"].astype(str)).all()
        proba = [c for c in pickle.columns if c.startswith("proba_")]
        np.testing.assert_allclose(onnx[proba], pickle[proba], atol=1e-5)
    else:
        np.testing.assert_allclose(onnx["prediction"], pickle["prediction"], rtol=1e-4)


@pytest.mark.parametrize(("members", "onnx"), [
    (["lightgbm"], False),  # categories native
    (["logistic_regression"], False),  # one-hot, discrete numbers one-hot too, scaled
    (["knn"], False),
    (["xgboost"], True),  # labels encoded, categories one-hot
    (["random_forest"], True),
    (["lightgbm", "xgboost", "extra_trees", "logistic_regression"], True),
])
def test_credit_g_graphs_predict_as_the_pickle(members, onnx):
    fit, target, task, rows = _held_out("credit_g")
    _same_predictions(fit_final(fit, target, task, members, onnx=onnx), rows, task)


@pytest.mark.parametrize(("members", "onnx"), [
    (["lightgbm"], False),
    (["lasso_lars"], False),  # a standardised target
    (["lightgbm", "xgboost", "random_forest", "elastic_net"], True),
])
def test_california_housing_graphs_predict_as_the_pickle(members, onnx):
    fit, target, task, rows = _held_out("california_housing")
    _same_predictions(fit_final(fit, target, task, members, onnx=onnx), rows, task)


@pytest.mark.parametrize(("members", "reason"), [
    (["catboost"], "CatBoostClassifier (catboost) has no ONNX converter"),
    (["random_forest"], "RandomForestClassifier on category codes has no ONNX converter"),
    (["xgboost"], "XGBoost's native categories have no ONNX converter"),
])
def test_what_does_not_convert_says_which_part(members, reason):
    fit, target, task, _ = _held_out("credit_g")
    export = export_onnx(fit_final(fit, target, task, members))
    assert export.model is None
    assert export.reason.startswith(reason)


def test_a_temperature_is_named_as_what_does_not_convert():
    fit, target, task, _ = _held_out("credit_g")
    model = fit_final(fit, target, task, ["lightgbm", "logistic_regression"])
    model[-1].temperature = 1.7
    export = export_onnx(model)
    assert export.model is None and "temperature scaling (T=1.7)" in export.reason


def test_the_graph_states_its_inputs_and_classes():
    fit, target, task, _ = _held_out("credit_g")
    export = export_onnx(fit_final(fit, target, task, ["lightgbm"]))
    scorer = OnnxScorer(export.model.SerializeToString())
    assert scorer.classes == ["bad", "good"]
    assert scorer.inputs["purpose"] == "string" and scorer.inputs["duration"] == "float"
    graph_inputs = {i.name: i.type for i in scorer.session.get_inputs()}
    assert graph_inputs["purpose"] == "tensor(string)" and graph_inputs["age"] == "tensor(float)"


def test_a_file_that_is_not_a_graph_is_one_sentence(tmp_path):
    from support import run_cli

    (tmp_path / "model.onnx").write_bytes(b"not a graph")
    (tmp_path / "new.csv").write_text("a,b\n1,2\n")
    done = run_cli("predict", "--onnx", "--model", "model.onnx", "--data", "new.csv",
                   "--output", "out.csv", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("error: the model is not a readable ONNX graph (")
    assert done.stderr.strip().endswith("pass the onnx/model.onnx a run logged")
    assert len(done.stderr.strip().splitlines()) == 1
