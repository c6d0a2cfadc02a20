"""tasks.search.state: the one record of a running search that the loop, the recorder and the
budget all read: the best, the leaders, what early stopping counts, repeats, pruning bars."""

from __future__ import annotations

import math

from tasks.budget import LEADERS
from tasks.metrics import METRICS
from tasks.search.candidates import Candidate, TrialResult
from tasks.search.state import PRUNE_STARTUP, SearchState

AUC = METRICS["AUC_weighted"]
LOG_LOSS = METRICS["log_loss"]


def trial(number: int, score: float | None, family: str = "lightgbm", **params: object
          ) -> TrialResult:
    candidate = Candidate(number, family, {"n_estimators": 100 + number, **params})
    if score is None:
        return TrialResult(candidate, False, error="ValueError: boom", reason="error")
    return TrialResult(candidate, True, {AUC.name: score, LOG_LOSS.name: 1 - score},
                       fold_scores=(score, score - 0.01, score + 0.01))


def test_the_best_and_the_leaders_follow_the_metric_s_direction():
    state = SearchState(AUC, ["lightgbm"])
    improved = [state.add(trial(i, s)) for i, s in enumerate([0.7, 0.9, 0.8, None, 0.95])]
    assert improved == [True, True, False, False, True]
    assert state.best is state.results[4] and state.best_score == 0.95
    assert [r.candidate.number for r in state.leaders] == [4, 1][:LEADERS]
    lower = SearchState(LOG_LOSS, ["lightgbm"])
    for i, s in enumerate([0.7, 0.9, 0.8]):
        lower.add(trial(i, s))
    assert lower.best_score == 1 - 0.9  # the smallest loss


def test_results_keep_their_order_and_time():
    state = SearchState(AUC, ["lightgbm"])
    for i in range(3):
        state.add(trial(i, 0.5 + i / 10))
    assert [r.candidate.number for r in state.results] == [0, 1, 2]
    assert len(state.elapsed) == 3 and state.elapsed == sorted(state.elapsed)
    outcome = state.outcome("iteration limit (3) reached")
    assert outcome.best is state.best and outcome.elapsed == tuple(state.elapsed)
    assert outcome.families == ("lightgbm",)


def test_early_stopping_counts_only_the_sampler_s_trials_without_improvement():
    state = SearchState(AUC, ["lightgbm"])
    state.add(trial(0, 0.9))
    state.add(trial(1, 0.5), counted=False)  # a queued first point: not counted
    state.add(trial(2, 0.6))
    state.add(trial(3, None))
    assert state.since_best == 2
    state.add(trial(4, 0.91))
    assert state.since_best == 0


def test_a_repeated_configuration_takes_the_earlier_result_and_is_no_leader():
    state = SearchState(AUC, ["lightgbm"])
    first = trial(0, 0.8, num_leaves=31)
    state.add(first)
    again = Candidate(7, "lightgbm", dict(first.candidate.params))
    repeat = state.repeat_of(again)
    assert repeat is not None and repeat.duplicate_of == 0 and repeat.candidate is again
    assert repeat.metrics == first.metrics and repeat.predictions is None
    assert repeat.fit_seconds == 0.0
    state.add(repeat)
    assert state.leaders == [first] and state.best is first
    assert state.repeat_of(Candidate(8, "lightgbm", {"n_estimators": 1})) is None


def test_a_failed_configuration_may_be_tried_again():
    state = SearchState(AUC, ["lightgbm"])
    failed = trial(0, None)
    state.add(failed)
    assert state.repeat_of(Candidate(9, "lightgbm", dict(failed.candidate.params))) is None


def test_pruning_bars_wait_for_enough_finished_trials_then_take_the_medians():
    state = SearchState(AUC, ["lightgbm"])
    scores = [0.6, 0.7, 0.8, 0.9, 0.75]
    for i, s in enumerate(scores[: PRUNE_STARTUP - 1]):
        state.add(trial(i, s))
    assert state.prune_bars() == ()
    state.add(trial(PRUNE_STARTUP, scores[-1]))
    bars = state.prune_bars()
    assert len(bars) == 2  # no bar at the last of the three folds
    assert math.isclose(bars[0], 0.75)  # the median of the first folds' scores
    assert math.isclose(bars[1], 0.75 - 0.005)  # the median of the means over two folds


def test_a_resumed_search_starts_from_its_history():
    earlier = [trial(0, 0.7), trial(1, 0.85)]
    state = SearchState(AUC, ["lightgbm"], earlier)
    assert state.best is earlier[1] and len(state.results) == 2
    assert state.repeat_of(Candidate(5, "lightgbm", dict(earlier[0].candidate.params)))
