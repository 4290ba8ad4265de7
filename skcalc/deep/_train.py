"""Fine-tuning as the paper describes it, on preprocessed ROI arrays.

- the training exams are split 80/20 into training and validation, stratified by label and
  grouped by exam (:func:`validation_split`);
- class-weighted cross-entropy, the weights ``n / (n_classes * n_c)`` of the training part
  (scikit-learn's "balanced");
- AdamW with weight decay; data augmentation (random horizontal and vertical flips, shifts
  of up to 10 % of the side, contrast x[0.9, 1.1] and brightness +-0.05 on the [0, 1]
  scale);
- after each epoch the validation F1 (binary: of the positive class; multiclass: macro) is
  computed; the epoch with the best F1 (ties: the lower validation loss) is kept, and
  training stops after ``n_iter_no_change`` epochs without improvement.

Deterministic for a given seed and thread count: all randomness comes from seeded
generators, the global torch RNG is restored afterwards and deterministic algorithms are
enabled during training.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedGroupKFold
from torch import nn
from torch.nn import functional as F

from ._preprocess import to_network_input

__all__ = ["balanced_class_weights", "train_network", "validation_split"]

#: Augmentation ranges: shift (fraction of the side), contrast factor, brightness offset.
MAX_SHIFT = 0.1
CONTRAST = (0.9, 1.1)
BRIGHTNESS = 0.05


@contextmanager
def torch_settings(n_threads: int | None = None, deterministic: bool = True):
    """Set torch's thread count and deterministic mode for a block, then restore them."""
    old_threads = torch.get_num_threads()
    old_det = torch.are_deterministic_algorithms_enabled()
    old_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    try:
        if n_threads is not None:
            torch.set_num_threads(int(n_threads))
        if deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
        yield
    finally:
        torch.use_deterministic_algorithms(old_det, warn_only=old_warn)
        torch.set_num_threads(old_threads)


def balanced_class_weights(y: np.ndarray, n_classes: int) -> np.ndarray:
    """``n_samples / (n_classes * count_c)`` per class (an absent class counts as one).

    Examples
    --------
    >>> balanced_class_weights(np.array([0, 0, 0, 1]), 2)
    array([0.66666667, 2.        ])
    """
    counts = np.bincount(y, minlength=n_classes).astype(float)
    return len(y) / (n_classes * np.maximum(counts, 1.0))


