"""The benchmark's data side: the manifest, the seeded 80/20 split, and the one scoring rule.

Every system hands back test predictions in one file format (class probabilities in columns named
after the labels, or a `prediction` column); the harness scores them all here, the same way, with
the AutoML Benchmark's metrics: ROC AUC (binary), log loss (multiclass), RMSE (regression).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import log_loss, roc_auc_score, root_mean_squared_error
from sklearn.model_selection import train_test_split

__all__ = ["Dataset", "METRIC", "GREATER_IS_BETTER", "load_manifest", "write_split", "score"]

SHARED = Path(__file__).resolve().parents[3] / "shared" / "datasets"
METRIC = {"binary": "roc_auc", "multiclass": "log_loss", "regression": "rmse"}
GREATER_IS_BETTER = {"roc_auc": True, "log_loss": False, "rmse": False}
TEST_SIZE = 0.2


@dataclass(frozen=True)
class Dataset:
    name: str
    task: str  # binary | multiclass | regression
    target: str
    path: Path

    @property
    def metric(self) -> str:
        return METRIC[self.task]

    @property
    def classification(self) -> bool:
        return self.task != "regression"


def load_manifest(folder: Path = SHARED, names: list[str] | None = None) -> list[Dataset]:
    """The manifest's datasets, in its order, or the named ones; an unknown name lists the valid."""
    entries = json.loads((folder / "manifest.json").read_text())
    known = {e["name"]: Dataset(e["name"], e["task"], e["target"], folder / e["file"])
             for e in entries}
    unknown = [n for n in names or [] if n not in known]
    if unknown:
        raise SystemExit(f"unknown dataset(s) {', '.join(unknown)}; "
                         f"the manifest has: {', '.join(known)}")
    return [known[n] for n in names] if names else list(known.values())


def write_split(dataset: Dataset, folder: Path, seed: int) -> tuple[Path, Path, str]:
    """train.parquet and test.parquet in folder; the note says how the split was stratified."""
    frame = pd.read_parquet(dataset.path)
    y = frame[dataset.target]
    stratify, note = None, "shuffled"
    if dataset.classification:
        counts = y.value_counts()
        if counts.min() >= 2:
            stratify, note = y, "stratified"
        else:
            # A class with one row cannot be on both sides: its row is stratified as if it were
            # of the largest class (so it falls at random), every other class as itself.
            rare = y.isin(counts[counts < 2].index)
            stratify = y.astype(str).where(~rare, str(counts.idxmax()))
            note = f"stratified; {int(rare.sum())} row(s) of singleton classes split at random"
    train, test = train_test_split(frame, test_size=TEST_SIZE, random_state=seed, stratify=stratify)
    folder.mkdir(parents=True, exist_ok=True)
    paths = folder / "train.parquet", folder / "test.parquet"
    train.to_parquet(paths[0], index=False)
    test.to_parquet(paths[1], index=False)
    return paths[0], paths[1], note


def score(dataset: Dataset, y_true: pd.Series, predictions: pd.DataFrame) -> float:
    """The dataset's metric of one system's test predictions (rows in test-file order)."""
    if len(predictions) != len(y_true):
        raise ValueError(f"{len(predictions)} predictions for {len(y_true)} test rows")
    if not dataset.classification:
        return float(root_mean_squared_error(y_true.to_numpy(float), predictions["prediction"]))
    labels = sorted(set(map(str, y_true)) | set(predictions.columns))
    proba = predictions.reindex(columns=labels, fill_value=0.0).to_numpy(float)
    proba = np.clip(proba, 1e-15, 1.0)
    proba /= proba.sum(axis=1, keepdims=True)
    truth = np.asarray([labels.index(str(v)) for v in y_true])
    if dataset.task == "binary":
        positive = labels.index(str(sorted(y_true.unique(), key=str)[-1]))
        return float(roc_auc_score(truth == positive, proba[:, positive]))
    return float(log_loss(truth, proba, labels=np.arange(len(labels))))
