"""enable_onnx_compatible_models: only families and featurization that convert."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tasks.config import parse_config
from tasks.data.inspect import inspect_data
from tasks.data.split import SplitPlan, split_data
from tasks.errors import ConfigError
from tasks.final.choice import VOTING, Choice
from tasks.final.refit import refit_model
from tasks.models.families import resolve_families
from tasks.onnx.export import export_onnx
from tasks.onnx.runtime import OnnxScorer
from tasks.registry.scoring import predict_frame
from tasks.search.candidates import Candidate, TrialResult


def test_the_search_keeps_only_families_that_convert():
    every = resolve_families("classification")
    portable = resolve_families("classification", onnx=True)
    assert {"catboost", "mlp", "gradient_boosting"} & set(every)
    assert not {"catboost", "mlp", "gradient_boosting"} & set(portable)
    assert set(portable) < set(every)
    with pytest.raises(ConfigError, match=r"^enable_onnx_compatible_models leaves no model to "
                       r"try: CatBoost do not export to ONNX; allow at least one of: .*LightGBM"):
        resolve_families("classification", ["CatBoost"], onnx=True)


def _messy(rows: int = 400) -> pd.DataFrame:
    """Numbers, a category, free text and dates; the label depends on the text and a number."""
    rng = np.random.default_rng(0)
    words = np.array(["fast delivery", "broken on arrival", "works as described", "late again",
                      "great value for money", "never arrived at all"])
    said = rng.integers(0, len(words), rows)
    amount = rng.normal(50, 20, rows)
    return pd.DataFrame({
        "amount": amount,
        "shop": rng.choice(["north", "south", "east"], rows),
        "review": [f"{words[i]} {j}" for i, j in zip(said, rng.integers(0, 40, rows),
                                                      strict=True)],
        "ordered": pd.date_range("2024-01-01", periods=rows, freq="D").astype(str),
        "label": np.where((said % 2 == 0) ^ (amount > 60), "happy", "unhappy"),
    })


def test_text_is_target_encoded_dates_dropped_and_the_model_converts():
    frame = _messy()
    usual = inspect_data(parse_config(training_data="messy.parquet", target="label"),
                         frame.iloc[:300])
    assert usual.roles.text == ("review",) and usual.roles.datetime == ("ordered",)
    config = parse_config(training_data="messy.parquet", target="label", n_cross_validations=3,
                          enable_onnx_compatible_models=True)
    profile = inspect_data(config, frame.iloc[:300])
    assert profile.roles.datetime == () and profile.roles.text == ()
    assert "review" in profile.roles.high_cardinality
    assert "calendar parts do not export to ONNX" in profile.roles.dropped["ordered"]
    from flows.steps import trial_settings

    data, _ = split_data(SplitPlan.of(config), profile, frame.iloc[:300])
    settings = trial_settings(config, profile, data)
    members = tuple(TrialResult(Candidate(i, key, {}), True)
                    for i, key in enumerate(["lightgbm", "random_forest", "logistic_regression"]))
    model = refit_model(Choice(members, (1.0, 1.0, 1.0), {}, VOTING), data, settings)
    export = export_onnx(model)
    assert export.model is not None, export.reason
    assert "ordered" not in export.inputs and export.inputs["review"] == "string"
    rows = frame.iloc[300:].drop(columns=["label"]).reset_index(drop=True)
    rows.loc[:4, "review"] = "a review no one wrote"
    rows.loc[5:9, "shop"] = None
    onnx = OnnxScorer(export.model.SerializeToString()).predict_frame(rows)
    pickle = predict_frame(model, rows)
    assert (onnx["prediction"] == pickle["prediction"]).all()
    np.testing.assert_allclose(onnx[["proba_happy", "proba_unhappy"]],
                               pickle[["proba_happy", "proba_unhappy"]], atol=1e-5)
