"""The candidate loop's stopping rules, against a real Optuna study in a journal file."""

from __future__ import annotations

import itertools
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

import optuna
import pytest

from tasks.errors import SearchError
from tasks.metrics import METRICS
from tasks.search.portfolio import initial_points, load_portfolio
from tasks.search.loop import SearchLimits
from tasks.search.loop import run_search as loop
from tasks.search.state import SearchState
from tasks.search.study import open_study
from tasks.search.candidates import Candidate, TrialResult

AUC = METRICS["AUC_weighted"]
LOG_LOSS = METRICS["log_loss"]
FAMILIES = ["lightgbm", "random_forest", "knn"]


def study(tmp_path, maximize=True):
    return open_study(name="s", workdir=tmp_path, maximize=maximize, seed=3)


def outcome_of(c: Candidate, score) -> TrialResult:
    if score is None:
        return TrialResult(c, False, error="ValueError: boom")
    return TrialResult(c, True, {AUC.name: score, LOG_LOSS.name: 1 - score},
                       fold_scores=(score, score, score))


class scripted:
    """An evaluator whose scores follow a script: the loop, not the models, is under test.
    Each candidate is scored when submitted, after `seconds` (one value, or one per trial)."""

    def __init__(self, scores, seconds=0.0, workers=1):
        self.feed = iter(scores)
        self.seconds = seconds
        self.pool = ThreadPoolExecutor(workers)
        self.submitted: list[int] = []

    def submit(self, c: Candidate):
        score = next(self.feed)
        pause = self.seconds(c.number) if callable(self.seconds) else self.seconds
        self.submitted.append(c.number)
        return self.pool.submit(lambda: (time.sleep(pause), outcome_of(c, score))[1])

    def first_done(self, handles):
        done, _ = wait(handles, return_when=FIRST_COMPLETED)
        return next(iter(done))

    def result(self, handle):
        return handle.result()


def run_search(study, families, metric, limits, evaluator, record, history=(), first=()):
    """The loop with a fresh state; `record` takes the result alone."""
    state = SearchState(metric, families, history)
    return loop(study, state, limits, evaluator, lambda result, _: record(result), first)


def limits(**overrides):
    values = {"iterations": 50, "deadline": lambda: time.monotonic() + 60, "patience": None}
    return SearchLimits(**{**values, **overrides})


def test_iteration_limit_and_defaults_come_first(tmp_path):
    s = study(tmp_path)
    outcome = run_search(s, FAMILIES, AUC, limits(iterations=7), scripted(itertools.count(0.5, 0.01)),
                         lambda r: None)
    assert len(outcome.results) == 7 == len(s.trials)
    # The portfolio, then each family's defaults, are tried first, in order (test_portfolio.py).
    first = initial_points(FAMILIES)[:4]
    assert [(r.candidate.family, r.candidate.params) for r in outcome.results[:4]] == first
    # search_spaces/portfolio.yaml is generated (benchmarks/portfolio.py): its first entry among
    # these families, whatever it is, is the first trial.
    head = outcome.results[0].candidate
    assert (head.family, head.params) == next(e for e in load_portfolio() if e[0] in FAMILIES)
    assert outcome.stop_reason == "iteration limit (7) reached"


def test_early_stopping_counts_the_samplers_trials_without_improvement(tmp_path):
    # The first points (portfolio, defaults) are tried whatever they score: patience starts
    # counting at the sampler's own trials.
    queued = len(initial_points(FAMILIES))
    scores = [0.7] + [0.6] * (queued - 1) + [0.65, 0.64, 0.69, 0.66, 0.9]
    outcome = run_search(study(tmp_path), FAMILIES, AUC, limits(patience=4), scripted(scores),
                         lambda r: None)
    assert len(outcome.results) == queued + 4 and outcome.best.metrics[AUC.name] == 0.7
    assert outcome.stop_reason == "early stopping: 4 trials without improvement"


