"""Overlays of an ROI's calcifications, reference and region on its image.

Two renderings share one set of layers, colours and legend:

* :func:`plot_roi` draws on matplotlib axes (contours, legend, scale bar in mm, the
  ROI's predicted probability and decision);
* :func:`overlay_rgb` / :func:`save_overlay_png` paint the same layers into an RGB array at
  the image's own pixel grid (one output pixel per image pixel, no resampling), with the
  scale bar and the legend written into the PNG's text chunks.

Colours (Okabe-Ito, distinguishable with the common colour-vision deficiencies):
segmented objects that match a reference object (:func:`skcalc.metrics.match_objects`,
the detection rule of the segmentation metrics) are bluish green, segmented objects without
a match orange, reference objects that were missed sky blue; without a reference every
segmented object is orange. The annotated region is a dashed yellow outline, background
bands are reddish purple, the dilated foreground blue.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from ..metrics import match_objects
from ..roi import ROI, bright_image, check_roi

__all__ = ["COLORS", "object_agreement", "overlay_rgb", "plot_roi", "save_overlay_png"]

#: Okabe-Ito colours of the overlay layers.
COLORS: dict[str, str] = {
    "detected": "#009E73",  # segmented and reference (bluish green)
    "segmented_only": "#E69F00",  # segmented, no reference match (orange)
    "reference_only": "#56B4E9",  # reference, missed by the segmentation (sky blue)
    "segmented": "#E69F00",  # segmented, no reference given (orange)
    "region": "#F0E442",  # annotated region outline (yellow)
    "background": "#CC79A7",  # background bands (reddish purple)
    "dilated": "#0072B2",  # dilated foreground (blue)
    "actionable": "#D55E00",  # decision: actionable (vermillion)
    "benign": "#0072B2",  # decision: benign (blue)
}

_LABELS = {
    "detected": "segmented + reference",
    "segmented_only": "segmented only",
    "reference_only": "reference only (missed)",
    "segmented": "segmented",
    "region": "annotated region",
    "background": "background bands",
    "dilated": "dilated foreground",
}

_FOUR = ndi.generate_binary_structure(2, 1)
_MAX_OUTLINED = 1000  # more objects than this are filled, not outlined
_NICE_MM = (0.1, 0.2, 0.25, 0.5, 1.0, 2.0, 2.5, 5.0, 10.0, 20.0, 25.0, 50.0, 100.0)


def _hex_rgb(color: str) -> np.ndarray:
    c = color.lstrip("#")
    return np.array([int(c[i : i + 2], 16) for i in (0, 2, 4)], dtype=np.float64)


def _display_range(image: np.ndarray, mask: np.ndarray | None) -> tuple[float, float]:
    # Percentiles of the region, not the crop: an air margin would wash out the tissue.
    values = image[mask] if mask is not None and mask.any() else image.ravel()
    lo, hi = np.percentile(values, [0.5, 99.8])
    return float(lo), float(max(hi, lo + 1e-9))


def object_agreement(
    calcifications: np.ndarray | None,
    reference: np.ndarray | None,
    spacing=(0.07, 0.07),
) -> dict[str, Any]:
    """Split segmented and reference objects into detected / segmented-only / missed.

    Objects are matched one-to-one by :func:`skcalc.metrics.match_objects` (the detection
    rule of the segmentation metrics, in mm; holes are not filled, so every mask pixel
    belongs to the object it was segmented in).

    Parameters
    ----------
    calcifications : ndarray of int or bool, shape (H, W), or None
        Segmented calcifications.
    reference : ndarray of bool, shape (H, W), or None
        Reference calcifications.
    spacing : (float, float), default=(0.07, 0.07)
        Pixel spacing in mm.

    Returns
    -------
    dict
        Boolean images ``detected`` (segmented objects matched to a reference object),
        ``segmented_only``, ``reference_only``, or ``segmented`` when there is no reference,
        and ``counts``: the number of objects of each of these layers.

    Examples
    --------
    >>> import numpy as np
    >>> seg = np.zeros((20, 20), int); seg[2:4, 2:4] = 1; seg[15:17, 15:17] = 2
    >>> ref = np.zeros((20, 20), bool); ref[2:4, 2:5] = True; ref[9, 9] = True
    >>> object_agreement(seg, ref)["counts"]
    {'detected': 1, 'segmented_only': 1, 'reference_only': 1}
    """
    if calcifications is None:
        return {"counts": {}}
    seg = np.asarray(calcifications) > 0
    if reference is None:
        n = int(ndi.label(seg, structure=_FOUR)[1])
        return {"segmented": seg, "counts": {"segmented": n}}
    ref = np.asarray(reference) > 0
    m = match_objects(seg, ref, spacing=spacing, fill_small_holes=False)
    p_lbl, n_pred = ndi.label(seg, structure=_FOUR)
    g_lbl, n_gt = ndi.label(ref, structure=_FOUR)
    p_hit = np.zeros(n_pred + 1, bool)
    g_hit = np.zeros(n_gt + 1, bool)
    for g, p in m["matches"]:
        g_hit[g] = True
        p_hit[p] = True
    return {
        "detected": p_hit[p_lbl] & seg,
        "segmented_only": ~p_hit[p_lbl] & seg,
        "reference_only": ~g_hit[g_lbl] & ref,
        "counts": {
            "detected": int(m["tp"]),
            "segmented_only": int(m["fp"]),
            "reference_only": int(m["fn"]),
        },
    }


def _scale_bar_mm(width_px: int, spacing_col: float) -> float:
    """A round length of about a fifth of the image width, in mm."""
    target = width_px * spacing_col / 5.0
    fitting = [v for v in _NICE_MM if v <= target]
    return fitting[-1] if fitting else _NICE_MM[0]


def _decision_text(proba: float, threshold: float | None, y_true: Any) -> tuple[str, str]:
    """Title line(s) of the decision and its colour (black without a threshold)."""
    text = f"P(actionable) = {proba:.2f}"
    color = "black"
    if threshold is not None:
        call = "actionable" if proba >= threshold else "benign"
        rel = "\u2265" if proba >= threshold else "<"
        text += f" {rel} threshold {threshold:.2f}: {call}"
        color = COLORS[call]
        if y_true is not None:
            truth = "actionable" if bool(y_true) else "benign"
            verdict = "correct" if (call == "actionable") == bool(y_true) else "wrong"
            text += f"\ntruth: {truth} ({verdict})"
    elif y_true is not None:
        text += f"\ntruth: {'actionable' if bool(y_true) else 'benign'}"
    return text, color


def _check_proba(proba, threshold) -> None:
    for name, v in (("proba", proba), ("threshold", threshold)):
        if v is not None and not (np.isfinite(v) and 0.0 <= float(v) <= 1.0):
            raise ValueError(f"{name} must be a probability in [0, 1], got {v!r}")
    if threshold is not None and proba is None:
        raise ValueError("threshold is given without proba; pass the ROI's probability too")


def plot_roi(
    roi: ROI,
    *,
    ax: Any = None,
    show_calcifications: bool = True,
    show_reference: bool = True,
    show_region: bool = True,
    show_background: bool = False,
    dilation_scale: int | None = None,
    proba: float | None = None,
    threshold: float | None = None,
    y_true: Any = None,
    scale_bar: bool = True,
    legend: bool = True,
    title: str | None = None,
) -> Any:
    """Show an ROI with its segmentation, reference, region, legend and scale bar.

    With a reference, segmented objects are coloured by agreement
    (:func:`object_agreement`): bluish green when they match a reference object, orange
    when they do not; reference objects that were missed are sky blue. Without a
    reference, segmented objects are orange. The annotated region is a dashed yellow
    outline. With ``masks`` attached (after :class:`skcalc.MaskBuilder`),
    ``show_background`` shades the background bands (reddish purple) and
    ``dilation_scale`` (an index into ``roi.masks.scales``) the dilated foreground (blue),
    as in the paper's Figures 3 and 4. The legend gives each layer's object count. With
    more than 1000 objects (a whole mammogram) objects are filled instead of outlined, and
    :func:`save_overlay_png` shows them at full resolution.

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
    proba : float in [0, 1], optional
        The ROI's predicted probability of "actionable", shown under the title.
    threshold : float in [0, 1], optional
        Decision threshold: the decision (``proba >= threshold``: actionable) is shown and
        coloured (vermillion actionable, blue benign). Needs ``proba``.
    y_true : int or bool, optional
        True class (1 / True: actionable); shown with the decision and whether it is right.
    scale_bar : bool, default=True
        Draw a scale bar in mm (from ``roi.spacing``; horizontal, column spacing).
    legend : bool, default=True
        Draw the legend: below the image when the figure has a layout engine (as the
        figure made when ``ax`` is omitted), otherwise inside, top left.
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
    >>> ax = plot_roi(ROI(np.random.default_rng(0).random((20, 20)), calcifications=lab),
    ...               proba=0.73, threshold=0.4)
    >>> [t.get_text() for t in ax.get_legend().get_texts()]
    ['segmented (1)']
    >>> ax.get_title()
    '<unnamed ROI>: 1 calcifications\\nP(actionable) = 0.73 ≥ threshold 0.40: actionable'
    """
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    check_roi(roi)
    _check_proba(proba, threshold)
    image = np.asarray(bright_image(roi), dtype=float)
    if ax is None:
        h, w = image.shape
        side = 6.0 if max(h, w) <= 800 else 10.0  # inches of the longer side
        size = (side, side * h / w + 1.2) if w >= h else (side * w / h + 0.5, side + 1.2)
        fig = plt.figure(figsize=size, layout="constrained")
        # the default pad lets a two-line title touch the top edge
        fig.get_layout_engine().set(h_pad=0.1, w_pad=0.1)
        ax = fig.add_subplot()
    region = roi.region_mask if roi.region is not None else None
    vmin, vmax = _display_range(image, region)
    ax.imshow(image, cmap="gray", vmin=vmin, vmax=vmax, interpolation="nearest")
    handles: list = []

    masks = roi.masks
    for show, name, get in (
        (show_background, "background", lambda: masks.background()),
        (dilation_scale is not None, "dilated", lambda: masks.dilated(dilation_scale)),
    ):
        if masks is None or not show:
            continue
        layer = get()
        rgba = np.zeros(image.shape + (4,))
        rgba[..., :3] = _hex_rgb(COLORS[name]) / 255.0
        rgba[..., 3] = 0.35 * layer
        ax.imshow(rgba, interpolation="nearest")
        label = _LABELS[name]
        if name == "dilated":
            label += f" ({masks.scales[dilation_scale]:.2f} mm)"
        handles.append(Patch(facecolor=COLORS[name], alpha=0.5, label=label))

    calc = roi.calcifications if show_calcifications else None
    ref = roi.reference if show_reference else None
    if ref is not None and not np.any(ref) and calc is not None:
        ref = np.asarray(ref, bool)  # an empty reference still says "nothing to find"
    layers = object_agreement(calc, ref, roi.spacing)
    if calc is None and ref is not None:
        layers = {"reference_only": np.asarray(ref) > 0,
                  "counts": {"reference_only": int(ndi.label(np.asarray(ref) > 0)[1])}}
    n_shown = sum(layers["counts"].values())
    width = 1.0 if n_shown <= 300 else 0.5
    # Thousands of outlines (a whole mammogram) hide the image: fill the objects instead.
    fill = n_shown > _MAX_OUTLINED
    for name, count in layers["counts"].items():
        mask = layers[name]
        missed = name == "reference_only"
        if mask.any() and fill:
            rgba = np.zeros(image.shape + (4,))
            rgba[..., :3] = _hex_rgb(COLORS[name]) / 255.0
            rgba[..., 3] = 0.85 * mask
            ax.imshow(rgba, interpolation="nearest")
        elif mask.any():
            ax.contour(mask, levels=[0.5], colors=COLORS[name], linewidths=width,
                       linestyles="dashed" if missed else "solid")
        if missed and mask.any() and calc is not None and count <= 300:
            # A missed calcification is often a few pixels: ring it so that it is seen.
            lbl, n_obj = ndi.label(mask, structure=_FOUR)
            cy, cx = np.array(ndi.center_of_mass(mask, lbl, range(1, n_obj + 1))).T
            ax.scatter(cx, cy, s=120, facecolors="none", edgecolors=COLORS[name],
                       linewidths=1.2, zorder=3)
        label = _LABELS[name] if not missed or calc is not None else "reference"
        if fill:
            handles.append(Patch(facecolor=COLORS[name], label=f"{label} ({count}, filled)"))
            continue
        handles.append(
            Line2D([], [], color=COLORS[name], linewidth=2, linestyle="--" if missed else "-",
                   marker="o" if missed and calc is not None else None, markersize=7,
                   markerfacecolor="none", label=f"{label} ({count})")
        )
    if show_region and region is not None:
        ax.contour(region, levels=[0.5], colors=COLORS["region"], linewidths=1.2,
                   linestyles="--")
        handles.append(Line2D([], [], color=COLORS["region"], linestyle="--",
                              linewidth=1.5, label=_LABELS["region"]))

    if scale_bar:
        _add_scale_bar(ax, image.shape, roi.spacing)

    if title is None:
        title = roi.roi_id
        if roi.calcifications is not None:
            n_calc = int(ndi.label(np.asarray(roi.calcifications) > 0, structure=_FOUR)[1])
            title = f"{title}: {n_calc} calcifications"
    decision_color = None
    if proba is not None:
        text, decision_color = _decision_text(float(proba), threshold, y_true)
        title = f"{title}\n{text}"
    ax.set_title(title, fontsize=10)
    if decision_color is not None and decision_color != "black":
        # The decision line in its colour: a coloured frame around the image.
        for spine in ax.spines.values():
            spine.set_visible(True)
            spine.set_edgecolor(decision_color)
            spine.set_linewidth(3)
        ax.set_xticks([])
        ax.set_yticks([])
    else:
        ax.set_axis_off()
    if legend and handles:
        ncol = 2 if len(handles) > 2 else len(handles)
        if ax.figure.get_layout_engine() is not None:
            # below the image, where the layout engine makes room for it
            ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.01),
                      ncol=ncol, fontsize=8, frameon=False, handlelength=2.2)
        else:
            # a figure without layout engine would clip a legend outside the axes
            ax.legend(handles=handles, loc="upper left", ncol=ncol, fontsize=7,
                      framealpha=0.85, handlelength=2.2)
    return ax


def _add_scale_bar(ax, shape: tuple[int, int], spacing: tuple[float, float]) -> None:
    from matplotlib.font_manager import FontProperties
    from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

    mm = _scale_bar_mm(shape[1], spacing[1])
    bar = AnchoredSizeBar(
        ax.transData, mm / spacing[1], f"{mm:g} mm", loc="lower right", pad=0.4,
        color="white", frameon=True, size_vertical=max(shape[0] / 150.0, 1.0),
        fontproperties=FontProperties(size=9), sep=3,
    )
    bar.patch.set_facecolor("black")
    bar.patch.set_alpha(0.55)
    bar.patch.set_edgecolor("none")
    ax.add_artist(bar)


# ------------------------------------------------------------------- native resolution
def _outer_ring(mask: np.ndarray) -> np.ndarray:
    """Pixels just outside a mask (8-neighbourhood): the object's own pixels stay visible."""
    return ndi.binary_dilation(mask, structure=np.ones((3, 3), bool)) & ~mask


