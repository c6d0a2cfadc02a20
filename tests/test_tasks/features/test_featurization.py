"""tasks.features.preprocess: column roles from the training rows, and preprocessing that takes raw rows."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from support import load
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from tasks.features.encoders import DatetimeFeatures
from tasks.features.columns import looks_like_dates
from tasks.features.settings import ColumnOverride
from tasks.config import parse_config
from tasks.errors import ConfigError, DataError
from tasks.models.ensembles import EnsembleClassifier
from tasks.features.preprocess import TEXT_MAX_FEATURES, build_preprocessor, required_columns
from tasks.features.roles import MAX_ONEHOT_LEVELS
from tasks.features.roles import ColumnRoles, detect_roles

SCALINGS = [None, "standard", "minmax"]
WORDS = ("the quick brown fox jumps over lazy dog engine wheel battery rusty new old fast slow "
         "red blue").split()


@pytest.fixture(scope="module")
def titanic() -> tuple[pd.DataFrame, np.ndarray]:
    frame = load("titanic")
    return frame.drop(columns="Survived"), frame["Survived"].to_numpy()


@pytest.fixture(scope="module")
def roles(titanic) -> ColumnRoles:
    return detect_roles(titanic[0])


def _mixed(n: int = 240, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """One column of every role, with gaps, and a target that depends on several of them."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2021-01-01")
    X = pd.DataFrame({
        "row_id": np.arange(1, n + 1),
        "visited": start + pd.to_timedelta(rng.integers(0, 730 * 24, n), unit="h"),
        "signup": (start + pd.to_timedelta(rng.integers(0, 1000, n), unit="D")).strftime(
            "%d/%m/%Y"),
        "notes": [" ".join(rng.choice(WORDS, rng.integers(4, 12))) for _ in range(n)],
        "member": rng.random(n) < 0.4,
        "constant": "same",
        "empty": np.nan,
        "size": rng.choice(["S", "M", "L"], n),
        "children": rng.integers(0, 4, n),
        "zip": rng.choice(np.arange(10_000, 10_080), n),
        "amount": rng.gamma(2.0, 50.0, n),
    })
    X.loc[::17, "amount"] = np.nan
    X.loc[::23, "visited"] = pd.NaT
    X.loc[::29, "notes"] = None
    X.loc[::31, "size"] = None
    y = ((X["amount"].fillna(100) > 100) ^ X["notes"].fillna("").str.contains("fox")).astype(int)
    return X, y.to_numpy()


@pytest.fixture(scope="module")
def mixed() -> tuple[pd.DataFrame, np.ndarray]:
    return _mixed()


def _fit(roles, X, y, scaling=None, task="classification"):
    return build_preprocessor(roles, scaling=scaling, task=task).fit(X, y)


def _frame(pre, X) -> pd.DataFrame:
    return pd.DataFrame(pre.transform(X), columns=pre.get_feature_names_out())


# ---------------------------------------------------------------- roles


def test_titanic_roles(roles, titanic):
    X, _ = titanic
    assert roles.text == ("Name",)  # "Braund, Mr. Owen Harris": several words, unique per row
    assert roles.dropped == {"Ticket": "identifier-like"}
    assert roles.high_cardinality == ("Cabin",)
    assert set(roles.categorical) == {"Sex", "Embarked"}
    assert {"Age", "Fare", "Pclass", "SibSp", "Parch"} == set(roles.numeric)
    assert set(roles.discrete) == {"Pclass", "SibSp", "Parch"}  # whole numbers, 3..10 values
    # Every column gets exactly one role.
    assert sorted(roles.used + tuple(roles.dropped)) == sorted(X.columns)
    assert len(set(roles.used)) == len(roles.used)


def test_summary_lists_every_role_and_dropped_with_reason(roles):
    summary = roles.summary()
    assert "Ticket (identifier-like)" in summary["dropped"]
    assert summary["high_cardinality"] == ["Cabin"]
    assert summary["text"] == ["Name"]
    assert all(isinstance(v, list) for v in summary.values())


def test_mixed_table_roles(mixed):
    roles = detect_roles(mixed[0])
    assert roles.dropped == {
        "row_id": "identifier-like", "constant": "constant", "empty": "all missing"}
    assert roles.datetime == ("visited", "signup")  # a datetime64 column and dd/mm/yyyy text
    assert roles.text == ("notes",)
    assert roles.boolean == ("member",)
    assert roles.categorical == ("size",)
    assert roles.numeric == ("children", "zip", "amount")
    assert roles.discrete == ("children",)


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


