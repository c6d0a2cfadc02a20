"""tasks.search.portfolio: search_spaces/portfolio.yaml, checked against the spaces, and what a new study
tries first."""

from __future__ import annotations

import re

import pytest
from support import load
from sklearn.ensemble import HistGradientBoostingClassifier

from tasks.errors import ConfigError
from tasks.models.families import FAMILIES, resolve_families
from tasks.search.portfolio import WHERE, initial_points, load_portfolio, parse_portfolio
from tasks.search.spaces import load_space
from tasks.search.sampling import FAMILY, ask_candidate, first_points
from tasks.search.study import open_study


def test_every_entry_is_a_complete_point_inside_its_family_space():
    entries = load_portfolio()
    assert len(entries) >= 5
    for family, point in entries:
        space = load_space(family)
        assert set(point) == set(space.params), family
        for name, value in point.items():
            dist = space.params[name]
            assert dist._contains(dist.to_internal_repr(value)), (family, name, value)


def test_left_out_parameters_take_the_family_first_default():
    (family, point), = parse_portfolio([{"family": "lightgbm", "params": {"num_leaves": 7}}])
    assert point == {**load_space("lightgbm").defaults[0], "num_leaves": 7}


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_initial_points_portfolio_first_then_each_family_defaults_once(task):
    families = resolve_families(task)
    points = initial_points(families)
    mine = [(f, p) for f, p in load_portfolio() if f in families]
    assert [_key(x) for x in points[: len(mine)]] == [_key(x) for x in mine]
    assert all(f in families for f, _ in points)
    assert len({_key(x) for x in points}) == len(points)  # no configuration twice
    for family in families:  # every family's own defaults are still tried
        for default in load_space(family).defaults:
            assert (family, default) in points


def test_restricted_families_keep_only_their_entries():
    points = initial_points(["random_forest", "knn"])
    assert {f for f, _ in points} == {"random_forest", "knn"}
    assert points[0][0] == "random_forest"  # in the portfolio, so before knn's defaults


def test_the_baseline_is_among_the_first_two_trials():
    # Anytime quality: HistGradientBoosting with the library's defaults is tried second at the
    # latest, so even two trials return a model no worse (on validation) than that baseline.
    library = HistGradientBoostingClassifier().get_params()
    first_two = initial_points(resolve_families("classification"))[:2]
    hgb = [p for f, p in first_two if f == "gradient_boosting"]
    assert hgb, first_two
    for name, value in hgb[0].items():
        expected = library[name]
        if expected is None and name in ("max_features", "max_leaf_nodes") or expected == 0:
            # None means "all" / 0 means "none", which the numeric spaces hold as their bound
            bounds = load_space("gradient_boosting").params[name]
            assert value in (bounds.low, bounds.high), name
        elif expected is None:
            assert value is None, name
        else:
            assert value == pytest.approx(expected), name


def test_the_search_asks_the_initial_points_first_in_order(tmp_path):
    families = resolve_families("classification")
    study = open_study(name="s", workdir=tmp_path, maximize=True, seed=0)
    expected = [{FAMILY: f, **{f"{f}__{k}": v for k, v in p.items()}} for f, p in initial_points(families)]
    queue = first_points(study, families)
    assert queue == expected
    asked = [ask_candidate(study, families, queue)[0] for _ in range(3)]
    assert [t.params for t in asked] == expected[:3]
    # Asked points count as tried: a reopened study queues only the rest.
    assert first_points(study, families) == expected[3:]


@pytest.mark.parametrize("document, message", [
    ({"family": "lightgbm"}, "must be a list"),
    ([{"family": "no_such"}], "entry 0 names family 'no_such'; the families are: lightgbm"),
    ([{"params": {}}], "entry 0 must be {family: NAME, params: {...}}"),
    ([{"family": "lightgbm", "parms": {}}], "entry 0 must be"),
    ([{"family": "knn", "params": {"n_trees": 3}}], "entry 0 (knn) sets ['n_trees'], which are not searched"),
    ([{"family": "knn"}, {"family": "knn", "params": {"n_neighbors": 1000}}],
     "defaults[1].n_neighbors=1000 is outside"),
])
def test_bad_portfolio_is_one_sentence_naming_the_file(document, message):
    with pytest.raises(ConfigError, match=re.escape(message)) as info:
        parse_portfolio(document)
    assert WHERE in str(info.value) and "\n" not in str(info.value)


def test_portfolio_families_are_registered_and_cover_both_tasks():
    families = {f for f, _ in load_portfolio()}
    assert families <= set(FAMILIES)
    for task in ("classification", "regression"):
        assert len([f for f, _ in load_portfolio() if task in FAMILIES[f].estimators]) >= 5


def test_first_portfolio_trials_match_the_baseline_on_real_folds():
    # On real data, the best of the first two initial points scores at least as well as
    # HistGradientBoosting defaults on the same folds (the baseline is one of them).
    from tasks.config import parse_config
    from tasks.data.inspect import inspect_data
    from tasks.data.split import SplitPlan, split_data
    from tasks.search.candidates import Candidate, TrialSettings
    from tasks.search.evaluate import evaluate_candidate

    frame = load("blood_transfusion")
    config = parse_config(training_data="b", target="donated_march_2007", n_cross_validations=3)
    profile = inspect_data(config, frame)
    data, _ = split_data(SplitPlan.of(config), profile, frame)
    settings = TrialSettings(profile.roles, 0, 1)
    first = initial_points(list(profile.families))[:2]
    scores = [evaluate_candidate(Candidate(i, f, p), data, settings) for i, (f, p) in enumerate(first)]
    baseline = evaluate_candidate(
        Candidate(9, "gradient_boosting", load_space("gradient_boosting").defaults[0]), data, settings)
    assert all(r.ok for r in [*scores, baseline])
    metric = profile.metric.name
    assert max(r.metrics[metric] for r in scores) >= baseline.metrics[metric]


def _key(entry):
    family, point = entry
    return family, tuple(sorted(point.items(), key=lambda kv: kv[0]))
