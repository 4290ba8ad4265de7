"""Detector defects: hot pixels.

An uncorrected detector leaves single pixels (or groups of a few) stuck far above all their
neighbours. Inside the breast the DoG takes each for a bright point calcification. A sharp
detector can image a calcification of one pixel the same way, so the pixels themselves do
not tell the two apart; the air does. Defects sit anywhere on the detector, calcifications
only in the breast: spikes in the air at one reading mean the imaging chain makes them, and
only then are the breast's spikes at that reading repaired.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from .._units import check_spacing
from ._calibrated import _MAD_TO_SD

__all__ = ["impulse_defects", "repair_impulse_defects"]

_RING = np.ones((3, 3), bool)
_RING[1, 1] = False
_OFFSETS = np.argwhere(_RING) - 1


def _first_difference_sd(img: np.ndarray, where: np.ndarray) -> float:
    """Robust sd of the pixel noise from horizontal first differences inside ``where``, on
    about 256 rows (the estimate needs far fewer than all of them)."""
    step = max(1, img.shape[0] // 256)
    both = where[::step, 1:] & where[::step, :-1]
    rows = img[::step].astype(np.float32)
    return _difference_sd((rows[:, 1:] - rows[:, :-1])[both])


def _difference_sd(d: np.ndarray) -> float:
    """The pixel noise sd that first differences ``d`` of white noise imply (MAD), 0 for
    fewer than 50 of them."""
    if d.size < 50:
        return 0.0
    return float(np.median(np.abs(d - np.median(d))) * _MAD_TO_SD / np.sqrt(2))


def _spikes(img: np.ndarray, tau: float) -> np.ndarray:
    """Flat indices of the pixels that exceed each of their 8 neighbours by more than
    ``tau`` (pixels of the image's frame, which lack neighbours, never do)."""
    H, W = img.shape
    if H < 3 or W < 3:
        return np.zeros(0, np.int64)
    # a necessary condition on the row neighbours first, leaving few pixels to check; in
    # bands of rows, whose temporaries stay in cache
    found = [(np.zeros(0, np.intp), np.zeros(0, np.intp))]
    for r0 in range(1, H - 1, 256):
        r1 = min(r0 + 256, H - 1)
        mid = img[r0:r1, 1:-1].astype(np.float32)
        mid -= np.maximum(img[r0:r1, :-2], img[r0:r1, 2:])
        hit = mid > tau
        if hit.any():  # most bands have no candidate: nonzero would scan them slower
            r, c = np.nonzero(hit)
            found.append((r + r0, c + 1))
    r = np.concatenate([f[0] for f in found])
    c = np.concatenate([f[1] for f in found])
    keep = _excess(img, r, c) > tau
    return r[keep] * W + c[keep]


def _excess(img: np.ndarray, r: np.ndarray, c: np.ndarray) -> np.ndarray:
    """How far pixels ``(r, c)`` (none on the frame) exceed the largest of their 8
    neighbours."""
    top = np.max([img[r + dr, c + dc] for dr, dc in _OFFSETS], axis=0)
    return img[r, c].astype(np.float64) - top


def impulse_defects(
    image: np.ndarray,
    breast_mask: np.ndarray,
    spacing: float | Sequence[float] = (0.07, 0.07),
    *,
    k: float = 5.0,
    k_air: float = 8.0,
    min_in_air: int = 3,
    air_margin_mm: float = 2.0,
    max_cluster: int = 4,
) -> np.ndarray | None:
    """Isolated hot pixels of an image whose air shows the same spikes.

    A pixel is a **spike** when it exceeds the largest of its 8 neighbours by more than
    ``k`` times the pixel noise (the robust sd of first differences in the breast). When at
    least ``min_in_air`` spikes lie in the air, farther than about ``air_margin_mm`` from the
    breast, exceed their neighbours by more than ``k_air`` times the larger of that noise
    and the air's own, and read one value (within ``k`` sd of the air's noise of the
    brightest of them), the image has pixels stuck at that reading. Then every spike
    reading at least that, and every group of up to ``max_cluster`` 8-connected pixels
    reading at least that whose darkest pixel exceeds all pixels around the group by more
    than ``k`` noise sd, is returned, in the air and in the breast: a stuck pixel reads its
    value anywhere, while a calcification imaged as one pixel is usually darker. Otherwise
    (no air, clean air, air spikes no larger than its noise makes, or of many readings,
    like pin-holes in film) None: a single-pixel spike in the breast alone may be a
    calcification that a sharp detector imaged as one pixel.

    ``image`` is the image as segmented (calcifications bright). Larger groups at the stuck
    reading are left alone (:func:`~skcalc.segmentation._breast.clipped_plateaus` takes
    those of 1 mm^2 or more).

    Returns
    -------
    mask : ndarray of bool or None
        The spikes, when the air shows that the image has them.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> img = rng.normal(100, 2, (200, 200))
    >>> img[:, 100:] = rng.normal(1000, 20, (200, 100))   # breast on the right
    >>> breast = np.zeros(img.shape, bool); breast[:, 100:] = True
    >>> img[[20, 60, 100, 140, 180], 30] = 4000            # hot pixels in the air
    >>> img[50, 150] = 4000                                 # and one in the breast
    >>> m = impulse_defects(img, breast, 0.1)
    >>> int(m.sum()), bool(m[50, 150])
    (6, True)
    >>> img[:, 30] = 100                                    # clean air: the spike is kept
    >>> impulse_defects(img, breast, 0.1) is None
    True
    """
    sp = check_spacing(spacing, plausible=False)
    img = np.asarray(image)
    breast = np.asarray(breast_mask, bool)
    if img.ndim != 2 or breast.shape != img.shape:
        raise ValueError(f"image {img.shape} and breast mask {breast.shape} must be 2-D "
                         "and of one shape")
    if breast.all() or not breast.any():
        return None
    noise = _first_difference_sd(img, breast)
    if noise <= 0:
        return None
    idx = _spikes(img, k * noise)
    if idx.size < min_in_air:
        return None
    rows, cols = np.divmod(idx, img.shape[1])
    # "far from the breast": outside the breast, sampled every ``m`` pixels, grown by two
    # samples (a piece of breast thinner than m pixels may be missed: it is no air either way
    # for the count, which needs several spikes)
    m = max(1, int(round(air_margin_mm / min(sp))))
    near = ndimage.binary_dilation(breast[::m, ::m], structure=np.ones((3, 3), bool),
                                   iterations=2)
    at = (np.minimum(np.rint(rows / m).astype(int), near.shape[0] - 1),
          np.minimum(np.rint(cols / m).astype(int), near.shape[1] - 1))
    in_air = ~near[at]
    if np.count_nonzero(in_air) < min_in_air:
        return None
    # the air's own noise, on the sampled rows
    sampled = img[::m].astype(np.float32)
    far = ~np.repeat(near, m, axis=1)[:, : img.shape[1]]
    air_noise = _difference_sd((sampled[:, 1:] - sampled[:, :-1])[far[:, 1:] & far[:, :-1]])
    tau_air = k_air * max(noise, air_noise)
    seen = img.ravel()[idx[in_air]][_excess(img, rows[in_air], cols[in_air]) > tau_air]
    # stuck pixels read one value anywhere (up to the air's noise, for an offset): the
    # brightest air spikes' reading is the least a defect reads (a calcification imaged as
    # one pixel, darker, is kept; so are air spikes of many readings, like pin-holes in film)
    if seen.size == 0:
        return None
    level = float(seen.max()) - k * air_noise
    if np.count_nonzero(seen >= level) < min_in_air:
        return None
    # single spikes at that reading or more (where the level is below the tissue, as for
    # an offset added to the pixels), and groups of a few pixels stuck above the tissue
    out = _stuck_clusters(img, level, k * noise, max_cluster)
    out.ravel()[idx[img.ravel()[idx] >= level]] = True
    return out


def _stuck_clusters(img: np.ndarray, level: float, tau: float, max_cluster: int) -> np.ndarray:
    """8-connected groups of at most ``max_cluster`` pixels reading ``level`` or more whose
    darkest pixel exceeds everything around them by more than ``tau``."""
    high = img >= level
    lab, n = ndimage.label(high, structure=np.ones((3, 3), bool))
    size = np.bincount(lab.ravel(), minlength=n + 1)
    small = size <= max_cluster
    small[0] = False
    px = np.flatnonzero(small[lab])
    own = lab.ravel()[px]
    # a neighbour reading the level is in the pixel's own group (8-connected)
    around = _around(img, *np.divmod(px, img.shape[1]), high)
    ring = np.full(n + 1, -np.inf)
    np.maximum.at(ring, own, np.where(np.isnan(around), -np.inf, around).max(axis=1))
    low = np.full(n + 1, np.inf)
    np.minimum.at(low, own, img.ravel()[px].astype(np.float64))
    out = np.zeros(img.shape, bool)
    out.ravel()[px[(low - ring)[own] > tau]] = True
    return out


def _around(img: np.ndarray, r: np.ndarray, c: np.ndarray, leave: np.ndarray) -> np.ndarray:
    """The 8 neighbours' values of pixels ``(r, c)`` (float, one row each), NaN where a
    neighbour is off the image or in ``leave``."""
    H, W = img.shape
    nr, nc = r[:, None] + _OFFSETS[:, 0], c[:, None] + _OFFSETS[:, 1]
    off = (nr < 0) | (nr >= H) | (nc < 0) | (nc >= W)
    nr, nc = np.clip(nr, 0, H - 1), np.clip(nc, 0, W - 1)
    vals = img[nr, nc].astype(np.float64)
    vals[off | leave[nr, nc]] = np.nan
    return vals


def repair_impulse_defects(
    image: np.ndarray,
    breast_mask: np.ndarray,
    spacing: float | Sequence[float] = (0.07, 0.07),
) -> tuple[np.ndarray, int]:
    """The image with the :func:`impulse_defects` pixels set to the median of their 8
    neighbours that are not defects (same dtype), and how many were set; the image itself
    when there are none.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> img = np.full((100, 100), 10, np.uint16)
    >>> img[:, 50:] = rng.integers(500, 509, (100, 50))     # the breast, with noise
    >>> breast = np.zeros(img.shape, bool); breast[:, 50:] = True
    >>> img[[10, 30, 50, 70, 90], 5] = 4095; img[40, 80] = 4095
    >>> out, n = repair_impulse_defects(img, breast, 0.1)
    >>> n, 500 <= int(out[40, 80]) <= 508, int(img[40, 80])
    (6, True, 4095)
    """
    mask = impulse_defects(image, breast_mask, spacing)
    if mask is None:
        return image, 0
    image = np.asarray(image)
    out = image.copy()
    todo = mask.copy()
    n = int(np.count_nonzero(mask))
    while todo.any():
        # a pixel whose neighbours are all defects (a group in a corner) waits for them
        rows, cols = np.nonzero(todo)
        around = _around(out, rows, cols, todo)
        ok = ~np.isnan(around).all(axis=1)
        if not ok.any():  # nothing but defects: nothing to repair from
            break
        values = np.nanmedian(around[ok], axis=1)
        if out.dtype.kind in "ui":
            values = np.rint(values)
        out[rows[ok], cols[ok]] = values.astype(out.dtype)
        todo[rows[ok], cols[ok]] = False
    return out, n