def test_booleans_with_and_without_gaps(titanic):
    X = titanic[0].assign(is_child=titanic[0]["Age"] < 16)
    X["known_child"] = (X["Age"] < 16).astype(object).where(X["Age"].notna(), None)
    assert X["is_child"].dtype == bool and X["known_child"].dtype == object
    roles = detect_roles(X)
    assert roles.boolean == ("is_child", "known_child")
    out = _frame(_fit(roles, X, titanic[1]), X)
    np.testing.assert_array_equal(out["is_child_True"], X["is_child"].astype(float))
    assert out["known_child_missing"].sum() == X["Age"].isna().sum()


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        (np.arange(100), "identifier-like"),  # a monotonic row number
        (np.random.default_rng(0).permutation(np.arange(1, 101)), "identifier-like"),  # shuffled
        (np.random.default_rng(0).choice(10**6, 100, replace=False), None),  # unique, no run
        (np.arange(100) * 1.5, None),  # unique and monotonic, but not whole numbers
    ],
)
def test_integer_row_ids_are_dropped(values, reason):
    frame = pd.DataFrame({"x": values, "y": np.arange(100) % 7})
    roles = detect_roles(frame)
    assert roles.dropped.get("x") == reason
    assert ("x" in roles.numeric) == (reason is None)


def test_many_levels_become_high_cardinality_not_identifier():
    # hpc_jobs' numeric 'compounds' as text: many levels, but far fewer than the rows.
    frame = load("hpc_jobs")
    X = frame[["protocol", "day"]].assign(compounds_text=frame["compounds"].astype(str))
    n_levels = X["compounds_text"].nunique()
    assert MAX_ONEHOT_LEVELS < n_levels < 0.5 * len(X)
    roles = detect_roles(X)
    assert roles.high_cardinality == ("compounds_text",)
    assert set(roles.categorical) == {"protocol", "day"}


@pytest.mark.parametrize(
    ("values", "dates"),
    [
        (["2020-01-31", "2021-12-01", "2019-07-04 10:30:00"], True),
        (["31/01/2020", "01/12/2021", "04/07/2019"], True),
        (["Jan 31, 2020", "Dec 1, 2021", "Jul 4, 2019"], True),
        (["2020-01-31T10:00:00+01:00", "2020-06-30T10:00:00+02:00", "2021-01-01T00:00:00Z"], True),
        (["2649", "330923", "113803"], False),  # numbers pandas alone would read as years
        (["12.5", "3.25", "7.0"], False),
        (["A/5 21171", "PC 17599", "STON/O2. 3101282"], False),
        (["192.168.1.1", "10.0.0.12", "172.16.0.1"], False),
        (["small", "medium", "large"], False),
    ],
)
def test_date_text_is_recognised(values, dates):
    assert looks_like_dates(pd.Series(values * 5)) is dates


# ---------------------------------------------------------------- transforms


@pytest.mark.parametrize("scaling", SCALINGS)
def test_every_role_transforms_dense_without_missing_values(mixed, scaling):
    X, y = mixed
    roles = detect_roles(X)
    assert X[list(roles.used)].isna().any().sum() >= 4, "the data must have gaps to fill"
    pre = _fit(roles, X, y, scaling)
    out = pre.transform(X)
    # Every block ends in float32: one float64 block would make the whole matrix float64.
    assert isinstance(out, np.ndarray) and out.dtype == np.float32
    assert out.shape == (len(X), len(pre.get_feature_names_out()))
    assert np.isfinite(out).all()
    names = set(pre.get_feature_names_out())
    assert {"amount", "missingindicator_amount", "size_S", "member_True", "visited_hour",
            "signup_day", "notes_tfidf_fox"} <= names
    assert not any(n.startswith(("row_id", "constant", "empty")) for n in names)


@pytest.mark.parametrize("dataset", ["mixed", "titanic"])
def test_minmax_output_is_within_zero_and_one(dataset, mixed, titanic):
    X, y = mixed if dataset == "mixed" else titanic
    pre = _fit(detect_roles(X), X, y, "minmax")
    for rows in (X, _trouble(X)):
        out = pre.transform(rows)
        assert out.min() >= 0.0 and out.max() <= 1.0


