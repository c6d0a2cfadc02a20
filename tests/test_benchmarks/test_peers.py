"""benchmarks.peers, the `make bench` harness: split, scoring, processes, table. The peers' own
runners run only where `make bench-env` built .venv-bench."""

from __future__ import annotations

import sys

import pandas as pd
import pytest
from support import dataset_path
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import log_loss, roc_auc_score

from benchmarks.peers.data import Dataset, load_manifest, score, write_split
from benchmarks.peers.process import run_tree, thread_env
from benchmarks.peers.report import markdown, ranks, wins
from benchmarks.peers.systems import BENCH_VENV, Outcome, run_system


def _dataset(name: str) -> Dataset:
    dataset_path(name)  # skips when the shared datasets are not beside the checkout
    return next(d for d in load_manifest() if d.name == name)


def test_manifest_names_and_unknown_name():
    dataset_path("concrete")  # skips when the shared datasets are not beside the checkout
    every = load_manifest()
    assert {d.task for d in every} == {"binary", "multiclass", "regression"}
    assert all(d.path.exists() for d in every)
    assert [d.name for d in load_manifest(names=["concrete", "adult"])] == ["concrete", "adult"]
    with pytest.raises(SystemExit, match="unknown dataset.*no_such.*the manifest has: adult"):
        load_manifest(names=["no_such"])


def test_split_is_seeded_80_20_and_stratified(tmp_path):
    d = _dataset("wine_quality")
    train, test, note = write_split(d, tmp_path / "a", seed=3)
    again, _, _ = write_split(d, tmp_path / "b", seed=3)
    other, _, _ = write_split(d, tmp_path / "c", seed=4)
    a, t = pd.read_parquet(train), pd.read_parquet(test)
    assert a.equals(pd.read_parquet(again)) and not a.equals(pd.read_parquet(other))
    full = pd.read_parquet(d.path)
    assert len(a) + len(t) == len(full) and abs(len(t) / len(full) - 0.2) < 0.01
    assert note == "stratified"
    whole, part = full[d.target].value_counts(normalize=True), t[d.target].value_counts(normalize=True)
    assert (part.reindex(whole.index, fill_value=0) - whole).abs().max() < 0.01
    assert set(t[d.target]) == set(full[d.target])  # even the 5-row class reaches the test set


def test_split_with_a_singleton_class_does_not_fail(tmp_path):
    frame = pd.read_parquet(dataset_path("credit_g"))
    frame.loc[frame.index[0], "class"] = "unique"
    frame.to_parquet(tmp_path / "odd.parquet")
    d = Dataset("odd", "multiclass", "class", tmp_path / "odd.parquet")
    train, test, note = write_split(d, tmp_path / "s", seed=0)
    assert "1 row(s) of singleton classes" in note
    t = pd.read_parquet(test)["class"]
    assert abs((t == "good").mean() - (frame["class"] == "good").mean()) < 0.01


def test_score_matches_sklearn_and_ignores_column_order():
    frame = pd.read_parquet(dataset_path("blood_transfusion"))
    d = _dataset("blood_transfusion")
    X, y = frame.drop(columns=d.target), frame[d.target]
    model = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(X[:500], y[:500])
    proba = model.predict_proba(X[500:])
    preds = pd.DataFrame(proba, columns=[str(c) for c in model.classes_])
    truth = y[500:].reset_index(drop=True)
    expected = roc_auc_score(truth, proba[:, 1])
    assert score(d, truth, preds) == pytest.approx(expected)
    assert score(d, truth, preds[preds.columns[::-1]]) == pytest.approx(expected)
    multi = Dataset("m", "multiclass", d.target, d.path)
    assert score(multi, truth, preds) == pytest.approx(log_loss(truth, proba))
    # A class the system never predicted scores as (clipped) zero probability, not an error.
    partial = score(multi, truth, preds.drop(columns=preds.columns[0]))
    assert partial > score(multi, truth, preds)
    with pytest.raises(ValueError, match="predictions for"):
        score(d, truth[:10], preds)


def _outcome(dataset, system, value, metric="roc_auc", wall=60.0):
    return Outcome(dataset, system, metric, value, wall, 60.0, 100.0,
                   None if value is not None else "boom")


def test_ranks_wins_and_failures_rank_last():
    outcomes = [
        _outcome("a", "automl-flow", 0.9), _outcome("a", "flaml", 0.8), _outcome("a", "x", None),
        _outcome("b", "automl-flow", 2.0, "rmse"), _outcome("b", "flaml", 1.0, "rmse"),
        _outcome("b", "x", 2.0, "rmse"),
    ]
    r = ranks(outcomes)
    assert r["a"] == {"automl-flow": 1.0, "flaml": 2.0, "x": 3.0}
    assert r["b"] == {"automl-flow": 2.5, "flaml": 1.0, "x": 2.5}  # lower RMSE wins; a tie shares
    assert wins(outcomes, "automl-flow", "flaml") == (1, 0, 1)
    assert wins(outcomes, "automl-flow", "x") == (1, 1, 0)
    text = markdown(outcomes, ["automl-flow", "flaml", "x"], ["# t"])
    assert "| a | roc_auc | **0.9** (1.00x) | 0.8 (1.00x) | FAILED (1.00x) |" in text
    assert "| automl-flow | 1.75 |" in text and "- vs flaml: 1/0/1" in text
    assert "- x on a: boom" in text


