"""Masks of the paper's "Mask Generation" section: foreground, background band, dilations.

The :class:`CalcificationMasks` record is what :class:`MaskBuilder` attaches to each ROI. It
holds the foreground label image, the background-band rule and the multi-scale connectivity
(which pairs of calcifications overlap once each is dilated by a disk of a given radius),
derived from object-to-object geometry instead of 65 full-image dilations.

Multi-scale connectivity
------------------------
The disk of radius ``r`` mm on a pixel lattice of spacing ``(sy, sx)`` is the set ``D_r`` of
offsets ``(dy, dx)`` with ``(dy*sy)**2 + (dx*sx)**2 <= r**2`` (:func:`disk_footprint`, with a
``1e-9`` relative tolerance for points on the circle). Two
objects ``A`` and ``B``, each dilated by ``D_r``, overlap iff some difference ``b - a``
(``a`` in ``A``, ``b`` in ``B``) lies in ``D_r + D_r`` (a discrete set, not the disk of radius
``2r``). :func:`merge_lookup_table` tabulates, once per spacing and scales, the first scale
index ``m(v)`` whose ``D + D`` contains the offset ``v``; :func:`multiscale_merge_index` then
takes, for each pair of nearby objects, the minimum of ``m`` over pairs of boundary pixels.

Why boundary pixels suffice: ``D_r + D_r`` is symmetric and *orthogonally downward closed*
(lowering ``|vy|`` or ``|vx|`` by one keeps an offset inside, because one of the two summands
can be lowered and ``D_r`` is itself downward closed). If ``b - a`` is in it, walk a
monotone 4-connected lattice path from ``a`` to ``b``: every point ``p`` on it has ``b - p`` in
the set; the last point of the path inside ``A`` has a 4-neighbour outside ``A``, i.e. it is a
boundary pixel. The same walk from ``b`` towards that pixel gives a boundary pixel of ``B``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import FrozenInstanceError
from functools import lru_cache
from numbers import Integral, Real

import numpy as np
from scipy import ndimage as ndi
from sklearn.utils._param_validation import HasMethods, Interval

from ._arrays import array_digest, owned
from ._units import check_spacing
from .exceptions import ROIValidationError
from .utils._stage import ImageStage
from .utils._validation import check_label_image

__all__ = [
    "DEFAULT_SCALES",
    "DISK_RTOL",
    "check_scales",
    "CalcificationMasks",
    "MaskBuilder",
    "build_masks",
    "dilate_disk",
    "disk_footprint",
    "merge_lookup_table",
    "multiscale_merge_index",
    "object_band",
]

#: The paper's 65 dilation radii, 0..64 px at 0.07 mm, in mm.
DEFAULT_SCALES = np.arange(65) * 0.07

#: Relative tolerance on the squared radius of :func:`disk_footprint`: lattice points at
#: exactly the radius (e.g. 3 px of 0.1 mm for 0.3 mm) stay inside despite rounding.
DISK_RTOL = 1e-9

_CROSS = ndi.generate_binary_structure(2, 1)

# Largest (boundary points x boundary points) offset block held in memory at once.
_BLOCK = 4_000_000


def object_band(
    obj: np.ndarray, foreground: np.ndarray, width_mm: float, spacing: tuple[float, float]
) -> np.ndarray:
    """Background band of one object: pixels within ``width_mm`` of it, no calcification.

    The distance is Euclidean in mm (so anisotropic spacing gives an elliptical band in
    pixels). Pixels of *any* calcification are excluded; bands of nearby calcifications may
    share pixels (each object keeps its own full band).

    Parameters
    ----------
    obj : ndarray of bool
        The object (usually a crop around it).
    foreground : ndarray of bool
        All calcifications in the same crop.
    width_mm : float
        Band width in mm (paper: 25 px at 0.07 mm = 1.75 mm).
    spacing : (float, float)
        Pixel spacing in mm.

    Examples
    --------
    >>> import numpy as np
    >>> obj = np.zeros((7, 7), bool); obj[3, 3] = True
    >>> object_band(obj, obj, 1.0, (1.0, 1.0)).astype(int)
    array([[0, 0, 0, 0, 0, 0, 0],
           [0, 0, 0, 0, 0, 0, 0],
           [0, 0, 0, 1, 0, 0, 0],
           [0, 0, 1, 0, 1, 0, 0],
           [0, 0, 0, 1, 0, 0, 0],
           [0, 0, 0, 0, 0, 0, 0],
           [0, 0, 0, 0, 0, 0, 0]])
    """
    dist = ndi.distance_transform_edt(~obj, sampling=spacing)
    return (dist <= width_mm) & ~foreground


# ---------------------------------------------------------------------------- disks

def check_scales(scales) -> np.ndarray:
    """Validate dilation radii (mm): 1-D, finite, >= 0, strictly increasing.

    ``None`` gives :data:`DEFAULT_SCALES` (the paper's 0..64 px at 0.07 mm).

    Examples
    --------
    >>> check_scales([0.0, 0.07, 0.14])
    array([0.  , 0.07, 0.14])
    """
    if scales is None:
        return DEFAULT_SCALES.copy()
    s = np.asarray(scales, dtype=float)
    if s.ndim != 1 or s.size == 0:
        raise ValueError(f"scales must be a non-empty 1-D sequence of radii in mm, got {scales!r}")
    if not np.isfinite(s).all() or (s < 0).any():
        raise ValueError(f"scales must be finite and >= 0 mm, got {scales!r}")
    if (np.diff(s) <= 0).any():
        raise ValueError(f"scales must be strictly increasing, got {scales!r}")
    return s


def _disk_rows(radius: float, spacing: tuple[float, float], h: int, xmax: int) -> np.ndarray:
    """Half-width ``w(dy)`` of each row ``dy = -h..h`` of the disk; -1 for an empty row.

    Uses the very predicate of :func:`disk_footprint`; it is monotone in ``|dx|`` (rounding is
    monotone), so each row is the interval ``[-w, w]``.
    """
    sy, sx = spacing
    dy = np.arange(-h, h + 1)[:, None]
    dx = np.arange(0, xmax + 1)[None, :]
    inside = (dy * sy) ** 2 + (dx * sx) ** 2 <= radius**2 * (1 + DISK_RTOL)
    return inside.sum(axis=1) - 1


def disk_footprint(radius: float, spacing: Sequence[float] = (1.0, 1.0)) -> np.ndarray:
    """Disk of ``radius`` mm on the pixel lattice: ``(dy*sy)**2 + (dx*sx)**2 <= radius**2``.

    The comparison allows a relative error of :data:`DISK_RTOL` on ``radius**2`` so that
    offsets exactly on the circle are inside whatever the rounding of ``dx * sx``.

    Parameters
    ----------
    radius : float
        Radius in mm (>= 0). A radius below the pixel spacing gives the single centre pixel.
    spacing : (float, float)
        Pixel spacing in mm (row, col).

    Returns
    -------
    ndarray of bool, shape (2*h+1, 2*w+1)
        The footprint, centred, cropped to its extent.

    Examples
    --------
    >>> disk_footprint(1.0).astype(int)
    array([[0, 1, 0],
           [1, 1, 1],
           [0, 1, 0]])
    >>> disk_footprint(0.14, (0.14, 0.07)).astype(int)
    array([[0, 0, 1, 0, 0],
           [1, 1, 1, 1, 1],
           [0, 0, 1, 0, 0]])
    """
    sy, sx = check_spacing(spacing, plausible=False)
    if not np.isfinite(radius) or radius < 0:
        raise ValueError(f"radius must be a finite value >= 0 mm, got {radius!r}")
    h = int(np.floor(radius / sy)) + 1
    xm = int(np.floor(radius / sx)) + 1
    dy = np.arange(-h, h + 1)[:, None]
    dx = np.arange(-xm, xm + 1)[None, :]
    fp = (dy * sy) ** 2 + (dx * sx) ** 2 <= radius**2 * (1 + DISK_RTOL)
    rows = np.flatnonzero(fp.any(axis=1))
    cols = np.flatnonzero(fp.any(axis=0))
    hh = h - rows[0]
    ww = xm - cols[0]
    return fp[h - hh : h + hh + 1, xm - ww : xm + ww + 1]


def dilate_disk(
    mask: np.ndarray, radius: float, spacing: Sequence[float] = (1.0, 1.0)
) -> np.ndarray:
    """Exact binary dilation of ``mask`` by :func:`disk_footprint` (output clipped to shape).

    Equal to ``scipy.ndimage.binary_dilation(mask, structure=disk_footprint(radius,
    spacing))`` but computed row by row of the disk (1-D maximum filters), which is much
    faster for large radii.

    Examples
    --------
    >>> import numpy as np
    >>> m = np.zeros((5, 5), bool); m[2, 2] = True
    >>> dilate_disk(m, 1.0).astype(int)
    array([[0, 0, 0, 0, 0],
           [0, 0, 1, 0, 0],
           [0, 1, 1, 1, 0],
           [0, 0, 1, 0, 0],
           [0, 0, 0, 0, 0]])
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {mask.shape}")
    fp = disk_footprint(radius, spacing)
    h = fp.shape[0] // 2
    out = np.zeros(mask.shape, bool)
    rows_any = mask.any(axis=1)
    if not rows_any.any():
        return out
    src = mask.view(np.uint8)
    hmax: dict[int, np.ndarray] = {}
    n_rows = mask.shape[0]
    for i, row in enumerate(fp):
        w = (int(row.sum()) - 1) // 2
        if w not in hmax:
            hmax[w] = ndi.maximum_filter1d(src, 2 * w + 1, axis=1, mode="constant", cval=0) > 0
        dy = i - h
        # out[y] |= hmax[y - dy]
        lo, hi = max(dy, 0), min(n_rows + dy, n_rows)
        if lo < hi:
            out[lo:hi] |= hmax[w][lo - dy : hi - dy]
    return out


@lru_cache(maxsize=16)
def _merge_table_cached(sy: float, sx: float, scales: tuple[float, ...]) -> np.ndarray:
    s = np.asarray(scales)
    n_s = len(s)
    h = int(np.floor(s[-1] / sy)) + 1
    xm = int(np.floor(s[-1] / sx)) + 1
    w = np.stack([_disk_rows(r, (sy, sx), h, xm) for r in s])  # (S, 2h+1)
    neg = -(10**9)
    wv = np.where(w >= 0, w, neg).astype(np.int64)
    # Max-plus convolution over rows: row y of D+D is [-W(y), W(y)] with
    # W(y) = max_{y1 + y2 = y} w(y1) + w(y2) (rows of both summands are centred intervals).
    big = np.full((n_s, 4 * h + 1), neg, np.int64)
    for t in range(2 * h + 1):
        seg = big[:, t : t + 2 * h + 1]
        np.maximum(seg, wv[:, t : t + 1] + wv, out=seg)
    wpos = big[:, 2 * h :]  # rows vy = 0..2h
    wpos = np.where(wpos >= 0, wpos, -1)
    xmax = max(int(wpos.max()), 0)
    dtype = np.int16 if n_s < np.iinfo(np.int16).max else np.int32
    table = np.full((2 * h + 2, xmax + 2), n_s, dtype)
    vx = np.arange(xmax + 1)
    for vy in range(2 * h + 1):
        # Footprints are nested (increasing radii), so W is non-decreasing along scales.
        table[vy, : xmax + 1] = np.searchsorted(wpos[:, vy], vx, side="left")
    table.setflags(write=False)
    return table


def merge_lookup_table(spacing: Sequence[float], scales=None) -> np.ndarray:
    """First scale at which two pixels at offset ``(|vy|, |vx|)`` are joined by dilation.

    ``table[vy, vx]`` is the smallest ``k`` such that ``(vy, vx)`` lies in
    ``D_k + D_k`` (``D_k`` = :func:`disk_footprint` of ``scales[k]``), else ``len(scales)``.
    The last row and column hold ``len(scales)`` so that offsets can be clipped to the table.
    Cached per spacing and scales; the result is read-only.

    Examples
    --------
    >>> t = merge_lookup_table((1.0, 1.0), [0.0, 1.0, 2.0])
    >>> t[0, :6].tolist()  # offsets along a row
    [0, 1, 1, 2, 2, 3]
    >>> int(t[1, 1]), int(t[2, 2]), int(t[3, 3])
    (1, 2, 3)
    """
    sy, sx = check_spacing(spacing, plausible=False)
    s = check_scales(scales)
    return _merge_table_cached(sy, sx, tuple(float(v) for v in s))


def _boundary_points(labels: np.ndarray, n: int):
    """Boundary pixels (a 4-neighbour with another label) sorted by label, and bounding boxes."""
    pad = np.pad(labels, 1)
    c = pad[1:-1, 1:-1]
    bnd = (c > 0) & (
        (pad[:-2, 1:-1] != c) | (pad[2:, 1:-1] != c) | (pad[1:-1, :-2] != c) | (pad[1:-1, 2:] != c)
    )
    rr, cc = np.nonzero(bnd)
    ll = c[rr, cc]
    order = np.argsort(ll, kind="stable")
    rr, cc, ll = rr[order], cc[order], ll[order]
    starts = np.searchsorted(ll, np.arange(1, n + 2))
    bbox = np.zeros((n, 4), np.int64)  # top, bottom, left, right (inclusive)
    present = starts[1:] > starts[:-1]
    if present.any():
        st = starts[:-1][present]
        bbox[present, 0] = np.minimum.reduceat(rr, st)
        bbox[present, 1] = np.maximum.reduceat(rr, st)
        bbox[present, 2] = np.minimum.reduceat(cc, st)
        bbox[present, 3] = np.maximum.reduceat(cc, st)
    return rr, cc, ll, starts, bbox, present


def multiscale_merge_index(
    labels: np.ndarray, spacing: Sequence[float] = (0.07, 0.07), scales=None
) -> np.ndarray:
    """First scale at which each pair of objects, each dilated by a disk, overlaps.

    Exact: equal to dilating every object separately by :func:`disk_footprint` at every
    scale (without clipping at the image border) and testing pairwise overlap, but computed
    from boundary-pixel offsets and :func:`merge_lookup_table`, with a bounding-box lower
    bound that skips pairs too far apart to ever merge.

    Parameters
    ----------
    labels : ndarray of int, shape (H, W)
        Label image, objects ``1..n`` (0 = background). Objects need not be connected.
    spacing : (float, float)
        Pixel spacing in mm.
    scales : array-like of float, optional
        Strictly increasing dilation radii in mm; default :data:`DEFAULT_SCALES`.

    Returns
    -------
    ndarray of int32, shape (n, n)
        ``merge_index[i, j]`` for objects ``i+1`` and ``j+1``; ``len(scales)`` if they never
        overlap; 0 on the diagonal. Symmetric.

    Examples
    --------
    >>> import numpy as np
    >>> lab = np.zeros((1, 12), int); lab[0, 0] = 1; lab[0, 5] = 2; lab[0, 11] = 3
    >>> multiscale_merge_index(lab, (1.0, 1.0), [0, 1, 2, 3])
    array([[0, 3, 4],
           [3, 0, 3],
           [4, 3, 0]], dtype=int32)
    """
    labels = check_label_image(labels, "labels", nonnegative=True).astype(np.int64, copy=False)
    sp = check_spacing(spacing, plausible=False)
    s = check_scales(scales)
    n_s = len(s)
    n = int(labels.max(initial=0))
    merge = np.full((n, n), n_s, np.int32)
    np.fill_diagonal(merge, 0)
    if n < 2:
        return merge
    table = merge_lookup_table(sp, s)
    ycap, xcap = table.shape[0] - 1, table.shape[1] - 1
    rr, cc, ll, starts, bbox, present = _boundary_points(labels, n)

    # Lower bound from the bounding-box gaps (the table is monotone in |vy| and |vx|), for a
    # block of rows at a time: the memory stays that of the (n, n) result, not a few times
    # it (a whole mammogram under the authors' rule has tens of thousands of objects).
    top, bot, left, right = bbox.T
    cols = np.arange(n)
    rows_per_block = max(1, _BLOCK // n)
    for b0 in range(0, n, rows_per_block):
        b1 = min(b0 + rows_per_block, n)
        gy = np.maximum(0, np.maximum(top[None, :] - bot[b0:b1, None], top[b0:b1, None] - bot))
        gx = np.maximum(
            0, np.maximum(left[None, :] - right[b0:b1, None], left[b0:b1, None] - right)
        )
        cand = table[np.minimum(gy, ycap), np.minimum(gx, xcap)] < n_s
        del gy, gx
        cand &= present[b0:b1, None] & present[None, :]
        cand &= cols[None, :] > np.arange(b0, b1)[:, None]  # each pair once, j > i
        for k in np.flatnonzero(cand.any(axis=1)):
            i = b0 + k
            js = np.flatnonzero(cand[k])
            # the boundary points of objects js, grouped by object in increasing order
            counts = starts[js + 1] - starts[js]
            seg = np.concatenate(([0], np.cumsum(counts)[:-1]))
            pts = np.repeat(starts[js] - seg, counts) + np.arange(int(counts.sum()))
            qy, qx = rr[pts], cc[pts]
            py, px = rr[starts[i] : starts[i + 1]], cc[starts[i] : starts[i + 1]]
            colmin = np.full(qy.size, n_s, table.dtype)
            step = max(1, _BLOCK // max(qy.size, 1))
            for a in range(0, py.size, step):
                dy = np.minimum(np.abs(py[a : a + step, None] - qy[None, :]), ycap)
                dx = np.minimum(np.abs(px[a : a + step, None] - qx[None, :]), xcap)
                np.minimum(colmin, table[dy, dx].min(axis=0), out=colmin)
            vals = np.minimum.reduceat(colmin, seg)
            merge[i, js] = vals
            merge[js, i] = vals
    return merge


# ---------------------------------------------------------------------------- record
class CalcificationMasks:
    """Foreground, background and multi-scale connectivity of one ROI.

    Background bands: each object keeps its own full band (pixels within ``band_width`` mm
    of it); bands of close calcifications may share pixels, and pixels of any calcification
    are excluded from every band (:func:`object_band`).

    The record is immutable. Its merge index, unless given, is computed from the foreground
    on first access (:func:`multiscale_merge_index`): it costs time and memory quadratic in
    the number of objects (seconds and gigabytes for the tens of thousands of objects of a
    whole mammogram), and consumers of the foreground alone, such as a per-object
    measurement table, never need it. A pickled record (a joblib worker's result, an on-disk
    cache entry) always carries it, so that it is computed once, where the record is built.

    Parameters
    ----------
    foreground, spacing, band_width, scales
        As the attributes below.
    merge_index : ndarray of int, shape (n, n), default=None
        The multi-scale connectivity (see the attribute); None computes it from
        ``foreground``, ``spacing`` and ``scales`` when first asked for.

    Attributes
    ----------
    foreground : ndarray of int32, shape (H, W)
        Calcifications kept for analysis, labelled 1..n (0 = background).
    spacing : (float, float)
        Pixel spacing in mm.
    band_width : float
        Width of each object's background band in mm.
    scales : ndarray of float, shape (S,)
        Dilation radii in mm (paper: 0..64 px at 0.07 mm).
    merge_index : ndarray of int, shape (n, n)
        ``merge_index[i, j]`` is the index of the first scale at which objects ``i+1`` and
        ``j+1``, each dilated by a disk of that radius, overlap; ``S`` if they never do within
        ``scales``. The diagonal is 0.

    Examples
    --------
    >>> import numpy as np
    >>> fg = np.zeros((1, 8), np.int32); fg[0, 0] = 1; fg[0, 3] = 2
    >>> m = CalcificationMasks(fg, (1.0, 1.0), 1.0, [0.0, 1.0, 2.0])
    >>> m
    CalcificationMasks(shape=(1, 8), n_objects=2, spacing=(1.0, 1.0), band_width=1.0, \
n_scales=3)
    >>> m.merge_index
    array([[0, 2],
           [2, 0]], dtype=int32)
    """

    def __init__(self, foreground, spacing, band_width, scales, merge_index=None) -> None:
        # The record owns its arrays, like an ROI: its content and hash never change.
        init = object.__setattr__
        init(self, "foreground", owned(np.asarray(foreground)))
        init(self, "spacing", tuple(float(s) for s in spacing))
        init(self, "band_width", band_width)
        init(self, "scales", owned(np.asarray(scales)))
        if merge_index is not None:
            # The instance entry the property reads (a property cannot be assigned).
            self.__dict__["merge_index"] = owned(np.asarray(merge_index))

    def __setattr__(self, name, value):
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name):
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def __getstate__(self) -> dict:
        # Computed here, in the worker or process that built the record, rather than again
        # in every process that reads it back (and a cache entry without it would save
        # little: it is most of the cost of the masks).
        self.merge_index  # noqa: B018
        return dict(self.__dict__)

    def __repr__(self) -> str:
        # No arrays, and nothing that would compute the merge index.
        return (
            f"{type(self).__name__}(shape={self.foreground.shape}, n_objects={self.n_objects}, "
            f"spacing={self.spacing}, band_width={self.band_width!r}, "
            f"n_scales={len(self.scales)})"
        )

    @property
    def merge_index(self) -> np.ndarray:
        """First scale at which each pair of objects overlaps, shape (n, n) (see above)."""
        # Kept in the instance under its public name: the records pickled before it became
        # lazy (the dataclass) read back as they are.
        mi = self.__dict__.get("merge_index")
        if mi is None:
            mi = owned(multiscale_merge_index(self.foreground, self.spacing, self.scales))
            self.__dict__["merge_index"] = mi
        return mi

    def content_hash(self) -> str:
        """SHA-1 of everything the record holds (the per-ROI cache keys on it).

        Computed once: the record is immutable, and cache look-ups ask for it per ROI,
        stage, candidate and fold. It covers the merge index (computing it if need be), so
        a lazy record and one given the same matrix hash alike.
        """
        digest = self.__dict__.get("_content_hash")
        if digest is None:
            h = hashlib.sha1(repr((float(self.band_width), self.spacing)).encode())
            for a in (self.foreground, np.asarray(self.scales, float), self.merge_index):
                h.update(array_digest(a))
            digest = h.hexdigest()
            object.__setattr__(self, "_content_hash", digest)
        return digest

    @property
    def n_objects(self) -> int:
        """Number of calcifications (without computing the merge index)."""
        mi = self.__dict__.get("merge_index")
        if mi is not None:
            return int(mi.shape[0])
        return int(self.foreground.max(initial=0))

    def adjacency(self, scale_index: int) -> np.ndarray:
        """Boolean adjacency matrix of the connectivity graph at one scale."""
        a = self.merge_index <= scale_index
        np.fill_diagonal(a, False)
        return a

    def band_margin(self) -> tuple[int, int]:
        """Pixels to add around an object's bounding box so that its band fits."""
        return tuple(int(np.ceil(self.band_width / s)) + 1 for s in self.spacing)

    def object_windows(
        self, pad: int = 0, *, bands: bool = True
    ) -> Iterator[tuple[int, tuple[slice, slice], np.ndarray, np.ndarray | None]]:
        """Yield ``(label, window, object_mask, band_mask)`` for each object.

        ``window`` is a pair of slices into the ROI image covering the object, its band and
        ``pad`` extra pixels, clipped to the image; the masks are crops of that window.
        ``bands=False`` gives None for ``band_mask``, for consumers of the objects alone (a
        band costs a distance transform per object); the windows stay the same, so that
        values computed in window coordinates (e.g. a centroid) do not change in the last
        digit.
        """
        fg = self.foreground
        my, mx = self.band_margin()
        for lab, sl in enumerate(ndi.find_objects(fg), start=1):
            if sl is None:
                continue
            r0 = max(sl[0].start - my - pad, 0)
            r1 = min(sl[0].stop + my + pad, fg.shape[0])
            c0 = max(sl[1].start - mx - pad, 0)
            c1 = min(sl[1].stop + mx + pad, fg.shape[1])
            win = (slice(r0, r1), slice(c0, c1))
            crop = fg[win]
            obj = crop == lab
            band = object_band(obj, crop > 0, self.band_width, self.spacing) if bands else None
            yield lab, win, obj, band

    def background(self) -> np.ndarray:
        """Union of all objects' background bands (boolean image, for plots)."""
        out = np.zeros(self.foreground.shape, bool)
        for _, win, _, band in self.object_windows():
            out[win] |= band
        return out

    def dilated(self, scale_index: int) -> np.ndarray:
        """Foreground dilated by the disk of ``scales[scale_index]`` (paper Figure 4).

        A boolean image of the ROI's shape (the dilation is clipped at the border; the
        connectivity in ``merge_index`` is not).
        """
        k = int(scale_index)
        if not -len(self.scales) <= k < len(self.scales):
            raise IndexError(
                f"scale_index {scale_index} out of range for {len(self.scales)} scales"
            )
        return dilate_disk(self.foreground > 0, float(self.scales[k]), self.spacing)


def build_masks(
    calcifications: np.ndarray,
    spacing: Sequence[float] = (0.07, 0.07),
    *,
    region: np.ndarray | None = None,
    band_width: float = 1.75,
    scales=None,
    min_size: float = 0.0,
) -> CalcificationMasks:
    """Build the :class:`CalcificationMasks` of one ROI.

    The foreground is made of the 4-connected components of ``calcifications > 0`` that
    have at least one pixel inside ``region`` (the whole component is kept, as the paper keeps
    "the segmentation mask overlapping the ROIs") and an area of at least ``min_size`` mm².
    They are relabelled ``1..n`` in raster order (order of their first pixel). Touching
    segmented objects therefore become one object.

    Parameters
    ----------
    calcifications : ndarray of int or bool, shape (H, W)
        Segmented calcifications (label image or binary mask).
    spacing : (float, float)
        Pixel spacing in mm.
    region : ndarray of bool, optional
        Annotated region; ``None`` keeps every component.
    band_width : float
        Background band width in mm.
    scales : array-like of float, optional
        Strictly increasing dilation radii in mm; default :data:`DEFAULT_SCALES`.
    min_size : float
        Components with a smaller area (mm²) are dropped; 0 keeps all (the paper).

    Examples
    --------
    >>> import numpy as np
    >>> calc = np.zeros((6, 8), int); calc[1, 1] = 5; calc[1, 3:5] = 2; calc[4, 6] = 7
    >>> region = np.zeros((6, 8), bool); region[:3, 4:] = True
    >>> m = build_masks(calc, (1.0, 1.0), region=region, scales=[0, 1, 2])
    >>> m.foreground[1].tolist(), m.n_objects
    ([0, 0, 0, 1, 1, 0, 0, 0], 1)
    >>> build_masks(calc, (1.0, 1.0), scales=[0, 1, 2]).merge_index
    array([[0, 1, 3],
           [1, 0, 3],
           [3, 3, 0]], dtype=int32)
    """
    calc = check_label_image(calcifications, "calcifications")
    sp = check_spacing(spacing, plausible=False)
    s = check_scales(scales)
    comp, n = ndi.label(calc > 0, structure=_CROSS)
    keep = np.ones(n + 1, bool)
    keep[0] = False
    if region is not None:
        region = np.asarray(region, dtype=bool)
        if region.shape != calc.shape:
            raise ValueError(f"region has shape {region.shape}, calcifications {calc.shape}")
        inside = np.zeros(n + 1, bool)
        inside[np.unique(comp[region])] = True
        keep &= inside
    if min_size > 0:
        area = np.bincount(comp.ravel(), minlength=n + 1) * (sp[0] * sp[1])
        keep &= area >= min_size
    new = np.zeros(n + 1, np.int32)
    new[keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.int32)
    fg = new[comp]
    # The merge index is computed when a consumer first asks for it (see CalcificationMasks).
    return CalcificationMasks(fg, sp, float(band_width), s)


# ---------------------------------------------------------------------------- estimator
def _masks_one(roi, *, band_width: float, scales: tuple, min_size: float) -> CalcificationMasks:
    try:
        calc = check_label_image(roi.calcifications, "calcifications", nonnegative=True)
    except (TypeError, ValueError) as exc:
        raise ROIValidationError(roi.roi_id, str(exc)) from exc
    return build_masks(
        calc,
        roi.spacing,
        region=roi.region,
        band_width=band_width,
        scales=scales,
        min_size=min_size,
    )


class MaskBuilder(ImageStage):
    """Foreground, background bands and multi-scale connectivity of each ROI (stateless).

    For each ROI, the 4-connected components of ``roi.calcifications`` that overlap
    ``roi.region`` (whole components kept) become the foreground, relabelled ``1..n`` in
    raster order; the result is attached as ``roi.masks`` (a :class:`CalcificationMasks`).
    Background bands are defined per object (each object keeps its full band, bands may share
    pixels, calcification pixels are excluded). The connectivity at the dilation ``scales`` is
    computed exactly from object geometry (:func:`multiscale_merge_index`), never from
    full-image dilations, when first asked for (:class:`CalcificationMasks`);
    :meth:`CalcificationMasks.dilated` renders one scale for plots.

    Parameters
    ----------
    band_width : float, default=1.75
        Background band width in mm (paper: 25 px at 0.07 mm).
    scales : array-like of float, default=None
        Strictly increasing dilation radii in mm; ``None`` = 0..64 px at 0.07 mm
        (``np.arange(65) * 0.07``), the paper's 65 scales.
    min_size : float, default=0
        Drop components smaller than this area in mm²; 0 keeps all (the paper).
    memory : None, str or joblib.Memory, default=None
        Per-ROI cache of the masks.
    n_jobs : int, default=None
        Parallel jobs over ROIs.

    Attributes
    ----------
    scales_ : ndarray of float
        The dilation radii used (mm).

    Examples
    --------
    >>> import numpy as np
    >>> from skcalc import ROI
    >>> calc = np.zeros((20, 20), np.int32); calc[5, 5] = 1; calc[5, 9] = 2
    >>> roi = ROI(np.zeros((20, 20)), spacing=0.1, calcifications=calc)
    >>> out = MaskBuilder(scales=[0.0, 0.1, 0.2]).fit_transform([roi])
    >>> out[0].masks.merge_index
    array([[0, 2],
           [2, 0]], dtype=int32)
    """

    _parameter_constraints: dict = {
        "band_width": [Interval(Real, 0, None, closed="neither")],
        "scales": ["array-like", None],
        "min_size": [Interval(Real, 0, None, closed="left")],
        "memory": [None, str, HasMethods(["cache"])],
        "n_jobs": [None, Integral],
    }

    def __init__(self, band_width=1.75, scales=None, min_size=0.0, memory=None, n_jobs=None):
        self.band_width = band_width
        self.scales = scales
        self.min_size = min_size
        self.memory = memory
        self.n_jobs = n_jobs

    _stage = "masks"
    _one = staticmethod(_masks_one)
    _requires = ("calcifications",)
    _depends_on = ("calcifications", "region")
    _output_field = "masks"

    def _fit_rois(self, rois):
        self.scales_ = check_scales(self.scales)

    def _params(self, rois):
        return {
            "band_width": float(self.band_width),
            "scales": tuple(float(v) for v in check_scales(self.scales)),
            "min_size": float(self.min_size),
        }

    def _summary(self, rois, masks):
        empty = [r.roi_id for r, m in zip(rois, masks) if m.n_objects == 0]
        if empty:
            return (
                f"{len(empty)} ROI(s) have no calcification overlapping the region "
                f"(e.g. {empty[:3]}); their features take the documented empty-ROI values"
            )
        return None
