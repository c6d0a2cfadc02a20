"""tasks.models.families: Azure model names resolved to registry keys, with messages a user can act on;
the wrappers a family needs (calibration, label encoding, target scaling); the size caps."""

from __future__ import annotations

import inspect
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from support import load
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import TransformedTargetRegressor
from sklearn.metrics import roc_auc_score
from sklearn.svm import LinearSVC
from sklearn.utils.validation import has_fit_parameter
from threadpoolctl import threadpool_limits

from tasks.errors import ConfigError
from tasks.models.wrappers import CalibratedClassifier, EncodedLabelClassifier, inner_estimator
from tasks.models.families import FAMILIES, resolve_families, screen_families
from tasks.models.pipeline import (
    MAX_LEAVES,
    MAX_LEAVES_ROWS,
    build_pipeline,
    forest_leaf_cap,
    openmp_threads,
)
from tasks.features.preprocess import build_preprocessor
from tasks.features.roles import detect_roles
from tasks.search.spaces import load_space

# Azure automated ML's supported models (its SupportedModels constants), less the TensorFlow
# ones; XGBoost goes by XGBoostClassifier / XGBoostRegressor there.
# Families beyond Azure's, under the library's own name.
BEYOND_AZURE = {"catboost", "mlp"}
AZURE = {
    "classification": {
        "LogisticRegression", "SGD", "MultinomialNaiveBayes", "BernoulliNaiveBayes", "SVM",
        "LinearSVM", "KNN", "DecisionTree", "RandomForest", "ExtremeRandomTrees", "LightGBM",
        "GradientBoosting", "XGBoostClassifier",
    },
    "regression": {
        "ElasticNet", "LassoLars", "SGD", "KNN", "DecisionTree", "RandomForest",
        "ExtremeRandomTrees", "GradientBoosting", "LightGBM", "XGBoostRegressor",
    },
}


def _supporting(task: str) -> list[str]:
    return [k for k, f in FAMILIES.items() if task in f.estimators]


def _inner(model):
    """The estimator a family's wrappers hold."""
    while True:
        if isinstance(model, CalibratedClassifier):
            model = model.estimator
        elif inner_estimator(model) is not model:
            model = inner_estimator(model)
        elif isinstance(model, TransformedTargetRegressor):
            model = model.regressor
        else:
            return model


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_every_azure_model_resolves_to_one_family_of_the_task(task):
    keys = {name: resolve_families(task, allowed=[name]) for name in AZURE[task]}
    assert all(len(chosen) == 1 for chosen in keys.values()), keys
    assert {chosen[0] for chosen in keys.values()} == set(_supporting(task)) - BEYOND_AZURE


def test_no_two_families_share_a_spelling():
    seen: dict[str, str] = {}
    for family in FAMILIES.values():
        for spelling in (family.key, family.name, *family.aliases):
            normal = spelling.lower().replace("_", "")
            assert seen.setdefault(normal, family.key) == family.key, (spelling, seen[normal])


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_no_knobs_gives_every_family_of_the_task_in_registry_order(task):
    chosen = resolve_families(task)
    assert chosen == _supporting(task)
    assert all(task in FAMILIES[k].estimators for k in chosen)


@pytest.mark.parametrize(
    ("spelling", "key"),
    [
        ("randomforest", "random_forest"),
        ("RandomForest", "random_forest"),
        ("RANDOM_FOREST", "random_forest"),
        ("random-forest", "random_forest"),
        ("XGBoostClassifier", "xgboost"),
        ("xgboostregressor", "xgboost"),
        ("lightgbm", "lightgbm"),
        ("LightGBM", "lightgbm"),
        ("ExtremeRandomTrees", "extra_trees"),
        ("GradientBoosting", "gradient_boosting"),
        ("knn", "knn"),
        ("SVM", "svm"),
        ("svm", "svm"),
        ("LinearSVM", "linear_svm"),
        ("linear_svm", "linear_svm"),
        ("LINEARSVM", "linear_svm"),
        ("sgd", "sgd"),
        ("MultinomialNaiveBayes", "multinomial_naive_bayes"),
        ("multinomial-naive-bayes", "multinomial_naive_bayes"),
        ("bernoullinaivebayes", "bernoulli_naive_bayes"),
        ("DecisionTree", "decision_tree"),
        ("decision tree", "decision_tree"),
    ],
)
def test_allowed_models_accepts_azure_spellings(spelling, key):
    assert resolve_families("classification", allowed=[spelling]) == [key]


