"""Hessian difference-of-Gaussians (HDoG) candidate detection (HDoGReg, Marasinou et al.).

The candidate stage of HDoGReg, written from the description of the authors'
``blob_detector_hdog`` (``method/hdogreg.md`` section 2): scale-normalised DoG peaks in
(row, col, scale), each grown into the 4-connected component of its own scale's Hessian
mask, the union labelled with 4-connectivity.

Memory and speed: the Gaussians and DoGs are float32 and computed streaming into reused
buffers (the column pass on the transposed image, bit-identical to ``gaussian_filter``), so
at most four float32 planes are alive (three when few pixels pass the DoG threshold); the
3x3x3 maximum is evaluated only at above-threshold pixels; the Hessian mask is computed and
labelled only on the tiles that the candidates' components reach (the whole plane, in row
strips, when candidates are everywhere). A 4096 x 3328 image needs about 1 s and under
200 MB of work memory instead of the reference's ~22 s and ~2.3 GB.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import ndimage as ndi
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from .._units import resolve_bit_depth

__all__ = ["hdog_candidates", "hdog_sigmas", "scale_to_unit"]

# 4-connectivity, as scipy.ndimage.label's default in the reference.
_FOUR = ndi.generate_binary_structure(2, 1)
# Rows per strip of the Hessian stage: bounds its six float32 work buffers.
_STRIP_ROWS = 256
# Tile side of the sparse Hessian stage, and the fraction of tiles with a candidate above
# which the whole plane is computed instead.
_TILE = 64
# Above-threshold fraction of a DoG plane below which the next scale's comparison uses the
# plane's 3x3 maxima near those pixels instead of the plane (one float32 plane less).
_SPARSE_ABOVE = 1 / 64
# Columns per block of the axis-0 Gaussian pass (run on the transposed image).
_GAUSS_COLS = 16
_DENSE_TILES = 0.5
# Growth steps of the tiled stage after which the whole plane is computed instead.
_MAX_GROWTH_STEPS = 64
# Tiles whose Hessian is computed together (six float32 work stacks of ~4.7 MB each).
_TILE_BATCH = 256


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


def _gradient(f: np.ndarray, axis: int) -> np.ndarray:
    """``np.gradient(f, axis=axis)`` of a float array, bit for bit, without its overhead.

    Central differences halved inside, one-sided differences at the two ends (unit spacing,
    ``edge_order=1``), in ``f``'s dtype, as NumPy computes them. The sparse Hessian stage
    calls it six times per block, where ``np.gradient``'s argument handling was a third of
    the time.
    """
    if f.shape[axis] < 2 or f.dtype.kind != "f":
        return np.gradient(f, axis=axis)  # its own errors and integer promotion
    lead = (slice(None),) * (axis % f.ndim)

    def at(a, b):
        return (*lead, slice(a, b))

    out = np.empty_like(f)
    np.subtract(f[at(2, None)], f[at(None, -2)], out=out[at(1, -1)])
    out[at(1, -1)] /= 2.0
    np.subtract(f[at(1, 2)], f[at(0, 1)], out=out[at(0, 1)])
    np.subtract(f[at(-1, None)], f[at(-2, -1)], out=out[at(-1, None)])
    return out


def _hessian_criterion(sub: np.ndarray, h: np.float64 | None) -> np.ndarray:
    """Hessian criterion of ``sub`` (or of each plane of a stack: the last two axes) by
    ``np.gradient`` twice, unit spacing: negative trace and positive determinant, or
    ``|det| / trace^2 < h``."""
    g = _gradient(sub, -2)
    h00 = _gradient(g, -2)
    h01 = _gradient(g, -1)
    g = _gradient(sub, -1)
    h10 = _gradient(g, -2)
    h11 = _gradient(g, -1)
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
    return crit


def _hessian_window(
    dog: np.ndarray, rows: tuple[int, int], cols: tuple[int, int], h: np.float64 | None
) -> np.ndarray:
    """Hessian criterion of ``dog[r0:r1, c0:c1]``, as on the whole plane.

    Computed on the block with a 2-pixel halo on each side that is not an image border:
    second differences by ``np.gradient`` twice reach 2 pixels away, and a block edge that is
    an image edge gets the same one-sided differences as the whole plane, so every pixel of the
    block goes through exactly the whole-plane arithmetic.
    """
    (r0, r1), (c0, c1) = rows, cols
    a0, b0 = max(r0 - 2, 0), min(r1 + 2, dog.shape[0])
    a1, b1 = max(c0 - 2, 0), min(c1 + 2, dog.shape[1])
    crit = _hessian_criterion(dog[a0:b0, a1:b1], h)
    return crit[r0 - a0 : r1 - a0, c0 - a1 : c1 - a1]


def _hessian_tiles(
    dog: np.ndarray, tiles: np.ndarray, n_tx: int, tile: int, h: np.float64 | None
) -> np.ndarray:
    """Hessian criterion of the ``tile x tile`` tiles ``tiles`` (raster numbers), as a stack.

    Tiles at least 2 pixels from every image border are computed together, each on its own
    window with a 2-pixel halo (the whole-plane arithmetic at every tile pixel, as
    :func:`_hessian_window`); the others (image borders, partial last tiles, zero-padded)
    one by one.
    """
    n_rows, n_cols = dog.shape
    ty, tx = np.divmod(tiles, n_tx)
    r0, c0 = ty * tile, tx * tile
    out = np.zeros((tiles.size, tile, tile), dtype=bool)
    inner = (r0 >= 2) & (r0 + tile + 2 <= n_rows) & (c0 >= 2) & (c0 + tile + 2 <= n_cols)
    off = np.arange(-2, tile + 2)
    at = np.flatnonzero(inner)
    for k in range(0, at.size, _TILE_BATCH):  # bounded work buffers
        b = at[k : k + _TILE_BATCH]
        win = dog[(r0[b, None] + off)[:, :, None], (c0[b, None] + off)[:, None, :]]
        out[b] = _hessian_criterion(win, h)[:, 2:-2, 2:-2]
    for k in np.flatnonzero(~inner):
        part = _hessian_window(dog, (r0[k], min(r0[k] + tile, n_rows)),
                               (c0[k], min(c0[k] + tile, n_cols)), h)
        out[k, : part.shape[0], : part.shape[1]] = part
    return out


def _hessian_mask(dog: np.ndarray, hessian_thr: float | None) -> np.ndarray:
    """Hessian criterion on one DoG plane, by ``np.gradient`` twice (unit spacing).

    Computed in row strips with a 2-row halo: every pixel then goes through exactly the
    arithmetic of ``np.gradient(np.gradient(dog))`` on the whole plane (second differences
    reach 2 rows away), so the result is identical while the work buffers stay small.
    """
    n_rows, n_cols = dog.shape
    out = np.empty(dog.shape, dtype=bool)
    h = None if hessian_thr is None else np.float64(hessian_thr)
    for a in range(0, n_rows, _STRIP_ROWS):
        b = min(a + _STRIP_ROWS, n_rows)
        out[a:b] = _hessian_window(dog, (a, b), (0, n_cols), h)
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
    sig_px = [tuple(float(v) for v in s_mm / sp) for s_mm in sigmas_mm]

    img_t = _scale_to_unit_transposed(image, bit_depth)
    shape = image.shape
    del image
    work = np.empty((_GAUSS_COLS, shape[0]), dtype=np.float32)
    n_dog = len(sigmas_mm) - 1
    factor = np.float32(1.0 / (sigma_ratio - 1.0))
    thr = _float32_at_or_below(threshold)  # float32 x > thr  <=>  x > threshold, exactly

    out = np.zeros(shape, dtype=bool)
    # A constant cube has every voxel "equal to its maximum" but no peaks. It can only give
    # candidates when every voxel is above the threshold, so the cube's range is only
    # computed while that holds.
    lo, hi = np.inf, -np.inf
    all_above = True
    # Float32 planes: the (transposed) image, DoG_i (made in G_i's buffer), G_{i+1}, and
    # DoG_{i-1} only when many of its pixels are above the threshold (else its maxima near
    # them are kept). A free plane takes the int32 labels of the whole-plane Hessian path,
    # then G_{i+2}.
    spare: np.ndarray | None = None
    g = _gaussian_into(img_t, sig_px[0], np.empty(shape, dtype=np.float32), work)
    prev_dog: np.ndarray | None = None
    prev_near = prev_near_max = np.zeros(0)
    prev: _ScaleCandidates | None = None
    for i in range(n_dog):
        buf = spare if spare is not None else np.empty(shape, dtype=np.float32)
        spare = None
        g_next = _gaussian_into(img_t, sig_px[i + 1], buf, work)
        if i == n_dog - 1:
            del img_t, work  # the last Gaussian is made
        dog = g
        dog -= g_next
        dog *= factor
        g = g_next
        del g_next

        # Peaks: above threshold, then >= the 3x3 maximum of this and the adjacent scales.
        # Testing only the above-threshold pixels replaces the full 3x3x3 maximum filter.
        above = np.flatnonzero(dog > thr)
        all_above = all_above and above.size == dog.size
        if all_above:
            lo, hi = min(lo, float(dog.min())), max(hi, float(dog.max()))
        vals = dog.ravel()[above]
        keep = vals >= _neighbourhood_max(dog, above)
        idx, vals = above[keep], vals[keep]
        if prev is not None:
            if prev_dog is not None:
                keep = vals >= _neighbourhood_max(prev_dog, idx)
                spare = prev_dog  # free now
            else:
                keep = vals >= _lookup_max(prev_near, prev_near_max, idx)
            idx, vals = idx[keep], vals[keep]
            prev.grow_into(out, prev.vals >= _neighbourhood_max(dog, prev.idx))
        prev_dog = None
        # What the next scale needs of this one: the 3x3 maximum at its candidates. When few
        # pixels are above the threshold, the maxima that can exceed it (those next to such a
        # pixel) are kept instead of the plane; any other is <= threshold < the candidate.
        sparse = i < n_dog - 1 and above.size <= _SPARSE_ABOVE * dog.size
        if sparse:
            prev_near = _dilate_flat(above, shape)
            prev_near_max = _neighbourhood_max(dog, prev_near)
        del above
        # The Hessian components that contain a candidate, kept sparse.
        prev = _ScaleCandidates(idx, vals, dog, hessian_thr, spare)
        if sparse or i == n_dog - 1:
            spare = dog  # this DoG plane is no longer needed: its buffer takes G_{i+2}
        else:
            prev_dog = dog
        del dog
    del g, spare, prev_dog
    if prev is not None:
        prev.grow_into(out, np.ones(prev.idx.size, dtype=bool))
    del prev

    labels = np.zeros(out.shape, dtype=np.int32)
    if not all_above or lo < hi:
        ndi.label(out, structure=_FOUR, output=labels)
    return labels


def _scale_to_unit_transposed(image: np.ndarray, bit_depth: int | None) -> np.ndarray:
    """:func:`scale_to_unit` of ``image.T``, C-contiguous, bit-identical.

    The same expression is evaluated on blocks of columns, without a full-size float64
    temporary. The transposed layout makes the column (axis-0) Gaussian pass contiguous.
    """
    bits = resolve_bit_depth(image, bit_depth)
    out = np.empty(image.shape[::-1], dtype=np.float32)
    denom = None if bits is None else float(2**bits - 1)
    step = 64
    for c in range(0, image.shape[1], step):
        block = image[:, c : c + step]
        out[c : c + step] = (block.astype(np.float32) if denom is None else block / denom).T
    return out


def _gaussian_into(
    img_t: np.ndarray, sigma_px: tuple[float, float], out: np.ndarray, work: np.ndarray
) -> np.ndarray:
    """``gaussian_filter(img, sigma_px, output=float32, mode='reflect', truncate=4)`` into ``out``.

    ``img_t`` is ``img.T`` (C-contiguous). ``gaussian_filter`` filters axis 0 into its float32
    output and then axis 1 of that output. Here the axis-0 pass runs along the contiguous rows
    of ``img_t``, a few columns at a time through ``work`` (each line is filtered by the same
    code on the same values, so the result is the same), and the axis-1 pass runs in place
    (each row is buffered before it is written): the result is bit-identical.
    """
    n_cols = out.shape[1]
    step = work.shape[0]
    for c in range(0, n_cols, step):
        w = work[: min(step, n_cols - c)]
        ndi.gaussian_filter1d(
            img_t[c : c + step], sigma_px[0], axis=1, output=w, mode="reflect", truncate=4.0
        )
        out[:, c : c + step] = w.T
    ndi.gaussian_filter1d(out, sigma_px[1], axis=1, output=out, mode="reflect", truncate=4.0)
    return out


class _ScaleCandidates:
    """One scale's peak candidates and, sparse, the Hessian components that contain them.

    Only the components that contain a candidate are needed. When the candidates are sparse
    (at most ``_DENSE_TILES`` of the ``_TILE`` x ``_TILE`` tiles hold one), the Hessian mask
    is computed only on the tiles with a candidate; the tiles are labelled separately and the
    labels joined across shared tile edges (a graph's connected components); every such
    component that reaches the edge of a tile whose neighbour is not computed yet adds that
    neighbour, until none does. Each component is then whole and equal to its whole-plane
    counterpart. Otherwise, or when the growth needs more than ``_MAX_GROWTH_STEPS`` steps or
    more than ``_DENSE_TILES`` of the tiles, the whole plane is computed and labelled.

    Parameters
    ----------
    idx, vals : ndarray
        Flat indices and DoG values of the candidates (not yet compared with the next scale).
    dog : ndarray of float32
        The scale's DoG plane.
    hessian_thr : float or None
        Hessian shape threshold, see :func:`hdog_candidates`.
    buf : ndarray of float32 or None
        A free buffer of the plane's shape, used for the int32 labels of the whole-plane path.

    Attributes
    ----------
    peak_lbl : ndarray
        Component of each candidate (0: the candidate is outside the Hessian mask).
    pixels, pixel_lbl : ndarray
        Flat indices of the pixels of the components that contain a candidate, and their
        component.
    n_labels : int
        One more than the largest component number.
    """

    def __init__(
        self,
        idx: np.ndarray,
        vals: np.ndarray,
        dog: np.ndarray,
        hessian_thr: float | None,
        buf: np.ndarray | None = None,
    ) -> None:
        self.idx, self.vals = idx, vals
        n_rows, n_cols = dog.shape
        tile = _TILE
        n_ty, n_tx = -(-n_rows // tile), -(-n_cols // tile)
        rows, cols = np.divmod(idx, n_cols)
        cand_tile = (rows // tile) * n_tx + cols // tile
        want = np.zeros(n_ty * n_tx, dtype=bool)
        want[cand_tile] = True
        if want.sum() > _DENSE_TILES * want.size:
            self._whole_plane(dog, hessian_thr, buf)
            return
        h = None if hessian_thr is None else np.float64(hessian_thr)
        done = np.zeros_like(want)
        slot = np.full(want.size, -1, dtype=np.intp)  # tile -> position in the stack
        tiles: list[int] = []
        lab = np.zeros((0, tile, tile), dtype=np.int32)  # labels of the computed tiles
        n = 0
        struct = np.zeros((3, 3, 3), dtype=bool)
        struct[1] = _FOUR  # 4-connectivity within each tile only
        for step_no in range(_MAX_GROWTH_STEPS + 1):
            new = want & ~done
            if not new.any():
                break
            if step_no == _MAX_GROWTH_STEPS or (want.sum() > _DENSE_TILES * want.size):
                # Components that wind across the image: the whole plane is cheaper.
                self._whole_plane(dog, hessian_thr, buf)
                return
            new_tiles = np.flatnonzero(new)  # raster order
            masks = _hessian_tiles(dog, new_tiles, n_tx, tile, h)
            slot[new_tiles] = np.arange(len(tiles), len(tiles) + new_tiles.size)
            tiles.extend(new_tiles.tolist())
            done |= new
            # Label the new tiles only, numbered after the earlier ones.
            new_lab, n_new = ndi.label(masks, structure=struct)
            del masks
            new_lab[new_lab > 0] += n
            n += n_new
            if len(tiles) > lab.shape[0]:
                grown = np.empty((2 * len(tiles), tile, tile), dtype=np.int32)
                grown[: len(tiles) - len(new_lab)] = lab[: len(tiles) - len(new_lab)]
                lab = grown
            lab[len(tiles) - len(new_lab) : len(tiles)] = new_lab
            del new_lab
            tid = np.asarray(tiles)
            ty_, tx_ = np.divmod(tid, n_tx)
            # Join labels across shared edges: right and lower neighbours.
            ea, eb = [np.zeros(0, lab.dtype)], [np.zeros(0, lab.dtype)]
            for ok, step, this_edge, next_edge in (
                (tx_ + 1 < n_tx, 1, (slice(None), tile - 1), (slice(None), 0)),
                (ty_ + 1 < n_ty, n_tx, (tile - 1, slice(None)), (0, slice(None))),
            ):
                pos = np.flatnonzero(ok)
                pos = pos[done[tid[pos] + step]]
                a = lab[(pos, *this_edge)].ravel()
                b = lab[(slot[tid[pos] + step], *next_edge)].ravel()
                both = (a > 0) & (b > 0)
                ea.append(a[both])
                eb.append(b[both])
            a, b = np.concatenate(ea), np.concatenate(eb)
            graph = coo_matrix((np.ones(a.size, dtype=np.int8), (a, b)), shape=(n + 1, n + 1))
            n_comp, comp = connected_components(graph, directed=False)
            comp += 1
            comp[0] = 0  # background (label 0 has no edge: its own component)
            peak_lab = lab[slot[cand_tile], rows % tile, cols % tile]
            self.peak_lbl = comp[peak_lab]
            hit = np.zeros(n_comp + 1, dtype=bool)
            hit[self.peak_lbl] = True
            hit[0] = False
            # A candidate's component on the edge of a tile whose neighbour is not computed
            # (and inside the image): compute that neighbour too.
            for ok, step, edge in (
                (tx_ + 1 < n_tx, 1, (slice(None), tile - 1)),
                (tx_ > 0, -1, (slice(None), 0)),
                (ty_ + 1 < n_ty, n_tx, (tile - 1, slice(None))),
                (ty_ > 0, -n_tx, (0, slice(None))),
            ):
                pos = np.flatnonzero(ok)
                pos = pos[~done[tid[pos] + step]]
                if pos.size:
                    reach = hit[comp[lab[(pos, *edge)]]].any(axis=1)
                    want[tid[pos[reach]] + step] = True
        if not tiles:
            self.peak_lbl = np.zeros(0, dtype=np.intp)
            self.pixels = np.zeros(0, dtype=np.intp)
            self.pixel_lbl = np.zeros(0, dtype=np.intp)
            self.n_labels = 1
            return
        lab = lab[: len(tiles)]
        k, r, c = np.nonzero(hit[comp[lab]])
        ty_, tx_ = np.divmod(tid[k], n_tx)
        self.pixels = (ty_ * tile + r) * n_cols + (tx_ * tile + c)
        self.pixel_lbl = comp[lab[k, r, c]]
        self.n_labels = hit.size

    def _whole_plane(
        self, dog: np.ndarray, hessian_thr: float | None, buf: np.ndarray | None
    ) -> None:
        if buf is None:
            buf = np.empty(dog.shape, dtype=np.float32)
        lbl = buf.view(np.int32)
        ndi.label(_hessian_mask(dog, hessian_thr), structure=_FOUR, output=lbl)
        flat = lbl.ravel()
        self.peak_lbl = flat[self.idx]
        hit = np.zeros(int(flat.max()) + 1, dtype=bool)
        hit[self.peak_lbl] = True
        hit[0] = False
        self.pixels = np.flatnonzero(hit[lbl])
        self.pixel_lbl = flat[self.pixels]
        self.n_labels = hit.size

    def grow_into(self, out: np.ndarray, final: np.ndarray) -> None:
        """OR into ``out`` the components of the candidates selected by ``final``."""
        if not final.any() or self.pixels.size == 0:
            return
        keep = np.zeros(self.n_labels, dtype=bool)
        keep[self.peak_lbl[final]] = True
        keep[0] = False
        out.ravel()[self.pixels[keep[self.pixel_lbl]]] = True


def _float32_at_or_below(value: float) -> np.float32:
    """The largest float32 <= ``value``.

    For float32 ``x``, ``x > value`` (an exact comparison, as in float64) is then
    ``x > _float32_at_or_below(value)``, without casting a plane to float64.
    """
    with np.errstate(over="ignore"):
        out = np.float32(value)
    if float(out) > value:
        out = np.nextafter(out, np.float32(-np.inf))
    return out


def _dilate_flat(flat_idx: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Sorted flat indices of the pixels within the 3x3 neighbourhood of any of ``flat_idx``."""
    n_rows, n_cols = shape
    rows, cols = np.divmod(flat_idx, n_cols)
    near = [
        np.clip(rows + dr, 0, n_rows - 1) * n_cols + np.clip(cols + dc, 0, n_cols - 1)
        for dr in (-1, 0, 1)
        for dc in (-1, 0, 1)
    ]
    return np.unique(np.concatenate(near))


def _lookup_max(near: np.ndarray, near_max: np.ndarray, flat_idx: np.ndarray) -> np.ndarray:
    """``near_max`` at ``flat_idx`` where it is in the sorted ``near``, else ``-inf``."""
    out = np.full(flat_idx.size, -np.inf, dtype=np.float32)
    if near.size:
        pos = np.minimum(np.searchsorted(near, flat_idx), near.size - 1)
        found = near[pos] == flat_idx
        out[found] = near_max[pos[found]]
    return out


def _neighbourhood_max(plane: np.ndarray, flat_idx: np.ndarray) -> np.ndarray:
    """Maximum of ``plane`` over the 3x3 neighbourhood of each pixel, existing pixels only.

    Clipping the neighbour coordinates at the border repeats an existing pixel, which is what
    ``maximum_filter(..., mode='nearest')`` does.
    """
    n_rows, n_cols = plane.shape
    rows, cols = np.divmod(flat_idx, n_cols)
    if not plane.flags.c_contiguous:
        best = plane.ravel()[flat_idx].copy()
        for dr in (-1, 0, 1):
            rr = np.clip(rows + dr, 0, n_rows - 1)
            for dc in (-1, 0, 1):
                if dr == 0 and dc == 0:
                    continue
                np.maximum(best, plane[rr, np.clip(cols + dc, 0, n_cols - 1)], out=best)
        return best
    # The same neighbours in the same order, gathered by flat index (faster).
    flat = plane.reshape(-1)
    best = flat.take(flat_idx)
    for dr in (-1, 0, 1):
        row_at = np.clip(rows + dr, 0, n_rows - 1)
        row_at *= n_cols
        for dc in (-1, 0, 1):
            if dr == 0 and dc == 0:
                continue
            at = np.clip(cols + dc, 0, n_cols - 1)
            at += row_at
            np.maximum(best, flat.take(at), out=best)
    return best


def _grow(out: np.ndarray, lbl: np.ndarray, peak_idx: np.ndarray) -> None:
    """OR into ``out`` the components of ``lbl`` that contain a peak (label lookup table)."""
    if peak_idx.size == 0:
        return
    keep = np.zeros(int(lbl.max()) + 1, dtype=bool)
    keep[lbl.ravel()[peak_idx]] = True
    keep[0] = False
    out |= keep[lbl]
