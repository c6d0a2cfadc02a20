"""Registering and describing a model (tasks.registry.publish) in a real SQLite registry: a
registration that fails after its version exists and the champion alias moved is rolled back, so
a retry registers once."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import optuna
import pytest
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from support import dataset_path

from flows.automl import automl_flow
from flows.steps import trial_settings
from tasks.config import AutoMLConfig, parse_config
from tasks.data.guardrails import GuardrailReport, build_report
from tasks.data.ingest import TableSources, read_tables
from tasks.data.inspect import inspect_data
from tasks.data.profile import Profile
from tasks.data.sets import SearchData
from tasks.data.split import SplitPlan, split_data
from tasks.final.choice import Choice
from tasks.final.evaluation import Evaluation, evaluate_model
from tasks.final.refit import refit_model
from tasks.registry.charts import ChartSet
from tasks.registry.publish import describe_model, register_model
from tasks.registry.run import RunSpec, TrackedRun, open_run
from tasks.search.candidates import Candidate, TrialResult
from tasks.search.evaluate import evaluate_candidate
from tasks.search.outcome import SearchOutcome
from tasks.search.spaces import load_space

NAME = "publish"


@dataclass(frozen=True)
class Pieces:
    """What the flow body hands register_model and describe_model, for a second model."""

    config: AutoMLConfig
    profile: Profile
    data: SearchData
    report: GuardrailReport
    run: TrackedRun
    trial: TrialResult
    choice: Choice
    model: object
    evaluation: Evaluation
    client: MlflowClient

    def register(self, allowed: bool = True):
        return register_model(self.run, self.model, self.data, self.evaluation,
                              self.profile.metric, NAME, allowed=allowed)


@pytest.fixture(scope="module")
def pieces(prefect_api, tmp_path_factory) -> Pieces:
    workdir = tmp_path_factory.mktemp("publish")
    config = parse_config(training_data=str(dataset_path("credit_g")), target="class",
                          test_size=0.2, random_state=0, workdir=str(workdir),
                          experiment_name=NAME, model_name=NAME)
    # The champion: a weak model, registered by a real run.
    first = automl_flow(config.model_copy(update={
        "allowed_models": ["KNN"], "iterations": 1, "enable_ensembling": False}))
    assert first.model_version == "1" and first.aliases == ["champion"]
    # A better one, built from the same steps as the flow's: read, inspect, split, check, open
    # the run, one trial (LightGBM's regularised defaults), refit, evaluate on the test rows.
    tables = read_tables(TableSources.of(config))
    profile = inspect_data(config, tables.train, tables.validation, tables.test)
    data, test = split_data(SplitPlan.of(config), profile, tables.train, tables.validation,
                            tables.test)
    report = build_report(profile, data, test)
    run = open_run(RunSpec.of(config), profile, data, report, tables.train)
    settings = trial_settings(config, profile, data)
    trial = evaluate_candidate(Candidate(0, "lightgbm", load_space("lightgbm").defaults[1]),
                               data, settings)
    assert trial.ok, trial.error
    choice = Choice((trial,), (1.0,), trial.metrics)
    model = refit_model(choice, data, settings)
    evaluation = evaluate_model(model, choice, data, test)
    uri = config.resolved_tracking_uri
    return Pieces(config, profile, data, report, run, trial, choice, model, evaluation,
                  MlflowClient(tracking_uri=uri, registry_uri=uri))


def alive(client: MlflowClient) -> set[str]:
    return {str(v.version) for v in client.search_model_versions(f"name = '{NAME}'")}


def champion(client: MlflowClient) -> str:
    return str(client.get_model_version_by_alias(NAME, "champion").version)


def test_a_failure_after_the_alias_moved_rolls_the_registration_back(pieces, monkeypatch):
    client = pieces.client
    versions, old_champion = alive(client), champion(client)
    seen: dict[str, str] = {}
    mark_registered = TrackedRun.mark_registered

    def fails_once(run: TrackedRun, version: str) -> None:
        # The last thing register_model does: by now the version exists and the alias moved.
        seen.update(version=version, champion=champion(client))
        monkeypatch.setattr(TrackedRun, "mark_registered", mark_registered)
        raise OSError("the study's journal could not be written")

    monkeypatch.setattr(TrackedRun, "mark_registered", fails_once)
    with pytest.raises(OSError, match="journal could not be written"):
        pieces.register()
    assert seen["version"] not in versions and seen["champion"] == seen["version"]
    # Rolled back: the new version is gone and the champion is the old one again.
    assert alive(client) == versions
    assert champion(client) == old_champion
    with pytest.raises(MlflowException):
        client.get_model_version(NAME, seen["version"])

    # Tried again: exactly one new version, the champion now.
    registered = pieces.register()
    assert alive(client) == versions | {registered.version}
    assert registered.version != seen["version"]
    assert registered.decision.promoted and champion(client) == registered.version
    tags = client.get_model_version(NAME, registered.version).tags
    assert tags["automl.decision"] == "promoted"
    assert tags["automl.champion_version"] == old_champion
    study = optuna.load_study(study_name=pieces.run.study_name, storage=pieces.run.storage)
    assert study.user_attrs["registered_version"] == registered.version


def test_describe_model_logs_the_card_on_the_run(pieces):
    registered = pieces.register(allowed=False)
    assert registered.decision is not None and not registered.decision.promoted
    outcome = SearchOutcome((pieces.trial,), pieces.trial, "iteration limit (1) reached")
    card = describe_model(pieces.run, registered, pieces.profile, pieces.data, pieces.choice,
                          pieces.evaluation, outcome, ChartSet(Path("charts")),
                          pieces.report.to_dicts(), "class")
    logged = Path(pieces.client.download_artifacts(pieces.run.run_id, "model_card.md"))
    assert logged.read_text() == card
    assert card.startswith(f"# {NAME} version {registered.version}")
    assert "LightGBM-0" in card and "## Registry decision" in card
    assert "not promoted (--no-promote)" in card


def test_the_onnx_export_is_logged_beside_the_model_or_skipped_with_the_budget(pieces, tmp_path):
    """Without enable_onnx_compatible_models: a CatBoost model is recorded as not converting, and
    asking for its graph says why; a LightGBM on native categories converts, its graph is logged
    on the run and scores as the model; with too little budget left the export is not tried,
    and the run says why, as when it would take more than its share of the run; with the flag
    it is tried whatever the budget."""
    from explain_models import fit_final, table

    from tasks.budget import Budget
    from tasks.errors import DataError
    from tasks.onnx.runtime import OnnxScorer
    from tasks.registry.portable import ONNX_ARTIFACT, log_onnx
    from tasks.registry.scoring import load_onnx

    run_id = pieces.run.run_id
    frame, target, task = table("credit_g", 300)
    catboost = fit_final(frame, target, task, ["catboost"])
    reason = log_onnx(pieces.run, catboost)
    assert reason == "not exported: CatBoostClassifier (catboost) has no ONNX converter"
    assert pieces.client.get_run(run_id).data.tags["onnx_export"] == reason
    with pytest.raises(DataError, match=rf"^model 'runs:/{run_id}/model' has no ONNX graph "
                       r"\(not exported: CatBoostClassifier \(catboost\) has no ONNX "
                       r"converter\); score it without --onnx$"):
        load_onnx(f"runs:/{run_id}/model", pieces.config.resolved_tracking_uri)

    spent = Budget(minutes=1.0, started=time.monotonic() - 59.5)  # half a second left
    skipped = log_onnx(pieces.run, pieces.model, budget=spent, model_bytes=10**6)
    assert skipped.startswith("not exported: the budget has 0 s left, about 3 s too few")
    assert pieces.client.get_run(run_id).data.tags["onnx_export"] == skipped
    assert not pieces.client.list_artifacts(run_id, "onnx")
    # An hour's budget with 20 s spent: time enough, but an export nobody asked for takes at most
    # its share of the run (3 s here); a small model's fits it.
    long = Budget(minutes=60.0, started=time.monotonic() - 20.0)
    costly = log_onnx(pieces.run, pieces.model, budget=long, model_bytes=10 * 10**6)
    assert costly.startswith("not exported: converting this model would take about 12 s, more "
                             "than the 3 s an export not asked for may take (5% of the run so far)")
    assert not pieces.client.list_artifacts(run_id, "onnx")
    small = log_onnx(pieces.run, pieces.model, budget=long, model_bytes=10**5)
    assert small.startswith("exported to onnx/model.onnx ("), small

    done = log_onnx(pieces.run, pieces.model, required=True, budget=spent)
    assert done.startswith("exported to onnx/model.onnx (")
    assert pieces.client.get_run(run_id).data.tags["onnx_export"] == done
    local = pieces.client.download_artifacts(run_id, ONNX_ARTIFACT, str(tmp_path))
    rows = pieces.data.X.iloc[pieces.data.refit_rows[:50]]
    scored = OnnxScorer(Path(local).read_bytes()).predict_frame(rows)
    expected = pieces.model.predict_proba(rows)
    np.testing.assert_allclose(scored[[f"proba_{c}" for c in pieces.model.classes_]], expected,
                               atol=1e-5)
