"""Combining the HDoG candidates with the regression CNN (HDoGReg, hdogreg.md section 4)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from .._units import check_spacing, resolve_bit_depth
from ._breast import erode_breast, not_tissue, on_artificial_outlines
from ._defects import repair_impulse_defects

__all__ = ["combine", "segment_calibrated", "segment_hdogreg"]

_CROSS = ndimage.generate_binary_structure(2, 1)
_MODES = ("overlap", "multiply", "cnn", "hdog")


def combine(
    candidates: np.ndarray,
    proximity: np.ndarray | None,
    breast_mask: np.ndarray | None = None,
    *,
    mode: str = "overlap",
    cnn_threshold: float = 10**-3.5,
    overlap: float = 0.3,
    spacing: float | Sequence[float] = (0.07, 0.07),
    erosion_mm: float = 45 * 0.07,
) -> np.ndarray:
    """Combine HDoG candidates and the CNN proximity map into labelled calcifications.

    1. The breast mask is eroded with a square of side ``erosion_mm`` (the authors' 45x45 px at
       0.07 mm; the image frame does not erode it) and both branches are restricted to it.
    2. ``mode``:

       - ``"overlap"`` (the authors' pipeline): keep each whole 4-connected candidate object
         whose fraction of pixels with ``proximity >= cnn_threshold`` is strictly greater
         than ``overlap``; then fill holes. The result is made of HDoG shapes only.
       - ``"multiply"``: pixelwise AND of the candidates and the thresholded CNN.
       - ``"cnn"``: the thresholded CNN alone.
       - ``"hdog"``: the candidates alone (the HDoG-only operating point).

    3. The result is labelled with 4-connectivity.

    Parameters
    ----------
    candidates : ndarray of shape (H, W)
        HDoG candidate labels or mask (nonzero = candidate).
    proximity : ndarray of shape (H, W) or None
        CNN output in [0, 1]; may be None only for ``mode="hdog"``.
    breast_mask : ndarray of bool, shape (H, W), optional
        Un-eroded breast mask; None means the whole image (no erosion then happens, since the
        frame does not erode).
    mode : {"overlap", "multiply", "cnn", "hdog"}, default="overlap"
    cnn_threshold : float, default=10**-3.5
        Threshold on the CNN output (about "a calcification within 0.7 mm").
    overlap : float, default=0.3
        Minimum (exclusive) fraction of an object's pixels above the CNN threshold.
    spacing : float or (float, float), default=(0.07, 0.07)
        Pixel spacing in mm.
    erosion_mm : float, default=3.15
        Side of the square breast erosion in mm (0 disables it).

    Returns
    -------
    labels : ndarray of int32, shape (H, W)
        Calcification labels, 0 = background, 1..n in raster order.

    Examples
    --------
    >>> import numpy as np
    >>> cand = np.zeros((20, 20), int)
    >>> cand[2:4, 2:7] = 1   # 10 px, 3 above the CNN threshold: 30% is not > 30%
    >>> cand[10:12, 2:7] = 2  # 10 px, 4 above: kept
    >>> prox = np.zeros((20, 20))
    >>> prox[2:4, 2:3] = prox[2, 3] = 1.0
    >>> prox[10:12, 2:4] = 1.0
    >>> lab = combine(cand, prox)
    >>> lab.max(), int((lab > 0).sum()), bool(lab[10, 2])
    (np.int32(1), 10, True)
    """
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
    cand = np.asarray(candidates)
    if cand.ndim != 2:
        raise ValueError(f"candidates must be 2-D, got shape {cand.shape}")
    cand = cand != 0
    if proximity is None:
        if mode != "hdog":
            raise ValueError(f"proximity is required for mode={mode!r}")
        pred = np.zeros(cand.shape, bool)
    else:
        prox = np.asarray(proximity)
        if prox.shape != cand.shape:
            raise ValueError(
                f"proximity shape {prox.shape} does not match candidates shape {cand.shape}"
            )
        pred = prox >= cnn_threshold
    if breast_mask is not None:
        breast = np.asarray(breast_mask)
        if breast.shape != cand.shape:
            raise ValueError(
                f"breast_mask shape {breast.shape} does not match candidates shape {cand.shape}"
            )
        eroded = erode_breast(breast != 0, spacing=spacing, size_mm=erosion_mm)
        cand &= eroded
        pred &= eroded

    if mode == "hdog":
        final = cand
    elif mode == "cnn":
        final = pred
    elif mode == "multiply":
        final = cand & pred
    else:
        lab, n = ndimage.label(cand, structure=_CROSS)
        if n == 0 or not pred.any():
            final = np.zeros(cand.shape, bool)
        else:
            flat = lab.ravel()
            size = np.bincount(flat, minlength=n + 1)
            hits = np.bincount(flat, weights=pred.ravel(), minlength=n + 1)
            with np.errstate(invalid="ignore", divide="ignore"):
                frac = hits / size
            keep = frac > overlap
            keep[0] = False
            final = ndimage.binary_fill_holes(keep[lab])
    out, _ = ndimage.label(final, structure=_CROSS)
    return out.astype(np.int32, copy=False)


def segment_hdogreg(
    image: np.ndarray,
    spacing: float | Sequence[float] = (0.07, 0.07),
    *,
    model=None,
    breast_mask: np.ndarray | None = None,
    bit_depth: int | None = None,
    origin: tuple[int, int] = (0, 0),
    mode: str = "overlap",
    cnn_threshold: float = 10**-3.5,
    overlap: float = 0.3,
    erosion_mm: float = 45 * 0.07,
    hdog_params: dict | None = None,
    tile: int = 512,
    tile_overlap: int = 64,
) -> np.ndarray:
    """The whole HDoGReg pipeline on one image: breast, HDoG candidates, CNN, combining.

    The breast is delineated with :func:`delineate_breast` unless ``breast_mask`` is given
    (an ROI crop without air is all breast, so nothing is eroded there). The CNN
    (:func:`predict_proximity`, packaged weights unless ``model`` is given) is evaluated only
    on the tiles that hold candidates inside the eroded breast, the only pixels the
    ``"overlap"``, ``"multiply"`` and ``"hdog"`` modes read (the whole eroded breast for
    ``"cnn"``). Pass ``origin`` (the crop's corner in the full image) and a margin of at least
    ``tile_overlap`` px around the region of interest to get, inside the region, the labels of
    the whole-image pass (up to float rounding at the CNN threshold).

    Parameters
    ----------
    image : ndarray of shape (H, W)
    spacing : float or (float, float), default=(0.07, 0.07)
    model : ProximityUNet, optional
    breast_mask : ndarray of bool, optional
    bit_depth : int, optional
        Bits of the stored values, for both branches (12 for most FFDM "for processing"
        data); inferred when None.
    origin : (int, int), default=(0, 0)
    mode, cnn_threshold, overlap, erosion_mm
        See :func:`combine`.
    hdog_params : dict, optional
        Keyword arguments of :func:`hdog_candidates`.
    tile, tile_overlap : int, default=512, 64
        CNN tiling (see :func:`predict_proximity`).

    Returns
    -------
    labels : ndarray of int32, shape (H, W)

    Examples
    --------
    >>> import numpy as np
    >>> img = np.full((64, 64), 1500, np.uint16)
    >>> img[30:33, 30:33] = 1900
    >>> lab = segment_hdogreg(img, 0.07, bit_depth=12, mode="hdog")
    >>> int(lab.max()), bool(lab[31, 31])
    (1, True)
    """
    from ._breast import delineate_breast
    from ._hdog import hdog_candidates
    from ._regression import predict_proximity

    sp = check_spacing(spacing, plausible=False)
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
    breast = delineate_breast(image, spacing=sp) if breast_mask is None else breast_mask
    breast = np.asarray(breast, bool)
    # Resolved once, so that both branches divide by the same number.
    bit_depth = resolve_bit_depth(image, bit_depth)
    cand = hdog_candidates(image, sp, bit_depth=bit_depth, **(hdog_params or {}))
    eroded = erode_breast(breast, spacing=sp, size_mm=erosion_mm)
    if mode == "hdog":
        prox = None
    else:
        need = eroded if mode == "cnn" else (cand > 0) & eroded
        prox = predict_proximity(image, sp, model, tile=tile, overlap=tile_overlap,
                                 bit_depth=bit_depth, origin=origin, mask=need)
    return combine(cand, prox, breast, mode=mode, cnn_threshold=cnn_threshold,
                   overlap=overlap, spacing=sp, erosion_mm=erosion_mm)


def segment_calibrated(
    image: np.ndarray,
    spacing: float | Sequence[float] = (0.07, 0.07),
    *,
    breast_mask: np.ndarray | None = None,
    cnr_threshold: float | None = None,
    window_mm: float = 5.0,
    candidate_filter=None,
    operating_point: str | float = "balanced",
    erosion_mm: float = 45 * 0.07,
    hdog_params: dict | None = None,
    bit_depth: int | None = None,
    model=None,
    origin: tuple[int, int] = (0, 0),
    cnn_threshold: float = 10**-3.5,
    overlap: float = 0.3,
    tile: int = 512,
    tile_overlap: int = 64,
    stabilise: bool | None = None,
    fp_calibration: str = "image",
) -> tuple[np.ndarray, dict]:
    """Calibrated HDoG candidates, the candidate filter at an operating point, optional CNN.

    1. Breast mask (:func:`delineate_breast` unless given). Isolated hot pixels are set to
       their neighbours' median when the air shows that the image has them
       (:func:`~skcalc.segmentation.impulse_defects`).
    2. Candidates whose DoG peak exceeds ``cnr_threshold`` local robust standard deviations
       (:func:`~skcalc.segmentation._calibrated.calibrated_candidates`), inside the breast
       eroded by ``erosion_mm``. Regions of one value (at any level) of half a noise window
       (``window_mm**2 / 2``) or more, with 1 mm around them, are left out of the noise
       estimates, the intensity stabilisation and the area the candidate density of step 3
       is taken on.
    3. If ``candidate_filter`` is given: per-candidate features, score, and the objects
       scoring at least the threshold of ``operating_point`` (a preset name or expected
       false positives per cm^2, calibrated on held-out synthetic negatives) are kept. With
       ``fp_calibration="image"`` the threshold is corrected for this image's density of
       candidates (:func:`~skcalc.segmentation.image_operating_point`); ``"filter"``
       uses the calibration table as it is.
    4. Candidates on or within 0.2 mm of a plateau at the image's maximum of 1 mm^2 or
       more (clipped tissue, burned-in text or markers; :func:`clipped_plateaus`), or of a
       region of one value at any level of 12.5 mm^2 or more inside the breast (a grey
       box, a pad, tissue clipped at the bottom of a window; :func:`flat_regions`), are
       dropped: their outline is an artificial edge.
    5. If ``model`` (the regression CNN) is given, the authors' ``"overlap"`` rule is applied
       to the kept objects.
    6. Holes are filled and the result labelled (4-connectivity).

    ``cnr_threshold`` defaults to the one the candidate filter was trained with
    (``meta["cnr_threshold"]``; without a filter: 4.0). ``stabilise`` (the detector's
    intensity stabilisation, see
    :func:`~skcalc.segmentation._calibrated.calibrated_candidates`) defaults to the setting
    the candidate filter was trained with (``meta["stabilise"]``; absent: False), and to True
    without a filter. The breast is delineated with ``rule="robust"``.

    Returns
    -------
    labels : ndarray of int32
    summary : dict
        ``threshold`` ("auto"), ``cnr_threshold``, ``noise_sd`` (robust sd of the finest DoG
        in [0, 1] image units), ``pixel_noise_sd`` (the white-noise-equivalent pixel sd),
        ``operating_point``, ``fp_per_cm2`` (the promised rate), ``score_threshold``,
        ``fp_calibration``, ``candidate_density_per_cm2`` and ``fp_scale`` (see
        :func:`~skcalc.segmentation.image_operating_point`), ``n_candidates``,
        ``stabilised`` (whether step 0 of
        :func:`~skcalc.segmentation._calibrated.calibrated_candidates` ran),
        ``n_impulse_pixels`` (hot pixels repaired in step 1; 0 when the air has none),
        ``n_on_clipped_plateaus`` (candidates that would have been kept, dropped by step 4
        for touching a plateau's or a region of one value's outline),
        ``n_objects``, ``breast_area_cm2``.
    """
    from ._breast import breast_area_cm2
    from ._calibrated import (
        candidate_features,
        filter_cnr_threshold,
        filter_stabilise,
    )

    sp = check_spacing(spacing, plausible=False)
    breast = _coarse_breast(image, sp) if breast_mask is None else breast_mask
    breast = np.asarray(breast, bool)
    hp = {k: v for k, v in (hdog_params or {}).items()
          if k in ("min_sigma", "max_sigma", "sigma_ratio", "hessian_thr")}
    cnr_threshold = filter_cnr_threshold(candidate_filter, cnr_threshold)
    if stabilise is None:
        stabilise = filter_stabilise(candidate_filter)
    image, labels, info, n_spikes, not_tissue_mask = artefact_free_candidates(
        image, sp, breast, cnr_threshold=cnr_threshold, window_mm=window_mm,
        erosion_mm=erosion_mm, bit_depth=bit_depth, stabilise=stabilise, **hp)
    # regions of one value hold no candidates, so they leave the density's area too
    searchable = breast_area_cm2(
        breast if not_tissue_mask is None else breast & ~not_tissue_mask, sp)
    n_cand = int(labels.max())
    summary = {
        "threshold": "auto",
        "cnr_threshold": float(cnr_threshold),
        "noise_sd": info["noise_sd"],
        "pixel_noise_sd": info["pixel_noise_sd"],
        "n_candidates": n_cand,
        "stabilised": bool(stabilise),
        "n_impulse_pixels": n_spikes,
        "breast_area_cm2": breast_area_cm2(breast, sp),
        "operating_point": None,
        "fp_per_cm2": None,
        "score_threshold": None,
        "fp_calibration": None,
        "candidate_density_per_cm2": None,
        "fp_scale": None,
    }
    # candidates on the outline of a plateau or a large region of one value: dropped, and
    # left out of the image's density of candidates that the operating point is corrected for
    artefact = on_artificial_outlines(image, labels, sp, breast)
    keep = np.ones(n_cand + 1, bool)
    if candidate_filter is not None:
        from ._operating_point import image_operating_point

        scores = (candidate_filter.score(candidate_features(labels, info)) if n_cand
                  else np.zeros(0))
        op = image_operating_point(candidate_filter, operating_point, scores[~artefact[1:]],
                                   searchable, fp_calibration)
        keep[1:] = scores >= op["score_threshold"]
        summary.update(operating_point=operating_point, **op)
    del info
    summary["n_on_clipped_plateaus"] = int(np.count_nonzero(keep & artefact))
    keep &= ~artefact
    keep[0] = False
    kept = keep[labels]
    if model is not None and kept.any():
        from ._regression import predict_proximity

        prox = predict_proximity(image, sp, model, tile=tile, overlap=tile_overlap,
                                 bit_depth=bit_depth, origin=origin, mask=kept)
        lab = combine(kept, prox, None, mode="overlap", cnn_threshold=cnn_threshold,
                      overlap=overlap, spacing=sp, erosion_mm=0.0)
        kept = lab > 0
    final = _fill_holes(kept) if kept.any() else kept
    out, n = ndimage.label(final, structure=_CROSS)
    summary["n_objects"] = int(n)
    return out.astype(np.int32, copy=False), summary


def _fill_holes(mask: np.ndarray) -> np.ndarray:
    """``binary_fill_holes`` restricted to the objects' bounding box, by one labelling.

    Holes are the 4-connected background components that do not touch the frame of the
    box around all objects (padded by one pixel): identical to ``binary_fill_holes`` (whose
    default structure grows the background with 4-connectivity), at the cost of one
    ``label`` over that box.
    """
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    r0, r1 = max(rows[0] - 1, 0), min(rows[-1] + 2, mask.shape[0])
    c0, c1 = max(cols[0] - 1, 0), min(cols[-1] + 2, mask.shape[1])
    sub = np.pad(mask[r0:r1, c0:c1], 1)
    bg, n = ndimage.label(~sub, structure=_CROSS)
    border = np.zeros(n + 1, bool)
    border[bg[0]] = border[bg[-1]] = border[bg[:, 0]] = border[bg[:, -1]] = True
    filled = sub | ~border[bg]
    out = mask.copy()
    out[r0:r1, c0:c1] = filled[1:-1, 1:-1]
    return out


def artefact_free_candidates(image: np.ndarray, sp, breast: np.ndarray, *,
                             window_mm: float = 5.0, **kw):
    """:func:`~skcalc.segmentation._calibrated.calibrated_candidates` of ``image`` (as
    segmented: calcifications bright) after the artefact rules, shared by the segmenter and
    :func:`~skcalc.segmentation.fit_candidate_filter`'s own-image candidates.

    Hot pixels, when the air shows that the detector makes them, are repaired first; large
    regions of one value and plateaus at the maximum are left out of the statistics
    (:func:`~skcalc.segmentation._breast.not_tissue`). Returns the repaired image, the
    labels and info, the number of repaired pixels and the mask left out (or None).
    """
    from ._calibrated import calibrated_candidates

    image, n_spikes = repair_impulse_defects(image, breast, sp)
    exclude = not_tissue(image, sp, window_mm, breast)
    labels, info = calibrated_candidates(image, sp, breast_mask=breast, window_mm=window_mm,
                                         exclude=exclude, **kw)
    return image, labels, info, n_spikes, exclude


def _coarse_breast(image: np.ndarray, sp: tuple[float, float]) -> np.ndarray:
    """:func:`delineate_breast` on a ~0.3 mm subsampled grid, expanded back (nearest).

    The calibrated path uses the breast only to restrict the noise windows and the peaks
    (after a 3 mm erosion) and for the edge-distance feature, so a 0.3 mm outline suffices
    and costs a fraction of the full-resolution delineation.
    """
    from ._breast import delineate_breast

    f = [max(1, int(round(0.3 / s))) for s in sp]
    small = delineate_breast(image[:: f[0], :: f[1]], spacing=(sp[0] * f[0], sp[1] * f[1]),
                             rule="robust")
    big = np.repeat(np.repeat(small, f[0], axis=0), f[1], axis=1)
    return big[: image.shape[0], : image.shape[1]]