def _inner_ring(mask: np.ndarray) -> np.ndarray:
    return mask & ~ndi.binary_erosion(mask, structure=_FOUR, border_value=1)


def overlay_rgb(
    roi: ROI,
    *,
    show_calcifications: bool = True,
    show_reference: bool = True,
    show_region: bool = True,
    show_background: bool = False,
    dilation_scale: int | None = None,
    scale_bar: bool = True,
) -> np.ndarray:
    """Paint the overlay into an RGB image at the ROI's own pixel grid (no resampling).

    The image is windowed to the 0.5-99.8 percentiles of the region (of the crop without
    a region) and shown grey. Objects are outlined by the ring of pixels just *outside*
    them, so every calcification pixel keeps its grey value; the colours are those of
    :func:`plot_roi` (see :data:`COLORS`). Background bands and the dilated foreground
    are blended at 35 %, the region outline is dashed, and the scale bar (about a fifth of
    the width, a round number of mm) is a white bar with a black edge in the lower-right
    corner, without text (:func:`save_overlay_png` stores its length in the PNG).

    Parameters
    ----------
    roi : ROI
    show_calcifications, show_reference, show_region, show_background : bool
    dilation_scale : int, optional
    scale_bar : bool, default=True

    Returns
    -------
    rgb : ndarray of uint8, shape (H, W, 3)

    Examples
    --------
    >>> import numpy as np
    >>> from skcalc import ROI
    >>> lab = np.zeros((30, 30), np.int32); lab[10:13, 10:13] = 1
    >>> rgb = overlay_rgb(ROI(np.full((30, 30), 100.0), calcifications=lab), scale_bar=False)
    >>> rgb.shape, rgb.dtype, rgb[9, 11].tolist(), rgb[11, 11].tolist()
    ((30, 30, 3), dtype('uint8'), [230, 159, 0], [0, 0, 0])
    """
    check_roi(roi)
    image = np.asarray(bright_image(roi), dtype=float)
    region = roi.region_mask if roi.region is not None else None
    vmin, vmax = _display_range(image, region)
    grey = np.clip((image - vmin) / (vmax - vmin), 0.0, 1.0) * 255.0
    rgb = np.repeat(grey[..., None], 3, axis=2)

    def blend(mask: np.ndarray, color: str, alpha: float) -> None:
        rgb[mask] = (1 - alpha) * rgb[mask] + alpha * _hex_rgb(color)

    masks = roi.masks
    if masks is not None and show_background:
        blend(masks.background(), COLORS["background"], 0.35)
    if masks is not None and dilation_scale is not None:
        blend(masks.dilated(dilation_scale), COLORS["dilated"], 0.35)
    calc = roi.calcifications if show_calcifications else None
    ref = roi.reference if show_reference else None
    layers = object_agreement(calc, ref, roi.spacing)
    if calc is None and ref is not None:
        layers = {"reference_only": np.asarray(ref) > 0, "counts": {"reference_only": 1}}
    occupied = np.zeros(image.shape, bool)
    for name in layers["counts"]:
        occupied |= layers[name]
    for name in layers["counts"]:
        ring = _outer_ring(layers[name]) & ~occupied
        blend(ring, COLORS[name], 1.0)
    if show_region and region is not None:
        edge = _inner_ring(region)
        rr, cc = np.indices(image.shape)
        dashes = ((rr // 4) + (cc // 4)) % 2 == 0  # 4-px checkerboard: dashed in any direction
        blend(edge & dashes, COLORS["region"], 1.0)
    if scale_bar:
        _paint_scale_bar(rgb, roi.spacing)
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def _scale_bar_box(shape: tuple[int, int], spacing) -> tuple[float, int, int, int, int] | None:
    h, w = shape
    mm = _scale_bar_mm(w, spacing[1])
    length = int(round(mm / spacing[1]))
    thick = max(2, h // 120)
    margin = max(3, w // 40)
    if length < 4 or length + 2 * margin > w or thick + 2 * margin > h:
        return None
    r1 = h - margin
    c1 = w - margin
    return mm, r1 - thick, r1, c1 - length, c1


def _paint_scale_bar(rgb: np.ndarray, spacing) -> None:
    box = _scale_bar_box(rgb.shape[:2], spacing)
    if box is None:
        return
    _, r0, r1, c0, c1 = box
    rgb[max(r0 - 1, 0) : r1 + 1, max(c0 - 1, 0) : c1 + 1] = 0.0
    rgb[r0:r1, c0:c1] = 255.0


class _PngFigure:
    """Adapter giving an RGB array the ``savefig`` of a figure, for the atomic writer."""

    def __init__(self, rgb: np.ndarray, text: dict[str, str], dpi: tuple[float, float]) -> None:
        self.rgb, self.text, self.dpi = rgb, text, dpi

    def savefig(self, path: str, format: str = "png", **_: Any) -> None:
        from PIL import Image
        from PIL.PngImagePlugin import PngInfo

        info = PngInfo()
        for k, v in self.text.items():
            info.add_itxt(k, v)
        Image.fromarray(self.rgb).save(path, format="PNG", pnginfo=info, dpi=self.dpi)


def save_overlay_png(
    path: str | os.PathLike,
    roi: ROI,
    *,
    proba: float | None = None,
    threshold: float | None = None,
    overwrite: bool = False,
    **overlay_kw: Any,
) -> dict[str, str]:
    """Write :func:`overlay_rgb` as an RGB PNG at the image's pixel grid, atomically.

    The PNG keeps what a viewer needs to read it in its text chunks (``skcalc:legend``,
    ``skcalc:scale_bar``, ``skcalc:spacing_mm``, ``skcalc:roi_id`` and, when given,
    ``skcalc:decision``), and its pixel density is set to the spacing (pixels per mm),
    so image viewers report true sizes.

    Parameters
    ----------
    path : str or path-like
        Output ``.png`` file; parent folders are created.
    roi : ROI
    proba, threshold : float in [0, 1], optional
        Predicted probability of "actionable" and decision threshold, recorded in the PNG.
    overwrite : bool, default=False
        Replace an existing file (otherwise :class:`FileExistsError`).
    **overlay_kw
        Passed to :func:`overlay_rgb`.

    Returns
    -------
    text : dict of str -> str
        The text chunks written.

    Examples
    --------
    >>> import numpy as np, os, tempfile
    >>> from skcalc import ROI
    >>> lab = np.zeros((40, 60), np.int32); lab[10:13, 10:13] = 1
    >>> path = os.path.join(tempfile.mkdtemp(), "overlay.png")
    >>> text = save_overlay_png(path, ROI(np.ones((40, 60)), calcifications=lab))
    >>> from PIL import Image
    >>> Image.open(path).size, text["skcalc:legend"]
    ((60, 40), 'segmented (1): #E69F00 outline')
    """
    from ..io import save_figure_atomic

    spath = os.fspath(path)
    if not spath.lower().endswith(".png"):
        raise ValueError(f"{spath}: the native-resolution overlay is a PNG; use a .png name")
    if os.path.exists(spath) and not overwrite:
        raise FileExistsError(f"{spath} exists; pass overwrite=True to replace it")
    _check_proba(proba, threshold)
    rgb = overlay_rgb(roi, **overlay_kw)
    keep = {k: overlay_kw.get(k, True) for k in ("show_calcifications", "show_reference")}
    layers = object_agreement(
        roi.calcifications if keep["show_calcifications"] else None,
        roi.reference if keep["show_reference"] else None,
        roi.spacing,
    )
    legend = [f"{_LABELS[k]} ({n}): {COLORS[k]} outline" for k, n in layers["counts"].items()]
    if overlay_kw.get("show_region", True) and roi.region is not None:
        legend.append(f"{_LABELS['region']}: {COLORS['region']} dashed")
    if overlay_kw.get("show_background") and roi.masks is not None:
        legend.append(f"{_LABELS['background']}: {COLORS['background']} 35 %")
    if overlay_kw.get("dilation_scale") is not None and roi.masks is not None:
        legend.append(f"{_LABELS['dilated']}: {COLORS['dilated']} 35 %")
    text = {
        "skcalc:roi_id": roi.roi_id,
        "skcalc:spacing_mm": f"{roi.spacing[0]:g} {roi.spacing[1]:g}",
        "skcalc:legend": "; ".join(legend),
    }
    box = _scale_bar_box(rgb.shape[:2], roi.spacing) if overlay_kw.get("scale_bar", True) else None
    if box is not None:
        text["skcalc:scale_bar"] = f"{box[0]:g} mm (white bar, lower right)"
    if proba is not None:
        text["skcalc:decision"] = _decision_text(float(proba), threshold, None)[0].replace(
            "\u2265", ">="
        )
    dpi = (25.4 / roi.spacing[1], 25.4 / roi.spacing[0])  # pixels per inch (x, y)
    save_figure_atomic(_PngFigure(rgb, text, dpi), spath)
    return text
