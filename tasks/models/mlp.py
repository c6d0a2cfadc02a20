"""A multilayer perceptron for tables (the NeuralNetwork family), on torch's CPU build.

After the strong tabular MLPs (RealMLP simplified, AutoGluon's TabularNeuralNet): the leading
category-code columns (tasks.features.encoders.ordinal_block) become learned embeddings, the
numbers are standardised (or quantile-transformed to a normal shape), and a few wide ReLU/SiLU
layers with dropout are trained with AdamW under a warm-up and cosine-decay schedule, stopping
early on a slice of the fit rows (never the rows that score the model), keeping the best epoch.

torch is imported inside fit and predict only: a process that never trains or runs a network
never pays its import (210-250 MB). The fitted estimator holds its weights as numpy arrays and
rebuilds the network for each prediction, so it pickles without torch and across its versions.
The estimators here prepare the inputs and the rows early stopping watches; the network, its
optimizer and its training loop are in tasks.models.mlp_network.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import QuantileTransformer, StandardScaler

from tasks.models.mlp_network import Network, Schedule, network_outputs, train_network

if TYPE_CHECKING:
    from tasks.types import Array, Rows

__all__ = ["MLPClassifier", "MLPRegressor"]

# Below this many fit rows there is no slice to stop on: every epoch of the schedule runs.
MIN_STOPPING_ROWS = 50


class _MLP(BaseEstimator):  # type: ignore[misc]  # scikit-learn ships no types
    """What the classifier and the regressor share: the inputs, the rows early stopping
    watches, the network's shape and schedule."""

    _classify = False

    def __init__(
        self,
        hidden_size: int = 256,
        n_layers: int = 3,
        dropout: float = 0.1,
        learning_rate: float = 3e-3,
        weight_decay: float = 1e-2,
        batch_size: int = 256,
        max_epochs: int = 50,
        patience: int = 10,
        activation: str = "relu",
        numeric: str = "standard",
        n_categorical: int = 0,
        validation_fraction: float = 0.1,
        time_limit: float | None = None,
        random_state: int | None = None,
        n_jobs: int = 1,
    ) -> None:
        self.hidden_size = hidden_size
        self.n_layers = n_layers
        self.dropout = dropout
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.activation = activation
        self.numeric = numeric
        self.n_categorical = n_categorical  # leading columns of category codes (-1: unseen)
        self.validation_fraction = validation_fraction
        self.time_limit = time_limit  # seconds: training stops then, with its best epoch
        self.random_state = random_state
        self.n_jobs = n_jobs

    # ------------------------------------------------------------------ inputs

    def _fit_inputs(self, X: Rows) -> tuple[Array, Array]:
        values = np.asarray(X, dtype=np.float32)
        k = self.n_categorical
        # Codes 0..L-1 of the fit rows; embedding row 0 is kept for a level unseen in them.
        self.levels_ = [int(t) + 2 for t in values[:, :k].max(axis=0, initial=-1)]
        numbers = values[:, k:]
        self.scaler_: QuantileTransformer | StandardScaler | None = None
        if numbers.shape[1]:  # a table of categories only has no numbers to scale
            self.scaler_ = self._scaler(len(values)).fit(numbers)
        self.n_features_in_ = values.shape[1]
        return self._inputs(values)

    def _scaler(self, n_rows: int) -> QuantileTransformer | StandardScaler:
        if self.numeric == "standard":
            return StandardScaler()
        if self.numeric == "quantile":
            # As Gorishniy et al. (2021): about 30 rows a quantile, between 10 and 1,000.
            quantiles = min(max(min(n_rows // 30, 1000), 10), n_rows)
            return QuantileTransformer(n_quantiles=quantiles, output_distribution="normal",
                                       random_state=self.random_state)
        raise ValueError(f"numeric must be 'standard' or 'quantile', got {self.numeric!r}")

    def _inputs(self, X: Rows) -> tuple[Array, Array]:
        """(embedding rows of the category codes, transformed numbers as float32)."""
        values = np.asarray(X, dtype=np.float32)
        k = self.n_categorical
        codes = values[:, :k].astype(np.int64) + 1
        top = np.asarray(self.levels_, dtype=np.int64)
        codes[(codes < 1) | (codes >= top)] = 0  # -1 (unseen) and anything out of range
        numbers = values[:, k:]
        if self.scaler_ is not None:
            numbers = np.asarray(self.scaler_.transform(numbers), dtype=np.float32)
        return codes, np.nan_to_num(numbers, nan=0.0, posinf=0.0, neginf=0.0)

    # ------------------------------------------------------------------ the network

    def _network(self) -> Network:
        return Network(tuple(self.levels_), self.n_numeric_, self.hidden_size, self.n_layers,
                       self.dropout, self.activation, self.n_outputs_, self._classify)

    # ------------------------------------------------------------------ training

    def _train(self, X: Rows, target: Array, sample_weight: Array | None) -> None:
        started = time.monotonic()
        codes, numbers = self._fit_inputs(X)
        self.n_numeric_ = numbers.shape[1]
        weights = (np.ones(len(target)) if sample_weight is None
                   else np.asarray(sample_weight, dtype=float))
        fit, stop = self._stopping_split(target)
        seed = 0 if self.random_state is None else int(self.random_state)
        schedule = Schedule(self.learning_rate, self.weight_decay, self.batch_size,
                            self.max_epochs, self.patience, self.time_limit)
        trained = train_network(self._network(), schedule, codes, numbers, target, weights,
                                fit, stop, seed=seed, n_jobs=self.n_jobs, started=started)
        self.state_ = trained.state
        self.best_epoch_ = trained.best_epoch
        self.epochs_ = trained.epochs  # epochs trained, the last one perhaps cut short
        self.scheduled_epochs_ = trained.scheduled_epochs  # shortened by the clock
        self.stopped_by_clock_ = trained.stopped_by_clock

    def _stopping_split(self, target: Array) -> tuple[Array, Array]:
        """Positions of the rows trained on and of those early stopping watches:
        validation_fraction of them, stratified by class where every class can give rows."""
        rows = np.arange(len(target))
        n_stop = round(self.validation_fraction * len(target))
        if len(target) < MIN_STOPPING_ROWS or n_stop < 1:
            return rows, rows[:0]
        stratify = None
        if self._classify:
            counts = np.bincount(target)
            counts = counts[counts > 0]
            if counts.min() >= 2 and n_stop >= len(counts):
                stratify = target
        fit, stop = train_test_split(rows, test_size=n_stop, stratify=stratify,
                                     random_state=self.random_state)
        return np.sort(fit), np.sort(stop)

    # ------------------------------------------------------------------ predicting

    def _outputs(self, X: Rows) -> Array:
        codes, numbers = self._inputs(X)
        return network_outputs(self._network(), self.state_, codes, numbers, self.n_jobs)


class MLPClassifier(ClassifierMixin, _MLP):  # type: ignore[misc]
    """Class probabilities from a softmax over the network's outputs, trained on log loss."""

    _classify = True
    classes_: Array

    def fit(self, X: Rows, y: Array, sample_weight: Array | None = None) -> MLPClassifier:
        self.classes_, codes = np.unique(np.asarray(y), return_inverse=True)
        self.n_outputs_ = len(self.classes_)
        self._train(X, codes.astype(np.int64), sample_weight)
        return self

    def predict_proba(self, X: Rows) -> Array:
        logits = self._outputs(X)
        logits -= logits.max(axis=1, keepdims=True)
        proba: Array = np.exp(logits)
        proba /= proba.sum(axis=1, keepdims=True)
        return proba

    def predict(self, X: Rows) -> Array:
        labels: Array = self.classes_[np.argmax(self.predict_proba(X), axis=1)]
        return labels


class MLPRegressor(RegressorMixin, _MLP):  # type: ignore[misc]
    """Trained on squared error of the standardised target, so one learning rate fits every
    target's scale."""

    def fit(self, X: Rows, y: Array, sample_weight: Array | None = None) -> MLPRegressor:
        target = np.asarray(y, dtype=np.float64)
        self.y_mean_ = float(target.mean())
        self.y_scale_ = float(target.std()) or 1.0
        self.n_outputs_ = 1
        self._train(X, ((target - self.y_mean_) / self.y_scale_).astype(np.float32),
                    sample_weight)
        return self

    def predict(self, X: Rows) -> Array:
        values: Array = self._outputs(X)[:, 0] * self.y_scale_ + self.y_mean_
        return values
