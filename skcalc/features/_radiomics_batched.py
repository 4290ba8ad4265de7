"""The batched path: pyradiomics feature functions run once on the stack of all objects.

Used by :func:`~skcalc.features._radiomics.radiomics_features_batch`; the reference path
(:mod:`skcalc.features._radiomics_reference`, pyradiomics' own classes object by object) is
what it is tested against and what it falls back to.

How the values stay equal to ``RadiomicsFeatureExtractor.execute`` (tested to 1e-9 relative):

* ``execute`` crops image and mask to the mask's bounding box without padding before it runs
  any class, so cropping to that box first changes no value.
* Each object is discretised once (pyradiomics re-discretises per class) with
  ``imageoperations.binImage``'s arithmetic.
* Each object's texture matrix comes from pyradiomics' own ``_calculateMatrix`` (its C
  extension); the matrices are stacked zero-padded to common gray levels (the layout of
  pyradiomics' voxel-based mode; empty rows add exact zeros) and each feature function runs
  once for the stack. Only per-object quantities are adapted: glcm's Idmn/Idn use each
  object's Ng, MCC's eigenvalues are taken on each object's own gray levels, the firstorder
  percentiles on each object's voxels. Sums are taken in another order, so values differ
  from the per-object classes by rounding (about 1e-13 relative).
* This reaches into pyradiomics' internals (``__new__``, ``_calculateMatrix``,
  ``_calculateCoefficients``, replaced getters), validated for pyradiomics-bhklab 3.1.4.
  A class that raises here is recomputed by the reference path, with a warning.
"""

from __future__ import annotations

import logging

import numpy as np

from ._radiomics_reference import class_feature_names, feature_class

__all__ = [
    "BATCHED",
    "GrayLevelBudgetError",
    "has_2x2_block",
    "n_gray_levels",
    "NotBatchable",
    "chunk_rows",
    "class_batch",
    "discretise",
    "prepare",
    "shape2d_one",
]


class _Object:
    """One object cropped to its mask's bounding box, discretised once for every class."""

    __slots__ = (
        "image",
        "mask",
        "binned",
        "gray_levels",
        "ng",
        "n_pixels",
        "texture_ok",
        "collapsed",
        "span",
    )

    def __init__(self, image, mask, binned, gray_levels, n_pixels, texture_ok, collapsed, span):
        self.image = image
        self.mask = mask
        self.binned = binned
        self.gray_levels = gray_levels
        self.ng = int(gray_levels.max())
        self.n_pixels = n_pixels
        self.texture_ok = texture_ok
        self.collapsed = collapsed  # distinct values, but a single gray level
        self.span = span  # value range


class GrayLevelBudgetError(ValueError):
    """An object would be discretised into more gray levels than allowed."""

    def __init__(self, n_levels: int, vmin: float, vmax: float, max_levels: int) -> None:
        self.n_levels, self.vmin, self.vmax, self.max_levels = n_levels, vmin, vmax, max_levels
        super().__init__(
            f"values {vmin:g}..{vmax:g} give {n_levels} gray levels, more than "
            f"max_gray_levels={max_levels}"
        )


def n_gray_levels(vmin: float, vmax: float, settings: dict) -> int:
    """Number of gray levels :func:`discretise` gives values in ``[vmin, vmax]``.

    Computed from the two numbers only, so that absurd ranges are refused before any
    array of bin edges is built (``np.arange`` over a 1e12 range needs terabytes).

    Examples
    --------
    >>> n_gray_levels(1000.0, 1100.0, {"binWidth": 5.0}), n_gray_levels(0.0, 1.0, {"binWidth": 5.0})
    (21, 1)
    >>> n_gray_levels(0.0, 1e12, {"binCount": 16})
    16
    """
    if settings.get("binCount") is not None:
        return int(settings["binCount"])
    width = float(settings.get("binWidth", 25))
    low = vmin - (vmin % width)
    return int(np.floor((vmax - low) / width)) + 1


def discretise(values: np.ndarray, settings: dict) -> np.ndarray:
    """pyradiomics' ``imageoperations.binImage`` restricted to the mask's values.

    The fixed-width edges repeat ``getBinEdges``' arithmetic with numpy's min/max (the same
    np.float64 values as its Python min/max loop, without that loop).
    """
    from radiomics import imageoperations

    if settings.get("binCount") is not None:
        edges = imageoperations.getBinEdges(values, **settings)
    else:
        width = settings.get("binWidth", 25)
        minimum, maximum = values.min(), values.max()
        edges = np.arange(minimum - (minimum % width), maximum + 2 * width, width)
        if len(edges) == 1:
            edges = [edges[0] - 0.5, edges[0] + 0.5]
    return np.digitize(values, edges)


def has_2x2_block(mask: np.ndarray) -> bool:
    """Whether ``mask`` holds a 2x2 block of pixels (every texture direction non-empty)."""
    return bool((mask[:-1, :-1] & mask[1:, :-1] & mask[:-1, 1:] & mask[1:, 1:]).any())


