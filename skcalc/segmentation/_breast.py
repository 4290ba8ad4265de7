"""Breast delineation (HDoGReg, hdogreg.md section 1.4) and the breast erosion used in combining.

The breast is the bright side of an Otsu split of the mammogram, taken at a fraction of the Otsu
threshold so that the faint skin line stays inside. The erosion that removes the breast boundary
(where skin folds and the pectoral edge produce spurious candidates) is applied later, by
:func:`skcalc.segmentation.combine`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from .._units import check_spacing

__all__ = ["breast_area_cm2", "delineate_breast", "erode_breast"]

# 4-connectivity, as scipy.ndimage.label's default used by the authors.
_CROSS = ndimage.generate_binary_structure(2, 1)



def _check_image(image: np.ndarray, name: str = "image") -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got shape {image.shape}")
    if image.size == 0:
        raise ValueError(f"{name} is empty")
    if image.dtype == bool or not np.issubdtype(image.dtype, np.number):
        raise TypeError(f"{name} must be a numeric array, got dtype {image.dtype}")
    if np.issubdtype(image.dtype, np.floating) and not np.isfinite(image).all():
        raise ValueError(f"{name} contains NaN or infinite pixels")
    return image


def _otsu_centre(values: np.ndarray, nbins: int = 256) -> float:
    """Otsu threshold; ties resolved to the centre of the optimal plateau.

    ``skimage.filters.threshold_otsu`` takes the lowest of equally good thresholds, i.e. just
    above the air peak when air and tissue are separated by an empty intensity gap (clean or
    synthetic images); a fraction of that threshold then falls inside the air noise.
    """
    hist, edges = np.histogram(values, bins=nbins)
    centres = (edges[:-1] + edges[1:]) / 2
    hist = hist.astype(np.float64)
    w1 = np.cumsum(hist)
    w2 = np.cumsum(hist[::-1])[::-1]
    m1 = np.cumsum(hist * centres) / np.maximum(w1, 1)
    m2 = (np.cumsum((hist * centres)[::-1]) / np.maximum(np.cumsum(hist[::-1]), 1))[::-1]
    var = w1[:-1] * w2[1:] * (m1[:-1] - m2[1:]) ** 2
    best = np.flatnonzero(var >= var.max() * (1 - 1e-9))
    return float((centres[best[0]] + centres[best[-1]]) / 2)


def _remove_small(mask: np.ndarray, min_size: int) -> np.ndarray:
    """Remove 4-connected objects with fewer than ``min_size`` pixels (the old skimage rule)."""
    lab, n = ndimage.label(mask, structure=_CROSS)
    if n == 0:
        return mask
    sizes = np.bincount(lab.ravel())
    keep = sizes >= min_size
    keep[0] = False
    return keep[lab]


def _bright_pads(img: np.ndarray, min_size: int, sp=(1.0, 1.0)) -> np.ndarray:
    """Bright, flat regions at the top of the range that run along half a side of the image
    or more and end abruptly.

    Padding to a larger frame, a shutter or collimator blade, unexposed (clear) film: after
    a 1 mm mean (which averages film grain and digitiser noise) they lie within 2 % of the
    range below the brightest value, are brighter than any tissue and would be taken for
    the breast. Tissue clipped at the maximum (a dense pectoral muscle after a steep window)
    is told apart by its edge: the median of the pixels around it is within a quarter of
    the range below the maximum (0.88-0.97 of it on the real views windowed to clip 1-10 %
    of the breast), around a pad it is air or tissue well below. A pad's pixels are those
    of the region, and those next to it above the level halfway to its surroundings.
    """
    k = [max(3, int(round(1.0 / s)) | 1) for s in sp]
    sm = ndimage.uniform_filter(img.astype(np.float32, copy=False), size=k, mode="nearest")
    top, low = float(sm.max()), float(sm.min())
    pads = np.zeros(img.shape, bool)
    if top <= low:
        return pads
    near = sm >= top - 0.02 * (top - low)
    lab, n = ndimage.label(near, structure=_CROSS)
    sizes = np.bincount(lab.ravel(), minlength=n + 1)
    sides = (lab[0], lab[-1], lab[:, 0], lab[:, -1])
    edge = np.unique(np.concatenate(sides))
    for lb in edge[edge > 0]:
        # padding and shutters run along a side of the frame; clipped tissue meets the
        # border at the chest wall over part of a side at most
        along = max(float(np.mean(side == lb)) for side in sides)
        if sizes[lb] < min_size or along < 0.5:
            continue
        region = lab == lb
        # the surroundings beyond the band the 1 mm mean blurred across the pad's edge
        blur = ndimage.binary_dilation(region, structure=_CROSS, iterations=max(k) // 2 + 1)
        ring = ndimage.binary_dilation(blur, structure=_CROSS, iterations=3) & ~blur & ~near
        if not ring.any():
            continue
        around = float(np.median(img[ring]))
        if around < top - 0.25 * (top - low):
            level = (float(np.median(img[region])) + around) / 2
            pads |= region | (blur & (img >= level))
    return pads


#: Margin (mm) around regions of one value left out of the detector's statistics (the
#: noise scales, the intensity stabilisation, the area the candidate density is taken
#: on): the coarsest DoG reaches about 1 mm from their outline.
STATS_MARGIN_MM = 1.0


#: Fraction of the image's range below its maximum that still counts as the top (a
#: plateau at the maximum): burned-in markers read a few levels below it.
TOP_TOLERANCE = 0.001


def _grown_components(lab: np.ndarray, keep: np.ndarray, r: int) -> np.ndarray:
    """The components of ``lab`` with ``keep[label]`` dilated ``r`` times (4-connected),
    each within its own box grown by ``r``."""
    out = np.zeros(lab.shape, bool)
    for k, sl in enumerate(ndimage.find_objects(lab), start=1):
        if keep[k]:
            a0, a1 = max(sl[0].start - r, 0), min(sl[0].stop + r, lab.shape[0])
            b0, b1 = max(sl[1].start - r, 0), min(sl[1].stop + r, lab.shape[1])
            out[a0:a1, b0:b1] |= ndimage.binary_dilation(lab[a0:a1, b0:b1] == k,
                                                         structure=_CROSS, iterations=r)
    return out


def clipped_plateaus(
    image: np.ndarray, spacing, *, min_area_mm2: float = 1.0, margin_mm: float = 0.2
) -> np.ndarray | None:
    """Pixels on or next to a plateau at the image's maximum of ``min_area_mm2`` or more.

    Such a plateau is clipped (a steep window, an 8-bit export, a saturated detector) or
    burned in (text, a ruler, a marker drawn at the top value). Nothing can be seen inside
    it, and its outline is an edge that the image did not have, with the contrast of the
    whole range: the DoG and the filter respond to it as to a bright calcification (the
    strokes of burned-in letters touching the breast became objects of 3-5 mm^2). The
    plateau holds the pixels within ``TOP_TOLERANCE`` of the range below the maximum (4
    counts of 12 bits, none of 8): the nipple marker beads of the real R-CC and L-CC views
    read 4092-4095, and R-CC's (3.2 mm^2, mostly 4093) was an object. A calcification of
    1.1 mm or less clipped at the top on its own is smaller than the default area and is
    kept. Returns None when the top covers less than ``min_area_mm2`` in all (nothing
    clipped: the common case, decided by one comparison).

    Examples
    --------
    >>> import numpy as np
    >>> img = np.zeros((60, 60), np.uint16); img[10:30, 10:40] = 4095; img[50, 50] = 4095
    >>> m = clipped_plateaus(img, 0.1)
    >>> bool(m[20, 20]), bool(m[9, 20]), bool(m[50, 50])   # plateau, its margin, a speck
    (True, True, False)
    >>> clipped_plateaus(img[40:, 40:], 0.1) is None
    True
    """
    sp = check_spacing(spacing, plausible=False)
    image = np.asarray(image)
    min_px = min_area_mm2 / (sp[0] * sp[1])
    top = image.max()
    at_top = image >= top - TOP_TOLERANCE * (float(top) - float(image.min()))
    if np.count_nonzero(at_top) < min_px:
        return None
    # the work is confined to the box around the maximum's pixels (grown by the margin)
    r = max(1, int(round(margin_mm / min(sp))))
    rows, cols = np.flatnonzero(at_top.any(axis=1)), np.flatnonzero(at_top.any(axis=0))
    r0, r1 = max(rows[0] - r, 0), min(rows[-1] + r + 1, image.shape[0])
    c0, c1 = max(cols[0] - r, 0), min(cols[-1] + r + 1, image.shape[1])
    box = at_top[r0:r1, c0:c1]
    lab, n = ndimage.label(box, structure=_CROSS)
    big = np.bincount(lab[box], minlength=n + 1) >= min_px
    big[0] = False
    if not big.any():
        return None
    out = np.zeros(image.shape, bool)
    out[r0:r1, c0:c1] = _grown_components(lab, big, r)
    return out


def flat_regions(
    image: np.ndarray, spacing, *, min_area_mm2: float = 12.5, margin_mm: float = 1.0,
    within: np.ndarray | None = None, min_area_at_bottom_mm2: float | None = None,
) -> np.ndarray | None:
    """Pixels on or near a region of one value of ``min_area_mm2`` or more, at any value.

    A region of one value is not tissue (noise alone breaks it up): an anonymisation box, a
    pad, tissue clipped at either end of a window. Its inside (pixels equal to their four
    neighbours, 4-connected; only inside ``within`` when given, e.g. the breast, so that a
    flat air costs nothing) is grown by one pixel (the region's own edge) and
    ``margin_mm``. Regions at the image's minimum need ``min_area_at_bottom_mm2`` (when
    given) instead. None when there is none (the common case, decided by four comparisons
    per pixel).

    Examples
    --------
    >>> import numpy as np
    >>> img = np.random.default_rng(0).integers(0, 4000, (80, 80)).astype(np.uint16)
    >>> img[20:60, 20:60] = 2000
    >>> m = flat_regions(img, 0.1)
    >>> bool(m[40, 40]), bool(m[15, 40]), bool(m[5, 5])   # inside, margin, tissue
    (True, True, False)
    >>> flat_regions(img[:18, :18], 0.1) is None
    True
    """
    sp = check_spacing(spacing, plausible=False)
    img = np.asarray(image)
    if min(img.shape) < 3:
        return None
    c = img[1:-1, 1:-1]
    inner = np.zeros(img.shape, bool)
    inner[1:-1, 1:-1] = ((c == img[:-2, 1:-1]) & (c == img[2:, 1:-1])
                         & (c == img[1:-1, :-2]) & (c == img[1:-1, 2:]))
    if within is not None:
        inner &= within
    min_px = min_area_mm2 / (sp[0] * sp[1])
    if np.count_nonzero(inner) < min_px:
        return None
    lab, n = ndimage.label(inner, structure=_CROSS)
    size = np.bincount(lab.ravel(), minlength=n + 1)
    big = size >= min_px
    big[0] = False
    if min_area_at_bottom_mm2 is not None and big.any():
        bottom_px = min_area_at_bottom_mm2 / (sp[0] * sp[1])
        low = img.min()
        objs = ndimage.find_objects(lab)
        for k in np.flatnonzero(big & (size < bottom_px)):
            sl = objs[k - 1]
            if img[sl][lab[sl] == k][0] == low:
                big[k] = False
    if not big.any():
        return None
    # the inside grown by one pixel is the region (its edge pixels differ from a neighbour
    # outside it), and the margin is taken from there
    r = max(1, int(round(margin_mm / min(sp))))
    return _grown_components(lab, big, r + 1)


def _union(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
    """``a | b`` of two masks either of which may be None (nothing)."""
    if a is None or b is None:
        return b if a is None else a
    return a | b


def not_tissue(image: np.ndarray, spacing, window_mm: float = 5.0,
               breast: np.ndarray | None = None) -> np.ndarray | None:
    """What the calibrated detector leaves out of its statistics and of the area its
    candidate density is taken on: a mask, or None.

    Plateaus at the maximum (:func:`clipped_plateaus`) and regions of one value at any level
    (:func:`flat_regions`, inside ``breast`` when given) of half a noise window or more,
    with ``STATS_MARGIN_MM`` around them: their flat inside and artificial outline say
    nothing about the tissue's noise and hold no candidates (those on their outline are
    dropped, :func:`artificial_outlines`), and those smaller than half a window (a marker, a
    letter) cannot sway a window's robust scale.
    """
    kw = {"min_area_mm2": window_mm**2 / 2, "margin_mm": STATS_MARGIN_MM}
    return _union(clipped_plateaus(image, spacing, **kw),
                  flat_regions(image, spacing, within=breast, **kw))


def artificial_outlines(image: np.ndarray, spacing,
                        breast: np.ndarray | None = None) -> np.ndarray | None:
    """Pixels on or within 0.2 mm of a region that is not tissue and whose outline is an
    edge the image did not have: a plateau at the maximum of 1 mm^2 or more
    (:func:`clipped_plateaus`), a region of one value of 1 mm^2 or more above the image's
    minimum, or one at the minimum of half a noise window (12.5 mm^2) or more
    (:func:`flat_regions`; inside ``breast`` when given). None when there is none (the
    common case).

    Burned-in text, a marker or a grey anonymisation box below the maximum is flat; the DoG
    responds to its outline as to the outline of a plateau (a 30 mm grey box inside the
    real L-CC view left 12 objects within 3 mm of it where the view has 6, 8 with this
    rule; "L CC 28kV" burned in at 2500-3500 across the skin line 1-4 objects on its
    strokes, none with it). Tissue clipped at the bottom of a window leaves flat patches
    of 1-4 mm^2 in the fat of the real views, and calcifications next to them are seen, so
    regions at the minimum count from 12.5 mm^2 only.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.random.default_rng(0).integers(0, 4000, (80, 80)).astype(np.uint16)
    >>> img[20:60, 20:60] = 2000
    >>> m = artificial_outlines(img, 0.1)
    >>> bool(m[40, 40]), bool(m[19, 40]), bool(m[15, 40])   # inside, outline, tissue
    (True, True, False)
    """
    return _union(clipped_plateaus(image, spacing),
                  flat_regions(image, spacing, within=breast, margin_mm=0.2,
                               min_area_mm2=1.0, min_area_at_bottom_mm2=12.5))


def on_artificial_outlines(image: np.ndarray, labels: np.ndarray, spacing,
                           breast: np.ndarray | None = None) -> np.ndarray:
    """Which labels of ``labels`` (index 0 = background, always False) touch
    :func:`artificial_outlines` of ``image``: the candidates the calibrated segmentation and
    :func:`~skcalc.segmentation.fit_candidate_filter` leave out.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.random.default_rng(0).integers(0, 4000, (60, 60)).astype(np.uint16)
    >>> img[10:30, 10:40] = 4095
    >>> lab = np.zeros((60, 60), np.int32); lab[31, 20] = 1; lab[50, 50] = 2
    >>> on_artificial_outlines(img, lab, 0.1).tolist()
    [False, True, False]
    """
    out = np.zeros(int(labels.max(initial=0)) + 1, bool)
    outlines = artificial_outlines(image, spacing, breast) if out.size > 1 else None
    if outlines is not None:
        out[labels[outlines]] = True
        out[0] = False
    return out


def _air_threshold(shifted: np.ndarray, otsu: float) -> float:
    """A threshold just above the air of an image whose minimum is 0.

    The air is the most frequent intensity among the pixels below the Otsu threshold
    ``otsu`` (air and the darkest tissue); its spread is measured on its dark side only, which
    tissue does not reach. The threshold is the air level plus the larger of 5 robust sd of
    the air, 0.5 % of the range above it (its 99th percentile) and one grey level: a few
    levels for the noise-free air at 0 of processed images, above the noise for the noisy
    air of raw images and film (base + fog, grain).
    """
    if shifted.ndim == 1:  # values of a mask (pads excluded)
        sub = shifted[:: max(1, shifted.size // 262144)]
    else:
        sub = shifted[:: max(1, shifted.shape[0] // 512), :: max(1, shifted.shape[1] // 512)]
    low = sub[sub <= otsu].astype(np.float64)
    if low.size < 16:
        return otsu
    hist, edges = np.histogram(low, bins=256)
    k = int(np.argmax(hist))
    in_mode = low[(low >= edges[k]) & (low <= edges[k + 1])]
    level = float(np.median(in_mode))
    below = level - low[low < level]
    sd = 1.482602218505602 * float(np.median(below)) if below.size >= 16 else 0.0
    vals = np.unique(sub[sub > level])[:4096]
    step = float(np.min(np.diff(vals))) if vals.size > 1 else 0.0
    top = float(np.percentile(sub, 99)) - level
    return level + max(5.0 * sd, 0.005 * top, step)


def delineate_breast(
    image: np.ndarray,
    *,
    otsu_percent: float = 0.2,
    spacing: float | Sequence[float] = (0.07, 0.07),
    min_area_mm2: float = 64 * 0.07**2,
    min_air_fraction: float = 0.01,
    rule: str = "authors",
) -> np.ndarray:
    """Delineate the breast in a mammogram (bright breast on dark air).

    1. ``t = Otsu(image - image.min())``, foreground ``image - image.min() > otsu_percent * t``
       (equally good Otsu thresholds resolved to the centre of the plateau, see below).
    2. Holes and objects smaller than ``min_area_mm2`` (64 px at 0.07 mm) are filled / removed
       (4-connectivity).
    3. The foreground is labelled (4-connectivity). Of the two largest labels, *counting the
       background label 0*, the one with the higher median original intensity is the breast.
    4. Holes in the breast are filled.

    The breast must be bright (readers already invert MONOCHROME1 data); laterality and view
    (MLO/CC, left/right) do not matter. Subtracting the image minimum before thresholding makes
    the rule independent of a detector offset (the authors' images had air at 0, where this is
    the same). When air and tissue are separated by an empty intensity gap every threshold in
    the gap is Otsu-optimal; skimage takes the lowest (just above the air noise), this function
    the centre of the gap, so that ``otsu_percent * t`` stays above the air.

    **Crops without air.** When the background label 0 (the dark pixels left after step 2)
    covers less than ``min_air_fraction`` of the image, there is no sizeable air region: the
    image is an ROI crop inside the breast and the whole crop is returned as breast. A constant
    image is also returned as all breast.

    Parameters
    ----------
    image : ndarray of shape (H, W)
        Mammogram, breast bright, any numeric dtype.
    otsu_percent : float, default=0.2
        Fraction of the Otsu threshold used as the breast/air threshold.
    spacing : float or (float, float), default=(0.07, 0.07)
        Pixel spacing in mm.
    min_area_mm2 : float, default=0.3136
        Smallest hole kept and smallest object kept, in mm^2 (64 px at 0.07 mm).
    min_air_fraction : float, default=0.01
        Below this fraction of dark pixels the whole image is breast.
    rule : {"authors", "robust"}, default="authors"
        ``"authors"``: the threshold of step 1. ``"robust"``: the lower of that threshold and
        one just above the air (:func:`_air_threshold`: the air's level and noise, measured
        on the image), so that a display transform that darkens fatty tissue (a gamma above
        1, a steep window) does not cut it off as air: ``otsu_percent * t`` is a fixed
        fraction of a threshold set by the dense tissue, and with gamma 2 it falls above
        13-21 % of the breast of the real NYU views. Also leaves out bright pads: regions
        at the top of the range that run along half a side of the image or more and end
        abruptly (padding, a shutter, unexposed film; :func:`_bright_pads`), which are
        brighter than any tissue and would otherwise be taken for the breast. Apart from
        those, never less inclusive than the authors' rule, so crops without air stay
        whole. Used by the calibrated segmentation.

    Returns
    -------
    mask : ndarray of bool, shape (H, W)
        The breast mask (not eroded).

    Examples
    --------
    >>> import numpy as np
    >>> img = np.zeros((40, 60))
    >>> img[5:35, :30] = 1000.0
    >>> mask = delineate_breast(img)
    >>> int(mask.sum()), bool(mask[20, 10]), bool(mask[20, 50])
    (900, True, False)
    >>> bool(delineate_breast(img[5:35, :30]).all())  # a crop without air is all breast
    True
    """
    image = _check_image(image)
    if not 0 < otsu_percent:
        raise ValueError(f"otsu_percent must be positive, got {otsu_percent}")
    sp = check_spacing(spacing, plausible=False)
    min_size = max(1, int(round(min_area_mm2 / (sp[0] * sp[1]))))
    img = image.astype(np.float32, copy=False)
    lo = float(img.min())
    if float(img.max()) == lo:
        return np.ones(image.shape, bool)
    shifted = img - lo
    if rule not in ("authors", "robust"):
        raise ValueError(f"rule must be 'authors' or 'robust', got {rule!r}")
    pads = _bright_pads(shifted, min_size, sp) if rule == "robust" else None
    if pads is not None and not pads.any():
        pads = None
    if pads is not None:
        if pads.all():
            return np.zeros(image.shape, bool)
        # pads count as air: in the statistics below, and at the air's level in the
        # background's median that picks the breast among the largest labels
        shifted = np.where(pads, np.float32(0), shifted)
    values = shifted if pads is None else shifted[~pads]
    t = _otsu_centre(values)
    if rule == "robust":
        t = min(otsu_percent * t, _air_threshold(values, t))
    else:
        t = otsu_percent * t
    fg = shifted > t
    if pads is not None:
        fg &= ~pads
    fg = ~_remove_small(~fg, min_size)  # fill small holes
    fg = _remove_small(fg, min_size)
    if (~fg).mean() < min_air_fraction:
        return np.ones(image.shape, bool)
    joined = fg
    if rule == "robust":
        # A thin dark line (a dead detector row or column, a scanner streak) cuts the breast
        # into pieces, and the largest piece alone would be "the breast": pieces less than
        # 0.5 mm apart are one component. The line itself stays out of the mask.
        r = max(1, int(round(0.25 / min(sp))))
        joined = fg | ndimage.binary_closing(fg, structure=_CROSS, iterations=r)
    lab, n = ndimage.label(joined, structure=_CROSS)
    sizes = np.bincount(lab.ravel(), minlength=n + 1)
    top = np.argsort(sizes, kind="stable")[::-1][:2]
    top = [int(lb) for lb in top if sizes[lb] > 0]
    if len(top) == 1:
        breast = lab == top[0]
    else:
        med = [float(np.median(shifted[lab == lb])) for lb in top]
        breast = lab == top[int(np.argmax(med))]
    if rule == "robust":
        breast &= fg
    return ndimage.binary_fill_holes(breast)


def erode_breast(
    mask: np.ndarray,
    *,
    spacing: float | Sequence[float] = (0.07, 0.07),
    size_mm: float = 45 * 0.07,
) -> np.ndarray:
    """Erode a breast mask with a square of side ``size_mm``; the image frame does not erode it.

    At 0.07 mm the default is the authors' 45x45 square (22 px removed on each side of the
    boundary). The square side in pixels is ``round(size_mm / spacing)`` per axis, made odd
    (symmetric) by rounding the half-width. Pixels outside the image count as breast, as with
    ``cv2.erode``'s default border, so a breast touching the chest-wall edge keeps that edge.

    Parameters
    ----------
    mask : ndarray of bool, shape (H, W)
    spacing : float or (float, float), default=(0.07, 0.07)
    size_mm : float, default=3.15
        Side of the square structuring element in mm (0 disables the erosion).

    Returns
    -------
    eroded : ndarray of bool, shape (H, W)

    Examples
    --------
    >>> import numpy as np
    >>> m = np.zeros((60, 60), bool)
    >>> m[:, :40] = True
    >>> e = erode_breast(m)
    >>> int(e[0].sum()), int(e[:, 0].sum())  # 22 px removed at the air side, none at the frame
    (18, 60)
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {mask.shape}")
    sp = check_spacing(spacing, plausible=False)
    if size_mm < 0:
        raise ValueError(f"size_mm must be >= 0, got {size_mm}")
    out = mask.astype(np.uint8)
    for axis, s in enumerate(sp):
        half = int(round((size_mm / s - 1) / 2)) if size_mm > 0 else 0
        if half > 0:
            out = ndimage.minimum_filter1d(out, 2 * half + 1, axis=axis, mode="constant", cval=1)
    return out.astype(bool)


def breast_area_cm2(mask: np.ndarray, spacing: float | Sequence[float] = (0.07, 0.07)) -> float:
    """Breast area in cm^2: mask pixels x pixel area (mm^2) / 100.

    Examples
    --------
    >>> import numpy as np
    >>> breast_area_cm2(np.ones((100, 100), bool), 0.1)
    1.0
    """
    sp = check_spacing(spacing, plausible=False)
    return float(np.count_nonzero(mask)) * sp[0] * sp[1] / 100.0