def test_exit_score_respects_the_metric_direction(tmp_path):
    # log loss: lower is better, so 0.3 is reached by a trial scoring 0.25, not by 0.35.
    scores = [0.65, 0.75, 0.8, 0.9]  # log_loss = 1 - score: 0.35, 0.25, 0.2, 0.1
    outcome = run_search(study(tmp_path, maximize=False), FAMILIES, LOG_LOSS,
                         limits(exit_score=0.3), scripted(scores), lambda r: None)
    assert len(outcome.results) == 2
    assert outcome.stop_reason.startswith("exit score 0.3 reached")


def test_failed_trials_are_recorded_and_the_search_goes_on(tmp_path):
    s = study(tmp_path)
    recorded = []
    outcome = run_search(s, FAMILIES, AUC, limits(iterations=4), scripted([None, 0.7, None, 0.6]),
                         lambda r: recorded.append(r) or f"run-{len(recorded)}")
    states = [t.state for t in s.trials]
    assert states.count(optuna.trial.TrialState.FAIL) == 2
    assert s.trials[0].user_attrs["error"] == "ValueError: boom"
    assert s.trials[1].user_attrs["mlflow_run_id"] == "run-2"
    assert len(recorded) == 4 and outcome.best.metrics[AUC.name] == 0.7


def test_all_trials_failing_is_a_clear_error(tmp_path):
    with pytest.raises(SearchError, match=r"all 3 trials failed, so no model was registered; first error: ValueError: boom"):
        run_search(study(tmp_path), FAMILIES, AUC, limits(iterations=3), scripted([None] * 3),
                   lambda r: None)


def test_a_new_trial_starts_as_soon_as_any_running_one_finishes(tmp_path):
    # Trial 0 is slow; with three slots, trials 3.. must start while it still runs.
    running, most = set(), [0]
    lock = threading.Lock()
    ev = scripted([0.5] * 8, seconds=lambda n: 1.5 if n == 0 else 0.05, workers=3)
    original = ev.submit

    def submit(c):
        with lock:
            running.add(c.number)
            most[0] = max(most[0], len(running))
        future = original(c)
        future.add_done_callback(lambda _: running.discard(c.number))
        return future

    ev.submit = submit
    outcome = run_search(study(tmp_path), FAMILIES, AUC, limits(iterations=8, batch_size=3), ev,
                         lambda r: None)
    order = [r.candidate.number for r in outcome.results]
    assert len(order) == 8 and most[0] == 3
    # Waiting for whole batches, 0 would finish among the first three.
    assert order.index(0) >= 4, f"trials finished in the order {order}"


def test_time_budget_stops_starting_trials(tmp_path):
    s = study(tmp_path)
    end = time.monotonic() + 1.0
    outcome = run_search(s, FAMILIES, AUC, limits(deadline=lambda: end),
                         scripted([0.5] * 50, seconds=0.2), lambda r: None)
    # No trial starts once the typical trial (0.2 s) would end past the deadline.
    assert 2 <= len(outcome.results) <= 5
    assert outcome.stop_reason == "time budget used"


def test_a_resumed_search_counts_the_trials_it_inherits(tmp_path):
    s = study(tmp_path)
    first = run_search(s, FAMILIES, AUC, limits(iterations=3), scripted([0.6, 0.8, 0.7]),
                       lambda r: None)
    outcome = run_search(s, FAMILIES, AUC, limits(iterations=5), scripted([0.65, 0.7]),
                         lambda r: None, history=first.results)
    assert len(outcome.results) == 5 == len(s.trials)
    assert outcome.best is first.best


def test_no_trial_within_the_budget_says_what_to_do(tmp_path):
    class stopped(scripted):
        def submit(self, c):
            return self.pool.submit(lambda: TrialResult(c, False, error="budget: stopped",
                                                        reason="budget"))

    with pytest.raises(SearchError, match=r"no trial finished within the time budget \(2 stopped"
                                          r" unfinished\).*raise experiment_timeout_minutes"):
        run_search(study(tmp_path), FAMILIES, AUC, limits(iterations=2), stopped([]),
                   lambda r: None)


