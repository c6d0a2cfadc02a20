"""Charts of the search itself: Optuna's optimization history and hyperparameter importance, and
the best score against elapsed time."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from matplotlib.figure import Figure

from tasks.registry.model_charts import new_figure

if TYPE_CHECKING:
    import optuna
    from matplotlib.axes import Axes

    from tasks.metrics import Metric
    from tasks.search.outcome import SearchOutcome

__all__ = ["history", "best_vs_time", "param_importance"]

MAX_PARAMS_SHOWN = 20


def _study(search: SearchOutcome, metric: Metric) -> optuna.Study:
    """An in-memory Optuna study rebuilt from the results, independent of the search storage."""
    import optuna
    from optuna.distributions import CategoricalDistribution
    from optuna.trial import TrialState, create_trial

    from tasks.search.spaces import load_space

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize" if metric.greater_is_better else "minimize")
    families = CategoricalDistribution(list(search.families))
    for result in search.results:
        c = result.candidate
        space = load_space(c.family).params
        params = {"family": c.family, **{f"{c.family}__{k}": v for k, v in c.params.items()
                                         if k in space}}
        dists = {"family": families,
                 **{f"{c.family}__{k}": space[k] for k in c.params if k in space}}
        value = result.metrics.get(metric.name) if result.ok else None
        try:
            study.add_trial(create_trial(
                params=params, distributions=dists, value=value,
                state=TrialState.COMPLETE if value is not None else TrialState.FAIL,
            ))
        except ValueError:  # a value outside today's space file: the trial is left out
            continue
    return study


def _figure(ax: Axes) -> Figure:
    """The figure of Optuna's chart: a whole figure, never a subfigure."""
    figure = ax.figure
    assert isinstance(figure, Figure)
    return figure


def history(search: SearchOutcome, metric: Metric) -> Figure:
    from optuna.visualization.matplotlib import plot_optimization_history

    ax = plot_optimization_history(_study(search, metric), target_name=metric.name)
    ax.set_title("")
    ax.set_title("", loc="left")
    ax.set(xlabel="Trial number", ylabel=metric.name)
    ax.legend(["trial", "best so far"], loc="best", fontsize=8)
    figure = _figure(ax)
    figure.set_size_inches(7.0, 5.0)
    return figure


def best_vs_time(search: SearchOutcome, metric: Metric) -> Figure:
    points = [(t, r.metrics[metric.name])
              for t, r in zip(search.elapsed, search.results, strict=True)
              if r.ok and metric.name in r.metrics]
    if not points:
        raise ValueError("no completed trial")
    times, scores = map(np.asarray, zip(*points, strict=True))
    best = (np.maximum if metric.greater_is_better else np.minimum).accumulate(scores)
    figure, axes = new_figure()
    ax: Axes = axes[0, 0]
    ax.scatter(times, scores, s=14, alpha=0.6, label="trial")
    ax.step(times, best, where="post", color="tab:red", label="best so far")
    ax.set(xlabel="Seconds since the search started", ylabel=metric.name)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return figure


def param_importance(search: SearchOutcome, metric: Metric) -> Figure:
    from optuna.importance import get_param_importances
    from optuna.visualization.matplotlib import plot_param_importances

    study = _study(search, metric)
    done = [t for t in study.trials if t.value is not None]
    if len(done) < 2:
        raise ValueError(f"needs at least 2 completed trials, found {len(done)}")
    importances = get_param_importances(study)  # most important first
    top = list(importances)[:MAX_PARAMS_SHOWN]
    ax = plot_param_importances(study, params=top, target_name=metric.name)
    ax.set_title("")
    ax.set_title("", loc="left")
    ax.set(xlabel=f"Importance for {metric.name}", ylabel="Hyperparameter (family__name)")
    legend = ax.get_legend()
    if legend is not None:
        legend.remove()
    figure = _figure(ax)
    figure.set_size_inches(7.5, max(3.5, 0.35 * len(ax.get_yticklabels()) + 1.5))
    return figure
