"""`automl explain` and `automl predict --explain` on a model a small real run registered."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from support import copy_store, load, run_cli

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(credit_run, tmp_path_factory):
    """The session's credit_g run (tests/conftest.py; categories, so the mapping back to raw
    columns matters), its store copied into automl-runs/ of a fresh folder, where the command
    finds it; out is what `automl train --json` prints for it."""
    config, result = credit_run
    cwd = tmp_path_factory.mktemp("explain")
    copy_store(config.resolved_tracking_uri, cwd / "automl-runs")
    out = json.loads(json.dumps(result.to_dict(), default=str))  # as flows/cli.py prints it
    rows = load("credit_g").drop(columns=["class"]).sample(60, random_state=1)
    rows.to_csv(cwd / "new.csv", index=False)
    return cwd, out, rows


@pytest.mark.parametrize("ref", ["model_uri", "pkl_uri"])
def test_explain_writes_raw_column_contributions_that_add_up(trained, ref):
    cwd, out, rows = trained
    done = run_cli("explain", "--model", out[ref], "--data", "new.csv", "--output",
                   "why.parquet", cwd=cwd)
    assert done.returncode == 0, done.stderr
    why = pd.read_parquet(cwd / "why.parquet")
    contrib = [c for c in why.columns if c.startswith("contrib_")]
    assert contrib == [f"contrib_{c}" for c in rows.columns]  # every raw column, input order
    assert list(why.columns) == [*contrib, "base_value", "explained_output"]
    assert len(why) == len(rows)
    np.testing.assert_allclose(why["base_value"] + why[contrib].sum(axis=1),
                               why["explained_output"], atol=1e-4)
    assert "base_value + the contrib_ columns = explained_output" in done.stderr
    assert "of 'good'" in done.stderr  # which output (and class) the sum is


def test_predict_explain_puts_contributions_beside_the_predictions(trained):
    cwd, out, rows = trained
    plain = run_cli("predict", "--model", out["pkl_uri"], "--data", "new.csv", "--output",
                    "plain.csv", cwd=cwd)
    done = run_cli("predict", "--model", out["pkl_uri"], "--data", "new.csv", "--output",
                   "both.csv", "--explain", cwd=cwd)
    assert plain.returncode == 0 and done.returncode == 0, done.stderr
    scored, both = pd.read_csv(cwd / "plain.csv"), pd.read_csv(cwd / "both.csv")
    pd.testing.assert_frame_equal(both[scored.columns], scored)
    proba = both["proba_good"].clip(1e-12, 1 - 1e-12)
    margin = "margin (log-odds)" in done.stderr
    stated = np.log(proba / (1 - proba)) if margin else proba
    np.testing.assert_allclose(both["explained_output"], stated, atol=1e-4)


def test_explain_bad_input_is_one_sentence_and_exit_2(trained):
    cwd, out, rows = trained
    rows.drop(columns=["duration"]).to_csv(cwd / "short.csv", index=False)
    done = run_cli("explain", "--model", out["pkl_uri"], "--data", "short.csv", "--output",
                   "x.csv", cwd=cwd)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: the data lacks column(s) the model needs: duration; explain a table with the "
        "training columns"]
    (cwd / "broken.pkl").write_bytes(b"not a pickle")
    for model in ("missing.pkl", "model.onnx", "broken.pkl"):
        done = run_cli("explain", "--model", model, "--data", "new.csv", "--output", "x.csv",
                       cwd=cwd)
        assert done.returncode == 2, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
        assert done.stderr.startswith(f"error: model '{model}'" if model.endswith("onnx")
                                      else f"error: model file '{model}'")
