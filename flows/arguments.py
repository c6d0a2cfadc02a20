"""The `automl` command's arguments (flows.cli runs the command): one line and exit code 2 for
any mistake argparse finds."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from tasks.types import Json

__all__ = ["parser", "EXIT_USER_ERROR", "DESCRIPTION"]

DESCRIPTION = "The `automl` command line: `automl train ...` and `automl predict ...`."
EXIT_USER_ERROR = 2  # the contract's code for a wrong input (flows.cli lists them all)


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _featurization(value: str) -> object:
    """auto, off, or the JSON document of a file (the config validates it)."""
    if value in ("auto", "off"):
        return value
    try:
        with open(value) as handle:
            document: object = json.load(handle)
            return document
    except (OSError, json.JSONDecodeError) as exc:
        raise argparse.ArgumentTypeError(
            f"'{value}' is not auto, off or a readable JSON file: {exc}") from None


def _storage_options(value: str) -> Json:
    # JSON text, or a JSON file (kept out of the shell history and `ps`). The value may hold
    # credentials, so no message quotes it.
    try:
        if value.lstrip().startswith("{"):
            options = json.loads(value)
        else:
            with open(value) as handle:
                options = json.load(handle)
    except OSError:
        raise argparse.ArgumentTypeError(
            "is neither a JSON object nor a readable JSON file") from None
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"is not valid JSON ({exc.msg} at {exc.pos})") from None
    if not isinstance(options, dict):
        raise argparse.ArgumentTypeError("must be a JSON object, e.g. '{\"anon\": true}'")
    return options


_STORAGE_HELP = ("fsspec options as a JSON object or a JSON file, e.g. "
                 '\'{"client_kwargs": {"endpoint_url": "http://127.0.0.1:9000"}}\' or '
                 '\'{"connection_string": "..."}\'; credentials otherwise come from AWS_* or '
                 "AZURE_STORAGE_* variables, ~/.aws, or --storage-secret")
_SECRET_HELP = ("name of a Prefect Secret block holding a JSON object of storage options; "  # noqa: S105
                "--storage-options entries win over it")


_ENCODING_HELP = ("text encoding of CSV/TSV tables, e.g. cp1252, latin-1, utf-16 (detected "
                  "when omitted)")


class _Parser(argparse.ArgumentParser):
    """argparse's mistakes as the command's other refusals: one line, exit code 2 (argparse
    prints its whole usage first). A `described` parser's help is its knobs' descriptions."""

    def __init__(self, *args: Any, described: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._undescribed = described

    def format_help(self) -> str:
        if self._undescribed:
            from flows.knob_help import describe

            describe(self)
            self._undescribed = False
        return super().format_help()

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USER_ERROR, f"error: {self.prog}: {message}; see {self.prog} --help\n")


def parser() -> argparse.ArgumentParser:
    """The `automl` command's arguments: train and predict."""
    parser = _Parser(prog="automl", description=DESCRIPTION)
    parser.add_argument("-v", "--verbose", action="store_true", help="show Prefect's own logs")
    sub = parser.add_subparsers(dest="command", required=True)

    # Its options' help is each knob's description (flows.knob_help), in groups; `help` here is
    # only what the command line adds to it.
    train = sub.add_parser("train", help="search, ensemble, refit and register a model",
                           described=True)
    data = train.add_argument_group("data")
    data.add_argument("--data", required=True, dest="training_data")
    data.add_argument("--target", required=True)
    data.add_argument("--weight-column")
    data.add_argument("--featurization", type=_featurization, metavar="auto|off|FILE.json",
                      help="On the command line: auto, off, or a JSON file of that mapping, e.g. "
                      '{"column_overrides": {"zip": {"role": "categorical"}}}.')
    data.add_argument("--encoding")
    task = train.add_argument_group("task and metric")
    task.add_argument("--task", choices=["classification", "regression"])
    task.add_argument("--metric", dest="primary_metric")
    task.add_argument("--positive-label")
    limits = train.add_argument_group("limits")
    limits.add_argument("--iterations", type=int)
    limits.add_argument("--timeout-minutes", type=float, dest="experiment_timeout_minutes",
                        help="E.g. 0.5 = 30 s.")
    limits.add_argument("--iteration-timeout-minutes", type=float)
    limits.add_argument("--exit-score", type=float, dest="experiment_exit_score")
    limits.add_argument("--no-early-stopping", dest="enable_early_stopping",
                        action="store_false", default=None)
    limits.add_argument("--max-memory-mb", type=float)
    limits.add_argument("--max-memory-mb-per-trial", type=float,
                        dest="max_memory_mb_per_iteration")
    limits.add_argument("--max-predict-ms-per-row", type=float)
    validation = train.add_argument_group("validation and test")
    scheme = validation.add_mutually_exclusive_group()
    scheme.add_argument("--validation-size", type=float)
    scheme.add_argument("--cv", type=int, dest="n_cross_validations")
    scheme.add_argument("--validation-data")
    test = validation.add_mutually_exclusive_group()
    test.add_argument("--test-data")
    test.add_argument("--test-size", type=float)
    models = train.add_argument_group("models and search")
    models.add_argument("--allowed-models", type=_csv, metavar="NAME,...")
    models.add_argument("--blocked-models", type=_csv, metavar="NAME,...")
    models.add_argument("--no-ensembling", dest="enable_ensembling", action="store_false",
                        default=None)
    models.add_argument("--onnx-compatible", dest="enable_onnx_compatible_models",
                        action="store_true", default=None)
    models.add_argument("--no-pruning", dest="enable_pruning", action="store_false",
                        default=None)
    models.add_argument("--sampler", choices=["tpe", "random"])
    models.add_argument("--deterministic", action=argparse.BooleanOptionalAction, default=None)
    models.add_argument("--seed", type=int, dest="random_state")
    resources = train.add_argument_group("resources")
    resources.add_argument("--max-concurrent", type=int, dest="max_concurrent_iterations")
    resources.add_argument("--max-cores", type=int, dest="max_cores_per_iteration")
    resources.add_argument("--task-runner", choices=["local", "dask"])
    resources.add_argument("--dask-address")
    resources.add_argument("--training-mode", choices=["non_distributed", "distributed"])
    resources.add_argument("--max-nodes", type=int)
    tracking = train.add_argument_group("tracking and registry")
    tracking.add_argument("--experiment", dest="experiment_name")
    tracking.add_argument("--model-name")
    tracking.add_argument("--no-promote", dest="promote", action="store_false", default=None)
    tracking.add_argument("--tracking-uri")
    tracking.add_argument("--workdir")
    tracking.add_argument("--storage", dest="optuna_storage")
    tracking.add_argument("--resume", action="store_true", default=None)
    storage = train.add_argument_group("storage")
    storage.add_argument("--storage-options", type=_storage_options, metavar="JSON",
                         help="On the command line: a JSON object or a JSON file (kept out of "
                         "the shell history and `ps`).")
    storage.add_argument("--storage-secret", metavar="NAME")
    output = train.add_argument_group("output")
    output.add_argument("--json", action="store_true", help="print one JSON object on stdout")

    predict = sub.add_parser("predict", help="score a table with a trained model")
    predict.add_argument("--model", required=True,
                         help="models:/NAME/VERSION, models:/NAME/latest, models:/NAME@ALIAS, "
                         "runs:/RUN_ID/model or a .pkl path")
    predict.add_argument("--data", required=True)
    predict.add_argument("--output", required=True, help=".csv or .parquet path or URL")
    predict.add_argument("--tracking-uri")
    predict.add_argument("--storage-options", type=_storage_options, metavar="JSON",
                         help=_STORAGE_HELP)
    predict.add_argument("--storage-secret", metavar="NAME", help=_SECRET_HELP)
    predict.add_argument("--encoding", help=_ENCODING_HELP)
    predict.add_argument("--onnx", action="store_true",
                         help="score with the model's ONNX graph on onnxruntime (a .onnx path, or "
                         "the graph logged beside a models:/ or runs:/ model), not the pickle")
    predict.add_argument("--explain", action="store_true",
                         help="add each raw column's contribution (contrib_<column>), base_value "
                         "and explained_output beside the predictions")

    explain = sub.add_parser("explain", help="per-row contributions of each raw column")
    explain.add_argument("--model", required=True,
                         help="models:/NAME/VERSION, models:/NAME@ALIAS, runs:/RUN_ID/model or a "
                         ".pkl path")
    explain.add_argument("--data", required=True)
    explain.add_argument("--output", required=True,
                         help=".csv or .parquet path or URL: contrib_<column> per raw column, "
                         "base_value and explained_output (their sum)")
    explain.add_argument("--tracking-uri")
    explain.add_argument("--storage-options", type=_storage_options, metavar="JSON",
                         help=_STORAGE_HELP)
    explain.add_argument("--storage-secret", metavar="NAME", help=_SECRET_HELP)
    explain.add_argument("--encoding", help=_ENCODING_HELP)
    return parser