def resolve_class_weight(class_weight: Any, y: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Weights per class index from ``"balanced"``, ``None`` or a ``{label: weight}`` dict."""
    if class_weight is None:
        return np.ones(len(classes))
    if isinstance(class_weight, str):
        return balanced_class_weights(y, len(classes))
    if isinstance(class_weight, Mapping):
        unknown = set(class_weight) - set(classes.tolist())
        if unknown:
            raise ValueError(f"class_weight has labels {sorted(unknown)} not in y")
        return np.array([float(class_weight.get(c, 1.0)) for c in classes.tolist()])
    raise TypeError(f"class_weight must be 'balanced', a dict or None, got {class_weight!r}")


def validation_split(y: np.ndarray, groups: np.ndarray, fraction: float | None, seed: int):
    """Indices (train, validation): a stratified, exam-grouped ``1 - fraction`` / ``fraction``
    split (fewer folds than ``1 / fraction`` when there are too few exams or samples per
    class). Without ``fraction``, with fewer than two groups, or when a class would be
    missing from the training part, everything is training and the validation part is
    empty.

    Examples
    --------
    >>> y = np.array([0, 0, 0, 0, 1, 1, 0, 0, 1, 1])
    >>> groups = np.array(["a", "a", "b", "c", "d", "d", "e", "f", "g", "h"])
    >>> tr, va = validation_split(y, groups, 0.2, seed=0)
    >>> len(tr) + len(va), set(groups[tr]) & set(groups[va])
    (10, set())
    """
    everything = (np.arange(len(y)), np.arange(0))
    n_groups = len(np.unique(groups))
    if not fraction or n_groups < 2:
        return everything
    n_splits = min(max(2, int(round(1.0 / fraction))), n_groups, int(np.bincount(y).max()))
    if n_splits < 2:
        return everything
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "least populated class has ..."
        train, val = next(splitter.split(np.zeros(len(y)), y, groups))
    if len(val) == 0 or len(np.unique(y[train])) < len(np.unique(y)):
        return everything
    return train, val


def _augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random flips, shifts (edge-replicated) and intensity jitter of (n, H, W) in [0, 1]."""
    n, h, w = x.shape
    u = torch.rand(n, 6, generator=gen)
    x = torch.where((u[:, 0] < 0.5).view(n, 1, 1), x.flip(-1), x)
    x = torch.where((u[:, 1] < 0.5).view(n, 1, 1), x.flip(-2), x)
    mr, mc = int(round(MAX_SHIFT * h)), int(round(MAX_SHIFT * w))
    if mr or mc:
        padded = F.pad(x[:, None], (mc, mc, mr, mr), mode="replicate")[:, 0]
        dr = torch.round((u[:, 2] * 2 - 1) * mr).long() + mr
        dc = torch.round((u[:, 3] * 2 - 1) * mc).long() + mc
        x = torch.stack([padded[i, dr[i]:dr[i] + h, dc[i]:dc[i] + w] for i in range(n)])
    contrast = CONTRAST[0] + u[:, 4] * (CONTRAST[1] - CONTRAST[0])
    brightness = (u[:, 5] * 2 - 1) * BRIGHTNESS
    mean = x.mean(dim=(1, 2), keepdim=True)
    x = (x - mean) * contrast.view(n, 1, 1) + mean + brightness.view(n, 1, 1)
    return x.clamp(0.0, 1.0)


def forward_batches(net: nn.Module, x: np.ndarray, batch_size: int, fn=None) -> torch.Tensor:
    """``fn(net, input)`` (default ``net(input)``) over ``x`` in batches, in eval mode."""
    net.eval()
    out = []
    with torch.inference_mode():
        for start in range(0, len(x), batch_size):
            xb = to_network_input(x[start:start + batch_size])
            out.append(net(xb) if fn is None else fn(net, xb))
    return torch.cat(out)


def _f1(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> float:
    if n_classes == 2:
        return float(f1_score(y_true, y_pred, pos_label=1, zero_division=0.0))
    return float(f1_score(y_true, y_pred, average="macro", zero_division=0.0))


def train_network(
    net: nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    *,
    n_classes: int,
    class_weight: np.ndarray | None = None,
    epochs: int = 20,
    batch_size: int = 16,
    lr: float = 1e-4,
    weight_decay: float = 1e-4,
    validation_fraction: float | None = 0.2,
    n_iter_no_change: int | None = 5,
    augment: bool = True,
    seed: int = 0,
    verbose: int = 0,
) -> dict[str, Any]:
    """Fine-tune ``net`` in place on ``x`` (n, H, W in [0, 1]) and class indices ``y``.

    ``class_weight`` (per class index) defaults to the balanced weights of the training
    part. Returns ``history`` (one dict per epoch: ``train_loss``, ``val_loss``,
    ``val_f1``), ``best_epoch`` (0-based), ``class_weight``, ``train_indices`` and
    ``validation_indices``; ``net`` ends in eval mode with the selected epoch's weights.
    """
    train, val = validation_split(y, groups, validation_fraction, seed)
    if class_weight is None:
        class_weight = balanced_class_weights(y[train], n_classes)
    weight = torch.as_tensor(np.asarray(class_weight), dtype=torch.float32)
    criterion = nn.CrossEntropyLoss(weight=weight)
    x_t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    y_t = torch.from_numpy(np.asarray(y, dtype=np.int64))
    has_bn = any(isinstance(m, nn.BatchNorm2d) for m in net.modules())
    history: list[dict[str, float]] = []
    best, best_key, best_epoch, stale = None, None, -1, 0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # dropout draws from the global generator
        gen = torch.Generator().manual_seed(seed)
        opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
        for epoch in range(epochs):
            net.train()
            order = train[torch.randperm(len(train), generator=gen).numpy()]
            total, count = 0.0, 0
            for start in range(0, len(order), batch_size):
                idx = order[start:start + batch_size]
                if has_bn and len(idx) < 2:  # batch norm cannot train on one sample
                    continue
                xb = x_t[idx]
                if augment:
                    xb = _augment(xb, gen)
                loss = criterion(net(to_network_input(xb)), y_t[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(idx)
                count += len(idx)
            record = {"train_loss": total / max(count, 1)}
            if len(val):
                logits = forward_batches(net, x[val], batch_size)
                record["val_loss"] = float(criterion(logits, y_t[val]))
                pred = logits.argmax(1).numpy()
                record["val_f1"] = _f1(y[val], pred, n_classes)
                key = (record["val_f1"], -record["val_loss"])
            else:
                record["val_loss"] = record["val_f1"] = float("nan")
                key = (epoch,)  # no validation: the last epoch
            history.append(record)
            if verbose:
                print(f"epoch {epoch + 1}/{epochs}: " + ", ".join(
                    f"{k}={v:.4f}" for k, v in record.items()))
            if best_key is None or key > best_key:
                best_key, best_epoch, stale = key, epoch, 0
                best = copy.deepcopy(net.state_dict())
            else:
                stale += 1
                if n_iter_no_change and stale >= n_iter_no_change:
                    break
    if best is not None:
        net.load_state_dict(best)
    net.eval()
    return {
        "history": history,
        "best_epoch": best_epoch,
        "class_weight": np.asarray(class_weight, dtype=float),
        "train_indices": train,
        "validation_indices": val,
    }
