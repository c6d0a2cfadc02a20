"""A multilayer perceptron for tables (the NeuralNetwork family), on torch's CPU build.

After the strong tabular MLPs (RealMLP simplified, AutoGluon's TabularNeuralNet): the leading
category-code columns (tasks.features.encoders.ordinal_block) become learned embeddings, the
numbers are standardised (or quantile-transformed to a normal shape), and a few wide ReLU/SiLU
layers with dropout are trained with AdamW under a warm-up and cosine-decay schedule, stopping
early on a slice of the fit rows (never the rows that score the model), keeping the best epoch.

torch is imported inside fit and predict only: a process that never trains or runs a network
never pays its import (about 210 MB). The fitted estimator holds its weights as numpy arrays and
rebuilds the network for each prediction, so it pickles without torch and across its versions.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from typing import TYPE_CHECKING, cast

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import QuantileTransformer, StandardScaler

if TYPE_CHECKING:
    from collections.abc import Iterator

    import torch

    from tasks.types import Array, Rows

__all__ = ["AdamW", "MLPClassifier", "MLPRegressor", "embedding_size"]

# Below this many fit rows there is no slice to stop on: every epoch of the schedule runs.
MIN_STOPPING_ROWS = 50
# Batches shrink on small data so that an epoch has at least this many steps.
MIN_STEPS_PER_EPOCH = 16
MIN_BATCH = 32
PREDICT_BATCH = 8192  # rows per forward pass when predicting: bounded memory on any table
# The learning rate rises linearly from zero over this share of the scheduled steps, at most
# one epoch: a long schedule the clock then shortens must not spend it warming up.
WARMUP_SHARE = 0.05


def embedding_size(levels: int) -> int:
    """A category's embedding width for its number of levels (fastai's rule, capped at 16)."""
    return max(1, min(16, round(1.6 * math.pow(levels, 0.56))))


class _MLP(BaseEstimator):  # type: ignore[misc]  # scikit-learn ships no types
    """What the classifier and the regressor share: the inputs, the network, the training."""

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

    def _network(self) -> torch.nn.ModuleDict:
        from torch import nn

        embeddings = nn.ModuleList(nn.Embedding(n, embedding_size(n - 1)) for n in self.levels_)
        width = sum(embedding_size(n - 1) for n in self.levels_) + self.n_numeric_
        act = {"relu": nn.ReLU, "silu": nn.SiLU}.get(self.activation)
        if act is None:
            raise ValueError(f"activation must be 'relu' or 'silu', got {self.activation!r}")
        layers: list[nn.Module] = []
        for _ in range(self.n_layers):
            layers += [nn.Linear(width, self.hidden_size), act(), nn.Dropout(self.dropout)]
            width = self.hidden_size
        layers.append(nn.Linear(width, self.n_outputs_))
        return nn.ModuleDict({"embeddings": embeddings, "body": nn.Sequential(*layers)})

    @staticmethod
    def _forward(net: torch.nn.ModuleDict, codes: torch.Tensor,
                 numbers: torch.Tensor) -> torch.Tensor:
        import torch

        embeddings = cast("torch.nn.ModuleList", net["embeddings"])
        parts = [emb(codes[:, j]) for j, emb in enumerate(embeddings)]
        out: torch.Tensor = net["body"](torch.cat([*parts, numbers], dim=1))
        return out

    def _loss(self, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        from torch.nn import functional

        if self._classify:
            loss: torch.Tensor = functional.cross_entropy(out, target, reduction="none")
        else:
            loss = functional.mse_loss(out[:, 0], target, reduction="none")
        return loss

    # ------------------------------------------------------------------ training

    def _train(self, X: Rows, target: Array, sample_weight: Array | None) -> None:
        started = time.monotonic()
        import torch  # here, not at the top: see the module's docstring

        codes, numbers = self._fit_inputs(X)
        self.n_numeric_ = numbers.shape[1]
        weights = (np.ones(len(target)) if sample_weight is None
                   else np.asarray(sample_weight, dtype=float))
        fit, stop = self._stopping_split(target)
        seed = 0 if self.random_state is None else int(self.random_state)

        def tensors(rows: Array) -> tuple[torch.Tensor, ...]:
            return (torch.as_tensor(codes[rows]), torch.as_tensor(numbers[rows]),
                    torch.as_tensor(target[rows]),
                    torch.as_tensor(weights[rows] / max(weights[fit].mean(), 1e-12),
                                    dtype=torch.float32))

        with _threads(self.n_jobs), torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = self._network()
            optimizer = AdamW(list(net.parameters()), self.weight_decay)
            train, held = tensors(fit), tensors(stop)
            generator = torch.Generator().manual_seed(seed)
            batch = int(min(self.batch_size,
                            max(MIN_BATCH, len(fit) // MIN_STEPS_PER_EPOCH)))
            steps = math.ceil(len(fit) / batch)
            scheduled, step, epoch = max(1, int(self.max_epochs)), 0, 0
            best: dict[str, torch.Tensor] | None = None
            best_loss, best_epoch, over = math.inf, 0, False
            looping = time.monotonic()
            while epoch < scheduled and not over:
                net.train()
                order = torch.randperm(len(fit), generator=generator)
                for start in range(0, len(fit), batch):
                    rows = order[start:start + batch]
                    out = self._forward(net, train[0][rows], train[1][rows])
                    w = train[3][rows]
                    # clamped: a batch of rows weighted zero must not divide by zero
                    loss = (self._loss(out, train[2][rows]) * w).sum() / w.sum().clamp_min(1e-12)
                    loss.backward()  # type: ignore[no-untyped-call]
                    optimizer.step(self._rate(step, scheduled * steps, steps))
                    step += 1
                    if self._over(started):
                        over = True  # mid-epoch: the weights so far still compete below
                        break
                epoch += 1
                if len(stop):
                    held_loss = self._held_loss(net, held)
                    if held_loss < best_loss:
                        best_loss, best_epoch = held_loss, epoch
                        best = {k: v.detach().clone() for k, v in net.state_dict().items()}
                    elif epoch - best_epoch >= self.patience:
                        break
                scheduled = self._affordable(scheduled, epoch, started, looping)
            if best is not None:
                net.load_state_dict(best)
            self.state_ = {k: v.detach().numpy().copy() for k, v in net.state_dict().items()}
        self.best_epoch_ = best_epoch if best is not None else epoch
        self.epochs_ = epoch  # epochs trained, the last one perhaps cut short by the clock
        self.scheduled_epochs_ = scheduled  # the schedule's length, shortened by the clock
        self.stopped_by_clock_ = over or scheduled < self.max_epochs

    def _rate(self, step: int, total: int, epoch_steps: int) -> float:
        warmup = max(1, min(int(WARMUP_SHARE * total), epoch_steps))
        if step < warmup:
            return float(self.learning_rate * (step + 1) / warmup)
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return float(self.learning_rate * 0.5 * (1 + math.cos(math.pi * progress)))

    def _over(self, started: float) -> bool:
        return self.time_limit is not None and time.monotonic() - started > self.time_limit

    def _affordable(self, scheduled: int, done: int, started: float, looping: float) -> int:
        """The schedule's length in epochs, shortened to what the clock leaves time for: its
        learning rate then still decays to zero within the time limit."""
        if self.time_limit is None or done == 0:
            return scheduled
        now = time.monotonic()
        per_epoch = (now - looping) / done
        left = self.time_limit - (now - started)
        return max(done, min(scheduled, done + int(left / max(per_epoch, 1e-9))))

    def _held_loss(self, net: torch.nn.ModuleDict, held: tuple[torch.Tensor, ...]) -> float:
        import torch

        net.eval()
        total = 0.0
        with torch.no_grad():
            for start in range(0, len(held[0]), PREDICT_BATCH):
                part = slice(start, start + PREDICT_BATCH)
                out = self._forward(net, held[0][part], held[1][part])
                total += float((self._loss(out, held[2][part]) * held[3][part]).sum())
        return total / max(float(held[3].sum()), 1e-12)

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
        import torch

        codes, numbers = self._inputs(X)
        with _threads(self.n_jobs):
            # Initialised, then overwritten: cheap, and torch's meta device (no initialisation)
            # would import torch._dynamo (see AdamW). Its draws leave torch's own seed alone.
            with torch.random.fork_rng(devices=[]):
                net = self._network()
            net.load_state_dict({k: torch.as_tensor(v) for k, v in self.state_.items()})
            net.eval()
            parts = []
            with torch.inference_mode():
                for start in range(0, len(codes), PREDICT_BATCH):
                    part = slice(start, start + PREDICT_BATCH)
                    out = self._forward(net, torch.as_tensor(codes[part]),
                                        torch.as_tensor(numbers[part]))
                    parts.append(out.numpy().astype(np.float64))
        return np.concatenate(parts) if parts else np.zeros((0, self.n_outputs_))


class AdamW:
    """AdamW (Adam with decoupled weight decay) computed as torch.optim.AdamW computes it, with
    its default betas and eps. Not torch.optim's own: constructing any torch.optim optimizer
    imports torch._dynamo, measured at 67 MB and 1.5-7 s more in every worker that fits a
    network, and a worker is replaced after each such trial."""

    betas = (0.9, 0.999)
    eps = 1e-8

    def __init__(self, params: list[torch.nn.Parameter], weight_decay: float) -> None:
        import torch

        self.params = params
        self.weight_decay = weight_decay
        self.moments = [(torch.zeros_like(p), torch.zeros_like(p)) for p in params]
        self.steps = 0

    def step(self, lr: float) -> None:
        """One update from the parameters' gradients, which it then clears."""
        import torch

        self.steps += 1
        b1, b2 = self.betas
        correct1, correct2 = 1 - b1**self.steps, 1 - b2**self.steps
        with torch.no_grad():
            for p, (mean, square) in zip(self.params, self.moments, strict=True):
                if p.grad is None:
                    continue
                p.mul_(1 - lr * self.weight_decay)
                mean.lerp_(p.grad, 1 - b1)
                square.mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
                denominator = (square.sqrt() / math.sqrt(correct2)).add_(self.eps)
                p.addcdiv_(mean, denominator, value=-lr / correct1)
                p.grad = None


@contextlib.contextmanager
def _threads(n_jobs: int) -> Iterator[None]:
    """torch's intra-op threads for the block, restored after: the process may run others."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n_jobs if n_jobs > 0 else os.cpu_count() or 1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


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
