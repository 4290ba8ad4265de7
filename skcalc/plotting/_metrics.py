"""ROC curve with its operating point, and the confusion matrix (the paper's Figure 6, Table 3).

matplotlib is imported inside the functions, so importing skcalc never needs it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

__all__ = ["plot_confusion_matrix", "plot_roc"]


def _axes(ax):
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(4.5, 4.5))
    return ax


def plot_roc(
    y_true,
    y_score,
    *,
    ax: Any = None,
    label: str | None = None,
    threshold: float | None = None,
    pos_label=1,
):
    """Plot the ROC curve, its AUC, and the operating point at ``threshold``.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
    y_score : array-like of shape (n_samples,)
        Score of the actionable class.
    ax : matplotlib Axes, optional
        Axes to draw on (a new figure otherwise).
    label : str, optional
        Legend label of the curve; the AUC is appended.
    threshold : float, optional
        Mark the point (1 - specificity, sensitivity) of the rule ``score >= threshold``.
    pos_label : int, float, bool or str, default=1

    Returns
    -------
    ax : matplotlib Axes
        Its first line is the ROC curve (x: false positive rate, y: true positive rate, as
        returned by :func:`sklearn.metrics.roc_curve`), then the chance diagonal.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> ax = plot_roc([0, 0, 1, 1], [0.1, 0.6, 0.4, 0.9], threshold=0.4)
    >>> ax.lines[0].get_xdata().tolist()
    [0.0, 0.0, 0.5, 0.5, 1.0]
    """
    y_true = np.asarray(y_true)
    y_score = np.asarray(y_score, dtype=np.float64)
    fpr, tpr, _ = roc_curve(y_true, y_score, pos_label=pos_label)
    auc = roc_auc_score(y_true == pos_label, y_score)
    ax = _axes(ax)
    text = f"AUC = {auc:.2f}" if label is None else f"{label} (AUC = {auc:.2f})"
    line = ax.plot(fpr, tpr, drawstyle="steps-post", label=text)[0]
    if not any(ln.get_label() == "chance" for ln in ax.lines):
        # one diagonal per axes, however many curves share it
        ax.plot([0, 1], [0, 1], linestyle="--", color="0.6", linewidth=1, label="chance")
    if threshold is not None:
        t_pos = y_true == pos_label
        p_pos = y_score >= threshold
        sens = np.sum(t_pos & p_pos) / max(np.sum(t_pos), 1)
        fp_rate = np.sum(~t_pos & p_pos) / max(np.sum(~t_pos), 1)
        ax.scatter(
            [fp_rate], [sens], marker="o", s=40, zorder=3, color=line.get_color(),
            edgecolors="k", label=f"threshold {threshold:g}",
        )
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_aspect("equal")
    ax.set_xlabel("1 - specificity (false positive rate)")
    ax.set_ylabel("sensitivity (true positive rate)")
    ax.legend(loc="lower right")
    return ax


def plot_confusion_matrix(
    y_true,
    y_pred,
    *,
    ax: Any = None,
    labels: Sequence[str] = ("benign", "actionable"),
    pos_label=1,
):
    """Plot the 2x2 confusion matrix with counts (rows: true class, columns: predicted).

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        ``pos_label`` is actionable, any other label benign.
    ax : matplotlib Axes, optional
    labels : (str, str), default=("benign", "actionable")
        Names of the negative and positive class.
    pos_label : int, float, bool or str, default=1

    Returns
    -------
    ax : matplotlib Axes
        Its image holds the matrix ``[[tn, fp], [fn, tp]]``; its texts hold the counts.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> ax = plot_confusion_matrix([0, 0, 1], [0, 1, 1])
    >>> ax.images[0].get_array().tolist()
    [[1, 1], [0, 1]]
    """
    from ..metrics._clinical import confusion_counts

    c = confusion_counts(y_true, y_pred, pos_label=pos_label)
    m = np.array([[c["tn"], c["fp"]], [c["fn"], c["tp"]]])
    ax = _axes(ax)
    ax.imshow(m, cmap="Blues", vmin=0, vmax=max(int(m.max()), 1))
    threshold = m.max() / 2.0
    for i in range(2):
        for j in range(2):
            ax.text(
                j, i, str(int(m[i, j])), ha="center", va="center",
                color="white" if m[i, j] > threshold else "black",
            )
    ax.set_xticks([0, 1], [f"{labels[0]}\n(predicted)", f"{labels[1]}\n(predicted)"])
    ax.set_yticks([0, 1], list(labels[:2]))
    ax.set_ylabel("true class")
    ax.set_xlabel("predicted class")
    return ax
