"""The torch side of the NeuralNetwork family (tasks.models.mlp): the network, its optimizer and its
training loop, on the numpy inputs the estimators prepare (category codes, scaled numbers).

Each function imports torch when it is called, never at import: see tasks.models.mlp. The weights
leave training as numpy arrays and the network is rebuilt around them for each prediction.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Iterator

    import torch

    from tasks.types import Array

__all__ = ["AdamW", "Network", "Schedule", "Trained", "embedding_size", "network_outputs",
           "train_network"]

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


@dataclass(frozen=True)
class Network:
    """The network's shape: what builds it, for training and again around saved weights."""

    levels: tuple[int, ...]  # embedding rows per category column; row 0 is an unseen level
    n_numeric: int
    hidden_size: int
    n_layers: int
    dropout: float
    activation: str
    n_outputs: int
    classify: bool  # log loss over the outputs; else squared error of the first

    def build(self) -> torch.nn.ModuleDict:
        from torch import nn

        embeddings = nn.ModuleList(nn.Embedding(n, embedding_size(n - 1)) for n in self.levels)
        width = sum(embedding_size(n - 1) for n in self.levels) + self.n_numeric
        act = {"relu": nn.ReLU, "silu": nn.SiLU}.get(self.activation)
        if act is None:
            raise ValueError(f"activation must be 'relu' or 'silu', got {self.activation!r}")
        layers: list[nn.Module] = []
        for _ in range(self.n_layers):
            layers += [nn.Linear(width, self.hidden_size), act(), nn.Dropout(self.dropout)]
            width = self.hidden_size
        layers.append(nn.Linear(width, self.n_outputs))
        return nn.ModuleDict({"embeddings": embeddings, "body": nn.Sequential(*layers)})

    def loss(self, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        from torch.nn import functional

        if self.classify:
            loss: torch.Tensor = functional.cross_entropy(out, target, reduction="none")
        else:
            loss = functional.mse_loss(out[:, 0], target, reduction="none")
        return loss


def _forward(net: torch.nn.ModuleDict, codes: torch.Tensor, numbers: torch.Tensor
             ) -> torch.Tensor:
    import torch

    embeddings = cast("torch.nn.ModuleList", net["embeddings"])
    parts = [emb(codes[:, j]) for j, emb in enumerate(embeddings)]
    out: torch.Tensor = net["body"](torch.cat([*parts, numbers], dim=1))
    return out


@dataclass(frozen=True)
class Schedule:
    """How the network is trained: AdamW under a warm-up and cosine-decay schedule of
    max_epochs, stopping after `patience` epochs without a better held-out loss, and within
    `time_limit` seconds (training stops then, with its best epoch)."""

    learning_rate: float
    weight_decay: float
    batch_size: int
    max_epochs: int
    patience: int
    time_limit: float | None

    def rate(self, step: int, total: int, epoch_steps: int) -> float:
        warmup = max(1, min(int(WARMUP_SHARE * total), epoch_steps))
        if step < warmup:
            return float(self.learning_rate * (step + 1) / warmup)
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return float(self.learning_rate * 0.5 * (1 + math.cos(math.pi * progress)))

    def over(self, started: float) -> bool:
        return self.time_limit is not None and time.monotonic() - started > self.time_limit

    def affordable(self, scheduled: int, done: int, started: float, looping: float) -> int:
        """The schedule's length in epochs, shortened to what the clock leaves time for: its
        learning rate then still decays to zero within the time limit."""
        if self.time_limit is None or done == 0:
            return scheduled
        now = time.monotonic()
        per_epoch = (now - looping) / done
        left = self.time_limit - (now - started)
        return max(done, min(scheduled, done + int(left / max(per_epoch, 1e-9))))


@dataclass(frozen=True)
class Trained:
    state: dict[str, Array]  # the weights as numpy arrays: they pickle without torch
    best_epoch: int
    epochs: int  # epochs trained, the last one perhaps cut short by the clock
    scheduled_epochs: int  # the schedule's length, shortened by the clock
    stopped_by_clock: bool


def train_network(network: Network, schedule: Schedule, codes: Array, numbers: Array,
                  target: Array, weights: Array, fit: Array, stop: Array, *, seed: int,
                  n_jobs: int, started: float) -> Trained:
    """The network trained on the rows at positions `fit`, keeping the epoch with the best loss
    on those at `stop` (none: every epoch of the schedule runs). `started`: the fit's
    time.monotonic(), from which the time limit counts."""
    import torch  # here, not at the top: see tasks.models.mlp

    def tensors(rows: Array) -> tuple[torch.Tensor, ...]:
        return (torch.as_tensor(codes[rows]), torch.as_tensor(numbers[rows]),
                torch.as_tensor(target[rows]),
                torch.as_tensor(weights[rows] / max(weights[fit].mean(), 1e-12),
                                dtype=torch.float32))

    with _threads(n_jobs), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = network.build()
        optimizer = AdamW(list(net.parameters()), schedule.weight_decay)
        train, held = tensors(fit), tensors(stop)
        generator = torch.Generator().manual_seed(seed)
        batch = int(min(schedule.batch_size,
                        max(MIN_BATCH, len(fit) // MIN_STEPS_PER_EPOCH)))
        steps = math.ceil(len(fit) / batch)
        scheduled, step, epoch = max(1, int(schedule.max_epochs)), 0, 0
        best: dict[str, torch.Tensor] | None = None
        best_loss, best_epoch, over = math.inf, 0, False
        looping = time.monotonic()
        while epoch < scheduled and not over:
            net.train()
            order = torch.randperm(len(fit), generator=generator)
            for start in range(0, len(fit), batch):
                rows = order[start:start + batch]
                out = _forward(net, train[0][rows], train[1][rows])
                w = train[3][rows]
                # clamped: a batch of rows weighted zero must not divide by zero
                loss = (network.loss(out, train[2][rows]) * w).sum() / w.sum().clamp_min(1e-12)
                loss.backward()  # type: ignore[no-untyped-call]
                optimizer.step(schedule.rate(step, scheduled * steps, steps))
                step += 1
                if schedule.over(started):
                    over = True  # mid-epoch: the weights so far still compete below
                    break
            epoch += 1
            if len(stop):
                held_loss = _held_loss(network, net, held)
                if held_loss < best_loss:
                    best_loss, best_epoch = held_loss, epoch
                    best = {k: v.detach().clone() for k, v in net.state_dict().items()}
                elif epoch - best_epoch >= schedule.patience:
                    break
            scheduled = schedule.affordable(scheduled, epoch, started, looping)
        if best is not None:
            net.load_state_dict(best)
        state = {k: v.detach().numpy().copy() for k, v in net.state_dict().items()}
    return Trained(state, best_epoch if best is not None else epoch, epoch, scheduled,
                   over or scheduled < schedule.max_epochs)


def _held_loss(network: Network, net: torch.nn.ModuleDict,
               held: tuple[torch.Tensor, ...]) -> float:
    import torch

    net.eval()
    total = 0.0
    with torch.no_grad():
        for start in range(0, len(held[0]), PREDICT_BATCH):
            part = slice(start, start + PREDICT_BATCH)
            out = _forward(net, held[0][part], held[1][part])
            total += float((network.loss(out, held[2][part]) * held[3][part]).sum())
    return total / max(float(held[3].sum()), 1e-12)


def network_outputs(network: Network, state: dict[str, Array], codes: Array, numbers: Array,
                    n_jobs: int) -> Array:
    """The network's outputs for these rows, rebuilt around its trained weights."""
    import torch

    with _threads(n_jobs):
        # Initialised, then overwritten: cheap, and torch's meta device (no initialisation)
        # would import torch._dynamo (see AdamW). Its draws leave torch's own seed alone.
        with torch.random.fork_rng(devices=[]):
            net = network.build()
        net.load_state_dict({k: torch.as_tensor(v) for k, v in state.items()})
        net.eval()
        parts = []
        with torch.inference_mode():
            for start in range(0, len(codes), PREDICT_BATCH):
                part = slice(start, start + PREDICT_BATCH)
                out = _forward(net, torch.as_tensor(codes[part]), torch.as_tensor(numbers[part]))
                parts.append(out.numpy().astype(np.float64))
    return np.concatenate(parts) if parts else np.zeros((0, network.n_outputs))


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