def test_pruning_bars_are_the_median_of_the_finished_trials_fold_by_fold(tmp_path):
    scores = [0.6, 0.7, 0.8, None, 0.75, 0.65, 0.9, 0.5]
    evaluator = scripted(scores)
    bars = []
    original = evaluator.submit
    evaluator.submit = lambda c: (bars.append(c.prune_bars), original(c))[1]
    run_search(study(tmp_path), FAMILIES, AUC, limits(iterations=8), evaluator, lambda r: None)
    # No bar before five trials have finished (the failed one does not count); then the median
    # of the finished ones' running mean after each fold but the last.
    assert bars[:6] == [()] * 6
    assert bars[6] == pytest.approx((0.7, 0.7))  # median of 0.6, 0.7, 0.8, 0.75, 0.65
    assert bars[7] == pytest.approx((0.725, 0.725))
    # enable_pruning=False: no bar, ever.
    evaluator, bars = scripted(scores), []
    original = evaluator.submit
    evaluator.submit = lambda c: (bars.append(c.prune_bars), original(c))[1]
    run_search(study(tmp_path / "off"), FAMILIES, AUC, limits(iterations=8, prune=False),
               evaluator, lambda r: None)
    assert bars == [()] * 8


def test_pruned_trials_are_told_to_optuna_with_their_fold_means(tmp_path):
    s = study(tmp_path)

    class pruning(scripted):
        def submit(self, candidate):
            self.submitted.append(candidate.number)
            result = TrialResult(candidate, False, error="pruned after fold 2 of 3", reason="pruned",
                                 fold_scores=(0.5, 0.6))
            return self.pool.submit(lambda: result)

    with pytest.raises(SearchError):  # nothing but pruned trials: no model
        run_search(s, FAMILIES, AUC, limits(iterations=2), pruning([]), lambda r: None)
    frozen = s.trials[0]
    assert frozen.state == optuna.trial.TrialState.PRUNED
    assert frozen.intermediate_values == {0: 0.5, 1: pytest.approx(0.55)}
    assert frozen.value == pytest.approx(0.55) and frozen.user_attrs["reason"] == "pruned"


def test_a_configuration_proposed_again_is_not_run_again(tmp_path):
    s = study(tmp_path)
    first = initial_points(["random_forest"])[0]
    point = {"family": "random_forest", **{f"random_forest__{k}": v for k, v in first[1].items()}}
    for _ in range(3):  # the sampler proposing the same point, as TPE does on a converged space
        s.enqueue_trial(point)
    evaluator = scripted(itertools.count(0.6, 0.01))
    recorded = []
    outcome = run_search(s, ["random_forest"], AUC, limits(iterations=4), evaluator,
                         lambda r: recorded.append(r) or "run")
    # The portfolio's random forest is that same point: it ran once, the repeats did not.
    repeats = [r for r in outcome.results if r.duplicate_of is not None]
    assert len(outcome.results) == 4 and len(evaluator.submitted) == 4 - len(repeats) >= 1
    assert repeats and all(r.duplicate_of == 0 and r.status == "duplicate" for r in repeats)
    assert all(r.metrics == outcome.results[0].metrics and r.predictions is None for r in repeats)
    assert len(recorded) == 4  # every trial is recorded, repeats included
    assert all(r.duplicate_of is None for r in outcome.ranked(AUC))  # never an ensemble member
    assert [t.user_attrs.get("duplicate_of") for t in s.trials][1:len(repeats) + 1] == [0] * len(repeats)


def test_the_random_sampler_tries_the_same_trials_whatever_the_concurrency(tmp_path):
    # benchmarks/parallel.py compares 1 and 2 workers on the same configurations: with
    # sampler="random", which trials finish first must not change what is asked next.
    def run(folder, workers, kind):
        s = open_study(name="s", workdir=folder, maximize=True, seed=3, sampler=kind)
        scores = [0.5 + 0.01 * (n % 7) for n in range(30)]
        ev = scripted(scores, seconds=lambda n: 0.02 * (n % 3), workers=workers)
        outcome = run_search(s, FAMILIES, AUC, limits(iterations=30, batch_size=workers), ev,
                             lambda r: None)
        return [(t.params["family"], t.params) for t in sorted(s.trials, key=lambda t: t.number)], \
            outcome

    one, _ = run(tmp_path / "one", 1, "random")
    three, outcome = run(tmp_path / "three", 3, "random")
    assert len(one) == 30 and one == three
    # The three-worker run did finish out of order, so the sequence had a chance to differ.
    assert [r.candidate.number for r in outcome.results] != sorted(r.candidate.number
                                                                 for r in outcome.results)


