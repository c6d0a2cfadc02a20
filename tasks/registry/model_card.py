"""The model card: one Markdown page that says what the model is, how it was chosen, how good
it is and how to load it. Logged on the run as model_card.md, next to the charts it links."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["CardFacts", "model_card"]


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
    data: dict[str, Any]  # source, rows, digest, roles
    config: dict[str, Any]
    guardrails: list[dict[str, str]]
    search: dict[str, Any]  # trials, failed, pruned, stop_reason, scheme
    leaderboard: list[dict[str, Any]]
    validation_metrics: dict[str, float]
    test_metrics: dict[str, float] | None
    charts: dict[str, str]  # file -> title
    skipped_charts: dict[str, str]
    decision: dict[str, Any] | None


def model_card(f: CardFacts) -> str:
    lines = [f"# {f.model_name} version {f.version}", ""]
    lines += [f"**{f.best_model}** for {f.task} of `{f.target}`, chosen by `{f.primary_metric}` "
              f"after {f.search['trials']} trial(s). MLflow run `{f.run_id}`.", ""]
    lines += _section("Data", [
        f"- source: `{f.data['source']}`",
        f"- training rows: {f.data['rows']}; table digest `{f.data.get('digest') or 'n/a'}`",
        *[f"- {role} columns: {', '.join(map(str, cols)) or 'none'}"
          for role, cols in f.data.get("roles", {}).items()],
    ])
    lines += _section("Configuration", ["```json", _json(f.config), "```"])
    lines += _section("Guardrails", _table(["check", "status", "detail"], [
        [c["name"], c["status"], c["detail"]] for c in f.guardrails]))
    search = f.search
    lines += _section("Search", [
        f"- validation: {search['scheme']}",
        f"- trials: {search['trials']} ({search['failed']} failed, {search.get('pruned', 0)} "
        f"pruned); stopped: {search['stop_reason']}",
        "",
        *_table(["rank", "model", f.primary_metric, "fit s", "status"], [
            [r["rank"], r["model"], _num(r.get(f.primary_metric)), r["fit_seconds"], r["status"]]
            for r in f.leaderboard]),
    ])
    rows = [[name, _num(value), _num((f.test_metrics or {}).get(name))]
            for name, value in _ordered(f.validation_metrics, f.primary_metric)]
    lines += _section("Final metrics", [
        "Validation: the chosen model's out-of-fold (or validation) predictions. "
        "Test: the refit model on the test set, when there is one.", "",
        *_table(["metric", "validation", "test"], rows)])
    if f.decision:
        d = f.decision
        lines += _section("Registry decision", [
            f"- {'promoted to champion' if d['promoted'] else 'alias: ' + str(d['alias'] or 'none')}"
            f": {d['reason']}",
            f"- {d['metric']} on {d['basis']} data: this version {_num(d['new_score'])}, champion "
            f"version {d['champion_version'] or '-'} {_num(d['champion_score'])}",
        ])
    charts = [f"![{title}](charts/{name})" for name, title in f.charts.items()]
    charts += [f"- {name} not drawn: {why}" for name, why in f.skipped_charts.items()]
    lines += _section("Charts", charts)
    uri = f"models:/{f.model_name}/{f.version}"
    lines += _section("How to load it", [
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
    ])
    return "\n".join(lines).rstrip() + "\n"


def _section(title: str, body: list[str]) -> list[str]:
    return [f"## {title}", "", *body, ""]


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    def cell(value: Any) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    return [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *["| " + " | ".join(cell(v) for v in row) + " |" for row in rows],
    ]


def _ordered(metrics: dict[str, float], primary: str) -> list[tuple[str, float]]:
    return sorted(metrics.items(), key=lambda kv: (kv[0] != primary, kv[0]))


def _num(value: Any) -> str:
    return "-" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)


def _json(value: Any) -> str:
    import json

    return json.dumps(value, indent=2, default=str, sort_keys=True)
