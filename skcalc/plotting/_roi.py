"""Overlay of an ROI's calcifications, reference and region on its image."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..roi import ROI, check_roi

__all__ = ["plot_roi"]


def _display_range(image: np.ndarray, mask: np.ndarray | None) -> tuple[float, float]:
    # Percentiles of the region, not the crop: an air margin would wash out the tissue.
    values = image[mask] if mask is not None and mask.any() else image.ravel()
    lo, hi = np.percentile(values, [0.5, 99.8])
    return float(lo), float(max(hi, lo + 1e-9))


def plot_roi(
    roi: ROI,
    *,
    ax: Any = None,
    show_calcifications: bool = True,
    show_reference: bool = True,
    show_region: bool = True,
    show_background: bool = False,
    dilation_scale: int | None = None,
    title: str | None = None,
) -> Any:
    """Show an ROI with its segmentation overlaid.

    Segmented calcifications are drawn as red contours, the reference (ground truth) as
    cyan contours, the annotated region as a dashed yellow outline. With ``masks`` attached
    (after :class:`skcalc.MaskBuilder`), ``show_background`` shades the background bands and
    ``dilation_scale`` (an index into ``roi.masks.scales``) shades the dilated foreground,
    as in the paper's Figures 3 and 4.

    Parameters
    ----------
    roi : ROI
        The record to show.
    ax : matplotlib Axes, optional
        Where to draw; a new figure is made when omitted.
    show_calcifications, show_reference, show_region, show_background : bool
        Which layers to draw (absent layers are skipped silently).
    dilation_scale : int, optional
        Index of the dilation scale to shade (needs ``roi.masks``).
    title : str, optional
        Axes title; defaults to the ROI id and its calcification count.

    Returns
    -------
    ax : matplotlib Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from skcalc import ROI
    >>> from skcalc.plotting import plot_roi
    >>> lab = np.zeros((20, 20), np.int32); lab[5:8, 5:8] = 1
    >>> ax = plot_roi(ROI(np.random.default_rng(0).random((20, 20)), calcifications=lab))
    >>> len(ax.images)
    1
    """
    import matplotlib.pyplot as plt

    check_roi(roi)
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 6))
    image = np.asarray(roi.image, dtype=float)
    region = roi.region_mask if roi.region is not None else None
    vmin, vmax = _display_range(image, region)
    ax.imshow(image, cmap="gray", vmin=vmin, vmax=vmax, interpolation="nearest")

    masks = roi.masks
    if masks is not None and show_background:
        band = np.ma.masked_where(~masks.background(), np.ones(image.shape))
        ax.imshow(band, cmap="autumn", alpha=0.25, interpolation="nearest")
    if masks is not None and dilation_scale is not None:
        dil = np.ma.masked_where(~masks.dilated(dilation_scale), np.ones(image.shape))
        ax.imshow(dil, cmap="cool", alpha=0.3, interpolation="nearest")

    n_calc = None
    if show_calcifications and roi.calcifications is not None:
        calc = roi.calcifications > 0
        n_calc = int(len(np.unique(roi.calcifications[calc])))
        if calc.any():
            ax.contour(calc, levels=[0.5], colors="red", linewidths=0.8)
    if show_reference and roi.reference is not None and np.any(roi.reference):
        ax.contour(np.asarray(roi.reference, bool), levels=[0.5], colors="cyan", linewidths=0.8)
    if show_region and region is not None:
        ax.contour(region, levels=[0.5], colors="yellow", linewidths=1.0, linestyles="--")
    if title is None:
        title = roi.roi_id if n_calc is None else f"{roi.roi_id}: {n_calc} calcifications"
    ax.set_title(title)
    ax.set_axis_off()
    return ax