@pytest.mark.parametrize(
    ("spelling", "key"),
    [
        ("LassoLars", "lasso_lars"),
        ("lassolars", "lasso_lars"),
        ("SGD", "sgd"),
        ("XGBoostRegressor", "xgboost"),
        ("xgboostclassifier", "xgboost"),
        ("DECISIONTREE", "decision_tree"),
    ],
)
def test_allowed_models_accepts_azure_spellings_for_regression(spelling, key):
    assert resolve_families("regression", allowed=[spelling]) == [key]


def test_default_order_puts_strong_cheap_families_first():
    order = list(FAMILIES)
    assert order[:6] == ["lightgbm", "gradient_boosting", "xgboost", "catboost", "random_forest",
                         "extra_trees"]
    linear = ["logistic_regression", "elastic_net", "lasso_lars", "sgd", "linear_svm"]
    rest = ["svm", "knn", "decision_tree", "bernoulli_naive_bayes", "multinomial_naive_bayes"]
    assert max(order.index(k) for k in linear) < min(order.index(k) for k in rest)


def test_allowed_models_keeps_registry_order_and_dedups():
    chosen = resolve_families(
        "regression", allowed=["KNN", "RandomForest", "lightgbm", "random_forest", "LIGHTGBM"]
    )
    assert chosen == [k for k in FAMILIES if k in {"knn", "random_forest", "lightgbm"}]


def test_blocked_models_removes():
    chosen = resolve_families("classification", blocked=["XGBoostClassifier", "knn"])
    assert "xgboost" not in chosen and "knn" not in chosen
    assert set(chosen) == set(_supporting("classification")) - {"xgboost", "knn"}


def test_blocked_wins_over_allowed():
    chosen = resolve_families(
        "regression", allowed=["LightGBM", "ElasticNet"], blocked=["lightgbm"]
    )
    assert chosen == ["elastic_net"]


def test_unknown_name_lists_valid_names():
    with pytest.raises(
        ConfigError, match=r"allowed_models names 'DeepForest', which is not a classification model"
    ) as info:
        resolve_families("classification", allowed=["RandomForest", "DeepForest"])
    message = str(info.value)
    for key in _supporting("classification"):
        assert FAMILIES[key].name in message
    assert "ElasticNet" not in message  # a regression-only family is not offered


def test_unknown_blocked_name_names_the_knob():
    with pytest.raises(ConfigError, match=r"blocked_models names 'SVM'.*valid names are: LightGBM"):
        resolve_families("regression", blocked=["SVM"])  # kernel SVM is a classifier only


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_blocking_everything_is_an_error(task):
    every = [FAMILIES[k].name for k in _supporting(task)]
    pattern = r"leave no model to try; allow at least one of: .*RandomForest"
    with pytest.raises(ConfigError, match=pattern):
        resolve_families(task, blocked=every)


def test_allowing_only_blocked_is_an_error():
    with pytest.raises(ConfigError, match=r"leave no model to try"):
        resolve_families("classification", allowed=["knn"], blocked=["KNN"])


def test_classification_only_family_rejected_for_regression():
    with pytest.raises(
        ConfigError,
        match=r"allowed_models names 'LogisticRegression', which is not a regression model; "
        r"valid names are: .*ElasticNet",
    ) as info:
        resolve_families("regression", allowed=["LogisticRegression"])
    assert "LogisticRegression," not in str(info.value).split("valid names are:")[1]


def test_regression_only_family_rejected_for_classification():
    with pytest.raises(ConfigError, match=r"'elastic_net', which is not a classification model"):
        resolve_families("classification", blocked=["elastic_net"])


def test_every_family_names_a_real_estimator():
    for family in FAMILIES.values():
        for task in family.estimators:
            cls = family.estimator_class(task)
            assert isinstance(cls, type)
            kind = cls().__sklearn_tags__().estimator_type
            assert kind == ("classifier" if task == "classification" else "regressor"), family.key


@pytest.fixture(scope="module")
def roles():
    return detect_roles(load("credit_g").drop(columns="class").head(200))


def test_build_pipeline_wraps_label_encoding_families(roles):
    for key, family in FAMILIES.items():
        if "classification" not in family.estimators:
            continue
        model = build_pipeline(key, {}, task="classification", roles=roles, seed=0, n_jobs=1)[-1]
        assert isinstance(model, EncodedLabelClassifier) == family.encode_labels, key


