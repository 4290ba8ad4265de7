"""Detection matching of segmented calcifications against a reference (HDoGReg evaluation)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import ndimage as ndi

from .._units import DEFAULT_SPACING, check_spacing

__all__ = ["match_objects"]

_FOUR = ndi.generate_binary_structure(2, 1)


def _as_mask(a, name: str) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim != 2:
        raise ValueError(f"{name} must be a 2-D mask or label image, got shape {a.shape}")
    if not (a.dtype == bool or np.issubdtype(a.dtype, np.integer)):
        raise TypeError(f"{name} must be a bool mask or an integer label image, got {a.dtype}")
    return a > 0


def _fill_small_holes(mask: np.ndarray, max_area: int = 64) -> np.ndarray:
    # As the old skimage remove_small_holes(area_threshold=64): background components
    # (4-connected, including those touching the border) of fewer than max_area px become
    # foreground.
    bg, n = ndi.label(~mask, structure=_FOUR)
    if n == 0:
        return mask.copy()
    sizes = np.bincount(bg.ravel())
    small = sizes < max_area
    small[0] = False
    return mask | small[bg]


def _centroids(labels: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    rows, cols = np.indices(labels.shape)
    flat = labels.ravel()
    area = np.bincount(flat, minlength=n + 1).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        cy = np.bincount(flat, rows.ravel(), minlength=n + 1) / area
        cx = np.bincount(flat, cols.ravel(), minlength=n + 1) / area
    return np.stack([cy, cx], axis=1), area


def match_objects(
    pred,
    gt,
    *,
    spacing: float | Sequence[float] = DEFAULT_SPACING,
    distance_mm: float = 5 * 0.07,
    window_mm: float = 14 * 0.07,
    iou_thr: float = 0.3,
    fill_small_holes: bool = True,
    hole_area_mm2: float = 64 * 0.07**2,
) -> dict:
    """Match predicted objects to reference objects one-to-one (HDoGReg's detection rule).

    Both inputs are binarised (``> 0``) and labelled with 4-connectivity. Then, for each
    reference (GT) object in label order (raster order of its first pixel):

    1. **distance**: among the still unmatched predicted objects with a pixel in the
       ``window_mm`` window around the GT centroid (at 0.07 mm the authors' 14 x 14 px
       ``[int(cy) - 7, int(cy) + 7) x [int(cx) - 7, int(cx) + 7)``, clipped at the image
       border), take the one whose centroid is nearest (ties to the later label); it is a
       detection if the distance is ``<= distance_mm``;
    2. otherwise **IoU**: among the unmatched predicted objects with a pixel inside the GT
       bounding box, take the one with the largest pixel IoU with the GT object (ties to
       the earlier label); a detection if that IoU is ``>= iou_thr`` and > 0.

    A detected GT object is a true positive and consumes its predicted object; otherwise it
    is a false negative. False positives are the predicted objects left unmatched.

    Parameters
    ----------
    pred, gt : ndarray of bool or int, shape (H, W)
        Predicted and reference masks or label images (relabelled with 4-connectivity).
    spacing : float or (float, float), default=(0.07, 0.07)
        Pixel spacing in mm (row, col); every size below is in mm and equals the authors'
        pixel value at 0.07 mm.
    distance_mm : float, default=0.35
        Centroid distance threshold (5 px at 0.07 mm).
    window_mm : float, default=0.98
        Side of the search window around the GT centroid (14 px at 0.07 mm).
    iou_thr : float, default=0.3
        IoU threshold of the fallback criterion.
    fill_small_holes : bool, default=True
        First fill holes smaller than ``hole_area_mm2`` in ``pred``, as the authors do (like
        the old ``skimage.morphology.remove_small_holes``: every 4-connected background
        component under that area counts, also one touching the border).
    hole_area_mm2 : float, default=0.3136
        Area of the holes filled (64 px at 0.07 mm).

    Returns
    -------
    dict
        ``tp``, ``fn``, ``fp``, ``n_pred``, ``n_gt`` (ints) and ``matches``, a list of
        ``(gt_label, pred_label)`` pairs in the labellings ``scipy.ndimage.label`` gives
        ``gt > 0`` and the (hole-filled) ``pred > 0`` with 4-connectivity.

    Examples
    --------
    >>> import numpy as np
    >>> gt = np.zeros((20, 20), bool); gt[5:8, 5:8] = True; gt[14, 14] = True
    >>> pred = np.zeros((20, 20), bool); pred[6:9, 6:9] = True; pred[0, 19] = True
    >>> r = match_objects(pred, gt)
    >>> r["tp"], r["fn"], r["fp"], r["matches"]
    (1, 1, 1, [(1, 2)])
    """
    pred_mask = _as_mask(pred, "pred")
    gt_mask = _as_mask(gt, "gt")
    if pred_mask.shape != gt_mask.shape:
        raise ValueError(f"pred has shape {pred_mask.shape}, gt has shape {gt_mask.shape}")
    sy, sx = check_spacing(spacing, plausible=False)
    for name, value in (("distance_mm", distance_mm), ("window_mm", window_mm),
                        ("hole_area_mm2", hole_area_mm2)):
        if not (np.isfinite(value) and value >= 0):
            raise ValueError(f"{name} must be a finite size >= 0, got {value!r}")
    if not 0 <= iou_thr <= 1:
        raise ValueError(f"iou_thr must be in [0, 1], got {iou_thr!r}")
    # Sizes to pixels; rounding first keeps 0.07 mm exactly at the authors' integers.
    half_r = int(round(window_mm / 2 / sy, 6))
    half_c = int(round(window_mm / 2 / sx, 6))
    if fill_small_holes:
        pred_mask = _fill_small_holes(
            pred_mask, max(1, math.ceil(round(hole_area_mm2 / (sy * sx), 6)))
        )
    p_lbl, n_pred = ndi.label(pred_mask, structure=_FOUR)
    g_lbl, n_gt = ndi.label(gt_mask, structure=_FOUR)

    p_cent, p_area = _centroids(p_lbl, n_pred)
    g_cent, g_area = _centroids(g_lbl, n_gt)
    unmatched = np.ones(n_pred + 1, dtype=bool)
    unmatched[0] = False
    matches: list[tuple[int, int]] = []
    n_rows, n_cols = g_lbl.shape
    for g, sl in enumerate(ndi.find_objects(g_lbl), start=1):
        cy, cx = g_cent[g]
        r0, c0 = int(cy), int(cx)
        window = p_lbl[
            max(r0 - half_r, 0) : max(r0 + half_r, 0), max(c0 - half_c, 0) : max(c0 + half_c, 0)
        ]
        cands = np.unique(window)
        cands = cands[unmatched[cands]]
        hit = 0
        if cands.size:
            d = np.hypot((p_cent[cands, 0] - cy) * sy, (p_cent[cands, 1] - cx) * sx)
            best = np.flatnonzero(d == d.min())[-1]  # ties to the later label
            if d[best] <= distance_mm * (1 + 1e-9):
                hit = int(cands[best])
        if not hit:
            in_box = p_lbl[sl]
            cands = np.unique(in_box)
            cands = cands[unmatched[cands]]
            if cands.size:
                g_in = g_lbl[sl] == g
                inter = np.array([np.count_nonzero(g_in & (in_box == p)) for p in cands])
                iou = inter / (g_area[g] + p_area[cands] - inter)
                best = int(np.argmax(iou))
                if iou[best] >= iou_thr and iou[best] > 0:
                    hit = int(cands[best])
        if hit:
            unmatched[hit] = False
            matches.append((g, hit))
    tp = len(matches)
    return {
        "tp": tp,
        "fn": n_gt - tp,
        "fp": n_pred - tp,
        "n_pred": n_pred,
        "n_gt": n_gt,
        "matches": matches,
    }
