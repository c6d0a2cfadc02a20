"""The NeuralNetwork family (tasks.models.mlp): categories embedded from their codes, probabilities
that sum to one, unseen levels, pickling, seeding, its clock, its refit epochs, its skip without
torch, and its trial worker retired after it (torch's import stays in a process)."""

from __future__ import annotations

import importlib.util
import pickle
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
from sklearn.metrics import r2_score, roc_auc_score
from support import IN_CI, ROOT, dataset_path, load

from tasks.config import parse_config
from tasks.cores import available_cores
from tasks.data.inspect import inspect_data
from tasks.data.split import SplitPlan, split_data
from tasks.features.preprocess import native_columns
from tasks.features.roles import detect_roles
from tasks.models.mlp import MLPClassifier, MLPRegressor
from tasks.models.mlp_network import AdamW, embedding_size
from tasks.models.pipeline import build_pipeline
from tasks.search.candidates import Candidate, TrialSettings
from tasks.search.evaluate import evaluate_candidate
from tasks.search.spaces import load_space
from tasks.search.workers import Payload, TrialLimits, WorkerPool

# The nn extra, which `make` installs; under CI its absence fails the tests instead.
pytestmark = pytest.mark.skipif(importlib.util.find_spec("torch") is None and not IN_CI,
                                reason="torch is not installed: pip install -e '.[nn]'")

DEFAULT = dict(load_space("mlp").defaults[0])
QUICK = {**DEFAULT, "max_epochs": 8}  # a few epochs: the tests check contracts, not quality


@pytest.fixture(scope="module")
def credit():
    """credit_g, with categorical columns: 800 rows to fit, 200 held out."""
    frame = load("credit_g")
    X, y = frame.drop(columns="class"), frame["class"].to_numpy()
    config = parse_config(training_data="credit_g", target="class", n_cross_validations=3)
    return X, y, inspect_data(config, frame)


def _fitted(credit, seed: int = 0, **params):
    X, y, profile = credit
    pipeline = build_pipeline("mlp", {**QUICK, **params}, task="classification",
                              roles=profile.roles, seed=seed, n_jobs=1)
    return pipeline.fit(X.iloc[:800], y[:800])


def test_categories_are_embedded_and_probabilities_sum_to_one(credit):
    X, y, profile = credit
    pipeline = _fitted(credit)
    model = pipeline[-1]
    k = native_columns(profile.roles)
    assert isinstance(model, MLPClassifier) and model.n_categorical == k > 0
    # One embedding per category column, one row per level seen plus one for unseen levels.
    codes = pipeline[0].transform(X.iloc[:800])[:, :k]
    assert model.levels_ == [int(c) + 2 for c in codes.max(axis=0)]
    assert model.state_["embeddings.0.weight"].shape == (model.levels_[0],
                                                         embedding_size(model.levels_[0] - 1))
    proba = pipeline.predict_proba(X.iloc[800:])
    assert proba.shape == (200, 2) and np.all(proba >= 0)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-9)
    assert list(pipeline.classes_) == sorted(set(y))
    assert roc_auc_score(y[800:] == pipeline.classes_[1], proba[:, 1]) > 0.7


def test_unseen_levels_and_missing_values_predict_through_the_pickle(credit):
    X, _, profile = credit
    pipeline = _fitted(credit)
    rows = X.iloc[800:810].copy()
    column = profile.roles.categorical[0]
    rows[column] = rows[column].astype(object)
    rows.iloc[0, rows.columns.get_loc(column)] = "a level never seen"
    rows.iloc[1, rows.columns.get_loc(profile.roles.numeric[0])] = np.nan
    position = list(pipeline[0].get_feature_names_out()).index(column)
    assert pipeline[0].transform(rows)[0, position] == -1  # the code of an unseen level
    restored = pickle.loads(pickle.dumps(pipeline))
    np.testing.assert_array_equal(restored.predict_proba(rows), pipeline.predict_proba(rows))
    unseen = restored.predict_proba(rows)
    assert np.all(np.isfinite(unseen)) and np.allclose(unseen.sum(axis=1), 1.0)


def test_the_same_seed_gives_the_same_model_and_another_seed_another(credit):
    X, *_ = credit
    rows = X.iloc[800:]
    first, again = _fitted(credit, seed=3), _fitted(credit, seed=3)
    np.testing.assert_array_equal(first.predict_proba(rows), again.predict_proba(rows))
    other = _fitted(credit, seed=4)
    assert not np.array_equal(first.predict_proba(rows), other.predict_proba(rows))


def test_a_table_of_categories_only(credit):
    X, y, profile = credit
    only = X[list(profile.roles.categorical)]
    roles = detect_roles(only)
    assert not roles.numeric and native_columns(roles) == only.shape[1]
    pipeline = build_pipeline("mlp", {**QUICK, "max_epochs": 3}, task="classification",
                              roles=roles, seed=0, n_jobs=1).fit(only.iloc[:800], y[:800])
    assert pipeline[-1].scaler_ is None
    proba = pipeline.predict_proba(only.iloc[800:])
    assert roc_auc_score(y[800:] == pipeline.classes_[1], proba[:, 1]) > 0.65


