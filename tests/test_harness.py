"""The test run itself: under CI, missing shared datasets stop it with one sentence, never a
green run of skips."""

from __future__ import annotations

import os
import subprocess
import sys

from support import ROOT


def _pytest(tmp_path, ci: bool) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AUTOML_TEST_DATASETS": str(tmp_path / "nowhere")}
    env.pop("CI", None)
    if ci:
        env["CI"] = "true"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "tests/test_tasks/data/test_split.py::test_holdout_regression"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_under_ci_missing_datasets_stop_the_run_with_one_sentence(tmp_path):
    done = _pytest(tmp_path, ci=True)
    assert done.returncode == 3, done.stdout + done.stderr
    assert f"the shared datasets are not at {tmp_path / 'nowhere'}" in done.stdout + done.stderr
    assert "passed" not in done.stdout


def test_outside_ci_a_test_that_needs_them_skips_and_says_why(tmp_path):
    done = _pytest(tmp_path, ci=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 skipped" in done.stdout and "is not beside the checkout" in done.stdout
