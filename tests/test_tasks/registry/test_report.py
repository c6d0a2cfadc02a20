"""The HTML report (tasks.registry.report) and the descriptions (tasks.registry.descriptions)
from facts built here: every user-chosen string escaped, the page parses, a chart is an inline
PNG. A real run's report and descriptions are checked in tests/test_flows/test_result.py."""

from __future__ import annotations

import base64
from dataclasses import replace
from html.parser import HTMLParser

from tasks.registry.descriptions import run_description, version_description
from tasks.registry.model_card import CardFacts
from tasks.registry.report import html_report

HOSTILE = '<script>alert("x")</script>'
PNG = b"\x89PNG\r\n\x1a\n fake but opaque bytes"


class Page(HTMLParser):
    """What a browser would build: the elements, the images' sources, the text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.images: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "img":
            self.images.append(dict(attrs)["src"])

    def handle_data(self, data):
        self.text.append(data)


def parse(page: str) -> Page:
    parser = Page()
    parser.feed(page)
    parser.close()
    return parser


def facts(**changes) -> CardFacts:
    card = CardFacts(
        model_name="credit", version="3", run_id="abc123", tracking_uri="sqlite:///mlflow.db",
        best_model="VotingEnsemble(LightGBM-3, XGBoost-1)", task="classification",
        target=f"late {HOSTILE}", primary_metric="AUC_weighted",
        data={"source": "data/tickets.csv", "rows": 600, "digest": "d1",
              "roles": {"numeric": [f"queue {HOSTILE}"], "text": []}},
        config={"experiment_name": f"tickets {HOSTILE}"},
        guardrails=[{"name": "Class balancing detection", "status": "alerted",
                     "detail": f"class {HOSTILE} is 3%"}],
        search={"trials": 2, "failed": 0, "pruned": 0, "stop_reason": "iteration limit (2)",
                "scheme": "5-fold cross-validation"},
        leaderboard=[],
        validation_metrics={"AUC_weighted": 0.812345678, "accuracy": 0.7549},
        test_metrics={"AUC_weighted": 0.79},
        charts={"roc.png": "ROC curve", "confusion_matrix.png": "Confusion matrix"},
        skipped_charts={"param_importance.png": "too few trials"},
        decision={"promoted": False, "alias": "challenger", "reason": "the champion scores higher",
                  "metric": "AUC_weighted", "basis": "test", "new_score": 0.79,
                  "champion_version": "2", "champion_score": 0.8012},
    )
    return replace(card, **changes)


BOARD = [
    {"rank": 1, "trial": 3, "model": "LightGBM-3", "AUC_weighted": 0.8071234,
     "fit_seconds": 0.41, "predict_ms_per_1k_rows": 2.34567, "status": "ok"},
    {"rank": 2, "trial": 1, "model": f"XGBoost-1 {HOSTILE}", "AUC_weighted": None,
     "fit_seconds": 0.2, "predict_ms_per_1k_rows": None, "status": "pruned"},
]


def test_the_report_escapes_every_user_chosen_string():
    page = html_report(facts(), BOARD, "LightGBM-3 x0.6, XGBoost-1 x0.4",
                       {"roc.png": PNG, "confusion_matrix.png": PNG})
    assert "<script" not in page and "&lt;script&gt;" in page
    parsed = parse(page)
    assert "script" not in parsed.tags
    text = "".join(parsed.text)
    assert f"tickets {HOSTILE}: VotingEnsemble" in text  # the title, shown as written
    assert f"queue {HOSTILE}" in text and f"class {HOSTILE} is 3%" in text


def test_the_report_has_the_decision_the_leaderboard_and_each_chart_inline():
    page = html_report(facts(), BOARD, "LightGBM-3 x0.6, XGBoost-1 x0.4",
                       {"roc.png": PNG, "confusion_matrix.png": PNG})
    parsed = parse(page)
    text = "".join(parsed.text)
    assert "holds @challenger: the champion scores higher" in text
    assert "champion version 2: 0.8012" in text and "this version 0.79" in text
    # The final model first, with its members; then each trial, scores to 4 digits.
    rows = page.split("<tbody>")[2].split("</tbody>")[0].count("<tr")
    assert rows == 1 + len(BOARD)
    assert "registered as models:/credit/3" in text and "LightGBM-3 x0.6, XGBoost-1 x0.4" in text
    assert "0.8071" in text and "0.8071234" not in text and "2.35" in text
    expected = "data:image/png;base64," + base64.b64encode(PNG).decode()
    assert parsed.images == [expected, expected]
    assert "param_importance.png not drawn: too few trials" in text
    assert "http" not in page  # nothing fetched when it is viewed


def test_a_run_without_charts_or_decision_says_so():
    page = html_report(facts(decision=None, charts={}, skipped_charts={}), BOARD, "-", {})
    text = "".join(parse(page).text)
    assert "no held-out rows to compare it with" in text and "No charts" in text


def test_the_descriptions_name_the_model_score_decision_data_and_runs():
    tags = {"prefect.flow_run_name": "tickets on tickets.csv",
            "prefect.flow_run_url": "http://127.0.0.1:4200/runs/flow-run/1"}
    run = run_description(facts(), tags)
    assert run.startswith("**VotingEnsemble(LightGBM-3, XGBoost-1)** is the best model: "
                          "AUC_weighted = **0.8123** (5-fold cross-validation) after 2 trials")
    assert "version 3 of `credit`, which holds @challenger: the champion scores higher." in run
    assert run.endswith("Prefect flow run [tickets on tickets.csv]"
                        "(http://127.0.0.1:4200/runs/flow-run/1).")
    version = version_description(facts(), {})
    assert version == ("**VotingEnsemble(LightGBM-3, XGBoost-1)**, AUC_weighted = **0.8123** "
                       "(5-fold cross-validation), trained on `tickets.csv` (600 rows) by MLflow "
                       "run `abc123`.")