def test_sample_weights_weigh_the_loss(credit):
    X, y, _ = credit
    bad = y[:800] == "bad"
    plain = _fitted(credit)
    weighted = _fitted(credit).fit(X.iloc[:800], y[:800], model__sample_weight=np.where(bad, 5, 1))
    column = list(plain.classes_).index("bad")
    rows = X.iloc[800:]
    assert (weighted.predict_proba(rows)[:, column].mean()
            > plain.predict_proba(rows)[:, column].mean() + 0.1)


def test_regression_learns_and_follows_the_target_scale():
    frame = load("abalone").sample(1500, random_state=0).reset_index(drop=True)
    X, y = frame.drop(columns="Rings"), frame["Rings"].to_numpy(dtype=float)
    config = parse_config(training_data="abalone", target="Rings", task="regression")
    roles = inspect_data(config, frame).roles

    def predicted(target: np.ndarray) -> np.ndarray:
        pipeline = build_pipeline("mlp", QUICK, task="regression", roles=roles, seed=0, n_jobs=1)
        assert isinstance(pipeline[-1], MLPRegressor)
        return pipeline.fit(X.iloc[:1200], target[:1200]).predict(X.iloc[1200:])

    plain = predicted(y)
    assert r2_score(y[1200:], plain) > 0.4
    # Trained on the standardised target, the network is the same for any scale of it.
    np.testing.assert_allclose(predicted(y * 1000.0 + 7.0), plain * 1000.0 + 7.0, rtol=1e-4)


@pytest.mark.serial  # timing-sensitive: runs alone (make test)
def test_a_tiny_time_limit_gives_a_fitted_model_quickly(credit):
    X, y, profile = credit
    pipeline = build_pipeline("mlp", {**DEFAULT, "max_epochs": 500}, task="classification",
                              roles=profile.roles, seed=0, n_jobs=1)
    pipeline[-1].set_params(time_limit=0.2)
    pytest.importorskip("torch")  # imported before the clock runs: its first import takes seconds
    started = time.monotonic()
    pipeline.fit(X, y)
    assert time.monotonic() - started < 5
    model = pipeline[-1]
    assert model.stopped_by_clock_ and 1 <= model.epochs_ < 500
    assert model.scheduled_epochs_ < 500  # its learning rate decayed within the limit
    assert np.allclose(pipeline.predict_proba(X.iloc[:5]).sum(axis=1), 1.0)


@pytest.mark.serial  # timing-sensitive: runs alone (make test)
def test_a_search_trial_runs_on_the_clock_and_plans_its_refit_epochs(credit):
    _, _, profile = credit
    frame = load("credit_g")
    config = parse_config(training_data="credit_g", target="class", n_cross_validations=3)
    data, _ = split_data(SplitPlan.of(config), profile, frame)
    settings = TrialSettings(profile.roles, seed=0, n_jobs=1, early_stopping="auc",
                             metric=profile.metric.name, fit_seconds=0.5)
    candidate = Candidate(0, "mlp", {**DEFAULT, "max_epochs": 500})
    result = evaluate_candidate(candidate, data, settings)
    assert result.ok, result.error
    assert result.metrics["AUC_weighted"] > 0.65
    assert result.fit_seconds < 3 * 0.5 + 6  # three folds on a half-second clock, featurizing
    # The refit on all rows runs the epochs the folds' clock allowed, not the 500 asked for.
    assert 1 <= result.refit_params["max_epochs"] < 500
    refit = build_pipeline("mlp", result.final_params, task="classification",
                           roles=profile.roles, seed=0, n_jobs=1)
    assert refit[-1].max_epochs == result.refit_params["max_epochs"]


def test_its_adamw_is_torchs():
    # Its own, because torch.optim imports torch._dynamo (see AdamW): the same updates.
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    ours = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    theirs = pickle.loads(pickle.dumps(ours))
    mine, reference = AdamW(list(ours.parameters()), 0.05), torch.optim.AdamW(
        theirs.parameters(), lr=0.01, weight_decay=0.05)
    X, y = torch.randn(64, 5), torch.randn(64, 1)
    for step in range(30):
        rate = 0.01 * (step + 1) / 30  # a changing rate, as the schedule sets it
        for group in reference.param_groups:
            group["lr"] = rate
        ((ours(X) - y) ** 2).mean().backward()
        mine.step(rate)
        reference.zero_grad()
        ((theirs(X) - y) ** 2).mean().backward()
        reference.step()
    for a, b in zip(ours.parameters(), theirs.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert all(p.grad is None for p in ours.parameters())


def _python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)


