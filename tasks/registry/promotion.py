"""Champion / challenger: the alias `champion` moves to a new version only if it scores better.

Both models are scored with the run's primary metric on the run's held-out rows: the test set
when there is one, else the validation (out-of-fold) rows. The new model's held-out predictions
come from models that did not see those rows (tasks.final.refit). The champion is loaded and
predicts the same rows, with one exception: when there is no test set and the champion was
trained on the very same table (same dataset digest), predicting would score it on its own
training rows, so its own recorded out-of-fold score on that table is used instead. A champion
trained on an overlapping but different table is still scored by prediction and so may look
better than it is: that errs towards keeping it; give a test set for a strict comparison.

A champion that cannot score this data at all (columns it needs are gone, another task, labels
this data does not have) is replaced: it cannot serve data shaped like this any more, and the
decision says so. Ties keep the champion.

Concurrency: the decision and the alias move happen under a file lock keyed by tracking URI and
model name, so runs on one machine (or sharing the SQLite file's folder) decide one after the
other, each against the champion the previous one left. Against a remote server from several
machines the lock cannot be shared: the champion is re-read just before the alias is set and
the decision is made again if it moved (compare-and-set by re-check), then read back to verify.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import tempfile
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tasks.errors import first_line
from tasks.features.preprocess import required_columns
from tasks.models.predict import predict_scores

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from tasks.final.evaluation import HeldOutPredictions
    from tasks.metrics import Metric
    from tasks.registry.tracking import Tracker
    from tasks.types import Estimator, Json

__all__ = ["Decision", "ChampionScore", "decide", "score_champion", "promote", "registry_lock",
           "CHAMPION", "CHALLENGER"]

log = logging.getLogger("automl")

CHAMPION, CHALLENGER = "champion", "challenger"
_ATTEMPTS = 3


@dataclass(frozen=True)
class ChampionScore:
    version: str
    score: float | None  # None: it cannot score this data
    how: str  # how the score was obtained, or why there is none


@dataclass(frozen=True)
class Decision:
    promoted: bool
    alias: str | None  # the alias the new version got: champion, challenger, or none
    reason: str
    metric: str
    basis: str  # "test" or "validation"
    new_score: float
    champion_version: str | None  # the champion compared against
    champion_score: float | None

    def to_dict(self) -> Json:
        return asdict(self)

    def tags(self) -> dict[str, str]:
        return {
            "automl.decision": "promoted" if self.promoted else (self.alias or "not promoted"),
            "automl.reason": self.reason,
            "automl.metric": self.metric,
            "automl.basis": self.basis,
            "automl.score": repr(self.new_score),
            "automl.champion_version": self.champion_version or "none",
            "automl.champion_score": "none" if self.champion_score is None
            else repr(self.champion_score),
        }


def decide(metric: Metric, basis: str, new_score: float, champion: ChampionScore | None, *,
           allowed: bool) -> Decision:
    """The rule, without any I/O."""
    version = champion.version if champion else None
    old = champion.score if champion else None

    def done(promoted: bool, alias: str | None, reason: str) -> Decision:
        return Decision(promoted, alias, reason, metric.name, basis, new_score, version, old)

    if not allowed:
        return done(False, None, "not promoted (--no-promote)")
    if champion is None:
        return done(True, CHAMPION, "no champion yet")
    if old is None:
        return done(True, CHAMPION, f"champion version {version} cannot score this data "
                    f"({champion.how}); the new version can")
    if metric.better(new_score, old):
        return done(True, CHAMPION, f"{metric.name} {new_score:.4f} beats champion version "
                    f"{version}'s {old:.4f} on {basis} data")
    return done(False, CHALLENGER, f"{metric.name} {new_score:.4f} does not beat champion "
                f"version {version}'s {old:.4f} on {basis} data")


def score_champion(tracker: Tracker, name: str, held: HeldOutPredictions, metric: Metric,
                   digest: str | None) -> ChampionScore | None:
    version = tracker.version_by_alias(name, CHAMPION)
    if version is None:
        return None
    tags = version.tags or {}
    same_table = bool(digest) and tags.get("automl.data_digest") == digest
    if held.basis == "validation" and same_table:
        if tags.get("automl.metric") == metric.name and tags.get("automl.basis") == "validation":
            return ChampionScore(str(version.version), float(tags["automl.score"]),
                                 "its recorded out-of-fold score on the same training table")
        log.warning("champion version %s was trained on this table and has no comparable "
                    "recorded score: it is scored on rows it has seen", version.version)
    try:
        model = tracker.load_version(version)
    except Exception as exc:  # noqa: BLE001 - an unloadable champion is reported, not raised
        return ChampionScore(str(version.version), None,
                             f"it cannot be loaded: {first_line(exc, 200)}")
    why = _cannot_score(model, held)
    if why:
        return ChampionScore(str(version.version), None, why)
    try:
        pred = predict_scores(model, held.X, held.classes)
        if metric.reads_labels and held.classes is not None:
            # Its labels as its predict gives them: at its own decision threshold, if it has one.
            codes = np.searchsorted(held.classes, np.asarray(model.predict(held.X)))
            pred = np.eye(len(held.classes))[codes]
        score = metric(held.y, pred, held.weights, held.y_range, held.positive)
    except Exception as exc:  # noqa: BLE001
        return ChampionScore(str(version.version), None,
                             f"it fails to predict: {first_line(exc, 200)}")
    if not np.isfinite(score):
        return ChampionScore(str(version.version), None, f"its {metric.name} is undefined here")
    return ChampionScore(str(version.version), score, f"predicted the same {held.basis} rows")


def _cannot_score(model: Estimator, held: HeldOutPredictions) -> str | None:
    missing = [str(c) for c in required_columns(model) if c not in held.X.columns]
    if missing:
        return f"this data lacks column(s) it needs: {', '.join(missing[:5])}"
    classifier = hasattr(model, "predict_proba")
    if held.classes is None:
        return "it is a classifier and this is regression" if classifier else None
    if not classifier:
        return "it is a regressor and this is classification"
    unknown = set(map(str, model.classes_)) - set(map(str, held.classes))
    if unknown:
        return f"it predicts labels this data does not have: {', '.join(sorted(unknown)[:5])}"
    if not np.isin(model.classes_, held.classes).all():
        return "its labels have another type than this data's"
    return None


def promote(tracker: Tracker, name: str, version: str, held: HeldOutPredictions | None,
            metric: Metric, new_score: float, *, allowed: bool, digest: str | None,
            basis: str | None = None,
            champion: Callable[[], ChampionScore | None] | None = None) -> Decision:
    """Decide, move the alias, tag the version; one process at a time per model name.

    The champion is scored on `held` (score_champion), or by `champion` on rows held elsewhere
    (a distributed run's held-out rows stay on its cluster), on `basis` rows."""
    if champion is None:
        assert held is not None
        rows = held

        def champion() -> ChampionScore | None:
            return score_champion(tracker, name, rows, metric, digest)
    basis = basis or (held.basis if held is not None else "validation")
    with registry_lock(tracker.tracking_uri, name):
        for _ in range(_ATTEMPTS):
            decision = decide(metric, basis, new_score, champion(), allowed=allowed)
            if decision.alias is None:
                break
            # Compare-and-set: only move an alias if the champion is still the one compared.
            current = tracker.version_by_alias(name, CHAMPION)
            if (str(current.version) if current else None) != decision.champion_version:
                log.warning("champion of %s moved while deciding; deciding again", name)
                continue
            # The alias moves last: a failure before it leaves the registry's aliases as they were.
            tracker.set_version_tags(name, version, _tags(decision, digest))
            tracker.set_alias(name, decision.alias, version)
            held_alias = tracker.version_by_alias(name, decision.alias)
            if held_alias is not None and str(held_alias.version) == version:
                return decision  # tagged above, before its alias moved
            log.warning("alias %s of %s was moved by another run; deciding again",
                        decision.alias, name)
        else:
            decision = replace(
                decision, alias=None, promoted=False,
                reason=decision.reason + "; no alias set: the registry kept changing",
            )
        tracker.set_version_tags(name, version, _tags(decision, digest))
    return decision


def _tags(decision: Decision, digest: str | None) -> dict[str, str]:
    tags = decision.tags()
    if digest:
        tags["automl.data_digest"] = digest
    return tags


@contextmanager
def registry_lock(tracking_uri: str, name: str) -> Iterator[None]:
    """An exclusive lock per (store, model name): beside a SQLite store, else in the temp dir."""
    key = hashlib.sha256(f"{tracking_uri}\0{name}".encode()).hexdigest()[:16]
    folder = Path(tempfile.gettempdir()) / "automl-registry-locks"
    if tracking_uri.startswith("sqlite:///"):
        folder = Path(tracking_uri.removeprefix("sqlite:///")).parent / ".registry-locks"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{key}.lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
