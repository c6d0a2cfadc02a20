"""The candidate loop: keep up to `batch_size` trials running, tell each back as it finishes,
ask the next, decide when to stop.

The loop knows nothing of Prefect or MLflow: it is given an evaluator that runs candidates (the
flow submits them as tasks to its worker pool) and a function that records each result (the flow
logs it). Told in ask order (a deterministic run), a seeded search is reproducible at any
concurrency, and the next trial is asked while the running ones work; told as they finish, a new
trial starts as soon as any one finishes. Either way a slow trial never holds the others' cores
idle.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from tasks.errors import SearchError
from tasks.search.candidates import TrialResult
from tasks.search.sampling import ask_candidate, first_points, point_of, tell_result
from tasks.search.screening import Screening
from tasks.search.state import SearchState
from tasks.search.stopping import nothing_learned, stop_reason

if TYPE_CHECKING:
    from collections.abc import Sequence

    import optuna

    from tasks.search.candidates import Candidate
    from tasks.search.memory import MemoryGate
    from tasks.search.outcome import SearchOutcome
    from tasks.types import Params

__all__ = ["SearchLimits", "Evaluator", "Record", "run_search", "prunable", "PRUNE_MIN_ROWS",
           "ORDERED_LAG", "ordered_lag"]

log = logging.getLogger("automl")

# Records one finished trial, once the state holds it; returns the tracking run id of the trial.
Record = Callable[[TrialResult, SearchState], str | None]

# Pruning compares a trial's score on a fold with the others': on a fold of fewer rows that score
# is mostly noise (a kernel SVM that ranked among the best was pruned on 120-row folds), and
# trials on data that small are cheap anyway, so there is little time to save.
PRUNE_MIN_ROWS = 500

# A deterministic run's lag (SearchLimits.lag): trials of runs with up to ORDERED_LAG + 1 trials at
# once see the same results, so such runs match whatever their concurrency; a larger concurrency
# lags by its own count, so as not to wait.
ORDERED_LAG = 7


def ordered_lag(concurrency: int) -> int:
    """A deterministic run's lag (SearchLimits.lag) at this concurrency."""
    return max(ORDERED_LAG, concurrency - 1)


class Evaluator(Protocol):
    """Runs candidates somewhere: a handle per submitted candidate (Any: the runner's own type,
    a Prefect future or a test's stand-in)."""

    def submit(self, candidate: Candidate) -> Any: ...

    def first_done(self, handles: list[Any]) -> Any:
        """Block until one of the handles is finished; return it."""

    def result(self, handle: Any) -> TrialResult: ...


@dataclass(frozen=True)
class SearchLimits:
    iterations: int
    deadline: Callable[[], float]  # time.monotonic() after which no new trial starts
    batch_size: int = 1  # trials running at once
    exit_score: float | None = None
    patience: int | None = 20  # None: no early stopping
    prune: bool = True  # a trial worse than the median after a fold stops there
    # Results told in ask order, each trial seeing those asked `lag` asks before it or earlier
    # (run_search); None: told as they finish.
    lag: int | None = None
    # Screening (tasks.search.screening): its jobs' fit rows, () for none, and the fold's fit rows.
    rungs: tuple[int, ...] = ()
    fit_rows: int = 0
    clock: float | None = None  # a boosting fit's time limit, for the promotions' estimates
    memory: MemoryGate | None = None  # max_memory_mb: trials start only within it


def prunable(fold_sizes: Sequence[int]) -> bool:
    """Pruning only where every fold has PRUNE_MIN_ROWS validation rows or more."""
    return min(fold_sizes) >= PRUNE_MIN_ROWS


