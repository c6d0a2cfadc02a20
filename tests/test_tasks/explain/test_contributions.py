"""Per-row contributions of real refitted models add up to the output they state, on the raw
columns, for every method: a booster's own, tree SHAP, coefficients, weighted members, sampled."""

from __future__ import annotations

import numpy as np
import pytest
from explain_models import fit_final, table

from tasks.explain import explain, explanation_frame
from tasks.features.preprocess import required_columns

# (table, members, method the explanation must use, output space, tolerance of the sum).
# 1e-4 where the model computes its margin in float32 (XGBoost, a linear model on the float32
# features): a log-odds near a probability of 0 or 1 amplifies that rounding.
CASES = [
    ("credit_g", ["lightgbm"], "LGBMClassifier", "margin (log-odds) of 'good'", 1e-6),
    ("credit_g", ["xgboost"], "XGBClassifier", "margin (log-odds) of 'good'", 1e-4),
    ("credit_g", ["catboost"], "CatBoostClassifier", "margin (log-odds) of 'good'", 1e-6),
    ("credit_g", ["random_forest"], "RandomForestClassifier", "probability of 'good'", 1e-6),
    ("credit_g", ["logistic_regression"], "LogisticRegression", "margin (log-odds) of 'good'",
     1e-4),
    ("credit_g", ["random_forest", "extra_trees"], "weighted members", "probability of 'good'",
     1e-6),
    # Margins and probabilities do not average: the ensemble itself is sampled.
    ("credit_g", ["lightgbm", "random_forest", "logistic_regression"], "sampled",
     "probability of 'good'", 1e-9),
    ("california_housing", ["lightgbm"], "LGBMRegressor", "prediction", 1e-6),
    ("california_housing", ["random_forest"], "RandomForestRegressor", "prediction", 1e-6),
    ("california_housing", ["lightgbm", "random_forest", "lasso_lars"], "weighted members",
     "prediction", 1e-6),
]


@pytest.mark.parametrize(("name", "members", "method", "output", "tolerance"), CASES,
                         ids=[f"{c[0]}-{'+'.join(c[1])}" for c in CASES])
def test_contributions_add_up_to_the_stated_output(name, members, method, output, tolerance):
    frame, target, task = table(name, rows=None if name == "credit_g" else 1500)
    model = fit_final(frame.iloc[:-200], target, task, members, weights=[2.0, 1.0, 1.0][
        :len(members)])
    rows = frame.iloc[-200:].drop(columns=target)  # held out: not the rows it was fitted on
    explained = explain(model, rows)
    assert (explained.method, explained.output_name) == (method, output)
    total = explained.base_value + explained.contributions.to_numpy().sum(axis=1)
    # Relative too: house values are ~1e5 and a float32 model rounds them at ~1e-2.
    np.testing.assert_allclose(total, explained.output, rtol=tolerance, atol=tolerance)
    # The stated output is the model's own, not the sum's.
    proba = model.predict_proba(rows)[:, 1].astype(float) if task == "classification" else None
    own = (model.predict(rows) if proba is None else
           np.log(proba / (1 - proba)) if output.startswith("margin") else proba)
    np.testing.assert_allclose(explained.output, own, rtol=0, atol=1e-9)
    # Exactly the raw columns the model reads, in input order; the categories matter.
    assert list(explained.contributions.columns) == required_columns(model)
    assert explained.contributions.abs().sum().gt(0).sum() >= 3


def test_one_hot_groups_add_up_to_their_raw_column():
    """A linear model's contribution of a category column is the sum of its one-hot features'
    coefficient times value: the mapping back sums the group, not one level of it."""
    frame, target, task = table("credit_g")
    model = fit_final(frame, target, task, ["logistic_regression"])
    rows = frame.iloc[:50].drop(columns=target)
    explained = explain(model, rows)
    features, linear = model[:-1], model[-1]
    names = features.get_feature_names_out()
    encoded = np.asarray(features.transform(rows), dtype=float) * linear.coef_[0]
    group = [i for i, n in enumerate(names) if n.startswith("checking_status_")]
    assert len(group) >= 3
    np.testing.assert_allclose(explained.contributions["checking_status"],
                               encoded[:, group].sum(axis=1), atol=1e-9)


def test_one_row_maps_back_as_a_batch_does():
    """A single row cannot be probed by rotating values: the feature names map it back, and its
    exact contributions equal the ones it gets among other rows."""
    frame, target, task = table("credit_g")
    model = fit_final(frame, target, task, ["logistic_regression"])
    rows = frame.iloc[:30].drop(columns=target)
    batch = explain(model, rows).contributions
    for i in (0, 7):
        alone = explain(model, rows.iloc[[i]]).contributions
        np.testing.assert_allclose(alone.to_numpy()[0], batch.to_numpy()[i], atol=1e-9)


def test_explanation_frame_carries_the_columns_a_reader_checks():
    frame, target, task = table("credit_g")
    model = fit_final(frame, target, task, ["lightgbm"])
    rows = frame.iloc[:20].drop(columns=target)
    out = explanation_frame(explain(model, rows))
    raw = required_columns(model)
    assert list(out.columns) == [f"contrib_{c}" for c in raw] + ["base_value", "explained_output"]
    np.testing.assert_allclose(out.iloc[:, :-1].sum(axis=1), out["explained_output"], atol=1e-6)


def test_multiclass_explains_the_predicted_class_probability():
    """hpc_jobs (4 classes): each row's predicted class, sampled; the sum is that probability."""
    frame, target, task = table("hpc_jobs", rows=800)
    model = fit_final(frame.iloc[:-100], target, task, ["lightgbm"])
    rows = frame.iloc[-100:].drop(columns=target)
    explained = explain(model, rows)
    assert (explained.method, explained.output_name) == (
        "sampled", "probability of the predicted class")
    np.testing.assert_allclose(explained.output, model.predict_proba(rows).max(axis=1),
                               atol=1e-9)
    total = explained.base_value + explained.contributions.to_numpy().sum(axis=1)
    np.testing.assert_allclose(total, explained.output, atol=1e-9)
    assert list(explained.contributions.columns) == required_columns(model)


def test_sampled_values_estimate_the_exact_ones():
    """The sampled explainer against a forest's exact tree SHAP on the same probability: the
    same strongest column for most rows, and close values (the estimate's stated precision)."""
    frame, target, task = table("credit_g")
    model = fit_final(frame, target, task, ["random_forest"])
    rows = frame.iloc[:200].drop(columns=target)
    exact = explain(model, rows).contributions.to_numpy()
    from tasks.explain.contributions import _sampled

    sampled = _sampled(model, rows.reset_index(drop=True), list(rows.columns), frame.drop(
        columns=target), 0, 0.0).contributions.to_numpy()
    # Different baselines (the forest's training average vs 10 background rows): compare
    # the rows' deviations from the column means, which the baseline does not shift.
    exact, sampled = exact - exact.mean(axis=0), sampled - sampled.mean(axis=0)
    agree = np.mean(np.argmax(np.abs(exact), 1) == np.argmax(np.abs(sampled), 1))
    error = np.sqrt(np.mean((exact - sampled) ** 2)) / np.sqrt(np.mean(exact ** 2))
    print(f"strongest column agrees on {agree:.0%} of rows; relative RMS error {error:.2f}")
    assert agree > 0.7 and error < 0.4  # measured: 79%, 0.33 (10 permutations a row)
