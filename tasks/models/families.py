"""The registry of model families: Azure's name, the estimator per task, what it needs.

Adding a family = one YAML file under search_spaces/ + one entry here.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tasks.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from tasks.types import Estimator

__all__ = ["Family", "FAMILIES", "resolve_families", "screen_families", "register_family"]

log = logging.getLogger("automl")


@dataclass(frozen=True)
class Family:
    key: str  # the search_spaces/<key>.yaml stem
    name: str  # Azure's spelling, shown to users
    estimators: dict[str, str]  # task -> "module:Class"
    scaling: str | None = None  # "standard" for linear, kernel and distance models; "minmax" for
                                # models that need non-negative inputs (multinomial naive Bayes)
    encode_labels: bool = False  # the estimator only accepts labels 0..K-1
    calibrate: bool = False  # the classifier has no predict_proba: CalibratedClassifier adds it
    scale_target: bool = False  # regression target standardised, so one alpha range fits all data
    threads: bool = True  # takes n_jobs (LogisticRegression's n_jobs is deprecated and inert)
    openmp: bool = False  # its threads are an OpenMP team (see openmp_threads)
    max_rows: int | None = None  # skipped above this many training rows (too slow)
    max_features: int | None = None  # skipped above this many encoded feature columns
    onehot_discrete: bool | None = None  # one-hot small integer sets too (default: if scaled)
    # A forest's trees grow until their leaves are pure: on noisy rows about one leaf per two
    # rows, gigabytes for 200 trees on 50,000 rows. Its leaves per tree are capped so the whole
    # forest fits in this many MB (best-first growth keeps the strongest splits).
    forest_mb: float | None = None
    # "onehot": categories arrive one-hot (target-encoded when they have many levels);
    # "native": as integer codes the estimator is told are categories (CatBoost's own target
    # statistics, computed in order on the fit rows, are its main strength);
    # "native_few_levels": columns of up to roles.MAX_ONEHOT_LEVELS levels as such codes, the
    # many-level ones target-encoded (the other boosters overfit a split on dozens of levels,
    # and a level's target mean keeps an order, as of grades, that codes lose); the forests take
    # the same codes as plain numbers, so one featurized fold serves them and the boosters.
    categorical: str = "onehot"
    threads_knob: str = "n_jobs"  # the constructor argument that sets its threads
    aliases: tuple[str, ...] = ()
    # An optional package the estimator imports when it fits (torch, the `nn` extra): the family
    # is skipped, with a sentence, where it is not installed.
    requires: str | None = None
    # What it imports stays in the trial worker (torch: 210-250 MB): the worker is replaced after
    # its trial, so the trials after it do not carry that memory (tasks.search.workers).
    retire_worker: bool = False

    def estimator_class(self, task: str) -> type[Estimator]:
        module, _, name = self.estimators[task].partition(":")
        cls: type[Estimator] = getattr(importlib.import_module(module), name)
        return cls


FOREST_MB = 256.0

# Order matters: it is the order of the default configurations tried first (the portfolio):
# strong, cheap families first, then linear models, then the rest.
FAMILIES: dict[str, Family] = {
    f.key: f
    for f in (
        Family("lightgbm", "LightGBM", {
            "classification": "lightgbm:LGBMClassifier", "regression": "lightgbm:LGBMRegressor"},
            openmp=True, categorical="native_few_levels"),
        Family("gradient_boosting", "GradientBoosting", {
            "classification": "sklearn.ensemble:HistGradientBoostingClassifier",
            "regression": "sklearn.ensemble:HistGradientBoostingRegressor"},
            openmp=True, categorical="native_few_levels"),
        Family("xgboost", "XGBoost", {
            "classification": "xgboost:XGBClassifier", "regression": "xgboost:XGBRegressor"},
            encode_labels=True, openmp=True, categorical="native_few_levels",
            aliases=("XGBoostClassifier", "XGBoostRegressor")),
        Family("catboost", "CatBoost", {
            "classification": "catboost:CatBoostClassifier",
            "regression": "catboost:CatBoostRegressor"},
            categorical="native", threads_knob="thread_count",
            aliases=("CatBoostClassifier", "CatBoostRegressor")),
        Family("random_forest", "RandomForest", {
            "classification": "sklearn.ensemble:RandomForestClassifier",
            "regression": "sklearn.ensemble:RandomForestRegressor"}, forest_mb=FOREST_MB,
            categorical="native_few_levels"),
        Family("extra_trees", "ExtremeRandomTrees", {
            "classification": "sklearn.ensemble:ExtraTreesClassifier",
            "regression": "sklearn.ensemble:ExtraTreesRegressor"}, forest_mb=FOREST_MB,
            categorical="native_few_levels"),
        # Categories embedded from their codes; it standardises the target itself. torch's
        # threads are an OpenMP team: one thread fitted health_insurance in 3.8-4.0 s, two in
        # 4.4-7.5 s, beside other work under passive waiting.
        Family("mlp", "NeuralNetwork", {
            "classification": "tasks.models.mlp:MLPClassifier",
            "regression": "tasks.models.mlp:MLPRegressor"},
            openmp=True, categorical="native", requires="torch", retire_worker=True,
            aliases=("MLP", "NeuralNetworkClassifier", "NeuralNetworkRegressor")),
        Family("logistic_regression", "LogisticRegression", {
            "classification": "sklearn.linear_model:LogisticRegression"},
            scaling="standard", threads=False),
        Family("elastic_net", "ElasticNet", {
            "regression": "sklearn.linear_model:ElasticNet"}, scaling="standard"),
        Family("lasso_lars", "LassoLars", {
            "regression": "sklearn.linear_model:LassoLars"}, scaling="standard", scale_target=True),
        # Calibrated rather than restricted to log_loss / modified_huber: the one YAML also
        # serves SGDRegressor, whose losses share no name with the classifier's.
        Family("sgd", "SGD", {
            "classification": "sklearn.linear_model:SGDClassifier",
            "regression": "sklearn.linear_model:SGDRegressor"},
            scaling="standard", calibrate=True, scale_target=True),
        # LinearSVC has no predict_proba at all: calibrated.
        Family("linear_svm", "LinearSVM", {
            "classification": "sklearn.svm:LinearSVC"}, scaling="standard", calibrate=True),
        # Calibrated on 3 folds: cheaper than probability=True's internal 5-fold Platt scaling.
        # Fit time grows with the square of the rows, hence the cap.
        Family("svm", "SVM", {
            "classification": "sklearn.svm:SVC"},
            scaling="standard", calibrate=True, max_rows=10_000),
        # Prediction compares every row with every training row, in every dimension.
        Family("knn", "KNN", {
            "classification": "sklearn.neighbors:KNeighborsClassifier",
            "regression": "sklearn.neighbors:KNeighborsRegressor"},
            # Duplicated one-hot copies of small integer sets distort distances (measured: up to
            # -0.04 R2 on 3 of 5 datasets), so KNN sees each discrete number once.
            scaling="standard", max_rows=100_000, max_features=100, onehot_discrete=False),
        Family("decision_tree", "DecisionTree", {
            "classification": "sklearn.tree:DecisionTreeClassifier",
            "regression": "sklearn.tree:DecisionTreeRegressor"}),
        Family("bernoulli_naive_bayes", "BernoulliNaiveBayes", {
            "classification": "sklearn.naive_bayes:BernoulliNB"}, scaling="standard"),
        # Counts-style model: its inputs must be non-negative, hence min-max scaling.
        Family("multinomial_naive_bayes", "MultinomialNaiveBayes", {
            "classification": "sklearn.naive_bayes:MultinomialNB"}, scaling="minmax"),
    )
}


def _normalise(name: str) -> str:
    return name.lower().replace("_", "").replace("-", "").replace(" ", "")


_LOOKUP = {
    _normalise(alias): f.key
    for f in FAMILIES.values()
    for alias in (f.key, f.name, *f.aliases)
}


def register_family(family: Family, space: Mapping[str, object]) -> None:
    """Add a family from a plugin (see tasks.models.plugins): its registry entry and its search
    space, the mapping a search_spaces/ YAML file would hold."""
    from tasks.search.spaces import register_space

    register_space(family.key, space)
    FAMILIES[family.key] = family
    for alias in (family.key, family.name, *family.aliases):
        _LOOKUP[_normalise(alias)] = family.key


# The families whose fitted models tasks.onnx converts (with ONNX_NATIVE's categories native,
# the others' one-hot encoded): enable_onnx_compatible_models searches only these.
ONNX_FAMILIES = frozenset({
    "lightgbm", "xgboost", "random_forest", "extra_trees", "decision_tree",
    "logistic_regression", "sgd", "linear_svm", "svm", "knn", "bernoulli_naive_bayes",
    "multinomial_naive_bayes", "elastic_net", "lasso_lars",
})
ONNX_NATIVE = frozenset({"lightgbm"})


def resolve_families(
    task: str, allowed: Iterable[str] | None = None, blocked: Iterable[str] | None = None,
    *, onnx: bool = False,
) -> list[str]:
    """The family keys to search, in registry order; unknown names list the valid ones.
    onnx: only those that export to ONNX (ONNX_FAMILIES)."""
    valid = [f.name for f in FAMILIES.values() if task in f.estimators]

    def keys(names: Iterable[str] | None, knob: str) -> set[str]:
        out: set[str] = set()
        for name in names or ():
            key = _LOOKUP.get(_normalise(name))
            if key is None or task not in FAMILIES[key].estimators:
                raise ConfigError(
                    f"{knob} names '{name}', which is not a {task} model; "
                    f"valid names are: {', '.join(valid)}"
                )
            out.add(key)
        return out

    allow, block = keys(allowed, "allowed_models"), keys(blocked, "blocked_models")
    chosen = [
        k for k, f in FAMILIES.items()
        if task in f.estimators and (not allow or k in allow) and k not in block
    ]
    if not chosen:
        raise ConfigError(
            "allowed_models and blocked_models leave no model to try; "
            f"allow at least one of: {', '.join(valid)}"
        )
    if onnx and not set(chosen) & ONNX_FAMILIES:
        convertible = [f.name for k, f in FAMILIES.items()
                       if k in ONNX_FAMILIES and task in f.estimators]
        raise ConfigError(
            f"enable_onnx_compatible_models leaves no model to try: "
            f"{', '.join(FAMILIES[k].name for k in chosen)} do not export to ONNX; "
            f"allow at least one of: {', '.join(convertible)}"
        )
    return [k for k in chosen if k in ONNX_FAMILIES] if onnx else chosen


def screen_families(
    keys: list[str], *, n_rows: int, n_features: int
) -> tuple[list[str], dict[str, str]]:
    """Leave out the families too slow for data this size, or whose optional package is not
    installed: (kept keys in registry order, {skipped key: the reason, one sentence}). Never
    leaves nothing: when every family would be skipped, the first one that can run is kept
    anyway; when none can, that is an error.

    n_features counts encoded columns (a categorical column counts its one-hot levels).
    """
    unknown = [k for k in keys if k not in FAMILIES]
    if unknown:
        raise ConfigError(f"unknown family keys {unknown}; the keys are: {', '.join(FAMILIES)}")
    ordered = [k for k in FAMILIES if k in keys]
    skipped: dict[str, str] = {}
    missing = {k for k in ordered if _lacks_package(FAMILIES[k])}
    for key in ordered:
        f = FAMILIES[key]
        if key in missing:
            skipped[key] = (f"{f.name} skipped: it needs the package '{f.requires}', which is not "
                            f"installed; {_INSTALL.get(str(f.requires), 'install it')} to add it")
        elif f.max_rows is not None and n_rows > f.max_rows:
            skipped[key] = (
                f"{f.name} skipped: it is capped at {f.max_rows:,} rows, the data has {n_rows:,}"
            )
        elif f.max_features is not None and n_features > f.max_features:
            skipped[key] = (
                f"{f.name} skipped: it is capped at {f.max_features:,} encoded features, "
                f"the data has {n_features:,}"
            )
    kept = [k for k in ordered if k not in skipped]
    if ordered and not kept:
        if not set(ordered) - missing:
            raise ConfigError(f"{'; '.join(skipped.values())}; or allow another model")
        first = next(k for k in ordered if k not in missing)
        log.warning("%s; kept anyway, as every allowed model is over its cap", skipped.pop(first))
        kept = [first]
    return kept, skipped


# How to install a family's optional package: the project's extra that brings it.
_INSTALL = {"torch": "pip install 'automl-flow[nn]'"}


def _lacks_package(family: Family) -> bool:
    # Found, not imported: the flow never loads torch for a family its workers will run.
    return family.requires is not None and importlib.util.find_spec(family.requires) is None
