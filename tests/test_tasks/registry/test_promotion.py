"""The champion/challenger rule and the lock, without a registry (the registry: test_registry)."""

from __future__ import annotations

import threading
import time

import pytest

from tasks.metrics import get_metric
from tasks.registry.model_card import CardFacts, model_card
from tasks.registry.promotion import CHALLENGER, CHAMPION, ChampionScore, decide, registry_lock

AUC = get_metric("AUC_weighted", "classification")
NRMSE = get_metric("normalized_root_mean_squared_error", "regression")


def test_first_version_is_champion():
    d = decide(AUC, "test", 0.7, None, allowed=True)
    assert (d.promoted, d.alias, d.reason) == (True, CHAMPION, "no champion yet")


@pytest.mark.parametrize(
    ("metric", "new", "old", "promoted"),
    [(AUC, 0.81, 0.80, True), (AUC, 0.79, 0.80, False), (AUC, 0.80, 0.80, False),
     (NRMSE, 0.05, 0.06, True), (NRMSE, 0.07, 0.06, False)],
)
def test_only_a_better_score_takes_champion(metric, new, old, promoted):
    d = decide(metric, "validation", new, ChampionScore("3", old, "predicted"), allowed=True)
    assert d.promoted is promoted
    assert d.alias == (CHAMPION if promoted else CHALLENGER)
    assert (d.champion_version, d.champion_score, d.new_score) == ("3", old, new)
    assert d.tags()["automl.champion_version"] == "3"


def test_a_champion_that_cannot_score_the_data_is_replaced_and_it_says_why():
    d = decide(AUC, "test", 0.6, ChampionScore("2", None, "this data lacks column(s) it needs: age"),
               allowed=True)
    assert d.promoted and "cannot score this data (this data lacks column(s) it needs: age)" in d.reason


def test_no_promote_sets_no_alias():
    d = decide(AUC, "test", 0.99, ChampionScore("1", 0.5, "predicted"), allowed=False)
    assert (d.promoted, d.alias) == (False, None)
    assert d.tags()["automl.decision"] == "not promoted"


def test_the_lock_serialises_holders(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    inside, overlaps = [], []

    def hold() -> None:
        with registry_lock(uri, "m"):
            inside.append(1)
            overlaps.append(len(inside))
            time.sleep(0.2)
            inside.pop()

    threads = [threading.Thread(target=hold) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert overlaps == [1, 1, 1]
    assert list((tmp_path / ".registry-locks").glob("*.lock"))


def test_model_card_has_every_section():
    facts = CardFacts(
        model_name="m", version="4", run_id="abc", tracking_uri="sqlite:///x.db",
        best_model="LightGBM-3", task="classification", target="class",
        primary_metric="AUC_weighted",
        data={"source": "credit.csv", "rows": 1000, "digest": "d1", "roles": {"numeric": ["a"]}},
        config={"iterations": 5}, guardrails=[{"name": "Duplicate rows", "status": "passed",
                                               "detail": "none | ok"}],
        search={"trials": 5, "failed": 1, "stop_reason": "iteration limit", "scheme": "holdout"},
        leaderboard=[{"rank": 1, "model": "LightGBM-3", "AUC_weighted": 0.8, "fit_seconds": 1.0,
                      "status": "ok"}],
        validation_metrics={"AUC_weighted": 0.8, "accuracy": 0.7}, test_metrics=None,
        charts={"roc.png": "ROC"}, skipped_charts={"param_importance.png": "needs 2 trials"},
        decision=decide(AUC, "validation", 0.8, None, allowed=True).to_dict(),
    )
    card = model_card(facts)
    for heading in ("Data", "Configuration", "Guardrails", "Search", "Final metrics",
                    "Registry decision", "Charts", "How to load it"):
        assert f"\n## {heading}\n" in card
    assert "![ROC](charts/roc.png)" in card and "none \\| ok" in card
    assert 'mlflow.sklearn.load_model("models:/m/4")' in card
