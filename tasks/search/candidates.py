"""The search's core types: a candidate configuration, the settings every trial shares, a
trial's result. Light on purpose: tracking, charts and promotion read them without importing the
modelling stack."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tasks.models.families import FAMILIES

if TYPE_CHECKING:
    from tasks.features.roles import ColumnRoles
    from tasks.types import Array, Params

__all__ = ["Candidate", "ConfigurationKey", "TrialResult", "TrialSettings"]

ConfigurationKey = tuple[str, tuple[tuple[str, object], ...]]


@dataclass(frozen=True)
class Candidate:
    number: int
    family: str
    params: Params
    # Cheap fidelity first: after fold i the mean of its fold scores so far must not be worse
    # than prune_bars[i] (the median of the finished trials there, tasks.search.loop), or the trial
    # stops, pruned. Empty: every fold runs.
    prune_bars: tuple[float, ...] = ()
    # A screening job (tasks.search.screening): fit on this many of the fold's fit rows, scored
    # on all its validation rows. None: every fit row, a trial whose model can be chosen.
    rows: int | None = None

    @property
    def label(self) -> str:
        return f"{FAMILIES[self.family].name}-{self.number}"

    @property
    def key(self) -> ConfigurationKey:
        """The configuration, whatever its number: two candidates of the same key fit the same
        model (the search runs a configuration once; the head start's results are claimed by
        it). A screening job's rows are part of it."""
        params = tuple(sorted(self.params.items()))
        return self.family, params if self.rows is None else (*params, ("rows", self.rows))


@dataclass(frozen=True)
class TrialSettings:
    """What every trial of a run shares besides the data."""

    roles: ColumnRoles
    seed: int
    n_jobs: int
    featurize: bool = True
    # Boosting rounds stop on each fold's validation rows when this stops improving: "auc",
    # "loss" or None, the model's own loss (metrics.early_stopping_watch).
    early_stopping: str | None = None
    # What boosting stops on: None, the fold's validation rows, which also score it; or this
    # share of the fold's fit rows (boosting.stopping_split). benchmarks/early_stopping.py
    # compares the two: the validation rows chose better models on the meta tables.
    stop_share: float | None = None
    metric: str | None = None  # the primary metric: each fold is scored with it, for pruning
    # A boosting fit also stops after this long, with the rounds it has, and the MLP's schedule
    # shrinks to it (budget.boosting_seconds); None: only when its validation rows stop improving.
    fit_seconds: float | None = None
    # enable_onnx_compatible_models: only LightGBM takes categories natively, no engineered
    # features (tasks.models.pipeline.build_pipeline).
    onnx: bool = False


@dataclass(frozen=True, eq=False)
class TrialResult:
    candidate: Candidate
    ok: bool
    metrics: dict[str, float] = field(default_factory=dict)
    predictions: Array | None = None  # validation predictions, in SearchData.valid_rows order
    # Fitting on every fold run, featurizing included: counted even where the worker reused
    # the fold as it featurized it for an earlier trial (tasks.search.encoded), as the refit on
    # all rows, which budget estimates take from it, featurizes again.
    fit_seconds: float = 0.0
    predict_seconds: float = 0.0
    error: str | None = None
    reason: str | None = None  # why it failed: error | timeout | memory | budget | interrupted
    worker: str = ""  # host:pid of the process that supervised the trial
    model_bytes: int = 0  # pickled size of one fitted fold's pipeline
    # One raw row through the last fold's whole pipeline (featurizing included), the median of a
    # few calls: a service scores rows one at a time, where per-call overhead dominates.
    predict_ms_per_row: float | None = None
    # What the refit on all rows changes in the candidate's parameters: a boosting model takes
    # the rounds its folds kept on average, the MLP the epochs its clock left its schedule.
    refit_params: Params = field(default_factory=dict)
    fold_scores: tuple[float, ...] = ()  # the primary metric on each fold run (NaN: undefined)
    # The sampler proposed a configuration already tried: that trial's number, whose result
    # stands for this one (not run again, not an ensemble member).
    duplicate_of: int | None = None
    peak_memory_mb: float = 0.0  # the worker process's peak resident memory during the trial
    start_memory_mb: float = 0.0  # and its resident memory as the trial began
    # Epoch seconds the trial was handed to its worker and came back (0: not run by a worker):
    # its MLflow run's start and end, not the moments it was logged.
    started_at: float = 0.0
    ended_at: float = 0.0
    reused_seconds: float = 0.0  # of fit_seconds, the featurizing counted but not done
    featurize_seconds: float = 0.0  # of fit_seconds, the featurizing, done or reused

    @property
    def status(self) -> str:
        """As the leaderboard and MLflow show it: ok, duplicate (a configuration tried before,
        not run again), pruned (stopped after a fold, worse than the median there), screened (a
        screening job on a subsample of the rows: ranked, never chosen), skipped (not started:
        it would not fit in max_memory_mb) or failed."""
        if self.duplicate_of is not None:
            return "duplicate"
        if self.ok:
            return "ok" if self.candidate.rows is None else "screened"
        return self.reason if self.reason in ("pruned", "skipped") else "failed"

    @property
    def predict_ms_per_1k_rows(self) -> float | None:
        """Predicting the validation rows, in milliseconds per 1,000 rows; None when unknown
        (a failed, pruned or repeated trial, or one resumed without its predictions)."""
        rows = 0 if self.predictions is None else len(self.predictions)
        if not self.ok or rows == 0 or self.predict_seconds <= 0:
            return None
        return self.predict_seconds / rows * 1e6

    @property
    def final_params(self) -> Params:
        """The parameters the final model is refit with."""
        return {**self.candidate.params, **self.refit_params}
