"""The Python API's fit as one run of the training flow: its tables held in memory for the run,
its story told as one progress line (flows.progress), the libraries' own chatter held back."""

from __future__ import annotations

import warnings
from contextlib import ExitStack
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from flows.result import TrainResult
    from tasks.config import AutoMLConfig

__all__ = ["run_fit"]


def run_fit(config: AutoMLConfig, tables: dict[str, pd.DataFrame], started: float,
            verbose: int) -> TrainResult:
    """The flow `automl train` runs, on these tables; its budget counts from started."""
    from flows.progress import progress_line, quiet_console
    from tasks.data.memory import held

    with ExitStack() as stack:
        if verbose < 2:
            # The progress line tells the story: no warnings from the libraries (tqdm's about
            # widgets in a notebook, scikit-learn's and MLflow's), as the command line.
            stack.enter_context(warnings.catch_warnings())
            warnings.simplefilter("ignore")
        from flows.automl import train  # Prefect, and its console handler, first

        if verbose < 2:
            stack.enter_context(quiet_console())
        stack.enter_context(held(tables))
        line = stack.enter_context(progress_line(verbose))
        result = train(config, started_at=started)
        line.finish(f"{result.best_model}: {result.primary_metric}="
                    f"{result.primary_metric_value:.4f} after {result.trials} trials in "
                    f"{result.wall_seconds:.0f} s; registered as {result.model_uri}")
    return result
