"""The two UIs as a user clicks through them, in Debian's Chromium driven by Playwright: a run
started from the Prefect form, the deployed run's Logs tab and summary, its link into MLflow, the
trial runs there with their durations, the report with its charts, and a failed run. Screenshots
go to screenshots/ (git-ignored; AUTOML_SCREENSHOTS elsewhere), kept by CI as artifacts."""

from __future__ import annotations

import os
import re
from importlib.util import find_spec
from pathlib import Path

import pytest
from deployed_stack import TARGET, artifacts, call, wait
from mlflow.tracking import MlflowClient
from support import IN_CI, ROOT, dataset_path

pytestmark = pytest.mark.slow

CHROMIUM = Path(os.environ.get("AUTOML_CHROMIUM", "/usr/bin/chromium"))
SHOTS = Path(os.environ.get("AUTOML_SCREENSHOTS", ROOT / "screenshots"))
# As root on a closed network: no sandbox, no GPU, no calls home.
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists() or find_spec("playwright") is None:
        message = (f"the browser tests need Chromium at {CHROMIUM} (Debian: apt-get install "
                   "chromium) and Playwright (make install)")
        if IN_CI:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(30_000)
    yield context.new_page()
    context.close()


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SHOTS / f"{name}.png", full_page=True)


def ui(stack) -> str:
    return stack.api_url.removesuffix("/api")


def expect_text(page, text: str | re.Pattern[str]):
    from playwright.sync_api import expect

    found = page.get_by_text(text).first
    expect(found).to_be_visible()
    return found


def follow(page, link):
    """Click a link as a user does: the page it opens, in this tab or a new one."""
    if link.get_attribute("target") != "_blank":
        link.click()
        return page
    with page.context.expect_page() as opened:
        link.click()
    return opened.value


def mlflow_run_page(page, stack, experiment: str) -> str:
    """The parent run of the experiment, opened in the MLflow UI: its run id."""
    client = MlflowClient(stack.tracking_uri)
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    [parent] = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    page.goto(f"{stack.mlflow_url}/#/experiments/{parent.info.experiment_id}/runs/"
              f"{parent.info.run_id}?workflowType=machine_learning")
    expect_text(page, parent.info.run_name)
    return str(parent.info.run_id)


def test_a_run_started_from_the_form_completes(page, api, stack):
    """Deployments > train > Run: the typed form, two fields and a budget filled in, Submit."""
    deployment = call(api, "get", "/deployments/name/automl-train/train").json()
    page.goto(f"{ui(stack)}/deployments/deployment/{deployment['id']}/run")

    def field(label: str):
        name = page.locator(".schema-form-property__label",
                            has_text=re.compile(f"^{label}( \\(Optional\\))?$"))
        return page.locator(".schema-form-property").filter(has=name).last

    field("Training Data").locator("textarea").fill(str(dataset_path("blood_transfusion")))
    field("Target").locator("textarea").fill(TARGET)
    field("Iterations").locator("input").fill("2")
    field("Experiment Name").locator("textarea").fill("form")
    field("Workdir").locator("textarea").fill(str(stack.runs / "automl-runs"))
    field("Training Data").scroll_into_view_if_needed()
    shot(page, "prefect-form")
    page.get_by_role("button", name="Submit").click()
    page.wait_for_url(re.compile(r"/deployments/deployment/[^/?]+(\?.*)?$"))  # off the form
    runs = call(api, "post", "/flow_runs/filter",
                json={"deployments": {"id": {"any_": [deployment["id"]]}}}).json()
    [run] = [r for r in runs if r["parameters"]["config"].get("experiment_name") == "form"]
    assert run["parameters"]["config"]["iterations"] == 2
    done = wait(api, stack, run["id"], "COMPLETED")
    assert done["name"] == "form on blood_transfusion.parquet"


def test_the_logs_tab_shows_each_trial_once(page, stack, trained):
    run, _ = trained
    page.goto(f"{ui(stack)}/runs/flow-run/{run['id']}")
    expect_text(page, "Logs")
    trials = page.get_by_text(re.compile(r"^trial \S+ AUC_weighted="))
    trials.last.scroll_into_view_if_needed()
    shot(page, "prefect-run-logs")
    lines = trials.all_inner_texts()
    assert len(lines) == len(set(lines)) == 3, lines


