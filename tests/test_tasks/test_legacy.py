"""Models registered by earlier releases keep loading: the fixtures under tests/fixtures/models/
were pickled by each release (tests/fixtures/make_models.py) and are never rewritten."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from support import FIXTURES, ROOT

from tasks.registry.scoring import load_model, predict_frame

RELEASES = sorted((FIXTURES / "models").iterdir())
MODELS = [(release.name, name) for release in RELEASES
          for name in pd.read_csv(release / "predictions.csv").columns]


def _expected(release: str, name: str) -> tuple[pd.DataFrame, np.ndarray]:
    folder = FIXTURES / "models" / release
    rows = pd.read_csv(folder / "rows.csv")
    return rows, pd.read_csv(folder / "predictions.csv")[name].to_numpy()


def _output(model: object, rows: pd.DataFrame, name: str) -> np.ndarray:
    if name.startswith("classification"):
        return model.predict_proba(rows)[:, 1]  # type: ignore[attr-defined]
    return model.predict(rows)  # type: ignore[attr-defined]


def test_there_are_fixtures_of_a_release():
    assert RELEASES and len(MODELS) >= 4


@pytest.mark.parametrize(("release", "name"), MODELS)
def test_an_old_pickle_loads_and_predicts_as_it_did(release, name):
    rows, expected = _expected(release, name)
    path = FIXTURES / "models" / release / f"{name}.pkl"
    model = load_model(str(path))
    np.testing.assert_allclose(_output(model, rows, name), expected, rtol=1e-9, atol=1e-12)
    scored = predict_frame(model, rows)  # what `automl predict` writes
    assert len(scored) == len(rows) and "prediction" in scored


def test_old_pickles_load_in_a_fresh_process_that_imports_nothing_first():
    """pickle itself imports the old module paths: nothing of tasks is loaded beforehand."""
    folder = FIXTURES / "models" / RELEASES[0].name
    code = (
        "import pickle, sys; import pandas as pd\n"
        f"rows = pd.read_csv({str(folder / 'rows.csv')!r})\n"
        f"with open({str(folder / 'classification_stack.pkl')!r}, 'rb') as f:\n"
        "    model = pickle.load(f)\n"
        "print(list(model.predict_proba(rows)[:, 1]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=ROOT)
    _, expected = _expected(RELEASES[0].name, "classification_stack")
    np.testing.assert_allclose(eval(out.stdout), expected, rtol=1e-9)  # noqa: S307 - our own output


def test_an_old_module_path_is_never_a_real_module_of_today():
    """The aliases only fill gaps: a module that exists again under an old name wins."""
    from tasks._legacy import MOVED

    for old in MOVED:
        assert not (ROOT / (old.replace(".", "/") + ".py")).exists()


def test_pickles_of_today_name_only_modules_that_exist(tmp_path):
    """New pickles reference the new paths, never an alias."""
    from tasks._legacy import MOVED

    folder = FIXTURES / "models" / RELEASES[-1].name
    with open(folder / "regression_stack.pkl", "rb") as handle:
        model = pickle.load(handle)
    names: set[str] = set()

    class Recorder(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> object:
            names.add(module)
            return super().find_class(module, name)

    import io

    Recorder(io.BytesIO(pickle.dumps(model))).load()
    assert names and not names & set(MOVED)
