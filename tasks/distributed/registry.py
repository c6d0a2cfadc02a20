"""A distributed run's model in the registry: a new version, pending until its alias is settled,
as single-node runs register (tasks.registry.publish), the champion scored on the cluster."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING

from tasks.errors import first_line

if TYPE_CHECKING:
    from distributed import Client

    from tasks.config import AutoMLConfig
    from tasks.distributed.data import ClusterTable
    from tasks.metrics import Metric
    from tasks.registry.promotion import ChampionScore
    from tasks.registry.records import RegisteredModel
    from tasks.registry.tracking import Tracker
    from tasks.types import Array, Estimator

__all__ = ["register_model"]

log = logging.getLogger("automl")


def register_model(config: AutoMLConfig, client: Client, tracker: Tracker, run_id: str,
              pipeline: Estimator, table: ClusterTable, metric: Metric, score: float,
              basis: str) -> RegisteredModel:
    """A new version, pending until its alias is settled (as single-node runs register); the
    champion is scored on this run's held-out rows, predicted on the cluster."""
    from tasks.registry.promotion import CHALLENGER, CHAMPION, promote

    name = config.registered_model_name
    before = {alias: (None if (v := tracker.version_by_alias(name, alias)) is None
                      else str(v.version)) for alias in (CHAMPION, CHALLENGER)}
    registered = tracker.register(run_id, pipeline, table.example, name, previous=before)
    try:
        decision = promote(tracker, name, registered.version, None, metric, score,
                           allowed=config.promote, digest=None, basis=basis,
                           champion=lambda: _champion(client, tracker, name, table, metric,
                                                      basis))
        tracker.mark_complete(name, registered.version)
    except BaseException:
        try:
            tracker.withdraw(name, registered.version, before)
        except Exception as exc:  # noqa: BLE001 - the first error is the one to report
            log.warning("registry: version %s of %s could not be withdrawn (%s); it stays "
                        "pending, which loaders skip", registered.version, name,
                        first_line(exc, 200))
        raise
    return replace(registered, decision=decision)


def _champion(client: Client, tracker: Tracker, name: str, table: ClusterTable, metric: Metric,
              basis: str) -> ChampionScore | None:
    """The current champion's score on the held-out side, its rows predicted where they are."""
    from tasks.registry.promotion import CHAMPION, ChampionScore

    version = tracker.version_by_alias(name, CHAMPION)
    if version is None:
        return None
    number = str(version.version)
    side, y = (table.raw_test, table.y_test) if basis == "test" else (table.raw_valid,
                                                                      table.y_valid)
    assert y is not None  # a test side has its target
    try:
        champion = tracker.load_version(version)
        pred = _predict_raw(client, champion, side, table)
        score = metric(y, pred, None, table.y_range)
    except Exception as exc:  # noqa: BLE001 - a champion that cannot score this data is replaced
        return ChampionScore(number, None, f"it cannot score this data: {first_line(exc, 200)}")
    return ChampionScore(number, score, f"predicted the same {basis} rows on the cluster")


def _predict_raw(client: Client, model: Estimator, side: object, table: ClusterTable) -> Array:
    import numpy as np
    from dask.base import compute
    from dask.delayed import delayed

    from tasks.models.predict import predict_scores

    shared = client.scatter(model, broadcast=True, hash=False)
    parts = [delayed(predict_scores)(shared, part.drop(columns=[table.target]),
                                          table.classes)
             for part in side.to_delayed()]  # type: ignore[attr-defined]
    out = compute(*parts)
    return np.concatenate(out)