@pytest.mark.serial  # timing-sensitive: runs alone (make test)
def test_run_tree_limits_time_and_measures_memory(tmp_path):
    grow = "import time; x = bytearray(200 * 2**20); time.sleep(30)"
    done = run_tree([sys.executable, "-c", grow], cores=[0], limit=2.0, env=thread_env(1),
                    cwd=tmp_path, log=tmp_path / "log")
    assert done.returncode is None and 2.0 <= done.seconds < 10
    assert done.peak_rss_mb > 200
    ok = run_tree([sys.executable, "-c", "import os; print(sorted(os.sched_getaffinity(0)), "
                   "os.environ['OMP_NUM_THREADS'])"], cores=[0], limit=30, env=thread_env(1),
                  cwd=tmp_path, log=tmp_path / "log2")
    assert ok.returncode == 0 and ok.stdout.strip() == "[0] 1"


def test_baseline_system_end_to_end_equals_an_in_process_fit(tmp_path):
    d = _dataset("blood_transfusion")
    train, test, _ = write_split(d, tmp_path / "data", seed=0)
    outcome = run_system("hgb-defaults", d, train, test, budget=30, seed=0, cores=[0],
                         folder=tmp_path, limit=120)
    assert outcome.failure is None, outcome.failure
    a, t = pd.read_parquet(train), pd.read_parquet(test)
    model = HistGradientBoostingClassifier(random_state=0).fit(a.drop(columns=d.target), a[d.target])
    expected = roc_auc_score(t[d.target], model.predict_proba(t.drop(columns=d.target))[:, 1])
    assert outcome.value == pytest.approx(expected)
    assert 0 < outcome.wall_seconds < 120 and outcome.peak_rss_mb > 50


def test_baseline_takes_a_column_of_more_levels_than_hgb_bins(tmp_path):
    # titanic's Name has a level per row: HGB's native categories stop at 255.
    d = _dataset("titanic")
    train, test, _ = write_split(d, tmp_path / "data", seed=0)
    outcome = run_system("hgb-defaults", d, train, test, budget=30, seed=0, cores=[0],
                         folder=tmp_path, limit=120)
    assert outcome.failure is None, outcome.failure
    assert 0.75 < outcome.value < 1.0


def test_a_failing_system_is_an_outcome_with_its_reason(tmp_path):
    d = _dataset("blood_transfusion")
    train, test, _ = write_split(d, tmp_path / "data", seed=0)
    wrong = Dataset(d.name, d.task, "no_such_column", d.path)
    outcome = run_system("hgb-defaults", wrong, train, test, budget=30, seed=0, cores=[0],
                         folder=tmp_path, limit=120)
    assert outcome.value is None and "exit code 1" in outcome.failure
    assert "no_such_column" in outcome.failure
    slow = run_system("hgb-defaults", d, train, test, budget=30, seed=0, cores=[0],
                      folder=tmp_path / "slow", limit=0.3)
    assert slow.value is None and "killed at the 0 s limit" in slow.failure


@pytest.mark.slow
@pytest.mark.skipif(not BENCH_VENV.exists(), reason="no .venv-bench: run `make bench-env`")
@pytest.mark.parametrize("system", ["flaml", "autogluon"])
def test_peer_runners_train_and_predict(system, tmp_path):
    d = _dataset("blood_transfusion")
    train, test, _ = write_split(d, tmp_path / "data", seed=0)
    outcome = run_system(system, d, train, test, budget=10, seed=0, cores=[0, 1],
                         folder=tmp_path, limit=120)
    assert outcome.failure is None, outcome.failure
    assert 0.5 < outcome.value <= 1.0 and outcome.info.get("model")


def test_a_table_re_rendered_from_saved_raw_results(tmp_path):
    import dataclasses
    import json

    from benchmarks.peers.__main__ import main

    raw = tmp_path / "run.jsonl"
    outcomes = [_outcome("a", "automl-flow", 0.9), _outcome("a", "flaml", 0.95, wall=75.0)]
    raw.write_text("".join(json.dumps(dataclasses.asdict(o)) + "\n" for o in outcomes))
    main(["--from-raw", str(raw), "--out", str(tmp_path / "t.md")])
    text = (tmp_path / "t.md").read_text()
    assert "| a | roc_auc | 0.9 (1.00x) | **0.95** (1.25x) |" in text
    assert "- vs flaml: 0/0/1" in text
    with pytest.raises(SystemExit, match="unknown system.*the systems are: automl-flow"):
        main(["--systems", "nope"])