def prepare(image, mask, settings, min_texture_size, max_gray_levels=None) -> _Object | None:
    """Crop one object to its mask's bounding box and discretise it (None below 2 pixels).

    Raises :class:`GrayLevelBudgetError` before building any bin edges when the object
    would get more than ``max_gray_levels`` gray levels, and ``ValueError`` on non-finite
    values inside the mask.
    """
    mask = np.asarray(mask, dtype=bool)
    image = np.asarray(image)
    if image.shape != mask.shape:
        raise ValueError(f"image shape {image.shape} and mask shape {mask.shape} differ")
    n_pixels = int(np.count_nonzero(mask))
    if n_pixels < 2:
        return None
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    # The same crop pyradiomics' execute makes (mask bounding box, no padding).
    box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    m = np.ascontiguousarray(mask[box])
    img = np.ascontiguousarray(image[box], dtype=np.float64)
    values = img[m]
    vmin, vmax = float(values.min()), float(values.max())
    if not (np.isfinite(vmin) and np.isfinite(vmax)):
        raise ValueError("the object has NaN or infinite pixel values")
    if max_gray_levels is not None:
        n = n_gray_levels(vmin, vmax, settings)
        if n > max_gray_levels:
            raise GrayLevelBudgetError(n, vmin, vmax, max_gray_levels)
    binned = np.zeros(m.shape, dtype=int)
    binned[m] = discretise(values, settings)
    gray_levels = np.flatnonzero(np.bincount(binned[m]))  # np.unique, sorted
    texture_ok = n_pixels >= min_texture_size and has_2x2_block(m)
    collapsed = gray_levels.size == 1 and vmin < vmax
    return _Object(img, m, binned, gray_levels, n_pixels, texture_ok, collapsed, vmax - vmin)


class NotBatchable(Exception):
    """The objects cannot share one stack (the caller uses the reference path)."""


def _instance(cls, settings: dict, **attrs):
    # A feature-class object without its __init__ (which converts SimpleITK images and
    # re-discretises the image for every class); the attributes __init__ would set from the
    # settings are set here with pyradiomics' defaults.
    inst = cls.__new__(cls)
    inst.logger = logging.getLogger(cls.__module__)
    inst.settings = settings
    inst.label = settings.get("label", 1)
    inst.voxelBased = False
    inst.inputImage = None  # only read for weightingNorm, which skcalc never sets
    inst.symmetricalGLCM = settings.get("symmetricalGLCM", True)
    inst.weightingNorm = settings.get("weightingNorm", None)
    inst.gldm_a = settings.get("gldm_a", 0)
    inst.voxelArrayShift = settings.get("voxelArrayShift", 0)
    inst.__dict__.update(attrs)
    return inst


def _batch_coefficients(ng_max: int, **more) -> dict:
    # With every gray level 1..Ng_max present as a (possibly all-zero) matrix row, pyradiomics
    # deletes no row; empty rows add exact zeros to every sum, as in its voxel-based mode.
    return {"grayLevels": np.arange(1, ng_max + 1), "Ng": ng_max, **more}


def _same_n_angles(mats) -> int:
    n_angles = {p.shape[-1] for p in mats}
    if len(n_angles) != 1:  # an object with an empty direction: pyradiomics drops the angle
        raise NotBatchable
    return n_angles.pop()


def _canvas(objs) -> tuple[np.ndarray, np.ndarray]:
    """The objects' discretised crops side by side on one zero canvas.

    Returns the gray levels (0 outside every mask) and the owner of each pixel (-1
    outside). A zero border and one zero column between objects keep every object's
    8-neighbourhood to itself, so neighbourhood matrices of all objects come from a few
    whole-canvas array operations.
    """
    h = max(o.binned.shape[0] for o in objs) + 2
    w = sum(o.binned.shape[1] for o in objs) + len(objs) + 1
    levels = np.zeros((h, w), np.int64)
    owner = np.full((h, w), -1, np.int64)
    c = 1
    for k, o in enumerate(objs):
        hh, ww = o.binned.shape
        levels[1 : 1 + hh, c : c + ww] = o.binned
        owner[1 : 1 + hh, c : c + ww][o.mask] = k
        c += ww + 1
    return levels, owner


# pyradiomics' 2-D GLCM directions (row, col offsets), in the order of its C extension's
# ``calculate_glcm`` (tested): P[i, j, a] counts pixel pairs (x, x + offset_a) of levels (i, j).
GLCM_OFFSETS = ((1, 1), (1, 0), (1, -1), (0, 1))