def test_datetime_expansion_of_known_dates():
    stamps = ["2020-02-29 13:45", "2021-12-31 00:00", None, "2019-07-04 08:05"]
    X = pd.DataFrame({"when": pd.to_datetime(pd.Series(stamps)), "when_text": stamps})
    roles = detect_roles(X)
    assert roles.datetime == ("when", "when_text")
    pre = _fit(roles, X, None)
    out = _frame(pre, X)
    # A datetime column that arrives as text (read from a CSV) gives the same numbers.
    np.testing.assert_array_equal(pre.transform(X.astype({"when": str})), out.to_numpy())
    expected = {  # Saturday, Friday, (missing), Thursday; Monday is 0
        "year": [2020, 2021, 2020, 2019], "month": [2, 12, 7, 7], "day": [29, 31, 29, 4],
        "day_of_week": [5, 4, 4, 3], "day_of_year": [60, 365, 185, 185],
        "quarter": [1, 4, 3, 3], "hour": [13, 0, 8, 8], "minute": [45, 0, 5, 5],
        "missing": [0, 0, 1, 0],
    }  # the missing row gets each part's training median
    for name in ("when", "when_text"):
        for part, values in expected.items():
            np.testing.assert_array_equal(out[f"{name}_{part}"], values, err_msg=f"{name}_{part}")
        assert f"{name}_second" not in out  # constant in training: no information
    assert not any(c.startswith("missingindicator") for c in out.columns)  # one flag a date
    # Text that is not a date at predict time is a missing date, not a crash.
    later = X.assign(when_text=["not a date", "2022-03-01 09:00", None, "2019-07-04 08:05"])
    parts = DatetimeFeatures().fit(X[["when_text"]]).transform(later[["when_text"]])
    assert np.isnan(parts[0, 0]) and parts[1, 0] == 2022


def test_tfidf_width_is_bounded_and_has_word_pairs():
    rng = np.random.default_rng(1)
    vocabulary = [f"word{i}" for i in range(3000)]
    phrases = ["not good", "very good"]
    X = pd.DataFrame({
        "review": [" ".join([*rng.choice(vocabulary, 12), phrases[i % 2]]) for i in range(400)],
        "stars": rng.integers(1, 6, 400),
    })
    roles = detect_roles(X)
    assert roles.text == ("review",)
    pre = _fit(roles, X, rng.integers(0, 2, 400))
    names = [n for n in pre.get_feature_names_out() if n.startswith("review_tfidf_")]
    assert len(names) == TEXT_MAX_FEATURES
    assert {"review_tfidf_not good", "review_tfidf_very good"} <= set(names)  # word pairs too
    unseen = X.head(2).assign(review=["zebra quantum", None])
    assert not pre.transform(unseen)[:, 1:].any()  # unseen words and missing text: all zero


@pytest.mark.parametrize("onehot", [None, True, False])
@pytest.mark.parametrize("scaling", SCALINGS)
def test_discrete_numbers_are_one_hot_for_scaled_models(titanic, roles, scaling, onehot):
    X, y = titanic
    pre = build_preprocessor(roles, scaling=scaling, task="classification", onehot_discrete=onehot)
    names = set(pre.fit(X, y).get_feature_names_out())
    assert "Pclass" in names
    expected = scaling is not None if onehot is None else onehot
    assert ({"Pclass_1", "Pclass_2", "Pclass_3"} <= names) == expected


def test_scaling_standardises_numeric_columns(titanic, roles):
    X, y = titanic
    out = _frame(_fit(roles, X, y, "standard"), X)
    for name in roles.numeric:
        # Scaled in float64, then stored in float32 (7 significant digits).
        assert out[name].astype("float64").mean() == pytest.approx(0.0, abs=1e-6)
        assert out[name].astype("float64").std(ddof=0) == pytest.approx(1.0, rel=1e-6)
    raw = _frame(_fit(roles, X, y, None), X)
    assert raw["Fare"].to_numpy() == pytest.approx(X["Fare"].to_numpy(), rel=1e-6)


# ---------------------------------------------------------------- predict time


def _trouble(X: pd.DataFrame) -> pd.DataFrame:
    """Six rows as they come at predict time; rows 3 and later are clean."""
    rows = X.head(6).copy()
    if "children" in rows:  # whole numbers that arrive as floats: level 3 must stay level 3
        rows["children"] = rows["children"].astype(float)
    rows = rows.astype(object).reset_index(drop=True)
    if "Sex" in rows:  # titanic
        rows.loc[0, ["Sex", "Embarked", "Cabin"]] = ["unknown-sex", "Z", "Z999"]
        rows.loc[1, ["Age", "Fare", "Pclass"]] = np.nan  # Fare and Pclass had no gaps
        rows.loc[2, ["Sex", "Embarked", "Cabin", "Name"]] = np.nan
        dropped = ["Ticket"]
    else:  # the mixed table
        rows.loc[0, ["size", "notes", "signup"]] = ["XXL", "zebra quantum words", "not a date"]
        rows.loc[1, ["children", "amount", "member"]] = [np.nan, np.nan, None]
        rows.loc[2, ["visited", "signup", "zip"]] = [pd.NaT, None, 99_999]
        dropped = ["row_id", "constant", "empty"]
    rows = rows.drop(columns=dropped).assign(extra_column="not a feature")
    return rows[list(reversed(rows.columns))]


