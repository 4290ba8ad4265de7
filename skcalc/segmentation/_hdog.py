"""Hessian difference-of-Gaussians (HDoG) candidate detection (HDoGReg, Marasinou et al.).

The candidate stage of HDoGReg, written from the description of the authors'
``blob_detector_hdog`` (``method/hdogreg.md`` section 2): scale-normalised DoG peaks in
(row, col, scale), each grown into the 4-connected component of its own scale's Hessian
mask, the union labelled with 4-connectivity.

Memory and speed: the Gaussians and DoGs are float32 and computed streaming, so at most three
Gaussian/DoG planes and two int32 label planes are alive at a time; the 3x3x3 maximum is
evaluated only at above-threshold pixels, and the Hessian is computed in row strips. A
4096 x 3328 image needs a few hundred MB instead of the reference's ~2.3 GB.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import ndimage as ndi

from .._units import resolve_bit_depth

__all__ = ["hdog_candidates", "hdog_sigmas", "scale_to_unit"]

# 4-connectivity, as scipy.ndimage.label's default in the reference.
_FOUR = ndi.generate_binary_structure(2, 1)
# Rows per strip of the Hessian stage: bounds its six float32 work buffers.
_STRIP_ROWS = 256


def hdog_sigmas(min_sigma: float, max_sigma: float, sigma_ratio: float) -> np.ndarray:
    """Gaussian scales of the HDoG stack, in the units of ``min_sigma``.

    ``k = int(log(max/min, ratio)) + 1`` and ``sigma_i = min * ratio**i`` for ``i = 0..k``,
    as the authors do; the DoG ``i`` pairs ``sigma_i`` and ``sigma_{i+1}``.

    Examples
    --------
    >>> hdog_sigmas(1.18, 3.1, 1.6).round(4)
    array([1.18  , 1.888 , 3.0208, 4.8333])
    """
    _check_sigmas(min_sigma, max_sigma, sigma_ratio)
    k = int(math.log(max_sigma / min_sigma, sigma_ratio)) + 1
    return np.array([min_sigma * sigma_ratio**i for i in range(k + 1)], dtype=float)


def _check_sigmas(min_sigma: float, max_sigma: float, sigma_ratio: float) -> None:
    if not (np.isfinite(min_sigma) and min_sigma > 0):
        raise ValueError(f"min_sigma must be a positive size in mm, got {min_sigma!r}")
    if not (np.isfinite(max_sigma) and max_sigma >= min_sigma):
        raise ValueError(
            f"max_sigma must be finite and >= min_sigma ({min_sigma!r}), got {max_sigma!r}"
        )
    if not (np.isfinite(sigma_ratio) and sigma_ratio > 1):
        raise ValueError(f"sigma_ratio must be > 1, got {sigma_ratio!r}")


def scale_to_unit(image: np.ndarray, bit_depth: int | None = None) -> np.ndarray:
    """Scale an image to [0, 1] by its bit depth, as float32: ``value / (2**bits - 1)``.

    Parameters
    ----------
    image : ndarray
        Raw detector values.
    bit_depth : int or None
        Bits per pixel (the file header's, when there is one). ``None`` infers it by the
        package's one rule, :func:`skcalc._units.resolve_bit_depth` (the CNN branch uses the
        same): uint8/int8 -> 8; bool -> 1; floats with maximum <= 1 are already in [0, 1];
        other values -> 12 if the maximum is <= 4095, else 16. The authors' DoG threshold
        0.006 refers to the [0, 1] image; their DICOM reader rescaled 12-bit data stored in a
        16-bit container by 16 (i.e. about ``/4095``), which the 12-bit inference reproduces.

    Examples
    --------
    >>> scale_to_unit(np.array([[0, 4095]], np.uint16))
    array([[0., 1.]], dtype=float32)
    >>> scale_to_unit(np.array([[0, 255]], np.uint8))
    array([[0., 1.]], dtype=float32)
    >>> scale_to_unit(np.array([[0.0, 0.5]]))
    array([[0. , 0.5]], dtype=float32)
    """
    image = np.asarray(image)
    bits = resolve_bit_depth(image, bit_depth)
    if bits is None:
        return image.astype(np.float32)
    # Division in float64, one rounding to float32.
    return (image / float(2**bits - 1)).astype(np.float32)


def _hessian_mask(dog: np.ndarray, hessian_thr: float | None) -> np.ndarray:
    """Hessian criterion on one DoG plane, by ``np.gradient`` twice (unit spacing).

    Computed in row strips with a 2-row halo: every pixel then goes through exactly the
    arithmetic of ``np.gradient(np.gradient(dog))`` on the whole plane (second differences
    reach 2 rows away), so the result is identical while the work buffers stay small.
    """
    n_rows = dog.shape[0]
    out = np.empty(dog.shape, dtype=bool)
    h = None if hessian_thr is None else np.float64(hessian_thr)
    for a in range(0, n_rows, _STRIP_ROWS):
        b = min(a + _STRIP_ROWS, n_rows)
        a0, b0 = max(a - 2, 0), min(b + 2, n_rows)
        sub = dog[a0:b0]
        g = np.gradient(sub, axis=0)
        h00 = np.gradient(g, axis=0)
        h01 = np.gradient(g, axis=1)
        g = np.gradient(sub, axis=1)
        h10 = np.gradient(g, axis=0)
        h11 = np.gradient(g, axis=1)
        del g
        det = h00 * h11
        h01 *= h10
        det -= h01
        tr = h00
        tr += h11
        neg = tr < 0
        crit = det > 0
        if h is not None:
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                tr += 1e-20
                tr *= tr
                np.abs(det, out=det)
                det /= tr
                crit |= det < h
        crit &= neg
        out[a:b] = crit[a - a0 : a - a0 + (b - a)]
    return out


def hdog_candidates(
    image: np.ndarray,
    spacing: float | Sequence[float] = 0.07,
    *,
    min_sigma: float = 0.0826,
    max_sigma: float = 0.217,
    sigma_ratio: float = 1.6,
    threshold: float = 0.006,
    overlap: float = 1.0,
    hessian_thr: float | None = 1.4,
    bit_depth: int | None = None,
) -> np.ndarray:
    """Label microcalcification candidates with the Hessian difference-of-Gaussians detector.

    The HDoG stage of HDoGReg with the authors' main-pipeline defaults (sizes converted to
    mm at 0.07 mm/px: sigma 1.18..3.1 px, DoG threshold 0.006, Hessian threshold 1.4):

    1. the image is scaled to [0, 1] by its bit depth (:func:`scale_to_unit`);
    2. Gaussians ``G_i`` at ``sigma_i = min_sigma * sigma_ratio**i``, ``i = 0..k`` with
       ``k = int(log(max_sigma/min_sigma, sigma_ratio)) + 1`` (``gaussian_filter``,
       ``mode='reflect'``, ``truncate=4``; sigma in px per axis = mm / spacing);
    3. scale-normalised DoGs ``D_i = (G_i - G_{i+1}) / (sigma_ratio - 1)``, ``i < k``;
    4. peaks: voxels of the (H, W, k) DoG cube equal to their 3x3x3 maximum (the end scales
       compare with their one neighbouring scale; plateaus count) and strictly above
       ``threshold``; no peak at all when the cube is constant;
    5. per scale, the Hessian of ``D_i`` by ``np.gradient`` twice (unit spacing) and the mask
       ``tr < 0 & (det > 0 | |det| / (tr + 1e-20)**2 < hessian_thr)`` (for
       ``hessian_thr >= 0.25`` this is ``tr < 0 & |det| < hessian_thr * tr**2``;
       ``None`` keeps the negative-definite test ``det > 0 & tr < 0`` only);
    6. every peak keeps the whole 4-connected component of its own scale's Hessian mask that
       contains it (a peak outside that mask is dropped); the union over scales is labelled
       with 4-connectivity.

    Parameters
    ----------
    image : ndarray of shape (H, W)
        Raw image (integer detector values or float); H, W >= 2.
    spacing : float or (float, float), default=0.07
        Pixel spacing in mm, (row, col); anisotropic spacing gives per-axis sigmas.
    min_sigma, max_sigma : float, default=0.0826, 0.217
        Smallest and largest Gaussian scale in mm (1.18 and 3.1 px at 0.07 mm).
    sigma_ratio : float, default=1.6
        Ratio between consecutive scales (> 1).
    threshold : float, default=0.006
        DoG peak threshold (>= 0) on the [0, 1]-scaled image.
    overlap : float, default=1.0
        Blob pruning overlap of ``skimage.feature.blob_dog``. Any value >= 1 disables pruning,
        as in the authors' pipeline. Pruning (< 1) is not implemented and raises
        ``NotImplementedError``.
    hessian_thr : float or None, default=1.4
        Hessian shape threshold (>= 0); larger values admit more elongated structures.
    bit_depth : int or None, default=None
        Bits per pixel for the [0, 1] scaling; ``None`` infers it (see :func:`scale_to_unit`).

    Returns
    -------
    labels : ndarray of int32, shape (H, W)
        Candidate objects labelled 1..n (4-connectivity); 0 is background.

    Notes
    -----
    The Gaussian/DoG/Hessian arithmetic is float32 (the authors used float64): this halves
    memory and time. Threshold comparisons are made in float64 against the exact parameter
    values. Results can differ from a float64 computation only for values within float32
    rounding (~1e-7 relative) of a threshold or of a tie between neighbouring DoG values.

    Examples
    --------
    >>> import numpy as np
    >>> yy, xx = np.mgrid[:32, :32]
    >>> img = 0.3 + 0.1 * np.exp(-((yy - 16) ** 2 + (xx - 12) ** 2) / (2 * 1.5**2))
    >>> labels = hdog_candidates(img, spacing=0.07)
    >>> int(labels.max()), labels.dtype.name, bool(labels[16, 12])
    (1, 'int32', True)
    """
    image = np.asarray(image)
    if image.ndim != 2:
        raise ValueError(f"image must be 2-D, got {image.ndim}-D with shape {image.shape}")
    if min(image.shape) < 2:
        raise ValueError(f"image must be at least 2 x 2 pixels, got shape {image.shape}")
    if not (np.issubdtype(image.dtype, np.number) or image.dtype == bool):
        raise TypeError(f"image must be numeric, got dtype {image.dtype}")
    if np.issubdtype(image.dtype, np.complexfloating):
        raise TypeError("image must be real-valued, got a complex dtype")
    if np.issubdtype(image.dtype, np.floating) and not np.isfinite(image).all():
        raise ValueError("image has NaN or infinite pixels")
    sp = np.broadcast_to(np.asarray(spacing, dtype=float), (2,))
    if not np.all(np.isfinite(sp) & (sp > 0)):
        raise ValueError(f"spacing must be positive finite mm values, got {spacing!r}")
    if not (np.isfinite(threshold) and threshold >= 0):
        raise ValueError(f"threshold must be a finite value >= 0, got {threshold!r}")
    if hessian_thr is not None and not (np.isfinite(hessian_thr) and hessian_thr >= 0):
        raise ValueError(f"hessian_thr must be None or a finite value >= 0, got {hessian_thr!r}")
    if not overlap >= 0:
        raise ValueError(f"overlap must be >= 0, got {overlap!r}")
    if overlap < 1:
        raise NotImplementedError(
            "blob pruning (overlap < 1) is not implemented; use overlap >= 1 (no pruning, "
            "the authors' pipeline setting)"
        )
    sigmas_mm = hdog_sigmas(min_sigma, max_sigma, sigma_ratio)

    img = scale_to_unit(image, bit_depth)
    del image
    n_dog = len(sigmas_mm) - 1
    factor = np.float32(1.0 / (sigma_ratio - 1.0))
    thr = np.float64(threshold)

    def gauss(s_mm: float) -> np.ndarray:
        return ndi.gaussian_filter(
            img, sigma=tuple(s_mm / sp), output=np.float32, mode="reflect", truncate=4.0
        )

    out = np.zeros(img.shape, dtype=bool)
    lo, hi = np.inf, -np.inf  # cube range, to spot a constant cube (no peaks)
    g_prev = gauss(sigmas_mm[0])
    prev = None  # scale i-1: (DoG plane, candidate flat indices, their values, Hessian labels)
    for i in range(n_dog):
        g_next = gauss(sigmas_mm[i + 1])
        dog = g_prev
        dog -= g_next
        dog *= factor
        g_prev = g_next
        del g_next
        lo, hi = min(lo, float(dog.min())), max(hi, float(dog.max()))

        # Peaks: above threshold, then >= the 3x3 maximum of this and the adjacent scales.
        # Testing only the above-threshold pixels replaces the full 3x3x3 maximum filter.
        idx = np.flatnonzero(dog > thr)
        vals = dog.ravel()[idx]
        keep = vals >= _neighbourhood_max(dog, idx)
        idx, vals = idx[keep], vals[keep]

        lbl = np.empty(dog.shape, dtype=np.int32)
        ndi.label(_hessian_mask(dog, hessian_thr), structure=_FOUR, output=lbl)

        if prev is not None:
            p_dog, p_idx, p_vals, p_lbl = prev
            keep = vals >= _neighbourhood_max(p_dog, idx)
            idx, vals = idx[keep], vals[keep]
            _grow(out, p_lbl, p_idx[p_vals >= _neighbourhood_max(dog, p_idx)])
            del p_dog, p_lbl, prev
        prev = (dog, idx, vals, lbl)
        del dog, lbl
    del g_prev
    _, p_idx, _, p_lbl = prev
    del prev
    _grow(out, p_lbl, p_idx)
    del p_lbl

    labels = np.zeros(out.shape, dtype=np.int32)
    if lo < hi:  # a constant cube has every voxel "equal to its maximum": no peaks
        ndi.label(out, structure=_FOUR, output=labels)
    return labels


def _neighbourhood_max(plane: np.ndarray, flat_idx: np.ndarray) -> np.ndarray:
    """Maximum of ``plane`` over the 3x3 neighbourhood of each pixel, existing pixels only.

    Clipping the neighbour coordinates at the border repeats an existing pixel, which is what
    ``maximum_filter(..., mode='nearest')`` does.
    """
    n_rows, n_cols = plane.shape
    rows, cols = np.divmod(flat_idx, n_cols)
    best = plane.ravel()[flat_idx].copy()
    for dr in (-1, 0, 1):
        rr = np.clip(rows + dr, 0, n_rows - 1)
        for dc in (-1, 0, 1):
            if dr == 0 and dc == 0:
                continue
            np.maximum(best, plane[rr, np.clip(cols + dc, 0, n_cols - 1)], out=best)
    return best


def _grow(out: np.ndarray, lbl: np.ndarray, peak_idx: np.ndarray) -> None:
    """OR into ``out`` the components of ``lbl`` that contain a peak (label lookup table)."""
    if peak_idx.size == 0:
        return
    keep = np.zeros(int(lbl.max()) + 1, dtype=bool)
    keep[lbl.ravel()[peak_idx]] = True
    keep[0] = False
    out |= keep[lbl]
