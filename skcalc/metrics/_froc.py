"""Segmentation metrics of HDoGReg (hdogreg.md section 5): FROC, partial AUC, mIoU, IoU per object.

All labelling uses 4-connectivity, as the authors' ``scipy.ndimage.label`` default.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy import ndimage

from .._units import DEFAULT_SPACING, check_spacing
from ._segmentation import match_objects

__all__ = [
    "froc",
    "froc_thresholds",
    "iou_per_object",
    "mean_iou_per_image",
    "partial_auc",
]

_CROSS = ndimage.generate_binary_structure(2, 1)



def froc_thresholds(n: int = 20, *, alpha: float = 1.0) -> np.ndarray:
    """CNN thresholds ``f(d)`` for ``d`` in ``linspace(0, xi, n)``: from 1.0 down to 0.0.

    ``f`` is the proximity function (it depends only on ``d / xi``, so not on the spacing).
    The last threshold, 0, keeps every candidate: the HDoG-only operating point.

    Examples
    --------
    >>> froc_thresholds(3).round(3)
    array([1.   , 0.378, 0.   ])
    """
    frac = np.linspace(0.0, 1.0, int(n))
    if alpha == 0:
        return 1.0 - frac
    return np.expm1(alpha * (1.0 - frac)) / np.expm1(alpha)


def partial_auc(fp_rates: Sequence[float], tpr: Sequence[float], max_fp: float = 1.0) -> float:
    """Normalised partial area under the FROC curve up to ``max_fp`` FP/cm^2 (the authors' rule).

    Points with ``fp <= max_fp`` are kept, ``(0, 0)`` is added, the points are sorted by FP
    (then TPR), ``(max_fp, last TPR)`` is appended and the trapezoid area is divided by
    ``max_fp`` (so 1.0 is a perfect detector; with the authors' ``max_fp=1`` nothing changes).

    Examples
    --------
    >>> partial_auc([0.5, 2.0], [0.8, 0.9])  # (0,0)-(0.5,0.8)-(1,0.8)
    0.6
    """
    fp = np.asarray(fp_rates, float).ravel()
    tp = np.asarray(tpr, float).ravel()
    if fp.shape != tp.shape:
        raise ValueError("fp_rates and tpr must have the same length")
    if max_fp <= 0:
        raise ValueError(f"max_fp must be positive, got {max_fp}")
    keep = fp <= max_fp
    fp = np.concatenate([[0.0], fp[keep]])
    tp = np.concatenate([[0.0], tp[keep]])
    order = np.lexsort((tp, fp))
    fp = np.append(fp[order], max_fp)
    tp = np.append(tp[order], tp[order][-1])
    return float(np.trapezoid(tp, fp) / max_fp)


def _labels(mask: np.ndarray) -> tuple[np.ndarray, int]:
    return ndimage.label(np.asarray(mask) != 0, structure=_CROSS)


def mean_iou_per_image(pred: np.ndarray, gt: np.ndarray) -> float:
    """Two-class mean IoU of one image: ``(IoU(pred, gt) + IoU(~pred, ~gt)) / 2``.

    An IoU with an empty union counts 0 (the authors' rule), so an image with neither a
    prediction nor a calcification scores 0.5.

    Examples
    --------
    >>> import numpy as np
    >>> gt = np.zeros((10, 10), bool); gt[:2, :5] = True
    >>> pred = np.zeros((10, 10), bool); pred[:2, :4] = True
    >>> round(mean_iou_per_image(pred, gt), 4)  # (8/10 + 90/92) / 2
    0.8891
    """
    p = np.asarray(pred) != 0
    g = np.asarray(gt) != 0
    if p.shape != g.shape:
        raise ValueError(f"pred shape {p.shape} does not match gt shape {g.shape}")

    def iou(a, b):
        union = np.count_nonzero(a | b)
        return np.count_nonzero(a & b) / union if union else 0.0

    return float((iou(p, g) + iou(~p, ~g)) / 2)


def iou_per_object(
    pred: np.ndarray,
    gt: np.ndarray,
    *,
    spacing: float | Sequence[float] = DEFAULT_SPACING,
    min_area_mm2: float = 2 * 0.07**2,
) -> np.ndarray:
    """Best pixel IoU of each ground-truth object against the predicted objects.

    Objects are 4-connected components of the binarised masks. For each GT object of at
    least ``min_area_mm2`` (2 px at 0.07 mm: the authors exclude 1-px "dots"; ``spacing`` in
    mm converts it to pixels), the maximum IoU against any
    predicted object is returned, 0 when no predicted object overlaps it. (The authors search
    objects whose bounding boxes overlap or touch; an object without a common pixel has IoU 0,
    so the maximum is the same.) Pool the arrays of several images with ``np.concatenate``.

    Returns
    -------
    ious : ndarray of float, shape (n_gt_objects_kept,), in GT label (raster) order.

    Examples
    --------
    >>> import numpy as np
    >>> gt = np.zeros((8, 8), bool); gt[1:3, 1:3] = True; gt[5, 5:7] = True; gt[7, 0] = True
    >>> pred = np.zeros((8, 8), bool); pred[1:3, 1:2] = True
    >>> iou_per_object(pred, gt)
    array([0.5, 0. ])
    """
    p = np.asarray(pred) != 0
    g = np.asarray(gt) != 0
    if p.shape != g.shape:
        raise ValueError(f"pred shape {p.shape} does not match gt shape {g.shape}")
    gl, ng = _labels(g)
    pl, npred = _labels(p)
    if ng == 0:
        return np.zeros(0)
    gsize = np.bincount(gl.ravel(), minlength=ng + 1)
    best = np.zeros(ng + 1)
    if npred:
        psize = np.bincount(pl.ravel(), minlength=npred + 1)
        both = (gl > 0) & (pl > 0)
        pair = gl[both].astype(np.int64) * (npred + 1) + pl[both]
        uniq, inter = np.unique(pair, return_counts=True)
        gi, pi = np.divmod(uniq, npred + 1)
        iou = inter / (gsize[gi] + psize[pi] - inter)
        np.maximum.at(best, gi, iou)
    sy, sx = check_spacing(spacing, plausible=False)
    min_px = max(1, math.ceil(round(min_area_mm2 / (sy * sx), 6)))
    keep = np.flatnonzero(gsize >= min_px)
    keep = keep[keep > 0]
    return best[keep]


def froc(
    candidates: Sequence[np.ndarray],
    proximities: Sequence[np.ndarray],
    breast_masks: Sequence[np.ndarray | None] | None,
    references: Sequence[np.ndarray],
    *,
    spacing: float | Sequence[float] = DEFAULT_SPACING,
    spacings: Sequence[float | Sequence[float]] | None = None,
    thresholds: Sequence[float] | None = None,
    n_thresholds: int = 20,
    alpha: float = 1.0,
    overlap: float = 0.3,
    erosion_mm: float = 45 * 0.07,
    max_fp: float = 1.0,
    n_bootstrap: int = 100,
    random_state: int | None = 0,
    matcher: Callable[[np.ndarray, np.ndarray], dict] | None = None,
) -> dict[str, Any]:
    """Free-response ROC of HDoGReg over a set of images (the authors' exact evaluation).

    For each CNN threshold ``t`` (default :func:`froc_thresholds`: ``f(d)``, ``d`` in
    ``linspace(0, xi, 20)``, ending with 0 = HDoG only) and each image, the final mask is
    ``combine(candidates, proximity >= t, breast, mode="overlap")`` and is matched to the
    reference with :func:`skcalc.metrics.match_objects`. Then
    ``TPR = sum TP / (sum TP + sum FN)`` and ``FP/cm^2 = sum FP / sum breast area`` (the
    un-eroded breast mask, pixels x spacing / 100). The partial AUC up to ``max_fp`` is
    bootstrapped over images (``n_bootstrap`` resamples with replacement).

    Parameters
    ----------
    candidates, proximities, references : sequences of ndarray (H_i, W_i)
        Per image: HDoG candidates (nonzero), CNN output in [0, 1], ground-truth mask.
    breast_masks : sequence of ndarray or None
        Un-eroded breast masks; None (or a None entry) means the whole image.
    spacing : float or (float, float), default=(0.07, 0.07)
        Pixel spacing in mm shared by all images.
    spacings : sequence of float or (float, float), optional
        One spacing per image; overrides ``spacing``.
    thresholds : sequence of float, optional
        CNN thresholds; default ``froc_thresholds(n_thresholds, alpha=alpha)``.
    overlap, erosion_mm : float
        Combining parameters (see :func:`skcalc.segmentation.combine`).
    max_fp : float, default=1.0
        Upper FP/cm^2 limit of the partial AUC.
    n_bootstrap : int, default=100
        Resamples for the partial-AUC mean and std (0 disables).
    random_state : int, default=0
    matcher : callable, optional
        ``matcher(pred_mask, gt_mask) -> dict`` with ``tp``, ``fn``, ``fp`` counts; default
        :func:`skcalc.metrics.match_objects` at each image's spacing.

    Returns
    -------
    result : dict
        ``thresholds``, ``tpr``, ``fp_per_cm2``, ``tp``, ``fn``, ``fp`` (per threshold),
        ``per_image_tp``, ``per_image_fn``, ``per_image_fp`` (images x thresholds),
        ``breast_area_cm2`` (per image), ``pauc``, ``pauc_mean``, ``pauc_std``,
        ``pauc_bootstrap``.
    """
    from ..segmentation._breast import breast_area_cm2, erode_breast
    from ..segmentation._combine import combine

    n = len(candidates)
    if not (len(proximities) == len(references) == n) or (
        breast_masks is not None and len(breast_masks) != n
    ):
        raise ValueError("candidates, proximities, breast_masks and references differ in length")
    if n == 0:
        raise ValueError("froc needs at least one image")
    if spacings is None:
        spacings = [check_spacing(spacing, plausible=False)] * n
    else:
        if len(spacings) != n:
            raise ValueError(f"spacings has {len(spacings)} entries for {n} images")
        spacings = [check_spacing(s, name=f"spacings[{i}]", plausible=False)
                    for i, s in enumerate(spacings)]
    thr = (froc_thresholds(n_thresholds, alpha=alpha) if thresholds is None
           else np.asarray(thresholds, float))
    counts = np.zeros((3, n, thr.size), np.int64)
    areas = np.zeros(n)
    for i in range(n):
        cand = np.asarray(candidates[i]) != 0
        prox = np.asarray(proximities[i])
        ref = np.asarray(references[i]) != 0
        if not (cand.shape == prox.shape == ref.shape):
            raise ValueError(f"image {i}: candidates, proximity and reference shapes differ")
        breast = None if breast_masks is None else breast_masks[i]
        if breast is None:
            breast = np.ones(cand.shape, bool)
        breast = np.asarray(breast) != 0
        areas[i] = breast_area_cm2(breast, spacings[i])
        # erode once; combine with erosion_mm=0 then only masks
        eroded = erode_breast(breast, spacing=spacings[i], size_mm=erosion_mm)
        cand &= eroded
        for j, t in enumerate(thr):
            final = combine(cand, prox, eroded, mode="overlap", cnn_threshold=float(t),
                            overlap=overlap, spacing=spacings[i], erosion_mm=0.0) > 0
            if matcher is None:
                res = match_objects(final, ref, spacing=spacings[i])
            else:
                res = matcher(final, ref)
            counts[:, i, j] = int(res["tp"]), int(res["fn"]), int(res["fp"])
    tp, fn, fp = counts.sum(axis=1)
    area = areas.sum()

    def rates(tp_, fn_, fp_, area_):
        tpr_ = np.where(tp_ + fn_ > 0, tp_ / np.maximum(tp_ + fn_, 1), 0.0)
        fpr_ = fp_ / area_ if area_ > 0 else np.zeros(fp_.shape)
        return tpr_, fpr_

    tpr, fpr = rates(tp, fn, fp, area)
    pauc = partial_auc(fpr, tpr, max_fp)
    rng = np.random.default_rng(random_state)
    boot = []
    for _ in range(int(n_bootstrap)):
        idx = rng.integers(0, n, n)
        c = counts[:, idx].sum(axis=1)
        boot.append(partial_auc(*rates(c[0], c[1], c[2], areas[idx].sum())[::-1], max_fp))
    boot = np.asarray(boot)
    return {
        "thresholds": thr,
        "tpr": tpr,
        "fp_per_cm2": fpr,
        "tp": tp,
        "fn": fn,
        "fp": fp,
        "per_image_tp": counts[0],
        "per_image_fn": counts[1],
        "per_image_fp": counts[2],
        "breast_area_cm2": areas,
        "pauc": pauc,
        "pauc_mean": float(boot.mean()) if boot.size else pauc,
        "pauc_std": float(boot.std()) if boot.size else 0.0,
        "pauc_bootstrap": boot,
    }
