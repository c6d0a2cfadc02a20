"""A plugin (AUTOML_PLUGINS=misbehaving) of model families that misbehave on purpose: one sleeps
past any timeout, one allocates memory without end, one raises,
one takes 300 MB for a moment. The hard limits are under test."""

from __future__ import annotations

import os
import time

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.dummy import DummyClassifier

from tasks.models.families import Family, register_family


class _Misbehaving(ClassifierMixin, BaseEstimator):
    def __init__(self, mode: str = "a") -> None:
        self.mode = mode

    def fit(self, X, y):
        self.misbehave()
        self.model_ = DummyClassifier(strategy="prior").fit(X, y)
        self.classes_ = self.model_.classes_
        return self

    def predict_proba(self, X):
        return self.model_.predict_proba(X)

    def predict(self, X):
        return self.model_.predict(X)


class SleepyClassifier(_Misbehaving):
    def misbehave(self) -> None:
        time.sleep(600)


class HungryClassifier(_Misbehaving):
    def misbehave(self) -> None:
        hoard = []
        for _ in range(30):  # 3 GB, 100 MB at a time, each page touched; then wait to be stopped
            hoard.append(np.ones(100 * 2**20 // 8))
            time.sleep(0.01)
        time.sleep(600)


class GreedyClassifier(_Misbehaving):
    def misbehave(self) -> None:
        hoard = np.ones(300 * 2**20 // 8)  # 300 MB, every page touched, then given back
        del hoard


class CrashingClassifier(_Misbehaving):
    def misbehave(self) -> None:
        os._exit(3)  # as a crashing native library would: no exception, no goodbye


class RaisingClassifier(_Misbehaving):
    def misbehave(self) -> None:
        raise ValueError("this family always fails")


SPACE = {"params": {"mode": {"type": "categorical", "choices": ["a"]}}, "defaults": [{"mode": "a"}]}
for key, cls in (("sleepy", SleepyClassifier), ("hungry", HungryClassifier),
                 ("raising", RaisingClassifier), ("crashing", CrashingClassifier),
                 ("greedy", GreedyClassifier)):
    register_family(Family(key, cls.__name__.removesuffix("Classifier"),
                           {"classification": f"misbehaving:{cls.__name__}"}), SPACE)
