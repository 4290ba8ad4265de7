"""Candidate detection calibrated by the image itself, and per-candidate features.

The authors' HDoG threshold (0.006 on the DoG of the [0, 1] image) is an absolute contrast:
on a processed or noisy mammogram the fine-scale DoG of plain tissue exceeds it at a quarter
of the breast pixels (measured on the NYU GMIC sample: robust sd of the finest DoG 0.010 on
L-CC, 0.016 on L-MLO), and the detector returns 150-240 objects per cm^2. Here every DoG
plane is divided by a **robust local scale of itself** (the MAD of the plane in windows of a
few mm, inside the eroded breast only) before the peak test, so the threshold reads "``k``
local standard deviations" and does not depend on the display transform, bit depth or noise
level of the image. The candidate shapes are the authors' (the 4-connected component of the
Hessian mask of the raw DoG at the peak's scale), so objects have the HDoG extent.

:func:`candidate_features` then describes every candidate by quantities that are invariant
to intensity scaling and given in mm (peak contrast-to-noise, its profile across scales,
Hessian shape, size and elongation, local contrast, texture busy-ness, distance to the
breast edge), all computed with label-indexed ``np.bincount`` reductions, so the cost does
not depend on the number of candidates.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from .._units import check_spacing, resolve_bit_depth
from ._breast import erode_breast
from ._hdog import (
    _FOUR,
    _check_sigmas,
    _neighbourhood_max,
    _ScaleCandidates,
    hdog_sigmas,
)

__all__ = ["calibrated_candidates", "candidate_features", "local_robust_scale",
           "FEATURE_NAMES", "stabilise_intensity", "white_noise_dog_sd"]

#: MAD of a normal distribution -> its standard deviation.
_MAD_TO_SD = 1.482602218505602
#: Candidate threshold (robust local sd of each DoG plane) of a new candidate filter, and of
#: the detection when no filter says otherwise (the packaged filter is trained with it).
DEFAULT_CNR_THRESHOLD = 4.0

FEATURE_NAMES = (
    "cnr",  # peak of the noise-normalised DoG cube
    "cnr_below",  # normalised DoG at the peak pixel, next finer scale (NaN at the end)
    "cnr_above",  # next coarser scale (NaN at the end)
    "cnr_coarsest",  # coarsest scale
    "scale_mm",  # sigma of the peak's DoG
    "hess_ratio",  # lambda_small / lambda_large of the peak-scale DoG Hessian at the peak
    "hess_ratio_coarse",  # the same at the coarsest scale (vessel / duct context)
    "log_area_mm2",
    "elongation",  # sqrt of the ratio of the second-moment eigenvalues
    "major_mm",  # 4 sqrt(largest second-moment eigenvalue)
    "mean_cnr_fine",  # mean of the finest normalised DoG over the object
    "contrast_cnr",  # mean (image - 1 mm background) over the object / local fine scale
    "peak_contrast_cnr",  # max of the same
    "ring_cnr",  # mean of the finest normalised DoG in a 2-3 px ring (grows along lines)
    "busy",  # local scale of the coarsest DoG / that of the finest DoG
    "noise_rel",  # local fine scale / its median over the breast
    "edge_mm",  # distance to the breast edge (capped at 20 mm)
    "neighbours",  # other candidates within a 5 mm square (BI-RADS grouping context)
    "neighbours_strong",  # of them, those with a peak CNR >= 6
    "edge_strength",  # gradient of the 0.5 mm smoothed image at the peak, per mm / local scale
    # vessel / duct / ligament context, wider than the DoG scales: Hessian of the image
    # smoothed at 0.5 and 1 mm, at the peak (eigenvalue ratio; largest eigenvalue times
    # sigma^2 over the local fine scale, negative for a bright structure)
    "hess_ratio_05mm",
    "hess_big_05mm",
    "hess_ratio_1mm",
    "hess_big_1mm",
)


def filter_cnr_threshold(candidate_filter: Any, cnr_threshold: float | None = None) -> float:
    """The candidate threshold to detect with: ``cnr_threshold`` when given, else the one
    ``candidate_filter`` (a :class:`~skcalc.segmentation.CandidateFilter` or None; typed
    loosely because the filter's module imports this one) was trained with (its operating
    points hold only there), else :data:`DEFAULT_CNR_THRESHOLD`.

    >>> from skcalc.segmentation._filter import CandidateFilter, load_default_filter
    >>> filter_cnr_threshold(None)
    4.0
    >>> filter_cnr_threshold(CandidateFilter("", [1.0], [0.5], meta={"cnr_threshold": 3.0}))
    3.0
    >>> filter_cnr_threshold(load_default_filter(), 5.0)
    5.0
    """
    if cnr_threshold is not None:
        return float(cnr_threshold)
    if candidate_filter is not None and candidate_filter.meta.get("cnr_threshold") is not None:
        return float(candidate_filter.meta["cnr_threshold"])
    return DEFAULT_CNR_THRESHOLD


def filter_stabilise(candidate_filter: Any) -> bool:
    """Whether to detect with the intensity stabilisation: as ``candidate_filter`` was
    trained (``meta["stabilise"]``; a filter that does not say predates the stabilisation:
    False), and with it when there is no filter.

    >>> from skcalc.segmentation._filter import CandidateFilter, load_default_filter
    >>> filter_stabilise(None), filter_stabilise(load_default_filter())
    (True, True)
    >>> filter_stabilise(CandidateFilter("", [1.0], [0.5]))
    False
    """
    if candidate_filter is None:
        return True
    return bool(candidate_filter.meta.get("stabilise", False))


def white_noise_dog_sd(sigma_px: Sequence[float] | float, ratio: float) -> float:
    """Standard deviation of the scale-normalised DoG of unit white noise.

    ``DoG = (G_s - G_rs) / (r - 1)`` with the same discrete ``gaussian_filter`` as the
    detector; for unit white noise its sd is the root sum of squares of the DoG kernel,
    computed exactly from the filtered impulse.

    Parameters
    ----------
    sigma_px : float or (float, float)
        Finer Gaussian scale in pixels (per axis).
    ratio : float
        Scale ratio.

    Examples
    --------
    >>> round(white_noise_dog_sd(1.18, 1.6), 3)
    0.206
    """
    s = np.broadcast_to(np.asarray(sigma_px, float), (2,))
    half = int(np.ceil(4 * ratio * s.max())) + 2
    delta = np.zeros((2 * half + 1, 2 * half + 1))
    delta[half, half] = 1.0
    k = ndi.gaussian_filter(delta, tuple(s), truncate=4.0) - ndi.gaussian_filter(
        delta, tuple(ratio * s), truncate=4.0)
    return float(np.sqrt(np.sum(k * k)) / (ratio - 1))


def local_robust_scale(
    plane: np.ndarray,
    valid: np.ndarray | None,
    window_px: tuple[int, int],
    *,
    stride: int = 2,
    min_fraction: float = 0.25,
) -> tuple[np.ndarray, float]:
    """Robust local standard deviation of ``plane``: MAD in windows, inside ``valid`` only.

    The plane is cut into windows of ``window_px``; in each, the MAD about the window median
    of the valid pixels (one in each ``stride`` x ``stride`` cell, at an offset that cycles
    through every row and column residue) times 1.4826 is the local scale.
    Windows with fewer than ``min_fraction`` valid samples take the value of the nearest
    estimated window (so the breast edge, air and the image frame never bias the estimate);
    the window grid is smoothed with a 3 x 3 median and interpolated bilinearly to full size.

    Parameters
    ----------
    plane : ndarray of shape (H, W)
    valid : ndarray of bool or None
        Pixels used for the estimate (None: all).
    window_px : (int, int)
        Window size in pixels (rows, cols).
    stride : int, default=2
        Subsampling of the pixels inside a window.
    min_fraction : float, default=0.25
        Minimum fraction of valid samples for a window to be estimated.

    Returns
    -------
    scale : ndarray of float32, shape (H, W)
        Local robust standard deviation (> 0).
    global_scale : float
        The median of the window estimates (the image's typical value).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(0, 2.0, (200, 200))
    >>> s, g = local_robust_scale(x, None, (50, 50))
    >>> bool(abs(g - 2.0) < 0.2), s.shape
    (True, (200, 200))
    """
    H, W = plane.shape
    wr, wc = (max(int(w), stride) for w in window_px)
    wr -= wr % stride
    wc -= wc % stride
    nr, nc = -(-H // wr), -(-W // wc)
    # One pixel per stride x stride cell, its offset in the cell cycling with the cell's
    # row and column: the sample holds every (row, col) residue equally. Processed
    # mammograms' fine noise differs between pixel sublattices (the NYU views: 7% between
    # even and odd rows / columns), so a fixed offset would make the scale, and the
    # candidates at k = 4 (a third of them), depend on where the image starts.
    ri, ci = (np.minimum(np.arange(0, n, stride) + np.arange(-(-n // stride)) % stride, n - 1)
              for n in (H, W))
    sub = plane[np.ix_(ri, ci)].astype(np.float32, copy=False)
    sr, sc = wr // stride, wc // stride
    pad = np.full((nr * sr, nc * sc), np.nan, np.float32)
    pad[: sub.shape[0], : sub.shape[1]] = sub
    if valid is not None:
        v = np.zeros(pad.shape, bool)
        v[: sub.shape[0], : sub.shape[1]] = np.asarray(valid)[np.ix_(ri, ci)]
        pad[~v] = np.nan
    blocks = pad.reshape(nr, sr, nc, sc).transpose(0, 2, 1, 3).reshape(nr, nc, sr * sc)
    count = np.count_nonzero(~np.isnan(blocks), axis=2)
    ok = count >= max(8, min_fraction * sr * sc)
    est = np.full((nr, nc), np.nan)
    if ok.any():
        b = blocks[ok]
        cnt = count[ok]
        med = _row_nanmedian(b, cnt)
        est[ok] = _MAD_TO_SD * _row_nanmedian(np.abs(b - med[:, None]), cnt)
    ok &= np.isfinite(est) & (est > 0)
    if not ok.any():
        vals = plane[valid] if valid is not None and np.any(valid) else plane.ravel()
        g = float(_MAD_TO_SD * np.median(np.abs(vals - np.median(vals))))
        if not g > 0:
            g = float(np.std(vals)) or 1.0
        return np.full(plane.shape, g, np.float32), g
    g = float(np.median(est[ok]))
    if not ok.all():
        _, (ir, ic) = ndi.distance_transform_edt(~ok, return_indices=True)
        est = est[ir, ic]
    if min(nr, nc) >= 3:
        est = ndi.median_filter(est, size=3, mode="nearest")
    # bilinear interpolation between window centres as two small matrix products
    scale = _interp_matrix(H, wr, nr) @ est.astype(np.float32) @ _interp_matrix(W, wc, nc).T
    np.maximum(scale, np.float32(1e-12), out=scale)
    return np.ascontiguousarray(scale, dtype=np.float32), g


def stabilise_intensity(
    img: np.ndarray,
    valid: np.ndarray,
    spacing: tuple[float, float],
    sigma_mm: float,
    sigma2_mm: float,
    *,
    fine_dog: np.ndarray | None = None,
    codes: np.ndarray | None = None,
    background_mm: float = 1.0,
    n_bins: int = 32,
) -> tuple[np.ndarray, float]:
    """Map intensities so that the fine-scale noise has the same sd at every intensity.

    The noise level function ``sd(v)`` (robust sd of the finest DoG among the ``valid``
    pixels whose ``background_mm`` Gaussian background is near ``v``, in ``n_bins`` quantile
    bins) gives the variance-stabilising map ``f(v) = integral dv / sd(v)``. A monotone
    display transform ``h`` (gamma, log, window, the H&D curve of film) multiplies both the
    noise and the contrast near ``v`` by ``h'(v)``; ``f`` undoes it, so what is detected no
    longer depends on the tone curve, and signal-dependent noise (quantum noise of raw
    images, film grain) is equalised too.

    ``fine_dog`` is that DoG of ``img`` (``sigma_mm`` and ``sigma2_mm``, scale-normalised)
    when the caller has it already. ``codes``: the integer image ``img`` was scaled from
    (``img == codes * c``), so that the map is one table look-up per pixel.

    Returns the mapped image (float32, in units of the input's median fine-scale noise) and
    that median robust sd of the finest DoG over ``valid``, in the input's units.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> ramp = np.linspace(0.1, 0.9, 256)[None, :].repeat(256, 0)
    >>> img = ramp + 0.01 * np.sqrt(ramp) * rng.normal(size=ramp.shape)  # quantum-like
    >>> out, sd = stabilise_intensity(img.astype(np.float32), np.ones(img.shape, bool),
    ...                               (0.1, 0.1), 0.0826, 0.132)
    >>> dark, bright = np.diff(out[:, :40]).std(), np.diff(out[:, -40:]).std()
    >>> bool(0.8 < dark / bright < 1.25)  # 0.33 before
    True
    """
    sp = np.asarray(spacing, float)
    if fine_dog is None:
        d, g2 = _gaussians(img, (sigma_mm, sigma2_mm), sp)
        d -= g2
        d *= np.float32(1.0 / (sigma2_mm / sigma_mm - 1.0))
    else:
        d = fine_dog
    # the background only bins the samples: a Gaussian of a subsampled copy (f px ~ 0.25 mm)
    step = np.maximum(1, np.rint(0.25 / sp).astype(int))
    small = ndi.gaussian_filter(img[:: step[0], :: step[1]], background_mm / (sp * step),
                                output=np.float32)
    stride = 3 if valid[::3, ::3].sum() >= 1000 * n_bins else 1
    rr, cc = np.nonzero(valid[::stride, ::stride])
    dv = d[::stride, ::stride][rr, cc]
    bv = small[np.minimum(stride * rr // step[0], small.shape[0] - 1),
               np.minimum(stride * cc // step[1], small.shape[1] - 1)]
    if dv.size < 50 * n_bins:
        return img, float(_MAD_TO_SD * np.median(np.abs(d - np.median(d))))
    edges = np.unique(np.quantile(bv, np.linspace(0, 1, n_bins + 1)))
    which = np.clip(np.searchsorted(edges, bv, side="right") - 1, 0, edges.size - 2)
    order = np.argsort(which, kind="stable")
    bounds = np.searchsorted(which[order], np.arange(edges.size))
    centres, sds = [], []
    for k in range(edges.size - 1):
        sel = order[bounds[k]:bounds[k + 1]]
        if sel.size >= 50:
            x = dv[sel]
            centres.append(float(np.median(bv[sel])))
            sds.append(_MAD_TO_SD * float(np.median(np.abs(x - np.median(x)))))
    centres, sds = np.asarray(centres), np.asarray(sds)
    med = float(_MAD_TO_SD * np.median(np.abs(dv - np.median(dv))))
    if centres.size < 2 or not med > 0:
        return img, med
    sds = np.maximum(sds, 0.2 * med)
    lo, hi = float(img.min()), float(img.max())
    grid = np.linspace(min(lo, centres[0]), max(hi, centres[-1]), 4097)
    inv = 1.0 / np.interp(grid, centres, sds)
    f = np.concatenate([[0.0], np.cumsum((inv[1:] + inv[:-1]) / 2 * np.diff(grid))])
    # in units of the median noise, so that values stay comparable to the input's
    f *= med
    if codes is not None and codes.dtype.kind in "ui" and codes.size and codes.min() >= 0 \
            and codes.max() < 2**17:
        scale = float(img.flat[np.argmax(codes)]) / max(int(codes.max()), 1)
        levels = np.arange(int(codes.max()) + 1) * scale
        lut = np.interp(levels, grid, f).astype(np.float32)
        return lut[codes], med
    # piecewise-linear lookup on the uniform grid (np.interp's search, without the search)
    t = (img - np.float32(grid[0])) * np.float32((grid.size - 1) / (grid[-1] - grid[0]))
    np.clip(t, 0, grid.size - 1.001, out=t)
    i = t.astype(np.int32)
    t -= i
    f32 = f.astype(np.float32)
    out = f32[i]
    out += t * (f32[i + 1] - out)
    return out, med


def _row_nanmedian(b: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Median of each row ignoring NaN (NaNs sort last), vectorised over rows."""
    srt = np.sort(b, axis=1)
    lo = (count - 1) // 2
    hi = count // 2
    r = np.arange(b.shape[0])
    return (srt[r, lo].astype(np.float64) + srt[r, hi]) / 2


def _interp_matrix(n: int, w: int, nb: int) -> np.ndarray:
    """(n, nb) linear interpolation weights from window centres to pixel positions."""
    centres = (np.arange(nb) + 0.5) * w - 0.5
    x = np.clip(np.arange(n, dtype=np.float64), centres[0], centres[-1])
    if nb == 1:
        return np.ones((n, 1), np.float32)
    j = np.clip(np.searchsorted(centres, x, side="right") - 1, 0, nb - 2)
    t = (x - centres[j]) / (centres[j + 1] - centres[j])
    M = np.zeros((n, nb), np.float32)
    M[np.arange(n), j] = 1 - t
    M[np.arange(n), j + 1] += t
    return M


def calibrated_candidates(
    image: np.ndarray,
    spacing: float | Sequence[float] = 0.07,
    *,
    breast_mask: np.ndarray | None = None,
    cnr_threshold: float = DEFAULT_CNR_THRESHOLD,
    window_mm: float = 5.0,
    min_sigma: float = 0.0826,
    max_sigma: float = 0.217,
    sigma_ratio: float = 1.6,
    hessian_thr: float | None = 1.4,
    erosion_mm: float = 45 * 0.07,
    bit_depth: int | None = None,
    extra_scales: int = 0,
    stabilise: bool = True,
    exclude: np.ndarray | None = None,
) -> tuple[np.ndarray, dict]:
    """HDoG candidates with the peak threshold in units of the image's local DoG scale.

    0. With ``stabilise`` (default), intensities are first mapped so that the fine-scale
       noise has the same sd at every intensity (:func:`stabilise_intensity`): what is
       detected then no longer depends on the display transform (gamma, log, window, film's
       H&D curve) nor on signal-dependent noise.
    1. Gaussians and scale-normalised DoGs exactly as :func:`hdog_candidates` (sizes in mm),
       optionally with ``extra_scales`` more Gaussians continuing the geometric series.
    2. Each DoG plane ``D_i`` is divided by its robust local scale ``s_i``
       (:func:`local_robust_scale`: MAD in ``window_mm`` windows of the eroded breast, less
       ``exclude``).
    3. Peaks: voxels of the normalised cube ``D_i / s_i`` equal to their 3x3x3 maximum and
       strictly above ``cnr_threshold``, inside the eroded breast.
    4. Each peak keeps the 4-connected component of the Hessian mask of the raw ``D_i`` that
       contains it (the authors' shape rule); the union, restricted to the eroded breast, is
       labelled with 4-connectivity. Objects are numbered in raster order.

    On stationary Gaussian noise the number of peaks per unit area above ``k`` is a fixed
    function of ``k`` (independent of the noise level and of the intensity scale), so the
    false-alarm rate of this stage on noise is predictable; on tissue, the local scale also
    absorbs the local texture strength.

    Parameters
    ----------
    image : ndarray of shape (H, W)
    spacing : float or (float, float), default=0.07
        Pixel spacing in mm.
    breast_mask : ndarray of bool, optional
        Un-eroded breast mask (None: the whole image).
    cnr_threshold : float, default=4.0
        Peak threshold in local robust standard deviations of the DoG.
    window_mm : float, default=5.0
        Window of the local scale estimate, in mm.
    min_sigma, max_sigma, sigma_ratio, hessian_thr
        As :func:`hdog_candidates`.
    erosion_mm : float, default=3.15
        Side of the square eroding the breast mask (as :func:`combine`).
    bit_depth : int, optional
        Only sets the [0, 1] scale of the reported noise; detection is scale-invariant.
    stabilise : bool, default=True
        Map the intensities through the image's own variance-stabilising transform first
        (step 0). A candidate filter is trained with one setting and must be used with it
        (recorded as ``meta["stabilise"]``; filters without the key were trained without).
    exclude : ndarray of bool, optional
        Pixels left out of the statistics (the noise estimates and the stabilisation) but
        not of the detection: large regions of one value, whose flat inside and artificial
        outline are not tissue (:func:`~skcalc.segmentation._breast.not_tissue`, which
        :func:`segment_calibrated` passes).
    extra_scales : int, default=0
        Gaussians added after ``hdog_sigmas(min_sigma, max_sigma, sigma_ratio)`` (each
        ``sigma_ratio`` times the previous; one adds a DoG at sigma 0.34 mm with the default
        scales). Experimental: the packaged candidate filter was trained with 0 (another
        value changes its features' coarsest scale), and one extra scale, with a filter
        retrained for it, raised the false alarms on the real sample above 1 per cm^2 without
        a measurable gain on 0.8 mm calcifications.

    Returns
    -------
    labels : ndarray of int32, shape (H, W)
    info : dict
        Per object (index ``label - 1``): ``peak_row``, ``peak_col``, ``peak_scale``
        (index), ``cnr`` and the rest needed by :func:`candidate_features` (private
        ``_``-keys); and ``noise_sd`` (the median robust sd of the finest DoG over the
        breast, in [0, 1] image units), ``pixel_noise_sd`` (the same converted to the pixel
        noise of white noise), ``n_peaks``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> img = 0.3 + rng.normal(0, 0.01, (128, 128))
    >>> img[60:63, 60:63] += 0.08
    >>> lab, info = calibrated_candidates(img, 0.07)
    >>> bool(lab[61, 61]), bool(info["cnr"].max() > 6)
    (True, True)
    """
    image = np.asarray(image)
    if image.ndim != 2 or min(image.shape) < 2:
        raise ValueError(f"image must be 2-D and at least 2 x 2, got shape {image.shape}")
    if not (np.issubdtype(image.dtype, np.number) or image.dtype == bool):
        raise TypeError(f"image must be numeric, got dtype {image.dtype}")
    if np.issubdtype(image.dtype, np.floating) and not np.isfinite(image).all():
        raise ValueError("image has NaN or infinite pixels")
    sp = np.asarray(check_spacing(spacing, plausible=False))
    if not (np.isfinite(cnr_threshold) and cnr_threshold >= 0):
        raise ValueError(f"cnr_threshold must be a finite value >= 0, got {cnr_threshold!r}")
    if not (np.isfinite(window_mm) and window_mm > 0):
        raise ValueError(f"window_mm must be a positive size in mm, got {window_mm!r}")
    _check_sigmas(min_sigma, max_sigma, sigma_ratio)
    if int(extra_scales) != extra_scales or extra_scales < 0:
        raise ValueError(f"extra_scales must be an integer >= 0, got {extra_scales!r}")
    sig = hdog_sigmas(min_sigma, max_sigma, sigma_ratio)
    sig = np.concatenate([sig, sig[-1] * sigma_ratio ** np.arange(1, int(extra_scales) + 1)])
    # float32 throughout (detection is scale-invariant; the scale only sets noise_sd's unit)
    bits = resolve_bit_depth(image, bit_depth)
    img = image.astype(np.float32)
    if bits is not None:
        img *= np.float32(1.0 / (2**bits - 1))
    if breast_mask is None:
        breast = np.ones(img.shape, bool)
    else:
        breast = np.asarray(breast_mask, bool)
        if breast.shape != img.shape:
            raise ValueError(f"breast_mask shape {breast.shape} != image shape {img.shape}")
    eroded = erode_breast(breast, spacing=tuple(sp), size_mm=erosion_mm)
    # the pixels the statistics (noise scales, stabilisation) are measured on
    stats = eroded if exclude is None else eroded & ~np.asarray(exclude, bool)
    win = tuple(int(round(window_mm / s)) for s in sp)
    factor = np.float32(1.0 / (sigma_ratio - 1.0))

    noise_sd = None
    if stabilise:
        d0, g1 = _gaussians(img, sig[:2], sp)
        d0 -= g1
        del g1
        d0 *= factor
        # reported in the input's units, exactly as without the stabilisation
        noise_sd = local_robust_scale(d0, stats, win)[1]
        img, _ = stabilise_intensity(img, stats, tuple(sp), sig[0], sig[1], fine_dog=d0,
                                     codes=image if image.dtype.kind in "ui" else None)
        del d0
    dogs, norms, scales, globs = [], [], [], []
    gs = _gaussians(img, sig, sp)
    for i in range(len(sig) - 1):
        d = gs[i]  # the DoG overwrites its first Gaussian, no new plane
        gs[i] = None
        d -= gs[i + 1]
        d *= factor
        s, g = local_robust_scale(d, stats, win)
        dogs.append(d)
        globs.append(g)
        norms.append(d / s)
        # only the finest and coarsest local scales are used later: a full-size plane less
        scales.append(s if i in (0, len(sig) - 2) else None)
        del s
    del gs
    n_dog = len(dogs)
    out = np.zeros(img.shape, bool)
    P = {"idx": [], "val": [], "scale": []}
    flat_eroded = eroded.ravel()
    for i in range(n_dog):
        n = norms[i]
        idx = np.flatnonzero(n.ravel() > cnr_threshold)
        idx = idx[flat_eroded[idx]]
        vals = n.ravel()[idx]
        for j in (i - 1, i, i + 1):
            if 0 <= j < n_dog and idx.size:
                keep = vals >= _neighbourhood_max(norms[j], idx)
                idx, vals = idx[keep], vals[keep]
        # The Hessian components that contain a peak, computed on the tiles around the
        # peaks only (identical to labelling the whole plane's mask, at a fraction of it).
        comps = _ScaleCandidates(idx, vals, dogs[i], hessian_thr)
        inside = comps.peak_lbl > 0  # a peak outside its Hessian mask is dropped
        comps.grow_into(out, inside)
        idx, vals = idx[inside], vals[inside]
        del comps
        P["idx"].append(idx)
        P["val"].append(vals)
        P["scale"].append(np.full(idx.size, i, np.int8))
    out &= eroded
    labels = np.zeros(img.shape, np.int32)
    n_obj = ndi.label(out, structure=_FOUR, output=labels)
    idx = np.concatenate(P["idx"])
    vals = np.concatenate(P["val"])
    scl = np.concatenate(P["scale"])
    # The best (highest normalised) peak of each object represents it.
    best = np.full(n_obj + 1, -1, np.int64)
    if idx.size:
        order = np.argsort(vals, kind="stable")
        best[labels.ravel()[idx[order]]] = order  # the last (largest) assignment wins
    best = best[1:]
    has = best >= 0
    if not has.all():  # fragments cut off their peak by the breast erosion
        keep = np.concatenate([[False], has])
        labels, n_obj = ndi.label(keep[labels], structure=_FOUR, output=np.int32)
        best = np.full(n_obj + 1, -1, np.int64)
        order = np.argsort(vals, kind="stable")
        best[labels.ravel()[idx[order]]] = order
        best = best[1:]
    pk = idx[best] if n_obj else np.zeros(0, np.int64)
    rows, cols = np.divmod(pk, img.shape[1])
    ps = scl[best].astype(int) if n_obj else np.zeros(0, int)
    # Hessian shape at each object's peak, then only what the features need is kept
    hr = np.zeros(n_obj, np.float32)
    for i in range(n_dog):
        sel = ps == i
        if sel.any():
            hr[sel] = _hessian_ratio(dogs[i], rows[sel], cols[sel])
    hr_coarse = _hessian_ratio(dogs[-1], rows, cols)
    del dogs
    if noise_sd is None:
        noise_sd = globs[0]
    info = {
        "peak_row": rows,
        "peak_col": cols,
        "peak_scale": scl[best] if n_obj else np.zeros(0, np.int8),
        "cnr": vals[best] if n_obj else np.zeros(0, np.float32),
        "noise_sd": float(noise_sd),
        "pixel_noise_sd": float(noise_sd / white_noise_dog_sd(sig[0] / sp, sigma_ratio)),
        "n_peaks": int(idx.size),
        "_norms": norms,
        "_hess_ratio": hr,
        "_hess_ratio_coarse": hr_coarse,
        "_scales": scales,
        "_globs": globs,
        "_img": img,
        "_breast": breast,
        "_sigmas_mm": sig,
        "_spacing": tuple(sp),
    }
    return labels, info


def _gaussians(img: np.ndarray, sigmas_mm, sp) -> list[np.ndarray]:
    """float32 Gaussian planes of ``img``, one per sigma (mm), 4-sigma kernels, reflect.

    SciPy's filters release the GIL, so on a large image the planes are computed on
    :func:`~skcalc.utils._parallel.inner_threads` threads (the values do not depend on it:
    each plane is one independent call).
    """
    from concurrent.futures import ThreadPoolExecutor

    from ..utils._parallel import inner_threads

    def one(s_mm):
        return ndi.gaussian_filter(img, sigma=tuple(s_mm / sp), output=np.float32,
                                   mode="reflect", truncate=4.0)

    # below about a megapixel the threads cost more than they save
    n = inner_threads(len(sigmas_mm)) if img.size >= 1 << 20 else 1
    if n == 1:
        return [one(s) for s in sigmas_mm]
    with ThreadPoolExecutor(n, thread_name_prefix="skcalc-gauss") as ex:
        return list(ex.map(one, sigmas_mm))


def _hessian_ratio(plane: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``lambda_small / lambda_large`` (by magnitude) of the 3x3-stencil Hessian at pixels."""
    H, W = plane.shape
    r0, r1 = np.clip(rows - 1, 0, H - 1), np.clip(rows + 1, 0, H - 1)
    c0, c1 = np.clip(cols - 1, 0, W - 1), np.clip(cols + 1, 0, W - 1)
    p = plane
    hrr = p[r1, cols] - 2 * p[rows, cols] + p[r0, cols]
    hcc = p[rows, c1] - 2 * p[rows, cols] + p[rows, c0]
    hrc = (p[r1, c1] - p[r1, c0] - p[r0, c1] + p[r0, c0]) / 4
    return _eigen_ratio(hrr, hcc, hrc)[0].astype(np.float32)


def _eigen_ratio(hrr, hcc, hrc):
    """``(lambda_small / lambda_large, lambda_large)`` by magnitude of 2 x 2 Hessians."""
    tr = hrr + hcc
    disc = np.sqrt(((hrr - hcc) / 2) ** 2 + hrc**2)
    l1, l2 = tr / 2 - disc, tr / 2 + disc  # l1 <= l2
    first = np.abs(l1) >= np.abs(l2)
    big = np.where(first, l1, l2)
    small = np.where(first, l2, l1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(big != 0, small / big, 0.0)
    return ratio, big


def _block_mean(img: np.ndarray, f) -> np.ndarray:
    """float32 means of ``f[0] x f[1]`` blocks (the last ones padded with edge values).

    Bit for bit ``pad.reshape(h, f0, w, f1).mean(axis=(1, 3), dtype=float32)``: on a
    float32 image of at least two blocks each way with ``f1 < 8``, NumPy sums each block's
    row sequentially, then the rows sequentially, and divides in float64; the same additions
    on strided views cost a seventh of its 4-D reduction (tested on random images).
    """
    H, W = img.shape
    f0, f1 = int(f[0]), int(f[1])
    Hp, Wp = -(-H // f0) * f0, -(-W // f1) * f1
    mb, nb = Hp // f0, Wp // f1
    if img.dtype != np.float32 or f1 >= 8 or mb < 2 or nb < 2:  # NumPy's own order
        pad = np.pad(img, ((0, Hp - H), (0, Wp - W)), mode="edge")
        return pad.reshape(mb, f0, nb, f1).mean(axis=(1, 3), dtype=np.float32)

    def strided(a, k, step, n, axis):  # every step-th line from k, edge-padded to n lines
        part = a[k::step] if axis == 0 else a[:, k::step]
        short = n - part.shape[axis]
        if short:
            edge = a[-1:] if axis == 0 else a[:, -1:]
            part = np.concatenate([part, np.repeat(edge, short, axis=axis)], axis=axis)
        return part

    rows = strided(img, 0, f1, nb, 1).copy()
    for j in range(1, f1):
        rows += strided(img, j, f1, nb, 1)
    out = strided(rows, 0, f0, mb, 0).copy()
    for i in range(1, f0):
        out += strided(rows, i, f0, mb, 0)
    return np.true_divide(out, np.intp(f0 * f1), out=out, casting="unsafe")


def _smooth_background(img: np.ndarray, sp, sigma_mm: float) -> np.ndarray:
    """Gaussian background of ``sigma_mm`` on a block-averaged image (blocks of ~sigma/4)."""
    f = [max(1, int(sigma_mm / s / 4)) for s in sp]
    small = _block_mean(img, f)
    return ndi.gaussian_filter(small, sigma=(sigma_mm / sp[0] / f[0], sigma_mm / sp[1] / f[1]),
                               mode="reflect", truncate=3.0)


def _wide_hessian(img: np.ndarray, sp, sigma_mm: float, rows: np.ndarray, cols: np.ndarray):
    """Hessian of ``img`` smoothed at ``sigma_mm``, at the given pixels: ``(ratio, big)``.

    ``ratio`` is ``lambda_small / lambda_large`` by magnitude (1: blob, 0: line), ``big`` is
    ``sigma^2 lambda_large`` (intensity units). Computed on a block-averaged grid with blocks
    of about sigma / 2, so the cost is a small fraction of one full-resolution pass.
    """
    f = [max(1, int(sigma_mm / s / 2)) for s in sp]
    h = (sp[0] * f[0], sp[1] * f[1])
    g = ndi.gaussian_filter(_block_mean(img, f), sigma=(sigma_mm / h[0], sigma_mm / h[1]),
                            mode="reflect", truncate=3.0).astype(np.float64)
    gh, gw = g.shape
    if gh < 3 or gw < 3:
        return np.zeros(rows.size, np.float32), np.zeros(rows.size, np.float32)
    r = np.clip(rows // f[0], 1, gh - 2)
    c = np.clip(cols // f[1], 1, gw - 2)
    hrr = (g[r + 1, c] - 2 * g[r, c] + g[r - 1, c]) / h[0] ** 2
    hcc = (g[r, c + 1] - 2 * g[r, c] + g[r, c - 1]) / h[1] ** 2
    hrc = (g[r + 1, c + 1] - g[r + 1, c - 1] - g[r - 1, c + 1] + g[r - 1, c - 1]) \
        / (4 * h[0] * h[1])
    ratio, big = _eigen_ratio(hrr, hcc, hrc)
    return ratio.astype(np.float32), (big * sigma_mm**2).astype(np.float32)


def _ring(labels: np.ndarray, pix: np.ndarray, lab_of_pix: np.ndarray):
    """Flat indices and labels of the background pixels within the 5 x 5 neighbourhood of
    an object pixel; a pixel near several objects goes to the largest label (as
    ``grey_dilation(labels, size=(5, 5))`` restricted to the background)."""
    H, W = labels.shape
    r, c = np.divmod(pix, W)
    qs, ls = [], []
    for dr in range(-2, 3):
        rr = r + dr
        okr = (rr >= 0) & (rr < H)
        for dc in range(-2, 3):
            if dr == 0 and dc == 0:
                continue
            cc = c + dc
            ok = okr & (cc >= 0) & (cc < W)
            q = rr[ok] * W + cc[ok]
            bg = labels.ravel()[q] == 0
            qs.append(q[bg])
            ls.append(lab_of_pix[ok][bg])
    q = np.concatenate(qs)
    lab = np.concatenate(ls)
    if q.size == 0:
        return q, lab
    # by pixel, largest label first: one sort of a combined key (pixel, then -label)
    top = int(lab.max()) + 1
    key = np.sort(q.astype(np.int64) * top + (top - 1 - lab.astype(np.int64)))
    q = key // top
    first = np.concatenate([[True], q[1:] != q[:-1]])
    return q[first], (top - 1 - key[first] % top).astype(lab.dtype)


def _gradient_at(img: np.ndarray, sp, sigma_mm: float, rows: np.ndarray,
                 cols: np.ndarray) -> np.ndarray:
    """|gradient| (per mm) of :func:`_smooth_background` ``(img, sp, sigma_mm)`` at pixels.

    Equal to ``np.hypot(*np.gradient(sm, ...))`` looked up at the pixels' blocks (central
    differences inside, one-sided at the border), with the Gaussian evaluated only at the
    few grid points that the differences need (``mode="reflect"``, ``truncate=3``).
    """
    f = [max(1, int(sigma_mm / s / 4)) for s in sp]
    if f[0] > 1 or f[1] > 1:
        small = _block_mean(img, f)
    else:
        small = img
    h, w = small.shape
    sg = (sigma_mm / sp[0] / f[0], sigma_mm / sp[1] / f[1])
    gr, gc = rows // f[0], cols // f[1]

    def kernel(s):
        rad = int(3.0 * s + 0.5)
        x = np.arange(-rad, rad + 1)
        k = np.exp(-0.5 / (s * s) * x * x)
        return x, k / k.sum()

    (xr, kr), (xc, kc) = kernel(sg[0]), kernel(sg[1])

    def reflect(i, n):  # scipy's "reflect" (half-sample symmetric), any distance
        if n == 1:
            return np.zeros_like(i)
        i = np.mod(i, 2 * n)
        return np.where(i >= n, 2 * n - 1 - i, i)

    def sm_at(r, c):
        rr = reflect(r[:, None] + xr[None, :], h)  # (m, kr)
        cc = reflect(c[:, None] + xc[None, :], w)  # (m, kc)
        vals = small[rr[:, :, None], cc[:, None, :]].astype(np.float64)
        return np.einsum("mij,i,j->m", vals, kr, kc)

    gy, gx = np.zeros(gr.size), np.zeros(gr.size)
    inner = (gr >= 1) & (gr <= h - 2) & (gc >= 1) & (gc <= w - 2)
    if inner.any():
        # central differences of the smoothed image from one window per point: the four
        # Gaussians at (r +- 1, c) and (r, c +- 1) are differences of shifted kernels
        at = np.flatnonzero(inner)
        ext_r, ext_c = np.arange(-xr[-1] - 1, xr[-1] + 2), np.arange(-xc[-1] - 1, xc[-1] + 2)
        rr = reflect(gr[at][:, None] + ext_r[None, :], h)
        cc = reflect(gc[at][:, None] + ext_c[None, :], w)
        k2 = np.outer(kr, kc)
        dy = np.zeros((ext_r.size, ext_c.size))
        dy[2:, 1:-1] += k2
        dy[:-2, 1:-1] -= k2
        dx = np.zeros_like(dy)
        dx[1:-1, 2:] += k2
        dx[1:-1, :-2] -= k2
        for lo in range(0, at.size, 4096):  # bounded memory
            sl = slice(lo, lo + 4096)
            vals = small[rr[sl, :, None], cc[sl, None, :]].astype(np.float64)
            gy[at[sl]] = np.einsum("mij,ij->m", vals, dy) / (2 * f[0] * sp[0])
            gx[at[sl]] = np.einsum("mij,ij->m", vals, dx) / (2 * f[1] * sp[1])
    edge = np.flatnonzero(~inner)
    if edge.size:  # one-sided differences at the border of the grid
        r, c = gr[edge], gc[edge]
        r_lo, r_hi = np.maximum(r - 1, 0), np.minimum(r + 1, h - 1)
        c_lo, c_hi = np.maximum(c - 1, 0), np.minimum(c + 1, w - 1)
        if h > 1:
            gy[edge] = (sm_at(r_hi, c) - sm_at(r_lo, c)) / np.maximum(r_hi - r_lo, 1) \
                / (f[0] * sp[0])
        if w > 1:
            gx[edge] = (sm_at(r, c_hi) - sm_at(r, c_lo)) / np.maximum(c_hi - c_lo, 1) \
                / (f[1] * sp[1])
    return np.hypot(gy, gx)


def candidate_features(labels: np.ndarray, info: dict) -> np.ndarray:
    """Per-candidate features (:data:`FEATURE_NAMES`), one row per label ``1..n``.

    Every feature is invariant to a linear intensity change and expressed in mm or in units
    of the local noise, so that the same model applies at any spacing, bit depth or display
    scaling. Computed with label-indexed ``np.bincount`` reductions and per-peak lookups: the
    cost is a few passes over the image, independent of the number of candidates.

    Parameters
    ----------
    labels : ndarray of int32
        Labels from :func:`calibrated_candidates`.
    info : dict
        Its second return value.

    Returns
    -------
    X : ndarray of float32, shape (n, len(FEATURE_NAMES))
    """
    n = int(labels.max()) if labels.size else 0
    n_f = len(FEATURE_NAMES)
    if n == 0:
        return np.zeros((0, n_f), np.float32)
    norms, scales = info["_norms"], info["_scales"]
    img, breast, sp = info["_img"], info["_breast"], info["_spacing"]
    sig = info["_sigmas_mm"]
    rows, cols, ps = info["peak_row"], info["peak_col"], info["peak_scale"].astype(int)
    nd = len(norms)
    F = np.full((n, n_f), np.nan, np.float32)
    col = {k: j for j, k in enumerate(FEATURE_NAMES)}
    stack_at = np.stack([nm[rows, cols] for nm in norms], axis=1)  # (n, nd)
    ar = np.arange(n)
    F[:, col["cnr"]] = info["cnr"]
    below = ps - 1
    above = ps + 1
    F[:, col["cnr_below"]] = np.where(below >= 0, stack_at[ar, np.clip(below, 0, nd - 1)], np.nan)
    F[:, col["cnr_above"]] = np.where(above < nd, stack_at[ar, np.clip(above, 0, nd - 1)], np.nan)
    F[:, col["cnr_coarsest"]] = stack_at[:, -1]
    F[:, col["scale_mm"]] = sig[ps]
    F[:, col["hess_ratio"]] = info["_hess_ratio"]
    F[:, col["hess_ratio_coarse"]] = info["_hess_ratio_coarse"]

    flat = labels.ravel()
    m = flat > 0
    lab = flat[m] - 1
    yy, xx = np.divmod(np.flatnonzero(m), labels.shape[1])
    yy = yy * sp[0]
    xx = xx * sp[1]
    area = np.bincount(lab, minlength=n).astype(np.float64)
    my = np.bincount(lab, yy, n) / area
    mx = np.bincount(lab, xx, n) / area
    dy, dx = yy - my[lab], xx - mx[lab]
    cyy = np.bincount(lab, dy * dy, n) / area + sp[0] ** 2 / 12
    cxx = np.bincount(lab, dx * dx, n) / area + sp[1] ** 2 / 12
    cxy = np.bincount(lab, dy * dx, n) / area
    disc = np.sqrt(((cyy - cxx) / 2) ** 2 + cxy**2)
    l_big = (cyy + cxx) / 2 + disc
    l_small = np.maximum((cyy + cxx) / 2 - disc, 1e-12)
    F[:, col["log_area_mm2"]] = np.log(area * sp[0] * sp[1])
    F[:, col["elongation"]] = np.sqrt(l_big / l_small)
    F[:, col["major_mm"]] = 4 * np.sqrt(l_big)
    F[:, col["mean_cnr_fine"]] = np.bincount(lab, norms[0].ravel()[m], n) / area
    # local contrast against a 1 mm Gaussian background, in units of the local fine scale
    bg = _smooth_background(img, sp, 1.0)
    fy, fx = (img.shape[0] + bg.shape[0] - 1) // bg.shape[0], \
        (img.shape[1] + bg.shape[1] - 1) // bg.shape[1]
    pix = np.flatnonzero(m)
    pr, pc = np.divmod(pix, img.shape[1])
    diff = (img.ravel()[pix] - bg[pr // fy, pc // fx]) / scales[0].ravel()[pix]
    del bg
    F[:, col["contrast_cnr"]] = np.bincount(lab, diff, n) / area
    mxc = np.full(n, -np.inf)
    np.maximum.at(mxc, lab, diff)
    F[:, col["peak_contrast_cnr"]] = mxc
    # ring: the background pixels within 2 px (5 x 5) of an object, each given to the largest
    # neighbouring label (as a grey dilation of the label image), from the object pixels'
    # offsets only: the cost follows the candidates' pixels, not the image
    ring_px, ring_lab = _ring(labels, pix, flat[pix])
    rl = ring_lab - 1
    rc = np.bincount(rl, minlength=n).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        F[:, col["ring_cnr"]] = np.bincount(rl, norms[0].ravel()[ring_px], n) / rc
    F[:, col["busy"]] = scales[-1][rows, cols] / scales[0][rows, cols]
    F[:, col["noise_rel"]] = scales[0][rows, cols] / info["_globs"][0]
    # distance to the breast edge on a ~0.5 mm grid (the image frame is not an edge)
    f = max(1, int(round(0.5 / min(sp))))
    small = breast[::f, ::f]
    pad = np.pad(small, 1, mode="edge")
    dist = ndi.distance_transform_edt(pad, sampling=(sp[0] * f, sp[1] * f))[1:-1, 1:-1]
    F[:, col["edge_mm"]] = np.minimum(dist[np.minimum(rows // f, small.shape[0] - 1),
                                           np.minimum(cols // f, small.shape[1] - 1)], 20.0)
    # step edges (pectoral muscle, dense-tissue borders): smoothed gradient at the peak,
    # the 0.5 mm Gaussian evaluated at the peaks' neighbours only
    F[:, col["edge_strength"]] = _gradient_at(img, sp, 0.5, rows, cols) / scales[0][rows, cols]
    for sigma_mm, tag in ((0.5, "05mm"), (1.0, "1mm")):
        ratio, big = _wide_hessian(img, sp, sigma_mm, rows, cols)
        F[:, col[f"hess_ratio_{tag}"]] = ratio
        F[:, col[f"hess_big_{tag}"]] = big / scales[0][rows, cols]
    # grouping context on a 0.5 mm grid: candidates in the 5 mm square around each one
    gr, gc = rows // f, cols // f
    gshape = (labels.shape[0] // f + 1, labels.shape[1] // f + 1)
    side = int(round(5.0 / (f * float(np.mean(sp))))) | 1
    strong = info["cnr"] >= 6.0
    for name, w in (("neighbours", np.ones(n)), ("neighbours_strong", strong.astype(float))):
        cnt = np.zeros(gshape)
        np.add.at(cnt, (gr, gc), w)
        box = ndi.uniform_filter(cnt, size=side, mode="constant") * side * side
        F[:, col[name]] = np.rint(box[gr, gc] - w)
    return F