def test_build_pipeline_passes_seed_and_threads_only_where_accepted(roles):
    for key, family in FAMILIES.items():
        for task in family.estimators:
            model = _inner(build_pipeline(key, {}, task=task, roles=roles, seed=11, n_jobs=3)[-1])
            assert type(model) is family.estimator_class(task), key
            params = model.get_params()
            if "random_state" in params:
                assert params["random_state"] == 11, key
            if family.threads_knob in params:
                # A boosting library's OpenMP team gets one thread under passive waiting, as the
                # tests (and the CLI) run: openmp_threads says why.
                threads = openmp_threads(3) if family.openmp else 3
                assert params[family.threads_knob] == (threads if family.threads else None), key
            elif family.threads and family.threads_knob in inspect.signature(type(model)).parameters:
                pytest.fail(f"{key} was not given its threads")  # CatBoost lists only those given


def test_build_pipeline_caller_params_override_fixed(roles):
    model = build_pipeline(
        "random_forest", {"n_estimators": 7}, task="regression", roles=roles, seed=0, n_jobs=1
    )[-1]
    assert _inner(model).get_params()["n_estimators"] == 7


def test_build_pipeline_wraps_what_a_family_needs(roles):
    for key, family in FAMILIES.items():
        for task in family.estimators:
            model = build_pipeline(key, {}, task=task, roles=roles, seed=0, n_jobs=1)[-1]
            if task == "classification":
                assert isinstance(model, CalibratedClassifier) == family.calibrate, key
                assert hasattr(model, "predict_proba"), key
            else:
                assert isinstance(model, TransformedTargetRegressor) == family.scale_target, key


# ---------------------------------------------------------------- probabilities from calibration


def _rare_classes(rarest: int) -> tuple[pd.DataFrame, np.ndarray]:
    """wine_quality with its grades 4 and 8 cut to 2 rows and `rarest` rows, as a fold may hold
    them (the guardrails allow a class as rare as the folds are many)."""
    frame = load("wine_quality")
    common = frame[frame["quality"].isin([5, 6, 7])].sample(240, random_state=0)
    grade = frame["quality"]
    rare = pd.concat([frame[grade == 4].head(2), frame[grade == 8].head(rarest)])
    rows = pd.concat([common, rare]).sample(frac=1.0, random_state=0).reset_index(drop=True)
    return rows.drop(columns="quality"), rows["quality"].to_numpy()


def test_plain_calibration_refuses_a_class_rarer_than_its_folds():
    # Why tasks.models.wrappers.CalibratedClassifier exists at all.
    X, y = _rare_classes(2)
    with pytest.raises(ValueError, match="Requesting 3-fold cross-validation"):
        CalibratedClassifierCV(LinearSVC(), cv=3).fit(X.drop(columns="color"), y)


@pytest.mark.parametrize("rarest", [1, 2])
@pytest.mark.parametrize("key", [k for k, f in FAMILIES.items() if f.calibrate])
def test_calibrated_probabilities_sum_to_one_with_rare_classes(key, rarest):
    X, y = _rare_classes(rarest)
    point = load_space(key).defaults[0]
    roles = detect_roles(X)
    pipeline = build_pipeline(key, point, task="classification", roles=roles, seed=0, n_jobs=1)
    pipeline.fit(X, y)
    proba = pipeline.predict_proba(X)
    assert list(pipeline.classes_) == [4, 5, 6, 7, 8]
    assert proba.shape == (len(X), 5) and np.all(proba >= 0)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-9)
    # Better than the majority class on the rows it saw: calibration did not flatten everything.
    assert np.mean(pipeline.predict(X) == y) > np.mean(y == 6) + 0.05


# ---------------------------------------------------------------- inputs a family needs


def test_multinomial_naive_bayes_fits_data_with_negative_values():
    frame = load("bank_marketing").sample(400, random_state=0).reset_index(drop=True)
    X, y = frame.drop(columns="y"), frame["y"].to_numpy()
    assert (X["balance"] < 0).any() and (X["pdays"] < 0).any(), "the sample must hold negatives"
    pipeline = build_pipeline(
        "multinomial_naive_bayes", load_space("multinomial_naive_bayes").defaults[0],
        task="classification", roles=detect_roles(X), seed=0, n_jobs=1,
    ).fit(X, y)
    assert pipeline[0].transform(X).min() >= 0
    beyond = X.head(5).copy()
    beyond[["balance", "pdays", "age"]] = [[-10**6, -50, -1]] * 5  # below anything seen in fit
    proba = pipeline.predict_proba(beyond)
    assert np.all(np.isfinite(proba)) and np.all(proba >= 0)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-9)