@pytest.mark.parametrize("scaling", SCALINGS)
@pytest.mark.parametrize("dataset", ["mixed", "titanic"])
def test_transform_handles_unseen_missing_extra_and_reordered(dataset, scaling, mixed, titanic):
    X, y = mixed if dataset == "mixed" else titanic
    pre = _fit(detect_roles(X), X, y, scaling)
    out = pre.transform(_trouble(X))
    assert out.shape == (6, len(pre.get_feature_names_out()))
    assert np.isfinite(out).all()
    # Clean rows transform exactly as they do inside the full table, column order and all.
    np.testing.assert_allclose(out[3:], pre.transform(X.head(6))[3:])


def test_unseen_category_lights_no_seen_level(titanic, roles):
    X, y = titanic
    out = _frame(_fit(roles, X, y), _trouble(X))
    assert out.loc[0, ["Sex_male", "Sex_female"]].sum() == 0


def test_whole_numbers_arriving_as_floats_keep_their_levels(mixed):
    # A gap at predict time turns an integer column into floats: 3.0 is still the level "3".
    X, y = mixed
    pre = _fit(detect_roles(X), X, y, "standard")
    rows = X.head(6).assign(children=X["children"].head(6).astype(float))
    rows.loc[0, "children"] = np.nan
    np.testing.assert_array_equal(pre.transform(rows)[1:], pre.transform(X.head(6))[1:])


def test_new_missing_numbers_get_the_training_median(titanic, roles):
    X, y = titanic
    out = _frame(_fit(roles, X, y), _trouble(X))
    assert out.loc[1, "Fare"] == pytest.approx(X["Fare"].median())
    assert out.loc[1, "Age"] == pytest.approx(X["Age"].median())
    assert out.loc[1, "missingindicator_Age"] == 1.0


def test_required_columns_are_the_used_ones(mixed):
    X, y = mixed
    roles = detect_roles(X)
    pre = _fit(roles, X, y, "standard")
    used = ["visited", "signup", "notes", "member", "size", "children", "zip", "amount"]
    assert required_columns(pre) == used  # training order; dropped columns are not required
    model = Pipeline([("features", build_preprocessor(roles, scaling="standard",
                                                      task="classification")),
                      ("model", LogisticRegression(max_iter=200))]).fit(X, y)
    assert required_columns(model) == used
    off = Pipeline([("features", build_preprocessor(roles, scaling=None, task="classification",
                                                    featurize=False)),
                    ("model", LogisticRegression(max_iter=200))])
    ensemble = EnsembleClassifier([("a", off), ("b", off)], [1.0, 1.0]).fit(X, y)
    assert required_columns(ensemble) == ["children", "zip", "amount"]
    with pytest.raises(ValueError, match="amount"):
        model.predict(X.drop(columns="amount"))


def test_regression_target_encoding(titanic):
    X = titanic[0].drop(columns="Fare")
    y = titanic[0]["Fare"].to_numpy()
    roles = detect_roles(X)
    assert roles.high_cardinality == ("Cabin",)
    pre = _fit(roles, X, y, task="regression")
    out = _frame(pre, _trouble(titanic[0]))
    assert np.isfinite(out.to_numpy(dtype=float)).all()
    # Cabin is encoded as a continuous target mean: values lie within the range of the target.
    assert out["Cabin"].between(y.min(), y.max()).all()


@pytest.mark.parametrize("scaling", SCALINGS)
def test_preprocessor_pickles(mixed, scaling):
    X, y = mixed
    pre = _fit(detect_roles(X), X, y, scaling)
    clone = pickle.loads(pickle.dumps(pre))
    rows = _trouble(X)
    np.testing.assert_array_equal(clone.transform(rows), pre.transform(rows))


def test_featurization_off_uses_numbers_as_given(titanic, roles):
    X, y = titanic
    pre = build_preprocessor(roles, scaling="standard", task="classification", featurize=False)
    out = _frame(pre.fit(X, y), X)
    assert list(out.columns) == list(roles.numeric)  # nothing encoded, expanded or scaled
    given = X[list(roles.numeric)].astype(float)
    np.testing.assert_array_equal(out.to_numpy()[given.notna()], given.to_numpy()[given.notna()])
    # Gaps only are filled, with the training median, so that every family can fit.
    assert (out.loc[X["Age"].isna(), "Age"] == X["Age"].median()).all()
    with pytest.raises(ConfigError, match="featurization='off' uses numeric columns only"):
        build_preprocessor(ColumnRoles(categorical=("Sex",)), scaling=None,
                           task="classification", featurize=False)


