"""tasks.features: column roles from the training rows, and preprocessing that takes raw rows."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from conftest import load

from tasks.features import MAX_ONEHOT_LEVELS, ColumnRoles, build_preprocessor, detect_roles


@pytest.fixture(scope="module")
def titanic() -> tuple[pd.DataFrame, np.ndarray]:
    frame = load("titanic")
    return frame.drop(columns="Survived"), frame["Survived"].to_numpy()


@pytest.fixture(scope="module")
def roles(titanic) -> ColumnRoles:
    return detect_roles(titanic[0])


def test_titanic_identifiers_are_dropped(roles):
    assert roles.dropped.get("Name") == "identifier-like"
    assert roles.dropped.get("Ticket") == "identifier-like"
    assert "Name" not in roles.used and "Ticket" not in roles.used


def test_titanic_roles(roles, titanic):
    X, _ = titanic
    assert set(roles.categorical) == {"Sex", "Embarked"}
    assert "Age" in roles.numeric and "Fare" in roles.numeric and "Pclass" in roles.numeric
    assert roles.high_cardinality == ("Cabin",)
    # Every column gets exactly one role.
    assert sorted(roles.used + tuple(roles.dropped)) == sorted(X.columns)
    assert len(set(roles.used)) == len(roles.used)


def test_summary_lists_dropped_with_reason(roles):
    summary = roles.summary()
    assert "Name (identifier-like)" in summary["dropped"]
    assert summary["high_cardinality"] == ["Cabin"]


def test_constant_and_all_missing_columns_are_dropped(titanic):
    X = titanic[0].copy()
    X["constant_text"] = "same"
    X["constant_number"] = 3.0
    X["constant_with_gaps"] = np.where(X["Age"].isna(), np.nan, 1.0)
    X["all_missing"] = np.nan
    X["all_missing_text"] = pd.Series([None] * len(X), dtype="string")
    roles = detect_roles(X)
    assert roles.dropped["constant_text"] == "constant"
    assert roles.dropped["constant_number"] == "constant"
    assert roles.dropped["constant_with_gaps"] == "constant"
    assert roles.dropped["all_missing"] == "all missing"
    assert roles.dropped["all_missing_text"] == "all missing"
    for name in ("constant_text", "constant_number", "constant_with_gaps", "all_missing"):
        assert name not in roles.used


def test_bool_column_is_categorical(titanic):
    X = titanic[0].assign(is_child=titanic[0]["Age"] < 16)
    assert X["is_child"].dtype == bool
    assert "is_child" in detect_roles(X).categorical


def test_many_levels_become_high_cardinality_not_identifier():
    # hpc_jobs' numeric 'compounds' as text: many levels, but far fewer than the rows.
    frame = load("hpc_jobs")
    X = frame[["protocol", "day"]].assign(compounds_text=frame["compounds"].astype(str))
    n_levels = X["compounds_text"].nunique()
    assert MAX_ONEHOT_LEVELS < n_levels < 0.5 * len(X)
    roles = detect_roles(X)
    assert roles.high_cardinality == ("compounds_text",)
    assert set(roles.categorical) == {"protocol", "day"}


def _fit(roles, X, y, scale=False, task="classification"):
    return build_preprocessor(roles, scaling="standard" if scale else None, task=task).fit(X, y)


@pytest.mark.parametrize("scale", [False, True])
def test_output_has_no_missing_values(titanic, roles, scale):
    X, y = titanic
    assert X[list(roles.used)].isna().any().any(), "the data must have gaps to fill"
    out = _fit(roles, X, y, scale).transform(X)
    assert out.shape[0] == len(X)
    assert np.isfinite(np.asarray(out, dtype=float)).all()


def test_fit_transform_matches_fit_then_transform_shape(titanic, roles):
    X, y = titanic
    pre = build_preprocessor(roles, scaling="standard", task="classification")
    out = pre.fit_transform(X, y)
    assert out.shape == pre.transform(X).shape
    assert len(pre.get_feature_names_out()) == out.shape[1]


def test_scaling_standardises_numeric_columns(titanic, roles):
    X, y = titanic
    pre = _fit(roles, X, y, scale=True)
    out = pd.DataFrame(pre.transform(X), columns=pre.get_feature_names_out())
    for name in roles.numeric:
        assert out[name].mean() == pytest.approx(0.0, abs=1e-9)
        assert out[name].std(ddof=0) == pytest.approx(1.0, rel=1e-6)
    unscaled = _fit(roles, X, y, scale=False)
    raw = pd.DataFrame(unscaled.transform(X), columns=unscaled.get_feature_names_out())
    assert raw["Fare"].to_numpy() == pytest.approx(X["Fare"].to_numpy())


def _trouble_rows(X: pd.DataFrame) -> pd.DataFrame:
    rows = X.head(6).copy()
    for name in ("Sex", "Embarked", "Cabin"):
        rows[name] = rows[name].astype(object)
    rows.loc[0, ["Sex", "Embarked", "Cabin"]] = ["unknown-sex", "Z", "Z999"]  # unseen categories
    rows.loc[1, ["Age", "Fare", "Pclass"]] = np.nan  # missing where training had none (Fare)
    rows.loc[2, ["Sex", "Embarked", "Cabin"]] = np.nan
    rows["Passenger_note"] = "an extra column"  # not seen in training
    rows = rows.drop(columns=["Name", "Ticket"])  # unused columns may be absent
    return rows[list(reversed(rows.columns))]


@pytest.mark.parametrize("scale", [False, True])
def test_transform_handles_unseen_missing_and_extra(titanic, roles, scale):
    X, y = titanic
    pre = _fit(roles, X, y, scale)
    rows = _trouble_rows(X)
    out = np.asarray(pre.transform(rows), dtype=float)
    assert out.shape == (len(rows), len(pre.get_feature_names_out()))
    assert np.isfinite(out).all()
    names = list(pre.get_feature_names_out())
    # The unseen category lights none of the seen one-hot columns of Sex.
    seen_sex = [i for i, n in enumerate(names) if n in ("Sex_male", "Sex_female")]
    assert out[0, seen_sex].sum() == 0
    # Clean rows transform exactly as they do inside the full table.
    clean = np.asarray(pre.transform(X.head(6)), dtype=float)
    np.testing.assert_allclose(out[3:], clean[3:])


def test_transform_missing_numeric_is_imputed_with_training_median(titanic, roles):
    X, y = titanic
    pre = _fit(roles, X, y, scale=False)
    rows = _trouble_rows(X)
    out = pd.DataFrame(pre.transform(rows), columns=pre.get_feature_names_out())
    assert out.loc[1, "Fare"] == pytest.approx(X["Fare"].median())
    assert out.loc[1, "Age"] == pytest.approx(X["Age"].median())
    assert out.loc[1, "missingindicator_Age"] == 1.0


def test_regression_target_encoding(titanic):
    X = titanic[0].drop(columns="Fare")
    y = titanic[0]["Fare"].to_numpy()
    roles = detect_roles(X)
    assert roles.high_cardinality == ("Cabin",)
    pre = _fit(roles, X, y, task="regression")
    rows = _trouble_rows(titanic[0])
    out = pd.DataFrame(pre.transform(rows), columns=pre.get_feature_names_out())
    assert np.isfinite(out.to_numpy(dtype=float)).all()
    # Cabin is encoded as a continuous target mean: values lie within the range of the target.
    assert out["Cabin"].between(y.min(), y.max()).all()


def test_preprocessor_pickles(titanic, roles):
    X, y = titanic
    pre = _fit(roles, X, y, scale=True)
    clone = pickle.loads(pickle.dumps(pre))
    rows = _trouble_rows(X)
    np.testing.assert_array_equal(clone.transform(rows), pre.transform(rows))


def test_featurization_off_passes_numeric_as_given(titanic, roles):
    X, y = titanic
    pre = build_preprocessor(roles, scaling="standard", task="classification", featurize=False).fit(X, y)
    out = np.asarray(pre.transform(X), dtype=float)
    np.testing.assert_array_equal(out, X[list(roles.numeric)].to_numpy(dtype=float))