def test_without_torch_the_family_is_skipped_with_a_sentence():
    # torch hidden as if not installed: the inspection logs why the family is left out, and a
    # search allowed nothing else is refused with the same sentence. Hidden from the import
    # system, not set to None in sys.modules: scipy's array-API helpers read any entry there.
    run = _python("""
        import importlib.machinery, sys
        find = importlib.machinery.PathFinder.find_spec
        importlib.machinery.PathFinder.find_spec = lambda name, *args: (
            None if name.partition(".")[0] == "torch" else find(name, *args))
        import pandas as pd
        from tasks.config import parse_config
        from tasks.data.inspect import inspect_data
        from tasks.errors import ConfigError
        frame = pd.read_parquet(sys.argv[1])
        config = parse_config(training_data="credit_g", target="class")
        profile = inspect_data(config, frame)
        print("kept", "mlp" in profile.families, "lightgbm" in profile.families)
        print("why", profile.skipped["mlp"])
        try:
            inspect_data(parse_config(training_data="credit_g", target="class",
                                      allowed_models=["NeuralNetwork"]), frame)
        except ConfigError as exc:
            print("refused", exc)
        try:
            import torch
        except ModuleNotFoundError:
            print("hidden yes")
    """, str(dataset_path("credit_g")))
    assert run.returncode == 0, run.stderr
    lines = dict(line.split(" ", 1) for line in run.stdout.splitlines())
    assert lines["hidden"] == "yes" and lines["kept"] == "False True"
    assert lines["why"] == ("NeuralNetwork skipped: it needs the package 'torch', which is not "
                            "installed; pip install 'automl-flow[nn]' to add it")
    assert lines["refused"].startswith(lines["why"]) and "allow another model" in lines["refused"]


def test_torch_is_imported_to_fit_only_and_without_its_compiler():
    # ...and a model that ran a network pins torch among its requirements (MLflow's model).
    run = _python("""
        import sys
        from tasks.features.roles import detect_roles
        from tasks.models.families import screen_families
        from tasks.models.pipeline import build_pipeline
        from tasks.registry.environment import model_requirements
        import pandas as pd
        X = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": ["x", "y", "x", "y"]})
        pipeline = build_pipeline("mlp", {"max_epochs": 2}, task="classification",
                                  roles=detect_roles(X), seed=0, n_jobs=1)
        kept, _ = screen_families(["mlp"], n_rows=3, n_features=2)
        pins = lambda: [r for r in model_requirements() if r.startswith("torch==")]
        print("built", kept, "torch" in sys.modules, pins())
        pipeline.fit(X, [0, 1, 0, 1]).predict_proba(X)
        print("fitted", "torch" in sys.modules, "torch._dynamo" in sys.modules, len(pins()))
    """)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == ["built ['mlp'] False []", "fitted True False 1"]


def blood_payload(folder: Path, name: str) -> Payload:
    frame = load("blood_transfusion")
    config = parse_config(training_data="blood", target="donated_march_2007",
                          n_cross_validations=2)
    profile = inspect_data(config, frame)
    data, _ = split_data(SplitPlan.of(config), profile, frame)
    settings = TrialSettings(roles=profile.roles, seed=0, n_jobs=1)
    return Payload.write(data, settings, folder, name)


def test_the_worker_that_ran_a_network_is_replaced(tmp_path):
    pool = WorkerPool(blood_payload(tmp_path, "blood"))
    try:
        first = pool.run(Candidate(0, "logistic_regression",
                                   dict(load_space("logistic_regression").defaults[0])),
                         TrialLimits())
        (before,) = [w.process.pid for w in pool._all if w.alive]
        network = pool.run(Candidate(1, "mlp", {**QUICK, "max_epochs": 2}), TrialLimits())
        assert first.ok and network.ok, network.error
        assert not psutil.pid_exists(before) or psutil.Process(before).status() == "zombie"
        (after,) = [w.process.pid for w in pool._all if w.alive]
        assert after != before
        again = pool.run(Candidate(2, "logistic_regression",
                                   dict(load_space("logistic_regression").defaults[0])),
                         TrialLimits())
        assert again.ok and [w.process.pid for w in pool._all if w.alive] == [after]
    finally:
        pool.close()


@pytest.mark.skipif(available_cores() < 2, reason="needs a core for the trial and one unused")
def test_a_network_workers_successor_loads_during_its_trial_only_on_an_unused_core(tmp_path):
    """One trial at a time on two cores: the successor starts as the network's trial does, so the
    next trial does not wait for it; with a trial on every core, only after it (no extra process
    holding the data beside the running ones)."""
    for size, early in ((1, True), (available_cores(), False)):
        pool = WorkerPool(blood_payload(tmp_path, f"blood-{size}"))
        pool.warm(size)
        most, done = 0, threading.Event()

        def count() -> None:  # the pool's live workers while the trial runs
            nonlocal most
            while not done.wait(0.01):
                most = max(most, sum(w.alive for w in pool._all))

        watcher = threading.Thread(target=count)
        watcher.start()
        try:
            network = pool.run(Candidate(1, "mlp", {**QUICK, "max_epochs": 2}), TrialLimits())
        finally:
            done.set()
            watcher.join()
        try:
            assert network.ok, network.error
            assert most == size + early, (size, most)
            assert sum(w.alive for w in pool._all) == size
        finally:
            pool.close()
