"""Scheduled retraining (the automl-retrain deployment): train again on the latest data, the
search warm-started from the experiment's previous registered run.

Promotion is the training flow's registration rule: the new version becomes the champion only
when it is better; this flow adds where to start the search.
"""

from __future__ import annotations

from prefect import flow, get_run_logger

from flows.automl import train
from flows.result import TrainResult
from flows.ui import fails_as_sentence, label_run, run_name
from tasks.config import AutoMLConfig
from tasks.search.study import open_storage, warm_start_points
from tasks.types import Params

__all__ = ["retrain_flow", "previous_points"]


def previous_points(config: AutoMLConfig, top: int) -> list[Params]:
    """The previous registered study's best configurations (tasks.search.study's
    warm_start_points)."""
    return warm_start_points(open_storage(config.optuna_storage, config.workdir_path),
                             config.experiment_name, top)


@flow(name="automl-retrain", flow_run_name=run_name, validate_parameters=True)
@fails_as_sentence
def retrain_flow(config: AutoMLConfig, warm_start_trials: int = 5) -> TrainResult:
    """Retrain on the latest data, starting from the previous run's best configurations.

    Args:
        config: The training settings; training_data is where the latest data is published.
        warm_start_trials: How many of the previous run's best configurations are tried
            first (0: a cold start).
    """
    label_run("automl", "retrain", config.experiment_name)
    points = previous_points(config, warm_start_trials)
    if points:
        get_run_logger().info("warm start: %d configuration(s) of experiment %r's previous "
                              "registered run are tried first", len(points), config.experiment_name)
    else:
        get_run_logger().info("experiment %r has no previous registered run: a cold start",
                              config.experiment_name)
    return train(config, warm_start=points)
