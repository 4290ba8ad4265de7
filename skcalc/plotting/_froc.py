"""FROC curve plot (matplotlib imported lazily)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["plot_froc"]


def plot_froc(
    result: Mapping[str, Any] | None = None,
    *,
    fp_per_cm2: Sequence[float] | None = None,
    tpr: Sequence[float] | None = None,
    label: str | None = None,
    max_fp: float | None = 1.0,
    ax: Any = None,
    **line_kw: Any,
):
    """Plot a FROC curve (TPR against false positives per cm^2).

    Parameters
    ----------
    result : dict, optional
        The output of :func:`skcalc.metrics.froc`; its partial AUC (and bootstrap std) is added
        to the legend label. Otherwise pass ``fp_per_cm2`` and ``tpr``.
    fp_per_cm2, tpr : sequences of float, optional
    label : str, optional
    max_fp : float or None, default=1.0
        Upper x limit (the partial-AUC range); None for automatic.
    ax : matplotlib Axes, optional
    **line_kw
        Passed to ``ax.plot``.

    Returns
    -------
    ax : matplotlib Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> ax = plot_froc(fp_per_cm2=[0.0, 0.2, 0.9], tpr=[0.5, 0.8, 0.95], label="demo")
    >>> ax.get_xlabel()
    'False positives per cm$^2$'
    """
    import matplotlib.pyplot as plt

    if result is not None:
        fp_per_cm2, tpr = result["fp_per_cm2"], result["tpr"]
        extra = f"pAUC {result['pauc']:.3f}"
        if result.get("pauc_std"):
            extra += f" ± {result['pauc_std']:.3f}"
        label = f"{label} ({extra})" if label else extra
    if fp_per_cm2 is None or tpr is None:
        raise ValueError("give a froc result or both fp_per_cm2 and tpr")
    fp = np.asarray(fp_per_cm2, float)
    tp = np.asarray(tpr, float)
    order = np.lexsort((tp, fp))
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 4))
    line_kw.setdefault("marker", "o")
    line_kw.setdefault("markersize", 3)
    ax.plot(fp[order], tp[order], label=label, **line_kw)
    ax.set_xlabel("False positives per cm$^2$")
    ax.set_ylabel("True positive rate")
    ax.set_ylim(0, 1.02)
    if max_fp is not None:
        ax.set_xlim(0, max_fp)
    ax.grid(True, alpha=0.3)
    if label:
        ax.legend(loc="lower right")
    return ax
