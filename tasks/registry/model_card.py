"""The model card: one Markdown page that says what the model is, how it was chosen, how good
it is and how to load it. Logged on the run as model_card.md, next to the charts it links."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NotRequired, TypedDict, cast

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from tasks.types import Json

__all__ = ["CardFacts", "CardData", "CardSearch", "inference_lines", "model_card",
           "weakest_lines"]


class CardData(TypedDict):
    source: object  # where the training table was read, without credentials
    rows: object
    digest: NotRequired[str | None]
    roles: NotRequired[dict[str, list[str]]]  # role -> columns


class CardSearch(TypedDict):
    trials: int
    failed: int
    pruned: NotRequired[int]
    stop_reason: str
    scheme: str


@dataclass(frozen=True)
class CardFacts:
    model_name: str
    version: str
    run_id: str
    tracking_uri: str
    best_model: str
    task: str
    target: str
    primary_metric: str
    data: CardData
    config: Json
    guardrails: list[dict[str, str]]
    search: CardSearch
    leaderboard: Sequence[Mapping[str, object]]  # rows of SearchOutcome.leaderboard
    validation_metrics: dict[str, float]
    test_metrics: dict[str, float] | None
    charts: dict[str, str]  # file -> title
    skipped_charts: dict[str, str]
    decision: Json | None  # promotion.Decision.to_dict()
    # The registered model's predict_ms_per_1k_rows, predict_ms_per_row, model_bytes
    # (tasks.final.cost); empty when not measured.
    inference: dict[str, float] = field(default_factory=dict)
    # tasks.registry.cohorts.ErrorAnalysis.to_dict(); None when it was not drawn.
    cohorts: Json | None = None
    onnx: str = ""  # tasks.registry.portable's outcome: "exported to ..." or "not exported: ..."


def model_card(f: CardFacts) -> str:
    lines = [f"# {f.model_name} version {f.version}", ""]
    lines += [f"**{f.best_model}** for {f.task} of `{f.target}`, chosen by `{f.primary_metric}` "
              f"after {f.search['trials']} trial(s). MLflow run `{f.run_id}`.", ""]
    lines += _section("Data", _data(f.data))
    lines += _section("Configuration", ["```json", _json(f.config), "```"])
    lines += _section("Guardrails", _table(["check", "status", "detail"], [
        [c["name"], c["status"], c["detail"]] for c in f.guardrails]))
    lines += _section("Search", _search(f))
    lines += _section("Final metrics", _final_metrics(f))
    if f.inference:
        lines += _section("Inference cost", inference_lines(f.inference))
    if f.cohorts:
        lines += _section("Weakest cohorts", weakest_lines(f.cohorts))
    if f.decision:
        lines += _section("Registry decision", _decision(f.decision))
    charts = [f"![{title}](charts/{name})" for name, title in f.charts.items()]
    charts += [f"- {name} not drawn: {why}" for name, why in f.skipped_charts.items()]
    lines += _section("Charts", charts)
    lines += _section("How to load it", _how_to_load(f))
    return "\n".join(lines).rstrip() + "\n"


def _data(data: CardData) -> list[str]:
    return [
        f"- source: `{data['source']}`",
        f"- training rows: {data['rows']}; table digest `{data.get('digest') or 'n/a'}`",
        *[f"- {role} columns: {', '.join(map(str, cols)) or 'none'}"
          for role, cols in data.get("roles", {}).items()],
    ]


def _search(f: CardFacts) -> list[str]:
    search = f.search
    return [
        f"- validation: {search['scheme']}",
        f"- trials: {search['trials']} ({search['failed']} failed, {search.get('pruned', 0)} "
        f"pruned); stopped: {search['stop_reason']}",
        "",
        *_table(["rank", "model", f.primary_metric, "fit s", "predict ms/1k rows", "1-row ms",
                 "MB", "status"], [
            [r["rank"], r["model"], _num(r.get(f.primary_metric)), r["fit_seconds"],
             _num(r.get("predict_ms_per_1k_rows")), _num(r.get("predict_ms_per_row")),
             _megabytes(r.get("model_bytes")), r["status"]]
            for r in f.leaderboard]),
    ]


def _final_metrics(f: CardFacts) -> list[str]:
    rows = [[name, _num(value), _num((f.test_metrics or {}).get(name))]
            for name, value in _ordered(f.validation_metrics, f.primary_metric)]
    return [
        "Validation: the chosen model's out-of-fold (or validation) predictions. "
        "Test: the refit model on the test set, when there is one.", "",
        *_table(["metric", "validation", "test"], rows)]


def inference_lines(cost: Mapping[str, float]) -> list[str]:
    """The registered model's cost, as measured after the refit on the held-out rows."""
    return [
        f"- predict time: {cost['predict_ms_per_1k_rows']:.3g} ms per 1,000 rows (one batch), "
        f"{cost['predict_ms_per_row']:.3g} ms for one row (one call, featurizing included)",
        f"- pickled size: {_megabytes(cost['model_bytes'])} MB",
    ]