@pytest.mark.parametrize("key", [k for k, f in FAMILIES.items() if f.scale_target])
def test_scaled_target_families_mean_the_same_on_any_target_scale(key):
    # Without the standardised target, alpha would regularise rings and thousandths of rings
    # differently and the predictions would not scale with the target.
    frame = load("abalone").sample(300, random_state=0).reset_index(drop=True)
    X, y = frame.drop(columns="Rings"), frame["Rings"].to_numpy(dtype=float)
    point, roles = load_space(key).defaults[0], detect_roles(X)

    def fitted(target: np.ndarray) -> np.ndarray:
        pipeline = build_pipeline(key, point, task="regression", roles=roles, seed=0, n_jobs=1)
        return pipeline.fit(X, target).predict(X)
    small = fitted(y)
    np.testing.assert_allclose(fitted(y * 1000.0), small * 1000.0, rtol=1e-6)
    assert np.corrcoef(small, y)[0, 1] > 0.5


# ---------------------------------------------------------------- size caps

# Shapes of shared datasets: (rows, encoded feature columns, roughly).
ADULT = {"n_rows": 48_842, "n_features": 105}
CREDIT_G = {"n_rows": 1_000, "n_features": 61}
AMES = {"n_rows": 2_930, "n_features": 300}
LETTER = {"n_rows": 20_000, "n_features": 16}


def test_screen_keeps_every_family_on_small_narrow_data():
    keys = resolve_families("classification")
    assert screen_families(keys, **CREDIT_G) == (keys, {})


def test_screen_skips_kernel_svm_on_many_rows_with_a_sentence():
    kept, skipped = screen_families(resolve_families("classification"), **LETTER)
    assert skipped == {"svm": "SVM skipped: it is capped at 10,000 rows, the data has 20,000"}
    assert kept == [k for k in resolve_families("classification") if k != "svm"]


def test_screen_skips_knn_on_wide_data():
    kept, skipped = screen_families(resolve_families("regression"), **AMES)
    assert set(skipped) == {"knn"}
    assert skipped["knn"] == "KNN skipped: it is capped at 100 encoded features, the data has 300"
    assert "knn" not in kept


def test_screen_skips_both_on_large_wide_data_and_keeps_registry_order():
    keys = list(reversed(resolve_families("classification")))
    kept, skipped = screen_families(keys, **ADULT)
    assert set(skipped) == {"svm", "knn"}
    assert kept == [k for k in FAMILIES if k in keys and k not in skipped]


def test_screen_caps_knn_rows_too():
    _, skipped = screen_families(["knn", "lightgbm"], n_rows=250_000, n_features=10)
    assert skipped == {"knn": "KNN skipped: it is capped at 100,000 rows, the data has 250,000"}


def test_screen_never_leaves_nothing():
    assert screen_families(["svm"], **ADULT) == (["svm"], {})
    kept, skipped = screen_families(["knn", "svm"], **ADULT)
    assert kept == ["svm"] and set(skipped) == {"knn"}  # the first in registry order stays
    assert screen_families([], **ADULT) == ([], {})


def test_screen_unknown_key_lists_the_keys():
    with pytest.raises(ConfigError, match=r"unknown family keys \['SVM'\]; the keys are: lightgbm"):
        screen_families(["SVM"], **CREDIT_G)


def test_screen_on_the_width_of_real_wide_data():
    frame = load("ames_housing").sample(500, random_state=0)
    X, y = frame.drop(columns="SalePrice"), frame["SalePrice"].to_numpy()
    roles = detect_roles(X)
    width = build_preprocessor(roles, scaling=None, task="regression").fit_transform(X, y).shape[1]
    kept, skipped = screen_families(resolve_families("regression"), n_rows=len(X), n_features=width)
    assert list(skipped) == ["knn"] and "knn" not in kept


