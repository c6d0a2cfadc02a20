"""tasks.data.split: test set, then cross-validation, holdout or given validation rows."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from support import load

from tasks.data.split import CV_ROW_LIMIT, DEFAULT_FOLDS, DEFAULT_HOLDOUT
from tasks.config import parse_config
from tasks.errors import DataError
from tasks.data.inspect import inspect_data
from tasks.data.split import SplitPlan, split_data


def _split(frame, target, validation=None, test=None, **knobs):
    config = parse_config(training_data="x", target=target, **knobs)
    profile = inspect_data(config, frame, validation, test)
    return split_data(SplitPlan.of(config), profile, frame, validation, test)


def _ratio(y: np.ndarray, label) -> float:
    return float(np.mean(y == label))


@pytest.fixture(scope="module")
def credit() -> pd.DataFrame:
    return load("credit_g")


@pytest.fixture(scope="module")
def titanic() -> pd.DataFrame:
    return load("titanic")


@pytest.fixture(scope="module")
def abalone() -> pd.DataFrame:
    return load("abalone")


def _check_folds(data, n_rows: int) -> None:
    """In every fold, fit and validation rows are disjoint and together are all the rows."""
    for fit_rows, valid_rows in data.folds:
        assert len(fit_rows) and len(valid_rows)
        assert len(np.intersect1d(fit_rows, valid_rows)) == 0
        assert len(fit_rows) + len(valid_rows) == n_rows
        assert np.array_equal(np.union1d(fit_rows, valid_rows), np.arange(n_rows))


def _check_partition(data, n_rows: int) -> None:
    """Cross-validation: the validation rows cover every row exactly once."""
    _check_folds(data, n_rows)
    valid = data.valid_rows
    assert len(valid) == n_rows
    assert np.array_equal(np.sort(valid), np.arange(n_rows))


# ---------------------------------------------------------------- cross-validation


def test_default_cv_folds_partition_and_stratify(credit):
    data, held_out = _split(credit, "class")
    assert held_out is None
    assert len(data.folds) == DEFAULT_FOLDS
    assert "cross-validation" in data.scheme
    _check_partition(data, len(credit))
    overall = _ratio(credit["class"].to_numpy(), "bad")
    for _, valid_rows in data.folds:
        assert abs(_ratio(data.y[valid_rows], "bad") - overall) < 0.01
        assert len(valid_rows) == pytest.approx(len(credit) / DEFAULT_FOLDS, abs=1)


def test_cv_multiclass_stratified():
    frame = load("hpc_jobs")
    data, _ = _split(frame, "class", n_cross_validations=3)
    assert len(data.folds) == 3
    _check_partition(data, len(frame))
    y = frame["class"].to_numpy()
    for label in np.unique(y):
        for _, valid_rows in data.folds:
            assert abs(_ratio(data.y[valid_rows], label) - _ratio(y, label)) < 0.01


def test_cv_regression_partition(abalone):
    data, _ = _split(abalone, "Rings", task="regression", n_cross_validations=4)
    assert len(data.folds) == 4
    _check_partition(data, len(abalone))
    assert data.classes is None
    assert data.y_range == float(abalone["Rings"].max() - abalone["Rings"].min())
    np.testing.assert_array_equal(data.y_valid, abalone["Rings"].to_numpy()[data.valid_rows])


def test_cv_rows_keep_their_labels(credit):
    data, _ = _split(credit, "class")
    assert "class" not in data.X.columns
    assert len(data.X) == len(credit)
    np.testing.assert_array_equal(data.y, credit["class"].to_numpy())
    pd.testing.assert_frame_equal(data.X, credit.drop(columns="class").reset_index(drop=True))
    np.testing.assert_array_equal(data.refit_rows, np.arange(len(credit)))


def test_y_valid_are_codes_of_sorted_classes(credit):
    data, _ = _split(credit, "class")
    assert list(data.classes) == sorted(credit["class"].unique())
    codes = data.y_valid
    assert codes.dtype.kind in "iu"
    np.testing.assert_array_equal(data.classes[codes], data.y[data.valid_rows])


def test_split_is_reproducible_and_seeded(credit):
    first, _ = _split(credit, "class", random_state=3)
    again, _ = _split(credit, "class", random_state=3)
    other, _ = _split(credit, "class", random_state=4)
    np.testing.assert_array_equal(first.valid_rows, again.valid_rows)
    assert not np.array_equal(first.valid_rows, other.valid_rows)


# ---------------------------------------------------------------- holdout


@pytest.mark.parametrize("size", [0.1, 0.25])
def test_holdout_has_requested_size(credit, size):
    data, _ = _split(credit, "class", validation_size=size)
    assert len(data.folds) == 1
    (fit_rows, valid_rows), = data.folds
    assert len(valid_rows) == math.ceil(size * len(credit))
    _check_folds(data, len(credit))
    assert abs(_ratio(data.y[valid_rows], "bad") - _ratio(credit["class"].to_numpy(), "bad")) < 0.01
    # The final model is refit on every training row, the validation rows included.
    np.testing.assert_array_equal(data.refit_rows, np.arange(len(credit)))


def test_holdout_regression(abalone):
    data, _ = _split(abalone, "Rings", task="regression", validation_size=0.2)
    (fit_rows, valid_rows), = data.folds
    assert len(valid_rows) == math.ceil(0.2 * len(abalone))
    _check_folds(data, len(abalone))


# ---------------------------------------------------------------- given validation data


def test_given_validation_data_is_appended_and_only_validated_on(credit):
    train, valid = credit.iloc[:700], credit.iloc[700:]
    data, held_out = _split(train, "class", validation=valid, validation_data="v")
    assert held_out is None
    assert len(data.X) == len(train) + len(valid)
    (fit_rows, valid_rows), = data.folds
    np.testing.assert_array_equal(fit_rows, np.arange(len(train)))
    np.testing.assert_array_equal(valid_rows, np.arange(len(train), len(train) + len(valid)))
    np.testing.assert_array_equal(data.refit_rows, np.arange(len(train)))
    pd.testing.assert_frame_equal(
        data.X.iloc[valid_rows].reset_index(drop=True),
        valid.drop(columns="class").reset_index(drop=True),
    )
    np.testing.assert_array_equal(data.classes[data.y_valid], valid["class"].to_numpy())


# ---------------------------------------------------------------- test set


def test_test_size_moves_rows_to_held_out(titanic):
    data, held_out = _split(titanic, "Survived", test_size=0.2)
    n_test = math.ceil(0.2 * len(titanic))
    assert held_out is not None
    assert len(held_out.X) == len(held_out.y) == n_test
    assert len(data.X) == len(titanic) - n_test
    assert "Survived" not in held_out.X.columns
    # Names are unique in titanic: no passenger is in both, none is lost.
    assert titanic["Name"].is_unique
    train_names, test_names = set(data.X["Name"]), set(held_out.X["Name"])
    assert not train_names & test_names
    assert train_names | test_names == set(titanic["Name"])
    # Labels travel with their rows.
    truth = titanic.set_index("Name")["Survived"]
    np.testing.assert_array_equal(held_out.y, truth.loc[held_out.X["Name"]].to_numpy())
    np.testing.assert_array_equal(data.y, truth.loc[data.X["Name"]].to_numpy())
    # Stratified, and the search still cross-validates over the remaining rows only.
    assert abs(held_out.y.mean() - titanic["Survived"].mean()) < 0.01
    _check_partition(data, len(data.X))


def test_given_test_data_is_held_out_untouched(credit):
    train, test = credit.iloc[:800], credit.iloc[800:]
    data, held_out = _split(train, "class", test=test, test_data="t")
    assert len(data.X) == len(train)
    pd.testing.assert_frame_equal(held_out.X, test.drop(columns="class").reset_index(drop=True))
    np.testing.assert_array_equal(held_out.y, test["class"].to_numpy())


def test_weight_column_is_not_a_feature(abalone):
    frame = abalone.assign(w=abalone["Whole_weight"] + 0.1)
    data, held_out = _split(frame, "Rings", task="regression", weight_column="w", test_size=0.1)
    assert "w" not in data.X.columns and "w" not in held_out.X.columns
    assert held_out.weights is not None and len(held_out.weights) == len(held_out.y)
    np.testing.assert_array_equal(data.weights_valid, data.weights[data.valid_rows])
    # Weights stay with their rows: Whole_weight is still a feature.
    np.testing.assert_allclose(data.weights, data.X["Whole_weight"].to_numpy() + 0.1)


# ---------------------------------------------------------------- Azure's default scheme


def test_default_scheme_boundary():
    config = parse_config(training_data="x", target="y")
    assert SplitPlan.of(config).scheme(CV_ROW_LIMIT) == ("cv", DEFAULT_FOLDS)
    assert SplitPlan.of(config).scheme(CV_ROW_LIMIT + 1) == ("holdout", DEFAULT_HOLDOUT)
    assert DEFAULT_FOLDS == 5 and DEFAULT_HOLDOUT == pytest.approx(0.10) and CV_ROW_LIMIT == 20_000


def test_explicit_knobs_override_default_scheme():
    big = CV_ROW_LIMIT * 3
    def scheme(n_rows, **knobs):
        return SplitPlan.of(parse_config(training_data="x", target="y", **knobs)).scheme(n_rows)

    assert scheme(big, n_cross_validations=3) == ("cv", 3)
    assert scheme(10, validation_size=0.3) == ("holdout", 0.3)
    assert scheme(10, validation_data="v") == ("given", 0.0)


def test_default_is_cv_for_small_and_holdout_for_large_real_data(abalone):
    small = pd.concat([abalone] * 4, ignore_index=True)  # 16,708 rows
    large = pd.concat([abalone] * 5, ignore_index=True)  # 20,885 rows
    assert len(small) <= CV_ROW_LIMIT < len(large)
    data, _ = _split(small, "Rings", task="regression")
    assert len(data.folds) == DEFAULT_FOLDS
    _check_partition(data, len(small))
    data, _ = _split(large, "Rings", task="regression")
    assert len(data.folds) == 1
    (fit_rows, valid_rows), = data.folds
    assert len(valid_rows) == math.ceil(DEFAULT_HOLDOUT * len(large))
    _check_folds(data, len(large))


def test_default_scheme_counts_rows_after_test_split(abalone):
    # 21,000 rows, 10% of them set aside as a test set: 18,900 remain, so CV applies.
    frame = pd.concat([abalone] * 6, ignore_index=True).head(21_000)
    data, held_out = _split(frame, "Rings", task="regression", test_size=0.1)
    assert len(data.X) <= CV_ROW_LIMIT < len(frame)
    assert len(data.folds) == DEFAULT_FOLDS


# ---------------------------------------------------------------- the budget's folds


def test_a_budget_too_short_for_the_folds_takes_a_holdout():
    # letter: 20,000 rows, 26 classes. A 5-fold trial costs seconds; a 1-minute budget would
    # buy a handful of them. A holdout, said so in the guardrail report.
    frame = load("letter")
    data, _ = _split(frame, "lettr", experiment_timeout_minutes=1)
    assert len(data.folds) == 1 and data.scheme == "10% holdout"
    assert data.why.startswith("because a 5-fold trial would take about")
    assert "the 1-minute budget should buy at least 20 trials" in data.why
    # The budget of a working day: the default folds.
    data, _ = _split(frame, "lettr", experiment_timeout_minutes=480)
    assert len(data.folds) == DEFAULT_FOLDS
    assert data.why == "because the training data has 20,000 rows (<= 20,000)"
    # Folds the user chose are kept, whatever the budget.
    data, _ = _split(frame, "lettr", experiment_timeout_minutes=1, n_cross_validations=5)
    assert len(data.folds) == 5


# ---------------------------------------------------------------- regressions (bugs once found)


def _data_error_or_none(call):
    """Run call; a DataError is an acceptable answer, any other exception is the bug."""
    try:
        return call()
    except DataError:
        return None
    except Exception as exc:  # noqa: BLE001
        raise AssertionError(f"{type(exc).__name__} instead of a DataError: {exc}") from exc


def test_validation_data_without_weight_column(abalone):
    frame = abalone.assign(w=abalone["Whole_weight"] + 0.1)
    train, valid = frame.iloc[:3000], frame.iloc[3000:].drop(columns="w")
    result = _data_error_or_none(
        lambda: _split(train, "Rings", validation=valid, task="regression", weight_column="w",
                       validation_data="v")
    )
    if result is not None:
        data, _ = result
        assert np.isfinite(data.weights_valid).all()


def test_test_data_without_weight_column(abalone):
    frame = abalone.assign(w=abalone["Whole_weight"] + 0.1)
    train, test = frame.iloc[:3000], frame.iloc[3000:].drop(columns="w")
    result = _data_error_or_none(
        lambda: _split(
            train, "Rings", test=test, task="regression", weight_column="w", test_data="t"
        )
    )
    if result is not None:
        _, held_out = result
        assert len(held_out.y) == len(test)
        assert held_out.weights is None or np.isfinite(held_out.weights).all()


def test_holdout_after_test_split_with_a_tiny_class():
    frame = load("hypothyroid")
    assert frame["Class"].value_counts().min() == 2
    result = _data_error_or_none(
        lambda: _split(frame, "Class", validation_size=0.2, test_size=0.3)
    )
    if result is not None:
        data, held_out = result
        _check_folds(data, len(data.X))
        assert len(data.X) + len(held_out.y) == len(frame)