def run_search(
    study: optuna.Study,
    state: SearchState,
    limits: SearchLimits,
    evaluator: Evaluator,
    record: Record,
    first: Sequence[Params] = (),
) -> SearchOutcome:
    """Run trials until a limit. `first` are configurations tried before the portfolio: a
    resumed run's interrupted trials, a warm start's best points.

    With `limits.lag` set, results are told in the order the trials were asked, and the trial
    asked k-th sees exactly the results of the trials asked before the (k - lag)-th, however many
    run at once and whichever finishes first: the same seed and iterations give the same trials
    at any concurrency up to lag + 1 (more wait for the trial lag asks back).
    """
    families = list(state.families)
    queue = first_points(study, families, list(first))
    screening = Screening(limits.rungs, limits.fit_rows, state.metric, limits.clock)
    for earlier in state.results:  # a resumed run's
        screening.started(earlier.candidate)
        screening.add(earlier)
    ordered = limits.lag is not None
    pending: list[_Asked] = []  # ordered: asked and not told yet, in ask order
    running: dict[Any, _Asked] = {}  # by the evaluator's handle
    asked = told = 0
    memory_wait = False  # a trial was refused for memory: ask again once a running one ends
    reason = stop_reason(limits, state, 0)

    def tell(item: _Asked) -> None:
        nonlocal told, reason
        assert item.result is not None
        told += 1
        state.add(item.result, counted=not item.queued)
        screening.add(item.result)
        if limits.memory is not None:
            limits.memory.add(item.result)
        tell_result(study, item.trial, item.result, state.metric.name,
                    record(item.result, state))
        if item.result.duplicate_of is not None:
            log.info("trial %s repeats trial %d: its result stands",
                     item.result.candidate.label, item.result.duplicate_of)
        else:
            _log_progress(item.result, state)
        reason = reason or stop_reason(limits, state, asked - told)

    def stopped() -> bool:  # a function: tell() sets reason, which the type checker cannot see
        return reason is not None

    def tell_ready(upto: int) -> None:
        """Ordered: tell, in ask order, every trial asked before the upto-th, waiting for any
        still running."""
        while ordered and told < upto:
            if pending[0].result is None:
                collect()
                continue
            tell(pending.pop(0))

    def collect() -> None:
        handle = evaluator.first_done(list(running))
        item = running.pop(handle)
        item.result = evaluator.result(handle)
        # From the hand-over to the result, the recording included; a trial the head start ran
        # before it was asked took its worker's time (tasks.search.head_start).
        ran = item.result.ended_at - item.result.started_at
        state.durations.append(max(ran, time.monotonic() - item.started))
        if not ordered:
            tell(item)

    def ask() -> tuple[_Asked, Candidate | None]:
        """The next trial, and its candidate to run (None: a repeat, its result known, or a trial
        the memory limit keeps from starting)."""
        nonlocal asked, memory_wait
        promoted = screening.promotion(time.monotonic, limits.deadline())
        if promoted is not None:  # a screened configuration, now on all the fit rows
            queued = False
            trial, candidate = ask_candidate(study, families, [point_of(promoted.candidate)])
            log.info("trial %s promoted from screening job %s", candidate.label,
                     promoted.candidate.label)
        elif (twin := screening.twin()) is not None:  # the first configuration, screened
            queued = True
            trial, candidate = ask_candidate(study, families, [point_of(twin)])
            candidate = replace(candidate, rows=twin.rows)
        else:
            queued = bool(queue)
            trial, candidate = ask_candidate(study, families, queue)
            candidate = replace(candidate, rows=screening.rows_for_new())
        screening.started(candidate)
        item = _Asked(trial, queued, time.monotonic())
        asked += 1
        if ordered:
            pending.append(item)
        if (repeat := state.repeat_of(candidate)) is not None:
            item.result = repeat
        elif limits.memory is not None and (why := limits.memory.refusal(candidate)) is not None:
            memory_wait = True  # until a running trial hands its memory back
            log.info("trial %s %s", candidate.label, why)
            state.skipped.append(f"{candidate.label} {why}")
            item.result = TrialResult(candidate, False, error=why, reason="skipped")
        else:
            return item, candidate
        if not ordered:
            tell(item)
        return item, None

    def submit(item: _Asked, candidate: Candidate) -> None:
        if limits.prune:
            candidate = replace(candidate, prune_bars=state.prune_bars())
        item.started = time.monotonic()
        running[evaluator.submit(candidate)] = item

    def tellable(upto: int) -> bool:
        """Ordered: whether every trial asked before the upto-th has its result."""
        return all(item.result is not None for item in pending[:max(0, upto - told)])

    # Ordered: the next trial, asked while the running ones work once the results it sees are
    # all in (those of trials lag asks back): asked now or when a worker frees, it is the same
    # trial, and it starts the moment one does, the sampler's and the tracking's time off the
    # workers' path. Asked while the search had no reason to stop, it runs whatever comes.
    ahead: tuple[_Asked, Candidate] | None = None
    while True:
        while (len(running) < limits.batch_size and (ahead is not None or reason is None)
               and not (memory_wait and running)):
            if ahead is not None:
                submit(*ahead)
                ahead = None
            else:
                if limits.lag is not None:
                    tell_ready(asked - limits.lag)
                    if stopped():
                        break
                item, candidate = ask()
                if candidate is not None:
                    submit(item, candidate)
            reason = reason or stop_reason(limits, state, asked - told)
        if (limits.lag is not None and running and ahead is None and reason is None
                and tellable(asked - limits.lag)):
            tell_ready(asked - limits.lag)
            if not stopped():
                item, candidate = ask()
                ahead = None if candidate is None else (item, candidate)
                reason = reason or stop_reason(limits, state, asked - told)
        if running:
            collect()
            memory_wait = False
        elif ordered and told < asked:
            tell_ready(asked)
        else:
            break
    state.skipped.extend(screening.skipped)
    if state.best is None:
        raise SearchError(nothing_learned(state.results, state.metric.name))
    assert reason is not None
    return state.outcome(reason)


@dataclass
class _Asked:
    """A trial asked of the sampler, and its result once it has one."""

    trial: optuna.trial.Trial
    queued: bool  # a first point (portfolio, defaults, retries): not counted by early stopping
    started: float  # time.monotonic() it was handed to the evaluator
    result: TrialResult | None = None
    seconds: float | None = None  # wall seconds, for a trial that ran (not a repeat)


def _log_progress(result: TrialResult, state: SearchState) -> None:
    name, metric = result.candidate.label, state.metric.name
    if result.reason == "skipped":  # logged as it was refused
        return
    if result.reason == "pruned":
        log.info("trial %s %s", name, result.error)
    elif result.ok and result.candidate.rows is not None:
        log.info("trial %s %s=%.4f screened on %s rows, fit %.1fs", name, metric,
                 result.metrics.get(metric, float("nan")), f"{result.candidate.rows:,}",
                 result.fit_seconds)
    elif not result.ok:
        log.warning("trial %s failed: %s", name, (result.error or "").splitlines()[-1][:200])
    else:
        best, score = state.best, state.best_score
        log.info("trial %s %s=%.4f (best %.4f, %s) fit %.1fs", name, metric,
                 result.metrics.get(metric, float("nan")),
                 float("nan") if score is None else score, best.candidate.label if best else "-",
                 result.fit_seconds)
