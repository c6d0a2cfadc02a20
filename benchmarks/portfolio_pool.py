"""The candidates benchmarks/portfolio.py chooses from: every searched family's YAML defaults,
the former hand-written portfolio, and points drawn from each family's space by Optuna's scrambled
Sobol sampler (seeded)."""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tasks.types import Params

SEARCHED = ("lightgbm", "xgboost", "catboost", "gradient_boosting", "random_forest",
            "extra_trees", "logistic_regression", "elastic_net")
BASELINE = "gradient_boosting"  # its first default must be among the first two entries
# Searched parameters left at the family's first default in the drawn points: engineered
# features (tasks.features.engineered) were being added while this was written, and an entry
# that sets a parameter the space may still lose would stop every run at the door.
PINNED = frozenset({"engineered_features"})
# search_spaces/portfolio.yaml as written by hand before benchmarks/portfolio.py (2026-12-06): in
# the pool, and the list the learned one is compared with; the boosters' rounds since left to early
# stopping.
HAND_WRITTEN: list[dict[str, object]] = [
    {"family": "lightgbm"},
    {"family": "gradient_boosting"},
    {"family": "catboost"},
    {"family": "random_forest"},
    {"family": "logistic_regression"},
    {"family": "elastic_net"},
    {"family": "lightgbm", "params": {
        "learning_rate": 0.05, "num_leaves": 15, "min_child_samples": 10,
        "subsample": 0.8, "colsample_bytree": 0.6, "reg_lambda": 1.0}},
    {"family": "extra_trees"},
    {"family": "xgboost", "params": {
        "learning_rate": 0.05, "max_depth": 4, "min_child_weight": 1.0,
        "subsample": 0.8, "colsample_bytree": 0.7, "reg_lambda": 1.0}},
    {"family": "gradient_boosting", "params": {
        "max_iter": 300, "learning_rate": 0.05, "max_leaf_nodes": 15, "min_samples_leaf": 20,
        "l2_regularization": 1.0, "max_features": 0.7}},
    {"family": "lightgbm", "params": {
        "learning_rate": 0.03, "num_leaves": 63, "min_child_samples": 20,
        "subsample": 0.7, "colsample_bytree": 0.5, "reg_lambda": 3.0}},
]


@dataclass(frozen=True)
class Candidate:
    family: str
    params: Params  # a complete point of the family's space
    origin: str  # "default" (or "default 2"...), "portfolio" (the hand-written file), "sampled"

    @property
    def key(self) -> str:
        return f"{self.family} {json.dumps(self.params, sort_keys=True)}"


def candidate_pool(samples: int, seed: int) -> list[Candidate]:
    """Defaults first, then today's portfolio, then the sampled points, without repeats."""
    from tasks.search.spaces import load_space

    pool = [Candidate(f, dict(p), "default" if k == 0 else f"default {k + 1}")
            for f in SEARCHED for k, p in enumerate(load_space(f).defaults)]
    pool += hand_written()
    for index, family in enumerate(SEARCHED):
        pool += [Candidate(family, p, "sampled") for p in _sampled(family, samples, seed + index)]
    unique: dict[str, Candidate] = {}
    for candidate in pool:
        unique.setdefault(candidate.key, candidate)
    return list(unique.values())


def hand_written() -> list[Candidate]:
    """The former hand-written portfolio, its entries completed as the run completes them."""
    from tasks.search.portfolio import parse_portfolio

    return [Candidate(f, dict(p), "portfolio") for f, p in parse_portfolio(HAND_WRITTEN)]


def _sampled(family: str, n: int, seed: int) -> list[Params]:
    """n points of the family's space, spread evenly (Sobol), floats kept to 3 digits."""
    import optuna

    from tasks.search.spaces import load_space

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = load_space(family)
    first = space.defaults[0] if space.defaults else {}
    drawn = {k: d for k, d in space.params.items() if k not in PINNED or k not in first}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = optuna.samplers.QMCSampler(seed=seed, scramble=True,
                                             warn_independent_sampling=False)
    study = optuna.create_study(sampler=sampler)  # in memory, thrown away
    points = []
    for _ in range(n):
        trial = study.ask(drawn)
        values = {k: _rounded(v, space.params[k]) for k, v in trial.params.items()}
        points.append({k: values[k] if k in values else first[k] for k in space.params})
        study.tell(trial, 0.0)
    return points


def _rounded(value: Any, dist: object) -> Any:
    from optuna.distributions import FloatDistribution

    if not isinstance(dist, FloatDistribution) or not isinstance(value, float):
        return value
    return min(max(float(f"{value:.3g}"), dist.low), dist.high)


def first_default(family: str) -> Params:
    from tasks.search.spaces import load_space

    return dict(load_space(family).defaults[0])
