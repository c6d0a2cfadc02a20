"""Batch scoring as a flow (the automl-score deployment): a registered model, a table in, the
table with predictions (and class probabilities) out, and with explain=True each row's
contributions beside them."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.steps import io_task
from flows.ui import data_name, fails_as_sentence, label_run, publish_markdown, score_run_name
from tasks.config import default_tracking_uri
from tasks.data.credentials import storage_options as resolve_options
from tasks.data.storage import public_url, read_table, write_table
from tasks.registry.scoring import explained_as, load_model, predict_explained, predict_frame
from tasks.types import Estimator, Json

if TYPE_CHECKING:
    from tasks.explain import Explanation

__all__ = ["score_flow", "ScoreResult", "model_reference"]

_URIS = ("models:/", "runs:/")


@dataclass(frozen=True)
class ScoreResult:
    model_uri: str
    model_version: str | None
    chosen_by: str
    rows_in: int
    rows_out: int
    output: str
    explained: str | None = None  # what the contrib_ columns add up to, when asked for

    def to_dict(self) -> Json:
        return asdict(self)


def model_reference(
    model: str, version: str | None, tracking_uri: str
) -> tuple[str, str | None, str]:
    """(URI to load, registered version or None, how it was chosen): a .pkl or a models:/ or
    runs:/ URI as given, else the registered model of that name (champion, else newest)."""
    if model.startswith(_URIS) or model.endswith(".pkl"):
        number = model.removeprefix("models:/").partition("/")[2]
        numbered = model.startswith("models:/") and number.isdigit()
        return model, number if numbered else None, "as given"
    from tasks.registry.tracking import resolve_registered

    return resolve_registered(model, version, tracking_uri)


@task(name="load-model", cache_policy=NO_CACHE)
def _load(uri: str, tracking_uri: str) -> Estimator:
    return load_model(uri, tracking_uri)


@io_task("read-table")
def _read(url: str, options: Json | None) -> pd.DataFrame:
    return read_table(url, what="data to score", storage_options=options)


@task(name="score", cache_policy=NO_CACHE)
def _score(model: Estimator, frame: pd.DataFrame) -> pd.DataFrame:
    return predict_frame(model, frame)


@task(name="score-and-explain", cache_policy=NO_CACHE)
def _score_explained(model: Estimator, frame: pd.DataFrame) -> tuple[pd.DataFrame, Explanation]:
    return predict_explained(model, frame)


@io_task("write-predictions")
def _write(frame: pd.DataFrame, url: str, options: Json | None) -> None:
    write_table(frame, url, storage_options=options)


@flow(name="automl-score", flow_run_name=score_run_name, validate_parameters=True)
@fails_as_sentence
def score_flow(
    model: str,
    data: str,
    output: str,
    version: str | None = None,
    tracking_uri: str | None = None,
    storage_options: Json | None = None,
    storage_secret: str | None = None,
    explain: bool = False,
) -> ScoreResult:
    """Score a table with a trained model and write the predictions.

    Args:
        model: Registered model name (its @champion, else its newest version), or
            an MLflow model URI (models:/NAME/VERSION, models:/NAME/latest, models:/NAME@ALIAS,
            runs:/RUN_ID/model...), or a .pkl path or URL.
        data: Path or URL (s3://, az://) of the table to score, with the training columns.
        output: Path or URL of the predictions (.csv or .parquet): the rows, `prediction` and,
            for classifiers, `proba_<class>` columns.
        version: Version number, `latest` or alias of the registered model (default: champion,
            else newest).
        tracking_uri: MLflow tracking URI (MLFLOW_TRACKING_URI, else ./automl-runs/mlflow.db).
        storage_options: fsspec options for data and output (credentials are masked when recorded).
        storage_secret: Name of a Prefect Secret block holding storage options.
        explain: Also write each row's contributions, as `automl predict --explain` does:
            `contrib_<column>` per input column, `base_value` and `explained_output` (their
            sum: the margin or probability of the positive class, or the prediction; the log
            names it). Slower: per 1,000 rows about 1 s for a boosting model, 10-30 s for an
            ensemble explained by sampling.
    """
    tracking = tracking_uri or default_tracking_uri()
    uri, registered, how = model_reference(model, version, tracking)
    label_run("automl", "score", model if not model.endswith(".pkl") else None)
    log = get_run_logger()
    log.info("scoring with %s (%s)", uri, how)
    options = resolve_options(storage_options, storage_secret)
    fitted = _load(uri, tracking)
    frame: pd.DataFrame = _read(data, options)  # pandas is untyped: mypy reads Task[..., Any]
    explained: Explanation | None = None
    if explain:
        scored, explained = _score_explained(fitted, frame)
    else:
        scored = _score(fitted, frame)
    _write(scored, output, options)
    result = ScoreResult(uri, registered, how, len(frame), len(scored), public_url(output),
                         explained.output_name if explained else None)
    log.info("read %d rows from %s, wrote %d predictions to %s with %s", result.rows_in,
             public_url(data), result.rows_out, result.output, uri)
    if explained is not None:
        log.info("explained the %d rows: %s", result.rows_out, explained_as(explained))
    why = f" with each row's contributions to the {explained.output_name}" if explained else ""
    publish_markdown(
        f"Scored **{result.rows_in}** rows of `{public_url(data)}` with `{uri}` ({how}); "
        f"wrote **{result.rows_out}** predictions{why} to `{result.output}`.",
        key=f"score-{data_name(model)}", description="Batch scoring")
    return result
