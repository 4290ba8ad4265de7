"""Plots: ROI overlays, ROC curves, confusion matrices, reliability diagrams.

matplotlib is imported inside the functions, so importing skcalc never needs it.
"""

from ._calibration import plot_reliability, reliability_table
from ._froc import plot_froc
from ._metrics import plot_confusion_matrix, plot_roc
from ._roi import COLORS, object_agreement, overlay_rgb, plot_roi, save_overlay_png

__all__ = [
    "COLORS",
    "object_agreement",
    "overlay_rgb",
    "plot_confusion_matrix",
    "plot_froc",
    "plot_reliability",
    "plot_roc",
    "plot_roi",
    "reliability_table",
    "save_overlay_png",
]