def test_the_summary_shows_the_decision_and_opens_the_run_in_mlflow(page, api, stack, trained):
    run, _ = trained
    summary = artifacts(api, run["id"])["blood-summary"]
    page.goto(f"{ui(stack)}/artifacts/artifact/{summary['id']}")
    expect_text(page, re.compile(r"Registered as version 1 of"))
    expect_text(page, "@champion")
    shot(page, "prefect-summary")
    link = page.locator(f'a[href^="{stack.mlflow_url}/"][href*="/runs/"]').first
    run_id = link.get_attribute("href").split("/runs/")[1].split("?")[0]
    page = follow(page, link)
    expect_text(page, "blood on blood_transfusion.parquet")  # the Prefect run's name
    expect_text(page, run_id)
    expect_text(page, "Child runs")
    assert "workflowType=machine_learning" in page.url  # the training view, not GenAI's
    shot(page, "mlflow-run")
    version = MlflowClient(stack.tracking_uri).get_model_version("blood-model", "1")
    assert version.run_id == run_id


def test_mlflow_shows_each_trial_with_the_time_it_ran(page, stack, trained):
    """A trial run's duration on its page is the trial's own (from its start to its end in the
    worker), at least its fit time: not the few milliseconds of logging it."""
    mlflow_run_page(page, stack, "blood")
    client = MlflowClient(stack.tracking_uri)
    experiment = client.get_experiment_by_name("blood").experiment_id
    trials = [r for r in client.search_runs([experiment]) if "mlflow.parentRunId" in r.data.tags]
    assert len(trials) == 3
    for trial in trials:
        page.get_by_role("link", name=trial.info.run_name, exact=True).first.click()
        expect_text(page, "Parent run")
        label = page.get_by_text("Duration", exact=True).first
        shown = seconds(label.locator("xpath=following-sibling::*[1]").inner_text())
        span = (trial.info.end_time - trial.info.start_time) / 1000
        assert abs(shown - span) <= 0.051 + 0.05 * span, (trial.info.run_name, shown, span)
        assert shown >= trial.data.metrics["fit_seconds"] - 0.051
        shot(page, f"mlflow-trial-{trial.info.run_name}")
        page.go_back()
        expect_text(page, "Child runs")


def seconds(duration: str) -> float:
    """MLflow's duration text ('88ms', '1.2s', '2.0min') in seconds."""
    value, unit = re.fullmatch(r"([\d.]+)\s*(ms|s|min|h)", duration.strip()).groups()
    return float(value) * {"ms": 0.001, "s": 1, "min": 60, "h": 3600}[unit]


def test_a_trial_task_links_to_its_mlflow_run(page, api, stack, trained):
    run, _ = trained
    tasks = call(api, "post", "/task_runs/filter",
                 json={"flow_runs": {"id": {"any_": [run["id"]]}}}).json()
    [trial] = [t for t in tasks if t["name"] == "LogisticRegression-0"]
    page.goto(f"{ui(stack)}/runs/task-run/{trial['id']}")
    expect_text(page, re.compile(r"Completed\('AUC_weighted 0\.\d+ in [\d.]+ s; C="))
    page.get_by_text("Artifacts", exact=True).first.click()
    page.get_by_text("MLflow run of trial LogisticRegression-0").click()
    shot(page, "prefect-trial-link")
    page = follow(page, page.get_by_role("link", name="LogisticRegression-0 in MLflow"))
    expect_text(page, "Parent run")
    expect_text(page, "blood on blood_transfusion.parquet")
    assert page.url.startswith(stack.mlflow_url)


def test_the_report_shows_its_charts(page, stack, trained):
    mlflow_run_page(page, stack, "blood")
    page.get_by_role("tab", name="Artifacts").click()
    page.get_by_text("report.html", exact=True).click()
    frame = page.frame_locator("iframe").first
    images = frame.locator("img")
    images.first.wait_for()
    shot(page, "mlflow-report")
    drawn = images.evaluate_all("all => all.filter(i => i.complete && i.naturalWidth > 0).length")
    assert drawn == images.count() >= 5


def test_a_failed_run_reads_as_one_sentence(page, stack, trained):
    _, run = trained
    page.goto(f"{ui(stack)}/runs/flow-run/{run['id']}")
    # Once: in the line of its Failed state, not again with a traceback.
    told = page.get_by_text(re.compile(r"target column 'price' is not in"))
    told.first.scroll_into_view_if_needed()
    shot(page, "prefect-failed-run")
    assert told.count() == 1
    assert "Traceback" not in page.inner_text("body")
