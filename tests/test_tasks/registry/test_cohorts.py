"""tasks.registry.cohorts: the primary metric by cohort, on real out-of-fold predictions of
shared tables."""

from __future__ import annotations

import numpy as np
import pytest
from support import load
from trials import Run, candidate, run_trials

from tasks.final.evaluation import HeldOutPredictions
from tasks.metrics import METRICS
from tasks.registry.cohorts import MIN_ROWS, MISSING, OTHER, cohort_masks, error_analysis

AUC = METRICS["AUC_weighted"]
RMSE = METRICS["normalized_root_mean_squared_error"]
PLANTED = ("ocean_proximity", "NEAR BAY")  # about 11% of california_housing's rows
TARGET = "median_house_value"


def _held(run: Run) -> HeldOutPredictions:
    data, [trial] = run.data, run.results
    return HeldOutPredictions("validation", data.X.iloc[data.valid_rows].reset_index(drop=True),
                              data.y_valid, trial.predictions, data.weights_valid, data.classes,
                              data.y_range, data.positive)


@pytest.fixture(scope="module")
def credit() -> HeldOutPredictions:
    return _held(run_trials("credit_g", "class", "classification", [candidate(0, "lightgbm")]))


@pytest.fixture(scope="module")
def housing() -> HeldOutPredictions:
    """3,000 rows of california_housing, the values shuffled among one category's rows:
    nothing there to learn."""
    frame = load("california_housing").sample(3000, random_state=0).reset_index(drop=True)
    rows = np.flatnonzero(frame[PLANTED[0]] == PLANTED[1])
    values = frame[TARGET].to_numpy().copy()
    values[rows] = np.random.default_rng(0).permutation(values[rows])
    frame[TARGET] = values
    held = _held(run_trials("california_housing", TARGET, "regression",
                            [candidate(0, "lightgbm")], frame=frame))
    held.X.loc[::7, "median_income"] = np.nan  # a missing cohort, after the fit: as new rows come
    return held


def _importance(held: HeldOutPredictions, first: list[str]) -> dict[str, float]:
    """`first` most important, then every other column."""
    rest = [str(c) for c in held.X.columns if c not in first]
    return {c: 1.0 / (i + 1) for i, c in enumerate([*first, *rest])}


@pytest.mark.parametrize("name", ["credit", "housing"])
def test_each_columns_cohorts_cover_the_rows_once(name, request):
    held = request.getfixturevalue(name)
    for column in held.X.columns:
        masks = [mask for _, mask in cohort_masks(held.X[column])]
        assert np.array_equal(np.sum(masks, axis=0), np.ones(len(held.X))), column


def test_missing_values_and_the_rare_categories_have_their_own_cohorts(credit, housing):
    labels = [label for label, _ in cohort_masks(housing.X["median_income"])]
    assert labels[-1] == MISSING and len(labels) == 5  # four quantile bins, then the missing
    # credit_g's purpose has a value called "other": the rest is a cohort apart from it
    purposes = dict(cohort_masks(credit.X["purpose"]))
    assert OTHER in purposes and "new car" in purposes and len(purposes) == 6
    assert not purposes[OTHER][(credit.X["purpose"] == "radio/tv").to_numpy()].any()


@pytest.mark.parametrize(("name", "metric", "first"), [
    ("credit", AUC, ["duration", "credit_amount", "checking_status", "purpose"]),
    ("housing", RMSE, ["median_income", "latitude", "ocean_proximity", "total_bedrooms"]),
])
def test_each_cohorts_score_is_the_metric_on_its_rows(name, metric, first, request):
    held = request.getfixturevalue(name)
    analysis = error_analysis(held, metric, _importance(held, first))
    assert {c.column for c in analysis.cohorts} == set(first)
    assert analysis.overall == pytest.approx(metric(held.y, held.pred, None, held.y_range,
                                                    held.positive))
    for cohort in analysis.cohorts:
        mask = dict(cohort_masks(held.X[cohort.column]))[cohort.value]
        assert cohort.rows == mask.sum() >= MIN_ROWS
        assert cohort.score == pytest.approx(metric(held.y[mask], held.pred[mask], None,
                                                    held.y_range, held.positive))
    if name == "housing":
        assert any(c.value == MISSING for c in analysis.cohorts)


def test_the_planted_weak_cohort_is_named_weakest(housing):
    analysis = error_analysis(housing, RMSE, _importance(
        housing, ["median_income", "latitude", "longitude", "ocean_proximity"]))
    worst = analysis.weakest()[0]
    assert (worst.column, worst.value) == PLANTED, analysis.weakest()
    assert worst.score > 1.5 * analysis.overall  # normalised RMSE: lower is better
    assert analysis.to_dict()["weakest"][0]["value"] == PLANTED[1]


def test_only_the_strongest_columns_are_cut(housing):
    analysis = error_analysis(housing, RMSE, _importance(housing, ["latitude", "population"]),
                              columns=2)
    assert {c.column for c in analysis.cohorts} == {"latitude", "population"}


def test_without_importance_there_is_no_analysis(credit):
    with pytest.raises(ValueError, match="no permutation importance"):
        error_analysis(credit, AUC, {})
