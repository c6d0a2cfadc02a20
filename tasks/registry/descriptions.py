"""What MLflow shows first on a run's page and a model version's page: their descriptions, one
short Markdown paragraph each (the parent run's is its mlflow.note.content tag)."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tasks.registry.model_card import CardFacts

__all__ = ["run_description", "version_description", "FLOW_RUN_NAME", "FLOW_RUN_URL"]

# The parent run's tags that name its Prefect flow run (flows.ui.orchestrated_run sets them).
FLOW_RUN_NAME, FLOW_RUN_URL = "prefect.flow_run_name", "prefect.flow_run_url"


def run_description(f: CardFacts, tags: dict[str, str]) -> str:
    """The best model and its score, the trials, the registry's decision, the Prefect run."""
    search = f.search
    text = (f"**{f.best_model}** is the best model: {_score(f)} ({search['scheme']}) after "
            f"{search['trials']} trials ({search['failed']} failed, {search.get('pruned', 0)} "
            f"pruned; stopped: {search['stop_reason']}). {_decision(f)}")
    return text + _flow_run(tags)


def version_description(f: CardFacts, tags: dict[str, str]) -> str:
    """The model, its score, the data it learnt from and the run that made it."""
    rows = f.data["rows"]
    return (f"**{f.best_model}**, {_score(f)} ({f.search['scheme']}), trained on "
            f"`{_data_name(f.data['source'])}` ({rows} rows) by MLflow run `{f.run_id}`."
            + _flow_run(tags))


def _score(f: CardFacts) -> str:
    value = f.validation_metrics.get(f.primary_metric)
    shown = "-" if value is None else f"{value:.4g}"
    return f"{f.primary_metric} = **{shown}**"


def _decision(f: CardFacts) -> str:
    version = f"Registered as version {f.version} of `{f.model_name}`"
    d = f.decision
    if not d:
        return f"{version}."
    held = f", which holds @{d['alias']}" if d.get("alias") else ", without an alias"
    return f"{version}{held}: {d['reason']}."


def _flow_run(tags: dict[str, str]) -> str:
    name = tags.get(FLOW_RUN_NAME)
    if not name:
        return ""
    url = tags.get(FLOW_RUN_URL)
    return f" Prefect flow run [{name}]({url})." if url else f" Prefect flow run `{name}`."


def _data_name(source: object) -> str:
    """A table's file name, without the query or folders (the card has the whole source)."""
    text = str(source)
    return PurePosixPath(text.split("?")[0].rstrip("/")).name or text