def glcm_matrices(objs) -> tuple[np.ndarray, np.ndarray]:
    """Normalised symmetric GLCMs of several objects on their own gray levels.

    Returns ``P`` of shape (K, 4, n, n) (angle before the gray levels, so that the sums over
    (i, j) run over contiguous memory), ``n`` the most gray levels of one object, object k
    in the top-left ``len(gray_levels)`` square (zeros elsewhere), and the gray-level values
    (K, n) (padded with 1). ``P[k, a]`` equals pyradiomics' ``_calculateMatrix()[0, :, :, a]``
    bit for bit (integer counts, then the same division); one ``bincount`` for all objects
    replaces one C call, ``np.delete`` and transpose per object.
    """
    n = max(o.gray_levels.size for o in objs)
    n_angles = len(GLCM_OFFSETS)
    values = np.ones((len(objs), n))
    for k, o in enumerate(objs):
        values[k, : o.gray_levels.size] = o.gray_levels
    # every pixel's (object, compressed level) index k * n + i on the objects' canvas
    levels, owner = _canvas(objs)
    lut = np.zeros((len(objs), int(levels.max()) + 1), np.int64)
    for k, o in enumerate(objs):
        lut[k, o.gray_levels] = np.arange(o.gray_levels.size)
    idx = np.where(owner >= 0, owner * n + lut[np.maximum(owner, 0), levels], -1)
    h, w = idx.shape
    codes = []
    for a, (dr, dc) in enumerate(GLCM_OFFSETS):
        c0, c1 = max(0, -dc), w - max(0, dc)
        src = idx[: h - dr, c0:c1]
        dst = idx[dr:, c0 + dc : c1 + dc]
        both = (src >= 0) & (dst >= 0)
        # (object, angle, i, j) = ((k * A + a) * n + i) * n + j, with src = k * n + i
        s_ = src[both]
        codes.append(((s_ + (s_ // n) * (n_angles - 1) * n + a * n) * n) + dst[both] % n)
    counts = np.bincount(np.concatenate(codes), minlength=len(objs) * n_angles * n * n)
    P = counts.reshape(len(objs), n_angles, n, n).astype(np.float64)
    P += P.transpose((0, 1, 3, 2)).copy()  # symmetricalGLCM
    total = P.sum((2, 3))
    if (total == 0).any():  # an empty direction: pyradiomics would drop the angle
        raise NotBatchable("an object has an empty GLCM direction")
    P /= total[:, :, None, None]
    return P, values


def _nanmean(x: np.ndarray) -> np.ndarray:
    """``np.nanmean(x, 1)`` of a (K, angles) array, bit for bit, without its per-call
    overhead (it copies and masks even when nothing is NaN, once per GLCM feature)."""
    nan = np.isnan(x)
    if not nan.any():
        return x.sum(1) / x.shape[1]
    with np.errstate(invalid="ignore", divide="ignore"):  # all-NaN rows: NaN, as nanmean
        return np.where(nan, 0.0, x).sum(1) / (~nan).sum(1)


class _GLCMStack:
    """pyradiomics' 24 GLCM features for a stack of objects (per-object gray levels).

    Each formula is pyradiomics 3.1.4's (``radiomics/glcm.py``), written for a stack whose
    gray-level values differ per object and whose layout is (object, angle, i, j): ``i`` and
    ``j`` are (K, 1, n, 1) and (K, 1, 1, n) instead of one shared grid, so that no object
    carries the zero rows of the others' gray levels. Zero padding contributes exact zeros.
    Sums are taken in another order than pyradiomics' per-object code (rounding
    differences, about 1e-13 relative).
    """

    def __init__(self, objs) -> None:
        P, values = glcm_matrices(objs)
        self.objs = objs
        self.P = P
        self.eps = np.spacing(1)
        self.i = values[:, None, :, None]
        self.j = values[:, None, None, :]
        self.ng = np.array([o.ng for o in objs], dtype=float)[:, None, None]
        self.px = P.sum(3, keepdims=True)  # (K, A, n, 1)
        self.py = P.sum(2, keepdims=True)  # (K, A, 1, n)
        self.ux = np.sum(self.i * P, (2, 3), keepdims=True)
        self.uy = np.sum(self.j * P, (2, 3), keepdims=True)
        # p_{x+y}(k) and p_{x-y}(k) on value bins: k = i + j (2..2G) and |i - j| (0..G-1),
        # as (K, k, A) like pyradiomics' pxAddy / pxSuby
        g = int(max(o.ng for o in objs))
        K, A = P.shape[:2]
        add = (self.i + self.j).astype(np.int64) - 2  # (K, 1, n, n)
        sub = np.abs(self.i - self.j).astype(np.int64)
        obj = np.arange(K)[:, None, None, None]
        ang = np.arange(A)[None, :, None, None]
        w = P.ravel()
        code = ((obj * (2 * g - 1) + add) * A + ang).ravel()
        self.pxAddy = np.bincount(code, w, K * (2 * g - 1) * A).reshape(K, 2 * g - 1, A)
        code = ((obj * g + sub) * A + ang).ravel()
        self.pxSuby = np.bincount(code, w, K * g * A).reshape(K, g, A)
        self.kValuesSum = np.arange(2, 2 * g + 1, dtype=float)[None, :, None]
        self.kValuesDiff = np.arange(0, g, dtype=float)[None, :, None]
        self.HXY = -1 * np.sum(P * np.log2(P + self.eps), (2, 3))  # (K, A)
        self._t2 = None

    def _sum(self, x):
        return _nanmean(np.sum(x, (2, 3)))

    def _cluster(self):
        if self._t2 is None:
            self._t = (self.i + self.j) - self.ux - self.uy
            self._t2 = self._t**2
        return self._t, self._t2

    def getAutocorrelationFeatureValue(self):  # noqa: N802 - pyradiomics' names
        return self._sum(self.P * (self.i * self.j))

    def getJointAverageFeatureValue(self):  # noqa: N802
        return self.ux.mean((1, 2, 3))

    def getClusterProminenceFeatureValue(self):  # noqa: N802
        _, t2 = self._cluster()
        return self._sum(self.P * (t2 * t2))

    def getClusterShadeFeatureValue(self):  # noqa: N802
        t, t2 = self._cluster()
        return self._sum(self.P * (t2 * t))

    def getClusterTendencyFeatureValue(self):  # noqa: N802
        return self._sum(self.P * self._cluster()[1])

    def getContrastFeatureValue(self):  # noqa: N802
        return self._sum(self.P * np.abs(self.i - self.j) ** 2)

    def getCorrelationFeatureValue(self):  # noqa: N802
        P, di, dj = self.P, self.i - self.ux, self.j - self.uy
        sigx = np.sum(P * di**2, (2, 3), keepdims=True) ** 0.5
        sigy = np.sum(P * dj**2, (2, 3), keepdims=True) ** 0.5
        corm = np.sum(P * di * dj, (2, 3), keepdims=True)
        corr = corm / (sigx * sigy + self.eps)
        corr[sigx * sigy == 0] = 1
        return _nanmean(corr.reshape(corr.shape[:2]))

    def getDifferenceAverageFeatureValue(self):  # noqa: N802
        return _nanmean(np.sum(self.kValuesDiff * self.pxSuby, 1))

    def getDifferenceEntropyFeatureValue(self):  # noqa: N802
        p = self.pxSuby
        return _nanmean(-1 * np.sum(p * np.log2(p + self.eps), 1))

    def getDifferenceVarianceFeatureValue(self):  # noqa: N802
        avg = np.sum(self.kValuesDiff * self.pxSuby, 1, keepdims=True)
        return _nanmean(np.sum(self.pxSuby * (self.kValuesDiff - avg) ** 2, 1))

    def getJointEnergyFeatureValue(self):  # noqa: N802
        return self._sum(self.P**2)

    def getJointEntropyFeatureValue(self):  # noqa: N802
        return _nanmean(self.HXY)

    def getImc1FeatureValue(self):  # noqa: N802
        eps, px, py = self.eps, self.px, self.py
        hx = -1 * np.sum(px * np.log2(px + eps), (2, 3))
        hy = -1 * np.sum(py * np.log2(py + eps), (2, 3))
        hxy1 = -1 * np.sum(self.P * np.log2(px * py + eps), (2, 3))
        div = np.fmax(hx, hy)
        imc1 = self.HXY - hxy1
        imc1[div != 0] /= div[div != 0]
        imc1[div == 0] = 0
        return _nanmean(imc1)

    def getImc2FeatureValue(self):  # noqa: N802
        pxy = self.px * self.py
        hxy2 = -1 * np.sum(pxy * np.log2(pxy + self.eps), (2, 3))
        imc2 = (1 - np.e ** (-2 * (hxy2 - self.HXY))) ** 0.5
        imc2[hxy2 == self.HXY] = 0
        return _nanmean(imc2)

    def getIdmFeatureValue(self):  # noqa: N802
        return _nanmean(np.sum(self.pxSuby / (1 + self.kValuesDiff**2), 1))

    def getIdmnFeatureValue(self):  # noqa: N802
        # Ng is each object's own (its largest gray level), as pyradiomics per object.
        d = 1 + self.kValuesDiff**2 / self.ng**2
        return _nanmean(np.sum(self.pxSuby / d, 1))

    def getIdFeatureValue(self):  # noqa: N802
        return _nanmean(np.sum(self.pxSuby / (1 + self.kValuesDiff), 1))

    def getIdnFeatureValue(self):  # noqa: N802
        return _nanmean(np.sum(self.pxSuby / (1 + self.kValuesDiff / self.ng), 1))

    def getInverseVarianceFeatureValue(self):  # noqa: N802
        inv = np.sum(self.pxSuby[:, 1:, :] / self.kValuesDiff[:, 1:, :] ** 2, 1)
        return _nanmean(inv)

    def getMaximumProbabilityFeatureValue(self):  # noqa: N802
        return _nanmean(np.amax(self.P, (2, 3)))

    def getSumAverageFeatureValue(self):  # noqa: N802
        return _nanmean(np.sum(self.kValuesSum * self.pxAddy, 1))

    def getSumEntropyFeatureValue(self):  # noqa: N802
        p = self.pxAddy
        return _nanmean(-1 * np.sum(p * np.log2(p + self.eps), 1))

    def getSumSquaresFeatureValue(self):  # noqa: N802
        return self._sum(self.P * (self.i - self.ux) ** 2)

    def getMCCFeatureValue(self):  # noqa: N802
        """pyradiomics' MCC per object on its own gray levels.

        Q(i, j) = sum_k p(i, k) p(j, k) / (px(i) py(k) + eps) as one matrix product per
        object and angle (pyradiomics loops over k: the sums differ in rounding only); the
        eigenvalues of objects with the same number of gray levels in one LAPACK call.
        From :data:`MCC_SYMMETRIC_FROM` gray levels on, where the general eigensolver's
        O(n^3) dominates the whole feature set, the symmetric path of :func:`_mcc_symmetric`
        is used where it is safe.
        """
        P = self.P  # (K, A, i, k)
        Q = (P / (self.px * self.py + self.eps)) @ P.transpose((0, 1, 3, 2))
        out = np.empty(len(self.objs))
        sizes = np.array([o.gray_levels.size for o in self.objs])
        for size in np.unique(sizes):
            rows = np.flatnonzero(sizes == size)
            if size < 2:
                out[rows] = 1  # flat region, as pyradiomics
                continue
            if size >= MCC_SYMMETRIC_FROM:
                fast, values = _mcc_symmetric(
                    P[rows, :, :size, :size],
                    self.px[rows, :, :size, 0],
                    Q[rows, :, :size, :size],
                    self.eps,
                )
                out[rows[fast]] = values
                rows = rows[~fast]
            if rows.size:
                out[rows] = _mcc_eigvals(Q[rows, :, :size, :size])
        return out


#: Gray levels from which MCC uses the symmetric eigensolver (see :func:`_mcc_symmetric`).
MCC_SYMMETRIC_FROM = 8


def _mcc_symmetric(P, px, Q, eps, tol=1e-3):
    """MCC from the symmetric matrix similar to Q, with ``eps`` added to first order.

    Without ``eps``, Q = Dx^-1 P Dy^-1 P^T (P symmetric, so Dy = Dx) is similar to the
    symmetric S = Dx^-1/2 P Dx^-1 P^T Dx^-1/2, whose eigenvalues LAPACK's symmetric solver
    finds several times faster than ``eigvals`` at 64+ gray levels. ``eps`` changes Q by
    at most about 1e-12 relative; that is added back to first order with the eigenvector
    of the second-largest eigenvalue (one inverse-iteration step), leaving an error of
    order 1e-24 / gap. Returns which objects were computed (all angles with every gray
    level paired, second eigenvalue and both its gaps above ``tol``) and their MCC; the
    others go through ``eigvals`` as in pyradiomics. Tested equal to it to about 1e-15.
    """
    fast = (px > 0).all((1, 2))
    if not fast.any():
        return fast, np.empty(0)
    P, px, Q = P[fast], px[fast], Q[fast]
    sx = np.sqrt(px)  # (r, A, n)
    A = P / sx[..., None, :]  # p(i, k) / sqrt(py(k)), py = px
    M = A @ A.transpose((0, 1, 3, 2))
    S = M / sx[..., :, None] / sx[..., None, :]
    S = (S + S.transpose((0, 1, 3, 2))) / 2
    w = np.linalg.eigvalsh(S)  # ascending
    lam = w[..., -2]
    gap = np.minimum(w[..., -1] - lam, lam - w[..., -3])
    shift = lam + 1e-12 * np.abs(lam)
    n = S.shape[-1]
    v = np.linalg.solve(S - shift[..., None, None] * np.eye(n), np.ones(S.shape[:-1] + (1,)))
    v = v[..., 0] / np.linalg.norm(v[..., 0], axis=-1, keepdims=True)
    E = (Q - M / px[..., :, None]) * sx[..., :, None] / sx[..., None, :]
    lam = lam + np.einsum("...i,...ij,...j->...", v, E, v)
    ok = (lam > tol).all(1) & (gap > tol).all(1) & np.isfinite(lam).all(1)
    keep = np.zeros(fast.size, bool)
    keep[np.flatnonzero(fast)[ok]] = True
    return keep, np.sqrt(lam[ok]).mean(1)


def _mcc_eigvals(Q: np.ndarray) -> np.ndarray:
    """pyradiomics' MCC from Q (objects, angle, n, n), each object as its own numpy call."""
    out = np.empty(Q.shape[0])
    for r, e in enumerate(np.linalg.eigvals(Q)):
        if np.iscomplexobj(e) and not e.imag.any():
            e = e.real
        e = np.sort(e, axis=-1)
        out[r] = np.nanmean(np.sqrt(e[:, -2])).real
    return out


def _batch_glcm(cls, objs, settings, spacing):
    return _GLCMStack(objs)


def _cmatrices():
    from radiomics import cMatrices

    return cMatrices


def _batch_glrlm(cls, objs, settings, spacing):
    # pyradiomics' C extension per object, as RadiomicsGLRLM._calculateMatrix calls it; its
    # Python wrapper only deletes the rows of absent gray levels, which the stack (indexed
    # by gray level) would put back as zero rows.
    c = _cmatrices()
    mats = []
    for o in objs:
        p, _ = c.calculate_glrlm(o.binned, o.mask, o.ng, max(o.binned.shape), False, 0)
        mats.append(p[0])
    _same_n_angles(mats)
    ng_max = max(o.ng for o in objs)
    P = np.zeros((len(objs), ng_max, max(p.shape[1] for p in mats), mats[0].shape[2]))
    for k, p in enumerate(mats):
        P[k, : p.shape[0], : p.shape[1]] = p
    nr = P.sum((1, 2))
    if (nr == 0).any():  # an empty direction: pyradiomics would drop the angle
        raise NotBatchable("an object has an empty GLRLM direction")
    b = _instance(cls, settings, P_glrlm=P, coefficients=_batch_coefficients(ng_max, Nr=nr))
    b._calculateCoefficients()
    return b


def _batch_glszm(cls, objs, settings, spacing):
    c = _cmatrices()  # as RadiomicsGLSZM._calculateMatrix (see _batch_glrlm)
    mats = [c.calculate_glszm(o.binned, o.mask, o.ng, int(o.n_pixels), False, 0)[0] for o in objs]
    ng_max = max(o.ng for o in objs)
    P = np.zeros((len(objs), ng_max, max(p.shape[1] for p in mats)))
    for k, p in enumerate(mats):
        P[k, : p.shape[0], : p.shape[1]] = p
    b = _instance(cls, settings, P_glszm=P, coefficients=_batch_coefficients(ng_max))
    b._calculateCoefficients()
    return b


def gldm_matrices(objs, alpha: float = 0) -> np.ndarray:
    """Raw GLDM counts (K, Ng_max, 9): pixels of level i with d dependent neighbours.

    pyradiomics' ``calculate_gldm`` for 2-D (distance 1): a neighbour among the 8 is
    dependent when it is in the mask and its level differs by at most ``alpha``. Equal to
    the C extension's counts (tested), for all objects with one ``bincount``.
    """
    levels, owner = _canvas(objs)
    ng = max(o.ng for o in objs)
    h, w = levels.shape
    centre = levels[1:-1, 1:-1]
    dep = np.zeros(centre.shape, np.int64)
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            if dr or dc:
                nb = levels[1 + dr : h - 1 + dr, 1 + dc : w - 1 + dc]
                dep += (nb > 0) & (np.abs(centre - nb) <= alpha)
    inside = centre > 0
    code = (owner[1:-1, 1:-1][inside] * ng + centre[inside] - 1) * 9 + dep[inside]
    counts = np.bincount(code, minlength=len(objs) * ng * 9)
    return counts.reshape(len(objs), ng, 9).astype(np.float64)


def _batch_gldm(cls, objs, settings, spacing):
    P = gldm_matrices(objs, settings.get("gldm_a", 0))
    ng_max = P.shape[1]
    # The rest of RadiomicsGLDM._calculateMatrix, on the stack (it computes the coefficients
    # there rather than in a _calculateCoefficients).
    jvector = np.arange(1, P.shape[2] + 1, dtype="float64")
    pd = np.sum(P, 1)
    pg = np.sum(P, 2)
    empty = np.where(np.sum(pd, 0) == 0)
    P = np.delete(P, empty, 2)
    jvector = np.delete(jvector, empty)
    pd = np.delete(pd, empty, 1)
    nz = np.sum(pd, 1)
    nz[nz == 0] = 1
    coefficients = _batch_coefficients(ng_max, Nz=nz, pd=pd, pg=pg, jvector=jvector)
    coefficients["ivector"] = coefficients["grayLevels"].astype(float)
    return _instance(cls, settings, P_gldm=P, coefficients=coefficients)


def _batch_ngtdm(cls, objs, settings, spacing):
    # pyradiomics' C extension per object, without the empty gray levels (n_i == 0), as
    # RadiomicsNGTDM._calculateMatrix; zero padding rows are skipped by its p_i == 0
    # handling (voxel-based mode).
    c = _cmatrices()
    mats = []
    for o in objs:
        p = c.calculate_ngtdm(o.binned, o.mask, np.array([1]), o.ng, False, 0)[0]
        mats.append(p[p[:, 0] != 0])
    P = np.zeros((len(objs), max(p.shape[0] for p in mats), 3))
    for k, p in enumerate(mats):
        P[k, : p.shape[0]] = p
    b = _instance(cls, settings, P_ngtdm=P, coefficients={})
    b._calculateCoefficients()
    return b


class _FirstOrderStack:
    """pyradiomics' 18 first-order features for all objects at once, on their voxels.

    The voxels of all objects are concatenated (each object's in pyradiomics' row-major
    order) and every statistic is a segment reduction (``np.add.reduceat`` ...) instead of
    pyradiomics' NaN-padded (objects x voxels) arrays; percentiles come from one sort by
    (object, value) with numpy's linear interpolation. The formulas are pyradiomics 3.1.4's
    (``radiomics/firstorder.py``); sums are taken in another order (rounding differences).
    """

    def __init__(self, objs, settings, spacing) -> None:
        x = [o.image[o.mask] for o in objs]
        n = np.array([v.size for v in x])
        self.n = n.astype(float)
        self.start = np.concatenate(([0], np.cumsum(n)[:-1]))
        self.x = np.concatenate(x)
        self.shift = settings.get("voxelArrayShift", 0)
        self.owner = np.repeat(np.arange(len(objs)), n)
        self.area = float(spacing[0]) * float(spacing[1])  # multiply.reduce(GetSpacing())
        self.mean = self._sum(self.x) / self.n
        self.dev = self.x - self.mean[self.owner]
        # p_i: fraction of the object's voxels in each of its gray levels
        levels = np.concatenate([o.binned[o.mask] for o in objs])
        ng = max(int(o.ng) for o in objs)
        counts = np.bincount(self.owner * (ng + 1) + levels, minlength=len(objs) * (ng + 1))
        self.p_i = counts.reshape(len(objs), ng + 1) / self.n[:, None]
        # per-object sorted voxels for the percentiles: one row per object, +inf padded
        padded = np.full((len(objs), int(n.max())), np.inf)
        padded[self.owner, np.arange(self.x.size) - self.start[self.owner]] = self.x
        padded.sort(axis=1)
        self.sorted = padded.ravel()
        self.row = np.arange(len(objs)) * padded.shape[1]  # start of each row in .sorted
        self._q: dict = {}
        self._m: dict = {}

    def _sum(self, v):
        return np.add.reduceat(v, self.start)

    def _percentile(self, q: float) -> np.ndarray:
        # numpy's default ("linear") method: virtual index q/100 * (n - 1)
        if q not in self._q:
            pos = q / 100 * (self.n - 1)
            lo = np.floor(pos)
            t = pos - lo
            lo = lo.astype(np.int64)
            hi = np.minimum(lo + 1, self.n.astype(np.int64) - 1)
            a, b = self.sorted[self.row + lo], self.sorted[self.row + hi]
            # numpy's _lerp: a + (b - a) t, or b - (b - a)(1 - t) when t >= 0.5
            d = b - a
            self._q[q] = np.where(t >= 0.5, b - d * (1 - t), a + d * t)
        return self._q[q]

    def _moment(self, k: int) -> np.ndarray:
        # pyradiomics: nanmean((x - mean) ** k); powers by products (rounding differences)
        if k not in self._m:
            d2 = self.dev * self.dev
            powers = {2: d2, 3: d2 * self.dev, 4: d2 * d2}
            self._m[k] = self._sum(powers[k]) / self.n
        return self._m[k].copy()

    def getEnergyFeatureValue(self):  # noqa: N802 - pyradiomics' names
        return self._sum((self.x + self.shift) ** 2)

    def getTotalEnergyFeatureValue(self):  # noqa: N802
        return self.getEnergyFeatureValue() * self.area

    def getEntropyFeatureValue(self):  # noqa: N802
        p = self.p_i
        return -1.0 * np.sum(p * np.log2(p + np.spacing(1)), 1)

    def getMinimumFeatureValue(self):  # noqa: N802
        return np.minimum.reduceat(self.x, self.start)

    def get10PercentileFeatureValue(self):  # noqa: N802
        return self._percentile(10)

    def get90PercentileFeatureValue(self):  # noqa: N802
        return self._percentile(90)

    def getMaximumFeatureValue(self):  # noqa: N802
        return np.maximum.reduceat(self.x, self.start)

    def getMeanFeatureValue(self):  # noqa: N802
        return self.mean

    def getMedianFeatureValue(self):  # noqa: N802
        # np.median: the middle value, or the mean of the two middle values
        lo = self.row + (self.n.astype(np.int64) - 1) // 2
        hi = self.row + self.n.astype(np.int64) // 2
        return (self.sorted[lo] + self.sorted[hi]) / 2

    def getInterquartileRangeFeatureValue(self):  # noqa: N802
        return self._percentile(75) - self._percentile(25)

    def getRangeFeatureValue(self):  # noqa: N802
        return self.getMaximumFeatureValue() - self.getMinimumFeatureValue()

    def getMeanAbsoluteDeviationFeatureValue(self):  # noqa: N802
        return self._sum(np.abs(self.dev)) / self.n

    def getRobustMeanAbsoluteDeviationFeatureValue(self):  # noqa: N802
        p10, p90 = self._percentile(10)[self.owner], self._percentile(90)[self.owner]
        keep = ~(((self.x - p10) < 0) | ((self.x - p90) > 0))
        n = np.bincount(self.owner, keep, len(self.n))
        mean = np.bincount(self.owner, np.where(keep, self.x, 0.0), len(self.n)) / n
        dev = np.where(keep, np.abs(self.x - mean[self.owner]), 0.0)
        return np.bincount(self.owner, dev, len(self.n)) / n

    def getRootMeanSquaredFeatureValue(self):  # noqa: N802
        return np.sqrt(self._sum((self.x + self.shift) ** 2) / self.n)

    def getStandardDeviationFeatureValue(self):  # noqa: N802
        return np.sqrt(self._moment(2))

    def getSkewnessFeatureValue(self):  # noqa: N802
        m2, m3 = self._moment(2), self._moment(3)
        m2[m2 == 0] = 1
        return m3 / m2**1.5

    def getKurtosisFeatureValue(self):  # noqa: N802
        m2, m4 = self._moment(2), self._moment(4)
        m2[m2 == 0] = 1
        return m4 / m2**2.0

    def getVarianceFeatureValue(self):  # noqa: N802
        return np.sqrt(self._moment(2)) ** 2

    def getUniformityFeatureValue(self):  # noqa: N802
        return np.sum(self.p_i**2, 1)


def _batch_firstorder(cls, objs, settings, spacing):
    return _FirstOrderStack(objs, settings, spacing)


BATCHED = {
    "firstorder": _batch_firstorder,
    "glcm": _batch_glcm,
    "glrlm": _batch_glrlm,
    "glszm": _batch_glszm,
    "gldm": _batch_gldm,
    "ngtdm": _batch_ngtdm,
}


def class_batch(cls_name, objs, spacing, settings) -> np.ndarray:
    """Features of one class for several objects with one call per feature."""
    cls = feature_class(cls_name)
    b = BATCHED[cls_name](cls, objs, settings, spacing)
    names = class_feature_names(cls_name)
    out = np.empty((len(objs), len(names)))
    for j, f in enumerate(names):
        v = np.asarray(getattr(b, f"get{f}FeatureValue")(), dtype=np.float64)
        if v.size != 1 and v.shape != (len(objs),):
            raise NotBatchable
        out[:, j] = v.reshape(-1)
    return out


def shape2d_one(obj, spacing, settings) -> np.ndarray:
    """shape2D of one object: pyradiomics' ``_initSegmentBasedCalculation`` for a 2-D mask.

    The same steps as pyradiomics 3.1.4 (pad the mask by one pixel, its C extension's
    perimeter, surface and diameter, the eigenvalues of the physical coordinates'
    covariance), on the mask array directly instead of a SimpleITK image; then the class's
    own getters. Tested equal to ``execute``.
    """
    from radiomics import cShape

    cls = feature_class("shape2D")
    inst = _instance(cls, settings)
    inst.pixelSpacing = np.array((float(spacing[0]), float(spacing[1])))  # (row, col)
    mask = np.pad(obj.mask, pad_width=1, mode="constant", constant_values=0)
    inst.maskArray = mask
    inst.labelledPixelCoordinates = np.where(mask != 0)
    inst.Perimeter, inst.Surface, inst.Diameter = cShape.calculate_coefficients2D(
        mask, inst.pixelSpacing
    )
    n_pixels = len(inst.labelledPixelCoordinates[0])
    coordinates = np.array(inst.labelledPixelCoordinates, dtype="int").transpose((1, 0))
    physical = coordinates * inst.pixelSpacing[None, :]
    physical -= np.mean(physical, axis=0)
    physical /= np.sqrt(n_pixels)
    covariance = np.dot(physical.T.copy(), physical)
    eigen = np.linalg.eigvals(covariance)
    eigen[(eigen < 0) & (eigen > -1e-10)] = 0  # pyradiomics' rounding of machine errors
    eigen.sort()
    inst.eigenValues = eigen
    return np.array(
        [float(getattr(inst, f"get{f}FeatureValue")()) for f in class_feature_names("shape2D")]
    )


# Objects are stacked in chunks of at most this many matrix cells (about 32 MB of float64):
# per object Ng x Ng x 4 angles (glcm) or Ng x n_pixels (glszm: one column per possible zone
# size), Ng being the largest in the chunk.
_MAX_CELLS = 4_000_000
# Fixed cost of one stacked class computation, in padded GLCM cells (K * Ng_max^2), as
# measured: splitting a stack pays when padding to the largest Ng would waste more.
_CHUNK_COST = 2000
_MAX_CHUNK = 64


def chunk_rows(rows, objs, cls_name: str = ""):
    """Split ``rows`` into stacks of objects of similar gray-level counts.

    Sorted by Ng (for glcm, whose stack holds each object's own gray levels only: by their
    number), the split minimising ``sum(_CHUNK_COST + K * Ng_max ** 2)`` is found by
    dynamic programming, within the memory bound.
    """

    def size(o):
        return o.gray_levels.size if cls_name == "glcm" else o.ng

    rows = sorted(rows, key=lambda k: size(objs[k]))
    ng = [size(objs[k]) for k in rows]
    npix = [objs[k].n_pixels for k in rows]
    best = [0.0] + [np.inf] * len(rows)  # best[j]: cost of rows[:j]
    cut = [0] * (len(rows) + 1)
    for j in range(1, len(rows) + 1):
        top = 0
        for i in range(j - 1, max(j - _MAX_CHUNK, 0) - 1, -1):  # chunk rows[i:j]
            top = max(top, npix[i])
            if i < j - 1 and (j - i) * ng[j - 1] * max(4 * ng[j - 1], top) > _MAX_CELLS:
                break
            cost = best[i] + _CHUNK_COST + (j - i) * ng[j - 1] ** 2
            if cost < best[j]:
                best[j], cut[j] = cost, i
    chunks, j = [], len(rows)
    while j > 0:
        chunks.append(rows[cut[j] : j])
        j = cut[j]
    return chunks[::-1]