# ---------------------------------------------------------------- overrides


def test_overrides_force_roles(mixed):
    X, y = mixed
    roles = detect_roles(X, {"children": {"role": "categorical"}, "notes": {"role": "drop"},
                             "zip": {"role": "categorical"}, "row_id": {"role": "numeric"},
                             "size": ColumnOverride(role="text")})
    assert roles.categorical == ("children",)
    assert roles.high_cardinality == ("zip",)  # 80 levels: target-encoded, not one-hot
    assert roles.dropped["notes"] == "dropped by override"
    assert "row_id" in roles.numeric and roles.text == ("size",)
    names = set(_fit(roles, X, y).get_feature_names_out())
    # S, M and L are no words (two letters at least): one zero column stands for the text.
    assert {"children_0", "children_3", "zip", "row_id", "size_tfidf_empty"} <= names
    assert not any(n.startswith("notes") for n in names)


@pytest.mark.parametrize(
    ("column", "imputer", "expected"),
    [
        ("amount", "mean", lambda X: X["amount"].mean()),
        ("amount", "constant", lambda X: 0.0),
        ("amount", "median", lambda X: X["amount"].median()),
    ],
)
def test_overrides_choose_the_imputer(mixed, column, imputer, expected):
    X, y = mixed
    roles = detect_roles(X, {column: {"imputer": imputer}})
    assert roles.imputers == {column: imputer}
    out = _frame(_fit(roles, X, y), X)
    gap = X[column].isna()
    assert out.loc[gap, column].to_numpy() == pytest.approx(expected(X))
    assert (out.loc[gap, f"missingindicator_{column}"] == 1).all()


def test_most_frequent_imputer_fills_categories_with_the_top_level(mixed):
    X, y = mixed
    out = _frame(_fit(detect_roles(X, {"size": {"imputer": "most_frequent"}}), X, y), X)
    top = X["size"].mode()[0]
    assert not any(n.startswith("size_missing") for n in out.columns)
    assert (out.loc[X["size"].isna(), f"size_{top}"] == 1).all()


@pytest.mark.parametrize(
    ("overrides", "error", "message"),
    [
        ({"size": {"role": "categorial"}}, ConfigError,
         "column 'size' has role 'categorial'; valid roles are: numeric, categorical, text"),
        ({"size": {"imputer": "avg"}}, ConfigError,
         "column 'size' has imputer 'avg'; valid imputers are: mean, median, most_frequent"),
        ({"size": {"imputr": "mean"}}, ConfigError,
         "column 'size' has unknown setting 'imputr'; valid settings are: role, imputer"),
        ({"size": "categorical"}, ConfigError, "column 'size' must be a mapping"),
        ({"size": {"imputer": "mean"}}, ConfigError,
         "imputer 'mean', which does not apply to a categorical column; use one of: constant"),
        ({"notes": {"imputer": "median"}}, ConfigError, "does not apply to a text column"),
        ({"sise": {"role": "drop"}}, DataError,
         "override names column 'sise', which is not in the training data; columns are: row_id, "),
    ],
)
def test_bad_overrides_are_one_clear_sentence(mixed, overrides, error, message):
    with pytest.raises(error, match=message):
        detect_roles(mixed[0], overrides)


def test_config_featurization_stays_compatible_and_takes_overrides():
    def config(value):
        return parse_config(training_data="t.csv", target="y", featurization=value)

    assert config("auto").featurization == "auto" and config("auto").featurize
    assert not config("off").featurize
    assert config("auto").column_overrides == {}
    given = config(
        {"column_overrides": {"zip": {"role": "categorical"}, "age": {"imputer": "mean"}}})
    assert given.featurize
    assert given.column_overrides == {
        "zip": ColumnOverride(role="categorical"), "age": ColumnOverride(imputer="mean")}
    with pytest.raises(ConfigError, match="featurization='bogus' is invalid: .*'auto', 'off' or"):
        config("bogus")
    with pytest.raises(ConfigError, match="column 'zip' has role 'categorial'; valid roles are"):
        config({"column_overrides": {"zip": {"role": "categorial"}}})
    with pytest.raises(ConfigError, match="unknown setting 'overrides'"):
        config({"overrides": {}})