def test_the_first_trial_starts_even_when_start_up_used_the_search_time(tmp_path):
    # A short budget whose start-up ran past the search's deadline still tries its first
    # (cheap) configuration, and only that one.
    past = time.monotonic() - 1.0
    outcome = run_search(study(tmp_path), FAMILIES, AUC, limits(deadline=lambda: past),
                         scripted([0.5] * 5), lambda r: None)
    assert len(outcome.results) == 1 and outcome.best is not None
    assert outcome.stop_reason == "time budget used"


def test_trials_that_trained_but_have_no_primary_metric_say_so(tmp_path):
    class unscored(scripted):
        def submit(self, c):  # trained and scored, but AUC is undefined on these rows
            return self.pool.submit(lambda: TrialResult(c, True, {LOG_LOSS.name: 0.5}))

    with pytest.raises(SearchError, match=r"AUC_weighted is undefined on the validation rows of "
                                          r"every trial.*choose another primary_metric"):
        run_search(study(tmp_path), FAMILIES, AUC, limits(iterations=2), unscored([]),
                   lambda r: None)


class by_params(scripted):
    """Scores that are a function of the configuration, durations of the trial number: with two
    trials or more at once they finish out of order."""

    def __init__(self, workers=1):
        super().__init__(itertools.repeat(None), lambda n: (n * 7919 % 13) / 300, workers)
        self.finished: list[int] = []

    def submit(self, c: Candidate):
        import json
        import zlib

        score = 0.5 + zlib.crc32(json.dumps([c.family, c.params], sort_keys=True).encode()) % 400 / 1000
        self.submitted.append(c.number)

        def run():
            time.sleep(self.seconds(c.number))
            self.finished.append(c.number)
            return outcome_of(c, score)

        return self.pool.submit(run)


@pytest.mark.parametrize("ordered", [True, False], ids=["ordered", "as-they-finish"])
def test_an_ordered_search_asks_the_same_trials_at_any_concurrency(tmp_path, ordered):
    """Results told in ask order, each ask seeing those `lag` asks back: one, two and three
    trials at once try the same configurations, in the same order, with the same scores. Told
    as they finish, two at once try other ones (TPE sees other results)."""
    runs = {}
    for workers in (1, 2, 3):
        evaluator = by_params(workers)
        outcome = run_search(study(tmp_path / f"{workers}"), FAMILIES, AUC,
                             limits(iterations=30, batch_size=workers,
                                    lag=7 if ordered else None),
                             evaluator, lambda r: None)
        runs[workers] = [(r.candidate.number, r.candidate.family, r.candidate.params,
                          r.metrics[AUC.name]) for r in outcome.results]
        if workers > 1:
            assert evaluator.finished != sorted(evaluator.finished)  # out of order indeed
    assert len(runs[1]) == 30
    if ordered:
        assert runs[1] == runs[2] == runs[3]
    else:
        assert sorted(runs[1]) != sorted(runs[2])


def test_an_ordered_search_asks_the_next_trial_while_the_running_one_works(tmp_path):
    """One trial at a time, results told 7 asks late: the sampler's ask (and the telling and
    recording of the results it sees) happens while the trial before runs, so each trial is
    handed over the moment the one before it ends; the last trial asked is run too."""
    evaluator = by_params(workers=1)
    evaluator.seconds = lambda n: 0.1
    ended: dict[int, float] = {}
    original = evaluator.submit

    def submit(c):
        future = original(c)
        future.add_done_callback(lambda _: ended.setdefault(c.number, time.time()))
        return future

    evaluator.submit = submit
    tried = study(tmp_path)
    outcome = run_search(tried, FAMILIES, AUC, limits(iterations=12, lag=7), evaluator,
                         lambda r: None)
    assert len(outcome.results) == 12 and evaluator.submitted == list(range(12))
    asked = {t.number: t.datetime_start.timestamp() for t in tried.trials}
    late = [n for n in range(1, 12) if asked[n] > ended[n - 1]]
    assert not late, f"trials asked only after the one before them ended: {late}"
