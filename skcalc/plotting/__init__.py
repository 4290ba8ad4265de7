"""Plots: ROI overlays, ROC curves, confusion matrices (matplotlib, imported lazily)."""

from ._metrics import plot_confusion_matrix, plot_roc
from ._roi import plot_roi

__all__ = ["plot_confusion_matrix", "plot_roc", "plot_roi"]