def weakest_lines(cohorts: Json) -> list[str]:
    """The error analysis's weakest cohorts, against the score on all held-out rows."""
    overall, metric = cohorts["overall"], cohorts["metric"]
    head = (f"`{metric}` by cohort of the strongest columns on the {cohorts['basis']} rows "
            f"(all rows: {_num(overall)}; error_analysis.json lists every cohort).")
    weakest = cast("list[dict[str, object]]", cohorts["weakest"])
    if not weakest:
        return [head, "", "No cohort scores worse than all rows together."]
    return [head, "", *_table(["column", "cohort", "rows", str(metric)], [
        [c["column"], c["value"], c["rows"], _num(c["score"])] for c in weakest])]


def _megabytes(size: object) -> str:
    return f"{size / 1e6:.3g}" if isinstance(size, (int, float)) and size else "-"


def _decision(d: Json) -> list[str]:
    outcome = "promoted to champion" if d["promoted"] else "alias: " + str(d["alias"] or "none")
    return [
        f"- {outcome}: {d['reason']}",
        f"- {d['metric']} on {d['basis']} data: this version {_num(d['new_score'])}, champion "
        f"version {d['champion_version'] or '-'} {_num(d['champion_score'])}",
    ]


def _how_to_load(f: CardFacts) -> list[str]:
    uri = f"models:/{f.model_name}/{f.version}"
    return [
        "```python",
        "import mlflow",
        f'mlflow.set_tracking_uri("{f.tracking_uri}")',
        f'model = mlflow.sklearn.load_model("{uri}")  # or models:/{f.model_name}@champion',
        "predictions = model.predict(raw_rows)  # a DataFrame with the training columns",
        "```",
        "The run's `model.pkl` is the same fitted pipeline (preprocessing included) as a plain "
        "pickle; it needs this project's `tasks` package importable. From the command line:",
        "```",
        f"automl predict --model {uri} --data new.csv --output scored.csv "
        f"--tracking-uri {f.tracking_uri}",
        f"mlflow models serve -m {uri} --env-manager local -h 127.0.0.1 -p 5001",
        "```",
        *_onnx_lines(f, uri),
    ]


def _onnx_lines(f: CardFacts, uri: str) -> list[str]:
    if not f.onnx.startswith("exported"):
        return [f"ONNX: {f.onnx}."] if f.onnx else []
    return [f"ONNX: {f.onnx}, for scoring outside Python (onnxruntime); with Python:", "```",
            f"automl predict --onnx --model {uri} --data new.csv --output scored.csv "
            f"--tracking-uri {f.tracking_uri}", "```"]


def _section(title: str, body: list[str]) -> list[str]:
    return [f"## {title}", "", *body, ""]


def _table(header: list[str], rows: Sequence[Sequence[object]]) -> list[str]:
    def cell(value: object) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    return [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *["| " + " | ".join(cell(v) for v in row) + " |" for row in rows],
    ]


def _ordered(metrics: dict[str, float], primary: str) -> list[tuple[str, float]]:
    return sorted(metrics.items(), key=lambda kv: (kv[0] != primary, kv[0]))


def _num(value: object) -> str:
    return "-" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)


def _json(value: object) -> str:
    return json.dumps(value, indent=2, default=str, sort_keys=True)
