"""Reliability (calibration) diagram with the Brier score (matplotlib imported lazily)."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import brier_score_loss
from sklearn.utils import column_or_1d
from sklearn.utils.validation import check_consistent_length

__all__ = ["plot_reliability", "reliability_table"]


def reliability_table(
    y_true, y_prob, *, n_bins: int = 10, strategy: str = "uniform", pos_label=1
) -> dict[str, np.ndarray]:
    """Per-bin mean predicted probability, observed frequency and count.

    Unlike :func:`sklearn.calibration.calibration_curve`, empty bins are kept (with NaN
    means and a count of 0), so the table always has ``n_bins`` rows and shows where the
    probabilities are.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
    y_prob : array-like of shape (n_samples,)
        Predicted probability of ``pos_label``, in [0, 1].
    n_bins : int, default=10
    strategy : {"uniform", "quantile"}, default="uniform"
        Equal-width bins on [0, 1], or bins holding equal numbers of samples.
    pos_label : int, float, bool or str, default=1

    Returns
    -------
    dict
        ``edges`` (n_bins + 1), ``mean_predicted``, ``fraction_positive``, ``count``.

    Examples
    --------
    >>> t = reliability_table([0, 0, 1, 1], [0.1, 0.2, 0.7, 0.9], n_bins=2)
    >>> t["count"].tolist(), t["fraction_positive"].tolist()
    ([2, 2], [0.0, 1.0])
    """
    y_true = column_or_1d(y_true)
    y_prob = column_or_1d(y_prob).astype(np.float64)
    check_consistent_length(y_true, y_prob)
    if y_prob.size and (np.nanmin(y_prob) < 0 or np.nanmax(y_prob) > 1 or
                        not np.isfinite(y_prob).all()):
        raise ValueError("y_prob must hold probabilities in [0, 1]")
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    if strategy == "uniform":
        edges = np.linspace(0.0, 1.0, n_bins + 1)
    elif strategy == "quantile":
        edges = np.percentile(y_prob, np.linspace(0, 100, n_bins + 1))
        edges[0], edges[-1] = 0.0, 1.0
    else:
        raise ValueError(f"strategy must be 'uniform' or 'quantile', got {strategy!r}")
    # bin i holds edges[i] <= p < edges[i + 1]; the last bin includes 1.0
    idx = np.clip(np.searchsorted(edges, y_prob, side="right") - 1, 0, n_bins - 1)
    pos = (y_true == pos_label).astype(np.float64)
    count = np.bincount(idx, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.bincount(idx, y_prob, minlength=n_bins) / count
        frac = np.bincount(idx, pos, minlength=n_bins) / count
    return {"edges": edges, "mean_predicted": mean_p, "fraction_positive": frac,
            "count": count.astype(int)}


def plot_reliability(
    y_true,
    y_prob,
    *,
    n_bins: int = 10,
    strategy: str = "uniform",
    label: str | None = None,
    threshold: float | None = None,
    hist: bool = True,
    ax: Any = None,
    pos_label=1,
):
    """Reliability diagram: observed frequency of "actionable" against predicted probability.

    Each bin is a marker at (mean predicted probability, fraction of actionable samples)
    whose area grows with the bin's count; a perfectly calibrated model lies on the
    diagonal. The legend gives the Brier score (mean squared error of the probabilities,
    lower is better) and, for reference, the Brier score of always predicting the
    observed prevalence. ``hist`` adds the histogram of predicted probabilities on a
    second y axis (right), which shows when they pile up at 0 and 1.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
    y_prob : array-like of shape (n_samples,)
        Predicted probability of the actionable class.
    n_bins : int, default=10
    strategy : {"uniform", "quantile"}, default="uniform"
    label : str, optional
        Legend label of the curve; the Brier score is appended.
    threshold : float, optional
        Draw the decision threshold as a vertical line.
    hist : bool, default=True
    ax : matplotlib Axes, optional
    pos_label : int, float, bool or str, default=1

    Returns
    -------
    ax : matplotlib Axes
        Its first line is the curve through the non-empty bins.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> ax = plot_reliability([0, 0, 1, 1], [0.1, 0.2, 0.7, 0.9], n_bins=2)
    >>> ax.lines[0].get_ydata().tolist()
    [0.0, 1.0]
    >>> ax.get_legend_handles_labels()[1][0]
    'Brier = 0.038'
    """
    import matplotlib.pyplot as plt

    y_true = column_or_1d(y_true)
    y_prob = column_or_1d(y_prob).astype(np.float64)
    t = reliability_table(y_true, y_prob, n_bins=n_bins, strategy=strategy,
                          pos_label=pos_label)
    pos = y_true == pos_label
    brier = brier_score_loss(pos.astype(int), y_prob)
    prevalence = float(pos.mean()) if len(pos) else float("nan")
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 4.5), layout="constrained")
    keep = t["count"] > 0
    text = f"Brier = {brier:.3f}" if label is None else f"{label} (Brier = {brier:.3f})"
    line = ax.plot(t["mean_predicted"][keep], t["fraction_positive"][keep], "-",
                   label=text, zorder=3)[0]
    sizes = 20 + 180 * t["count"][keep] / max(int(t["count"].max()), 1)
    ax.scatter(t["mean_predicted"][keep], t["fraction_positive"][keep], s=sizes,
               color=line.get_color(), edgecolors="k", zorder=4)
    if not any(ln.get_label() == "perfectly calibrated" for ln in ax.lines):
        ax.plot([0, 1], [0, 1], linestyle="--", color="0.6", linewidth=1,
                label="perfectly calibrated")
        ax.axhline(prevalence, color="0.75", linewidth=1, linestyle=":",
                   label=f"prevalence {prevalence:.2f} (Brier {prevalence * (1 - prevalence):.3f})")
    if threshold is not None:
        ax.axvline(threshold, color="k", linewidth=1, linestyle="-.",
                   label=f"threshold {threshold:g}")
    if hist:
        twin = ax.twinx()
        twin.hist(y_prob, bins=t["edges"], color="0.5", alpha=0.25, zorder=0)
        twin.set_ylabel("number of samples (grey bars)")
        ax.set_zorder(twin.get_zorder() + 1)
        ax.patch.set_visible(False)
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_xlabel("predicted probability of actionable (bin mean)")
    ax.set_ylabel("observed fraction actionable")
    if ax.figure.get_layout_engine() is not None:
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, fontsize=8,
                  frameon=False)
    else:  # a legend outside the axes would be clipped
        ax.legend(loc="upper left", fontsize=8)
    return ax
