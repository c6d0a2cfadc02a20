"""tasks.search.spaces + the family registry: the contract every search space must honour.

For every family and every kind of data it supports (binary, multiclass, regression): the YAML
loads, every default point and points drawn from every distribution build a pipeline that fits on
real rows, predicts raw rows (unseen categories, missing values), gives probabilities that sum to
1 and survives pickling. A family added to the registry is swept without touching this file.
"""

from __future__ import annotations

import copy
import math
import pickle
import re
from importlib import resources

import numpy as np
import pytest
import yaml
from support import load
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from sklearn.model_selection import KFold
from threadpoolctl import threadpool_limits

from tasks.errors import ConfigError
from tasks.models.families import FAMILIES
from tasks.models.pipeline import build_pipeline
from tasks.models.wrappers import inner_estimator
from tasks.features.roles import detect_roles
from tasks.search.spaces import SearchSpace, load_space, parse_space

N_ROWS = 300
DATA = {  # kind of data -> (dataset, target, task)
    "binary": ("credit_g", "class", "classification"),
    "multiclass": ("hpc_jobs", "class", "classification"),
    "regression": ("abalone", "Rings", "regression"),
}
CASES = [
    (key, kind)
    for key, family in FAMILIES.items()
    for kind, (_, _, task) in DATA.items()
    if task in family.estimators
]


def _case_id(case):
    return f"{case[0]}-{case[1]}"


@pytest.fixture(scope="module")
def datasets():
    """Per kind of data: training rows, raw rows to predict (with trouble injected), the roles."""
    out = {}
    for kind, (name, target, _) in DATA.items():
        frame = load(name)
        train = frame.sample(N_ROWS, random_state=0)
        rest = frame.drop(index=train.index).head(8).reset_index(drop=True)
        X = train.drop(columns=target).reset_index(drop=True)
        y = train[target].to_numpy()
        roles = detect_roles(X)
        assert roles.numeric and roles.categorical, "the sample must exercise both encoders"
        raw = rest.drop(columns=target)
        cat, num = roles.categorical[0], roles.numeric[0]
        raw[cat] = raw[cat].astype(object)
        raw.loc[0, cat] = "never-seen-in-training"
        raw.loc[1, num] = np.nan
        raw.loc[2, cat] = np.nan
        raw.loc[3, [num, cat]] = [np.nan, np.nan]
        raw["extra_column"] = "not a feature"
        raw = raw[list(reversed(raw.columns))]  # a different column order, too
        out[kind] = (X, y, raw, roles)
    return out


def _point_corner(space: SearchSpace, corner: str) -> dict:
    point = {}
    for name, dist in space.params.items():
        if isinstance(dist, CategoricalDistribution):
            point[name] = dist.choices[0 if corner == "low" else -1]
        else:
            point[name] = dist.low if corner == "low" else dist.high
    return point