def test_calibration_does_not_depend_on_the_order_of_the_rows():
    # hpc_jobs comes grouped by protocol: unshuffled calibration folds each missed whole
    # protocols and the calibrated LinearSVM fell from AUC 0.89 to 0.80 on the same rows.
    frame = load("hpc_jobs").iloc[::3].reset_index(drop=True)
    protocol = frame["protocol"]
    assert (protocol != protocol.shift()).sum() <= 14, "the test needs rows grouped by a column"
    X, y = frame.drop(columns="class"), frame["class"].to_numpy()
    fit, held = np.arange(len(X)) % 2 == 0, np.arange(len(X)) % 2 == 1
    shuffled = np.random.default_rng(0).permutation(np.flatnonzero(fit))
    point, roles = load_space("linear_svm").defaults[0], detect_roles(X)

    def auc(rows: np.ndarray) -> float:
        pipeline = build_pipeline(
            "linear_svm", point, task="classification", roles=roles, seed=0, n_jobs=1
        ).fit(X.iloc[rows], y[rows])
        proba = pipeline.predict_proba(X[held])
        return roc_auc_score(y[held], proba, multi_class="ovr", average="weighted")

    in_file_order, in_random_order = auc(np.flatnonzero(fit)), auc(shuffled)
    assert in_file_order > 0.85 and abs(in_file_order - in_random_order) < 0.02


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_sample_weights_reach_every_family_that_takes_them(task):
    name, target = ("credit_g", "class") if task == "classification" else ("abalone", "Rings")
    frame = load(name).sample(150, random_state=0).reset_index(drop=True)
    X, y = frame.drop(columns=target), frame[target].to_numpy()
    weights = np.random.default_rng(0).uniform(0.5, 2.0, len(y))
    for key in _supporting(task):
        space = load_space(key)
        cls = FAMILIES[key].estimator_class(task)
        if not has_fit_parameter(cls(), "sample_weight"):
            continue  # the guardrails skip these when there is a weight column
        few = {"n_estimators": 10} if "n_estimators" in {**space.params, **space.fixed} else {}
        pipeline = build_pipeline(
            key, {**space.defaults[0], **few}, task=task, roles=detect_roles(X), seed=0, n_jobs=1
        )
        with threadpool_limits(limits=1):  # OpenMP threads spinning on a busy machine cost seconds
            pipeline.fit(X, y, model__sample_weight=weights)  # a wrapper dropping it raises here


@pytest.mark.parametrize(("task", "n_classes", "forest_mb"), [
    ("classification", 2, 1.2), ("classification", 26, 4.0), ("regression", 0, 1.2)])
def test_forests_fit_in_their_memory_share_on_noise(task, n_classes, forest_mb, monkeypatch):
    # Pure noise grows a leaf for about every other row: unbounded, a forest of the search
    # space's 200 trees on 20,000 rows takes 0.6-1.7 GB. Scaled down here: 5 trees in a share
    # small enough that it binds before MAX_LEAVES does.
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(20_000, 4)), columns=list("abcd"))
    y = rng.integers(0, max(n_classes, 2), len(X)) if task == "classification" else rng.normal(
        size=len(X))
    noise_roles = detect_roles(X)
    per_node = 64 + 8 * (n_classes if task == "classification" else 1)
    for key in ("random_forest", "extra_trees"):
        assert FAMILIES[key].forest_mb is not None
        monkeypatch.setitem(FAMILIES, key, replace(FAMILIES[key], forest_mb=forest_mb))
        pipeline = build_pipeline(key, {"n_estimators": 5}, task=task, roles=noise_roles, seed=0,
                                  n_jobs=1, n_classes=n_classes)
        assert _inner(pipeline[-1]).max_leaf_nodes == forest_leaf_cap(forest_mb, 5, n_classes)
        assert forest_leaf_cap(forest_mb, 5, n_classes) < MAX_LEAVES
        # Rows too few to reach the cap: the trees grow as they always did.
        few = build_pipeline(key, {"n_estimators": 5}, task=task, roles=noise_roles, seed=0,
                             n_jobs=1, n_classes=n_classes, n_rows=800)
        assert _inner(few[-1]).max_leaf_nodes is None
        pipeline.fit(X, y)
        trees = inner_estimator(pipeline[-1], fitted=True).estimators_
        mb = sum(t.tree_.node_count for t in trees) * per_node / 2**20
        # bound, and the bound is what binds
        assert forest_mb / 2 < mb <= forest_mb, (key, task, n_classes, mb)


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_forests_grow_at_most_max_leaves_per_tree(task):
    # The search space's 200 trees fit the memory share with more leaves than MAX_LEAVES on a
    # large table: the leaf count is what stops them.
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(20_000, 4)), columns=list("abcd"))
    y = rng.integers(0, 2, len(X)) if task == "classification" else rng.normal(size=len(X))
    for key in ("random_forest", "extra_trees"):
        pipeline = build_pipeline(key, {"n_estimators": 3}, task=task, roles=detect_roles(X),
                                  seed=0, n_jobs=1, n_classes=2 if task == "classification" else 0,
                                  n_rows=len(X))
        pipeline.fit(X, y)
        trees = inner_estimator(pipeline[-1], fitted=True).estimators_
        assert max(t.tree_.n_leaves for t in trees) == MAX_LEAVES
        # A fit of fewer rows than MAX_LEAVES_ROWS keeps fully grown trees.
        smaller = build_pipeline(key, {"n_estimators": 3}, task=task, roles=detect_roles(X),
                                 seed=0, n_jobs=1,
                                 n_classes=2 if task == "classification" else 0,
                                 n_rows=MAX_LEAVES_ROWS - 1)
        assert _inner(smaller[-1]).max_leaf_nodes is None
