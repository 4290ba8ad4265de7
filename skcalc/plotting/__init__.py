"""Plots: ROI overlays, ROC curves, confusion matrices (matplotlib, imported lazily)."""

from ._froc import plot_froc
from ._metrics import plot_confusion_matrix, plot_roc
from ._roi import plot_roi

__all__ = ["plot_confusion_matrix", "plot_froc", "plot_roc", "plot_roi"]