def _point_random(space: SearchSpace, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    point = {}
    for name, dist in space.params.items():
        if isinstance(dist, CategoricalDistribution):
            point[name] = dist.choices[int(rng.integers(len(dist.choices)))]
        elif isinstance(dist, IntDistribution):
            if dist.log:
                value = math.exp(rng.uniform(math.log(dist.low), math.log(dist.high)))
                point[name] = int(min(dist.high, max(dist.low, round(value))))
            else:
                point[name] = int(rng.integers(dist.low, dist.high + 1))
        elif isinstance(dist, FloatDistribution):
            if dist.log:
                point[name] = float(math.exp(rng.uniform(math.log(dist.low), math.log(dist.high))))
            else:
                point[name] = float(rng.uniform(dist.low, dist.high))
        else:  # pragma: no cover - a new distribution type needs a sampler here
            raise AssertionError(f"unknown distribution {dist!r}")
        assert dist._contains(dist.to_internal_repr(point[name])), (name, point[name])
    return point


# Tree counts only cost time; corner and random points use the smallest one, and a fixed
# ceiling (the boosters' rounds, which early stopping decides in a trial) a small count.
ROUNDS = ("n_estimators", "max_iter")
CHEAP_ROUNDS = 30


def _cheap(space: SearchSpace, point: dict) -> dict:
    ceilings = {k: CHEAP_ROUNDS for k in ROUNDS if k in space.fixed}
    return {**ceilings, **{k: space.params[k].low if k in ROUNDS else v for k, v in point.items()}}


def _check_contract(key: str, kind: str, params: dict, datasets) -> None:
    # As tasks.models.pipeline.fit_pipeline does: OpenMP models (histogram boosting) ignore n_jobs. Their
    # predictions too: on a busy machine, idle OpenMP threads spinning cost seconds per call.
    with threadpool_limits(limits=1):
        _contract(key, kind, params, datasets)


def _contract(key: str, kind: str, params: dict, datasets) -> None:
    X, y, raw, roles = datasets[kind]
    task = DATA[kind][2]
    pipeline = build_pipeline(key, params, task=task, roles=roles, seed=0, n_jobs=1)
    pipeline.fit(X, y)
    pred = pipeline.predict(raw)
    assert len(pred) == len(raw)
    if task == "classification":
        assert set(pred) <= set(y)
        proba = pipeline.predict_proba(raw)
        assert proba.shape == (len(raw), len(np.unique(y)))
        assert np.all(np.isfinite(proba)) and np.all(proba >= 0)
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
        assert list(pipeline.classes_) == sorted(set(y))
    else:
        assert np.all(np.isfinite(np.asarray(pred, dtype=float)))
    clone = pickle.loads(pickle.dumps(pipeline))
    np.testing.assert_array_equal(clone.predict(raw), pred)
    if task == "classification":
        np.testing.assert_array_equal(clone.predict_proba(raw), pipeline.predict_proba(raw))


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_space_loads(case):
    key, _ = case
    space = load_space(key)
    assert space.name == key
    assert space.params, f"{key} searches nothing"
    assert space.defaults, f"{key} has no default point to try first"
    for point in space.defaults:
        assert set(point) == set(space.params)


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_default_points_fit_predict_pickle(case, datasets):
    key, kind = case
    for point in load_space(key).defaults:
        _check_contract(key, kind, point, datasets)


@pytest.mark.parametrize("corner", ["low", "high"])
@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_corner_points_fit(case, corner, datasets):
    key, kind = case
    space = load_space(key)
    _check_contract(key, kind, _cheap(space, _point_corner(space, corner)), datasets)


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_random_point_fits(case, datasets):
    key, kind = case
    space = load_space(key)
    _check_contract(key, kind, _cheap(space, _point_random(space, seed=len(key))), datasets)


def test_fixed_settings_reach_the_estimator(datasets):
    X, y, raw, roles = datasets["binary"]
    space = load_space("random_forest")
    pipeline = build_pipeline(
        "random_forest", space.defaults[0], task="classification", roles=roles, seed=7, n_jobs=1
    )
    params = inner_estimator(pipeline.named_steps["model"]).get_params()
    for name, value in {**space.fixed, **space.defaults[0]}.items():
        assert params[name] == value
    assert params["random_state"] == 7 and params["n_jobs"] == 1


def test_every_yaml_has_a_family_and_every_family_a_yaml():
    stems = {
        entry.name.removesuffix(".yaml")
        for entry in resources.files("search_spaces").iterdir()
        if entry.name.endswith(".yaml")
    }
    # portfolio.yaml is tasks.search.portfolio's, distributed.yaml distributed training's
    assert stems - {"portfolio", "distributed"} == set(FAMILIES)


def test_load_space_unknown_stem():
    where = re.escape("search_spaces/no_such_family.yaml")
    with pytest.raises(ConfigError, match=f"{where} does not exist"):
        load_space("no_such_family")


# ---------------------------------------------------------------- bad documents

GOOD = {
    "fixed": {"n_estimators": 10},
    "params": {
        "learning_rate": {"type": "float", "low": 0.01, "high": 0.3, "log": True},
        "depth": {"type": "int", "low": 2, "high": 8},
        "kind": {"type": "categorical", "choices": ["a", "b"]},
    },
    "defaults": [{"learning_rate": 0.1, "depth": 3, "kind": "a"}],
}
_DELETE = object()


def _with(**changes) -> dict:
    """GOOD with one change; keys like defaults__0__kind walk into the document."""
    document = copy.deepcopy(GOOD)
    for dotted, value in changes.items():
        target = document
        *path, last = (int(p) if p.isdigit() else p for p in dotted.split("__"))
        for part in path:
            target = target[part]
        if value is _DELETE:
            del target[last]
        else:
            target[last] = value
    return document


def test_good_document_parses():
    space = parse_space("mine", GOOD)
    assert set(space.params) == {"learning_rate", "depth", "kind"}
    assert isinstance(space.params["learning_rate"], FloatDistribution)
    assert space.params["learning_rate"].log
    assert isinstance(space.params["depth"], IntDistribution)
    assert space.params["kind"].choices == ("a", "b")
    assert space.fixed == {"n_estimators": 10}
    assert space.defaults == ({"learning_rate": 0.1, "depth": 3, "kind": "a"},)


NEEDS_TYPE = r"parameter 'depth' needs a type, one of float, int, categorical"
INCOMPLETE = r"defaults\[0\] must give every searched parameter"
BAD = [
    pytest.param(
        _with(params__depth={"type": "integer", "low": 2, "high": 8}), NEEDS_TYPE, id="unknown_type"
    ),
    pytest.param(_with(params__depth={"low": 2, "high": 8}), NEEDS_TYPE, id="missing_type"),
    pytest.param(
        _with(params__depth={"type": "int", "low": 8, "high": 2}), r"'depth' .* is invalid",
        id="low_above_high",
    ),
    pytest.param(
        _with(params__depth={"type": "int", "low": 2, "hi": 8}), r"'depth' .* is invalid",
        id="misspelt_argument",
    ),
    pytest.param(_with(defaults__0__kind=_DELETE), INCOMPLETE, id="default_missing_param"),
    pytest.param(_with(defaults__0__other=1), INCOMPLETE, id="default_extra_param"),
    pytest.param(_with(defaults=[[0.1, 3, "a"]]), INCOMPLETE, id="default_not_a_mapping"),
    pytest.param(
        _with(defaults__0__learning_rate=0.5), r"defaults\[0\]\.learning_rate=0\.5 is outside",
        id="default_float_outside",
    ),
    pytest.param(
        _with(defaults__0__depth=9), r"defaults\[0\]\.depth=9 is outside", id="default_int_outside"
    ),
    pytest.param(
        _with(defaults__0__depth=2.5), r"defaults\[0\]\.depth=2\.5 is outside",
        id="default_int_not_integral",
    ),
    pytest.param(
        _with(defaults__0__kind="c"), r"defaults\[0\]\.kind='c' is outside",
        id="default_choice_outside",
    ),
    pytest.param(
        _with(defaults__0__learning_rate="fast"), r"learning_rate='fast' is outside",
        id="default_not_a_number",
    ),
    pytest.param(
        _with(fixed__depth=4), r"\['depth'\] are both fixed and searched", id="fixed_and_searched"
    ),
    pytest.param(
        _with(param={}), r"unexpected \['param'\]; the keys are defaults, fixed, params",
        id="unknown_top_level_key",
    ),
    pytest.param(["fixed", "params"], r"unexpected", id="not_a_mapping"),
]


@pytest.mark.parametrize(("document", "pattern"), BAD)
def test_bad_document_names_the_file(document, pattern):
    where = re.escape("search_spaces/broken_space.yaml")
    with pytest.raises(ConfigError, match=f"{where}: .*{pattern}"):
        parse_space("broken_space", document)


def test_bad_yaml_document_from_text():
    text = "params:\n  alpha: {type: float, low: 0.1, high: 1.0}\ndefaults:\n  - {alpha: 2.0}\n"
    pattern = r"search_spaces/alpha_only\.yaml: defaults\[0\]\.alpha=2\.0 is outside"
    with pytest.raises(ConfigError, match=pattern):
        parse_space("alpha_only", yaml.safe_load(text))


# ---------------------------------------------------------------- regressions (bugs once found)


@pytest.mark.parametrize(
    "text",
    [
        # A stray dash turns the params mapping into a list.
        "params:\n  - alpha: {type: float, low: 0.1, high: 1.0}\n",
        "fixed: [max_iter]\nparams:\n  alpha: {type: float, low: 0.1, high: 1.0}\n"
        "defaults:\n  - {alpha: 0.5}\n",
    ],
    ids=["params_is_a_list", "fixed_is_a_list"],
)
def test_sections_that_are_not_mappings_name_the_file(text):
    with pytest.raises(ConfigError, match=re.escape("search_spaces/listy.yaml")):
        parse_space("listy", yaml.safe_load(text))


@pytest.mark.parametrize(
    ("text", "name", "kind"),
    [
        ("params:\n  alpha: {type: float, low: 1.0e-5, high: 10.0, log: true}\n"
         "defaults:\n  - {alpha: 1e-3}\n", "alpha", float),
        ("params:\n  n_neighbors: {type: int, low: 1, high: 64}\n"
         "defaults:\n  - {n_neighbors: 15.0}\n", "n_neighbors", int),
    ],
    ids=["float_written_1e-3", "int_written_15.0"],
)
def test_default_of_wrong_type_is_rejected_or_converted(text, name, kind):
    try:
        space = parse_space("typed", yaml.safe_load(text))
    except ConfigError as exc:
        assert "search_spaces/typed.yaml" in str(exc)
        return
    value = space.defaults[0][name]
    assert type(value) is kind, f"{name}={value!r} reaches the estimator as {type(value).__name__}"


@pytest.mark.parametrize("key", ["lasso_lars", "sgd"])
def test_linear_regressors_stay_finite_on_wide_one_hot_data_with_outliers(key):
    # ames_housing: ~380 encoded columns, collinear one-hot levels, values 50 standard deviations
    # out. The fold below once gave LassoLars an NRMSE of 4e11 (its Cholesky floor, `eps`) and
    # SGD 2,700 (its first step, `eta0`).
    frame = load("ames_housing")
    X, y = frame.drop(columns="SalePrice"), frame["SalePrice"].to_numpy(dtype=float)
    fit, valid = list(KFold(3, shuffle=True, random_state=0).split(X))[2]
    pipeline = build_pipeline(
        key, load_space(key).defaults[0], task="regression", roles=detect_roles(X), seed=0, n_jobs=1
    )
    pred = pipeline.fit(X.iloc[fit], y[fit]).predict(X.iloc[valid])
    nrmse = np.sqrt(np.mean((pred - y[valid]) ** 2)) / np.ptp(y)
    assert nrmse < 0.08, f"{key}: NRMSE {nrmse:.3g}"
