"""tasks.metrics: Azure's metric names computed exactly as scikit-learn / scipy compute them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from support import load
from scipy.stats import spearmanr
from sklearn import metrics as skm
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import LabelEncoder, StandardScaler

from tasks.errors import ConfigError
from tasks.metrics import METRICS, default_metric, get_metric, score_all


@dataclass(frozen=True)
class Preds:
    y: np.ndarray  # class codes 0..K-1, or values
    pred: np.ndarray  # probabilities (n, K), or values
    weight: np.ndarray  # real, non-uniform weights taken from a data column


def _classification(name: str, target: str) -> Preds:
    frame = load(name)
    X = frame.drop(columns=target).select_dtypes("number")
    y = LabelEncoder().fit_transform(frame[target])
    X_fit, X_val, y_fit, y_val = train_test_split(X, y, test_size=0.4, random_state=0, stratify=y)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X_fit, y_fit)
    proba = model.predict_proba(X_val)
    weight = X_val.iloc[:, 0].to_numpy(dtype=float)
    weight = weight - weight.min() + 1.0  # positive, varies across rows
    return Preds(y_val, proba, weight)


@pytest.fixture(scope="module")
def binary() -> Preds:
    return _classification("blood_transfusion", "donated_march_2007")


@pytest.fixture(scope="module")
def multiclass() -> Preds:
    return _classification("hpc_jobs", "class")


@pytest.fixture(scope="module")
def regression() -> Preds:
    frame = load("concrete")
    X = frame.drop(columns="compressive_strength")
    y = frame["compressive_strength"].to_numpy()
    X_fit, X_val, y_fit, y_val = train_test_split(X, y, test_size=0.4, random_state=0)
    pred = make_pipeline(StandardScaler(), Ridge()).fit(X_fit, y_fit).predict(X_val)
    weight = X_val["age"].to_numpy(dtype=float)
    return Preds(y_val, pred, weight)


def _m(name: str):
    return METRICS[name]


# ---------------------------------------------------------------- classification vs scikit-learn


def test_fixtures_are_informative(binary, multiclass, regression):
    # Guards the comparisons below against trivial inputs (one class, constant predictions).
    assert binary.pred.shape[1] == 2 and len(np.unique(binary.y)) == 2
    assert multiclass.pred.shape[1] == 4 and len(np.unique(multiclass.y)) == 4
    assert len(np.unique(np.argmax(multiclass.pred, axis=1))) > 1
    assert np.std(regression.pred) > 0


def test_auc_weighted_binary_is_roc_auc_of_positive_column(binary):
    expected = skm.roc_auc_score(binary.y, binary.pred[:, 1])
    assert _m("AUC_weighted")(binary.y, binary.pred) == pytest.approx(expected, rel=1e-12)


def test_auc_weighted_binary_with_weights(binary):
    expected = skm.roc_auc_score(binary.y, binary.pred[:, 1], sample_weight=binary.weight)
    got = _m("AUC_weighted")(binary.y, binary.pred, binary.weight)
    assert got == pytest.approx(expected, rel=1e-12)


def test_auc_weighted_multiclass_is_weighted_ovr(multiclass):
    expected = skm.roc_auc_score(
        multiclass.y, multiclass.pred, average="weighted", multi_class="ovr"
    )
    assert _m("AUC_weighted")(multiclass.y, multiclass.pred) == pytest.approx(expected, rel=1e-12)


def test_auc_macro_multiclass_is_macro_ovr(multiclass):
    expected = skm.roc_auc_score(multiclass.y, multiclass.pred, average="macro", multi_class="ovr")
    assert _m("AUC_macro")(multiclass.y, multiclass.pred) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("fixture", ["binary", "multiclass"])
def test_accuracy_and_balanced_accuracy(request, fixture):
    p: Preds = request.getfixturevalue(fixture)
    labels = np.argmax(p.pred, axis=1)
    assert _m("accuracy")(p.y, p.pred) == pytest.approx(skm.accuracy_score(p.y, labels), rel=1e-12)
    assert _m("balanced_accuracy")(p.y, p.pred) == pytest.approx(
        skm.balanced_accuracy_score(p.y, labels), rel=1e-12
    )


@pytest.mark.parametrize("fixture", ["binary", "multiclass"])
def test_log_loss(request, fixture):
    p: Preds = request.getfixturevalue(fixture)
    assert _m("log_loss")(p.y, p.pred) == pytest.approx(skm.log_loss(p.y, p.pred), rel=1e-9)


@pytest.mark.parametrize("fixture", ["binary", "multiclass"])
def test_f1_and_matthews(request, fixture):
    p: Preds = request.getfixturevalue(fixture)
    labels = np.argmax(p.pred, axis=1)
    assert _m("f1_score_weighted")(p.y, p.pred) == pytest.approx(
        skm.f1_score(p.y, labels, average="weighted", zero_division=0), rel=1e-12
    )
    assert _m("matthews_correlation")(p.y, p.pred) == pytest.approx(
        skm.matthews_corrcoef(p.y, labels), rel=1e-12
    )


def test_average_precision_weighted_multiclass(multiclass):
    onehot = np.eye(multiclass.pred.shape[1])[multiclass.y]
    expected = skm.average_precision_score(onehot, multiclass.pred, average="weighted")
    got = _m("average_precision_score_weighted")(multiclass.y, multiclass.pred)
    assert got == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("fixture", ["binary", "multiclass"])
def test_norm_macro_recall_perfect_is_one(request, fixture):
    p: Preds = request.getfixturevalue(fixture)
    perfect = np.eye(p.pred.shape[1])[p.y]
    assert _m("norm_macro_recall")(p.y, perfect) == pytest.approx(1.0)


@pytest.mark.parametrize("fixture", ["binary", "multiclass"])
def test_norm_macro_recall_constant_is_zero(request, fixture):
    p: Preds = request.getfixturevalue(fixture)
    constant = np.zeros_like(p.pred)
    constant[:, np.bincount(p.y).argmax()] = 1.0  # always the majority class
    assert _m("norm_macro_recall")(p.y, constant) == pytest.approx(0.0, abs=1e-12)


def test_norm_macro_recall_of_real_model_between(multiclass):
    value = _m("norm_macro_recall")(multiclass.y, multiclass.pred)
    assert 0.0 < value < 1.0


# ---------------------------------------------------------------- regression vs scikit-learn


def test_r2_score(regression):
    got = _m("r2_score")(regression.y, regression.pred)
    assert got == pytest.approx(skm.r2_score(regression.y, regression.pred), rel=1e-12)


def test_normalized_rmse_is_rmse_over_range(regression):
    y_range = float(regression.y.max() - regression.y.min())
    rmse = np.sqrt(skm.mean_squared_error(regression.y, regression.pred))
    got = _m("normalized_root_mean_squared_error")(regression.y, regression.pred, None, y_range)
    assert got == pytest.approx(rmse / y_range, rel=1e-12)
    got_rmse = _m("root_mean_squared_error")(regression.y, regression.pred)
    assert got_rmse == pytest.approx(rmse, rel=1e-12)


def test_normalized_mae_is_mae_over_range(regression):
    y_range = float(regression.y.max() - regression.y.min())
    mae = skm.mean_absolute_error(regression.y, regression.pred)
    got = _m("normalized_mean_absolute_error")(regression.y, regression.pred, None, y_range)
    assert got == pytest.approx(mae / y_range, rel=1e-12)


def test_spearman_correlation_is_scipy(regression):
    expected = spearmanr(regression.y, regression.pred).statistic
    got = _m("spearman_correlation")(regression.y, regression.pred)
    assert got == pytest.approx(expected, rel=1e-12)


def test_mape(regression):
    expected = skm.mean_absolute_percentage_error(regression.y, regression.pred)
    got = _m("mean_absolute_percentage_error")(regression.y, regression.pred)
    assert got == pytest.approx(expected, rel=1e-12)


@pytest.mark.filterwarnings("ignore:An input array is constant")
def test_better_follows_direction(regression):
    good = score_all("regression", regression.y, regression.pred)
    bad = score_all("regression", regression.y, np.full_like(regression.pred, regression.y.mean()))
    for name in ("normalized_root_mean_squared_error", "r2_score"):
        metric = _m(name)
        assert metric.better(good[name], bad[name])
        assert not metric.better(bad[name], good[name])


# ---------------------------------------------------------------- get_metric


@pytest.mark.parametrize(
    ("spelling", "task"),
    [
        ("auc_weighted", "classification"),
        ("AUC_WEIGHTED", "classification"),
        ("Accuracy", "classification"),
        ("NORMALIZED_ROOT_MEAN_SQUARED_ERROR", "regression"),
        ("R2_Score", "regression"),
    ],
)
def test_get_metric_is_case_insensitive(spelling, task):
    metric = get_metric(spelling, task)
    assert metric.name.lower() == spelling.lower()
    assert metric.name in METRICS
    assert metric.task == task


def test_get_metric_unknown_lists_valid_names():
    pattern = r"'auc' is an unknown metric; valid classification metrics are: "
    with pytest.raises(ConfigError, match=pattern) as info:
        get_metric("auc", "classification")
    for name, metric in METRICS.items():
        if metric.task == "classification":
            assert name in str(info.value)
        else:
            assert name not in str(info.value)


def test_get_metric_regression_metric_for_classification():
    pattern = r"'r2_score' is a metric for regression, not classification: use one of: "
    with pytest.raises(ConfigError, match=pattern) as info:
        get_metric("r2_score", "classification")
    assert "AUC_weighted" in str(info.value)


def test_get_metric_classification_metric_for_regression():
    with pytest.raises(ConfigError, match=r"metric for classification, not regression.*r2_score"):
        get_metric("accuracy", "regression")


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_default_metric_is_valid_for_its_task(task):
    assert get_metric(default_metric(task), task).task == task


# ---------------------------------------------------------------- score_all


@pytest.mark.parametrize(
    ("fixture", "task"),
    [("binary", "classification"), ("multiclass", "classification"), ("regression", "regression")],
)
def test_score_all_returns_every_metric_finite(request, fixture, task):
    p: Preds = request.getfixturevalue(fixture)
    y_range = float(p.y.max() - p.y.min()) if task == "regression" else 1.0
    scores = score_all(task, p.y, p.pred, None, y_range)
    expected = {n for n, m in METRICS.items() if m.task == task}
    if fixture == "multiclass":  # binary metrics are undefined beyond two classes
        expected = {n for n in expected if not n.endswith("_binary")}
    assert set(scores) == expected
    assert all(isinstance(v, float) and np.isfinite(v) for v in scores.values())
    for name, value in scores.items():
        assert value == pytest.approx(METRICS[name](p.y, p.pred, None, y_range), rel=1e-12)


def test_score_all_leaves_out_undefined_metrics(regression):
    # A target that reaches zero makes MAPE undefined: left out, not reported as nan or inf.
    y = regression.y - regression.y.min()
    scores = score_all("regression", y, regression.pred, None, float(y.max()))
    assert "mean_absolute_percentage_error" not in scores
    assert "r2_score" in scores
    assert all(np.isfinite(v) for v in scores.values())


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_score_all_single_class_leaves_out_auc(binary):
    # Validation rows of one class only: AUC is undefined, label metrics still are.
    rows = binary.y == 0
    scores = score_all("classification", binary.y[rows], binary.pred[rows])
    assert "AUC_weighted" not in scores and "AUC_macro" not in scores
    assert "accuracy" in scores
    assert all(np.isfinite(v) for v in scores.values())


@pytest.mark.parametrize(
    ("fixture", "task"),
    [("binary", "classification"), ("multiclass", "classification"), ("regression", "regression")],
)
def test_score_all_weights(request, fixture, task):
    p: Preds = request.getfixturevalue(fixture)
    assert np.ptp(p.weight) > 0
    plain = score_all(task, p.y, p.pred)
    uniform = score_all(task, p.y, p.pred, np.full(len(p.y), 3.0))
    weighted = score_all(task, p.y, p.pred, p.weight)
    assert uniform.keys() == plain.keys() == weighted.keys()
    for name in plain:
        assert uniform[name] == pytest.approx(plain[name], rel=1e-9), name
    # Spearman's rank correlation takes no weights (neither in scipy nor in Azure).
    changed = {n for n in plain if not np.isclose(weighted[n], plain[n], rtol=1e-9, atol=0)}
    assert changed == set(plain) - {"spearman_correlation"}


def test_binary_metrics_score_the_positive_label(binary):
    """Precision of class 0 and of class 1 differ, and positive= picks which one is scored."""
    labels = np.argmax(binary.pred, axis=1)
    for positive in (0, 1):
        expected = skm.precision_score((binary.y == positive).astype(int), (labels == positive).astype(int))
        got = METRICS["precision_score_binary"](binary.y, binary.pred, None, 1.0, positive)
        assert got == pytest.approx(expected)
    assert METRICS["precision_score_binary"](binary.y, binary.pred, None, 1.0, 0) != pytest.approx(
        METRICS["precision_score_binary"](binary.y, binary.pred, None, 1.0, 1)
    )
    auc_0 = METRICS["AUC_binary"](binary.y, binary.pred, None, 1.0, 0)
    auc_1 = METRICS["AUC_binary"](binary.y, binary.pred, None, 1.0, 1)
    assert auc_0 == pytest.approx(auc_1)  # AUC does not depend on which class is positive


@pytest.mark.parametrize("k", [2, 3, 26])
@pytest.mark.parametrize("average", ["weighted", "macro"])
def test_ranked_auc_is_scikit_learns_with_ties(k, average):
    rng = np.random.default_rng(k)
    y = rng.integers(0, k, 600)
    y[:k] = np.arange(k)  # every class present
    raw = np.round(rng.random((600, k)) + 0.3 * np.eye(k)[y], 1)  # coarse: many ties
    proba = raw / raw.sum(axis=1, keepdims=True)
    name = "AUC_weighted" if average == "weighted" else "AUC_macro"
    if k == 2:
        expected = skm.roc_auc_score(y, proba[:, 1])
    else:
        expected = skm.roc_auc_score(y, proba, average=average, multi_class="ovr",
                                     labels=np.arange(k))
    assert METRICS[name](y, proba) == pytest.approx(expected, rel=1e-12)


def test_ranked_auc_is_undefined_where_scikit_learns_is():
    proba = np.full((4, 3), 1 / 3)
    with pytest.raises(ValueError):
        METRICS["AUC_macro"](np.array([0, 1, 0, 1]), proba)  # class 2 never occurs
    with pytest.raises(ValueError):
        METRICS["AUC_weighted"](np.array([0, 1, 2, 1]), np.ones((4, 3)))  # not probabilities


def test_weighted_auc_leaves_out_a_class_absent_from_the_rows():
    # A rare class missing from a small holdout weighs nothing in the support-weighted mean:
    # the value is the present classes' one-vs-rest AUCs averaged by their support.
    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, 200)
    proba = rng.dirichlet([1, 1, 1, 1], size=200)
    present = [skm.roc_auc_score(y == c, proba[:, c]) for c in range(3)]
    expected = np.average(present, weights=[(y == c).sum() for c in range(3)])
    assert METRICS["AUC_weighted"](y, proba) == pytest.approx(expected, rel=1e-12)
