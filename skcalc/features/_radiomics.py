"""pyradiomics features of one object (a calcification or its background band).

The paper (Local Features) extracts pyradiomics features from each calcification (90) and from
its background band (87) with an older pyradiomics. skcalc computes every non-deprecated feature
of the installed pyradiomics (pyradiomics-bhklab 3.1.4) for the classes below; nothing is added
or dropped to match the paper's totals:

=========== ======== ==========================================
class       features used for
=========== ======== ==========================================
shape2D     9        foreground only (the band's shape is the band rule's, not the tissue's)
firstorder  18       foreground and band
glcm        24       foreground and band
glrlm       16       foreground and band
glszm       16       foreground and band
gldm        14       foreground and band
ngtdm       5        foreground and band
=========== ======== ==========================================

so 102 foreground and 93 band features (the paper's 90 and 87 differ by the features that
pyradiomics has since deprecated or added; in both cases the band has exactly the foreground's
classes minus shape).

How pyradiomics is called, and why the values equal ``RadiomicsFeatureExtractor.execute`` on
the whole ROI image (tested to 1e-6 relative):

* ``execute`` itself crops image and mask to the mask's bounding box without padding before it
  runs any class (``cropToTumorMask(..., padDistance=0)``), so cropping to that bounding box
  first changes no value.
* :func:`radiomics_features_batch` (used by :func:`~skcalc.features.local_features` for all
  objects of an ROI) discretises each object once (pyradiomics re-discretises per class),
  computes each object's texture matrix with pyradiomics' own ``_calculateMatrix`` (its C
  extension), stacks the matrices zero-padded to common gray levels (the layout pyradiomics'
  voxel-based mode uses; empty rows add exact zeros) and calls each pyradiomics feature
  function once for the whole stack. Only per-object quantities are adapted: glcm's Idmn/Idn
  use each object's Ng, MCC's eigenvalues are taken on each object's own gray levels, the
  firstorder percentiles are taken on each object's voxels. Values equal the per-object
  classes to about 1e-13 relative (sums taken in another order). A class that fails on a stack
  is recomputed object by object with the feature class itself
  (``RadiomicsGLCM(image, mask, **settings).execute()``).
* The image and mask are 2-D SimpleITK images with the detector spacing set in SimpleITK's
  ``(x, y)`` = ``(col, row)`` order, so shape2D comes out in mm and mm^2 and firstorder's
  TotalEnergy is per mm^2.
* 2-D texture: pyradiomics processes a 2-D image natively in 2-D (4 in-plane angles), which is
  exactly what ``force2D=True, force2Ddimension=0`` gives on a ``(1, H, W)`` volume (verified).
  ``force2D=True`` must *not* be passed with a 2-D image: pyradiomics would then treat the row
  axis as out-of-plane and keep only the horizontal direction.
* The mask is binarised (label 1). Gray levels are discretised with a fixed ``binWidth`` in raw
  detector units (default 5: on the synthetic 12-bit cohort, calcifications span about
  50-110 units and their bands 135-205 units (10th-90th percentiles), i.e. about 10-22 and
  27-41 bins), or a fixed ``binCount`` when given.

Objects too small for a class get NaN for that whole class, never an exception:

* 1 pixel: every class is NaN (pyradiomics refuses single-pixel ROIs: "mask only contains 1
  segmented voxel"). 1-pixel-thick lines are accepted (``minimumROIDimensions=1``).
* Texture classes (glcm, glrlm, glszm, gldm, ngtdm) additionally need at least
  ``min_texture_size`` pixels **and** a 2x2 block of object pixels (a 1-pixel-thick line or a
  scatter of diagonal pixels gives texture matrices with empty directions).
* Any error raised by pyradiomics inside a class is logged at DEBUG level on the
  ``skcalc.features`` logger and turns that class into NaN. Features pyradiomics itself
  returns as NaN (e.g. firstorder RobustMeanAbsoluteDeviation of a 2-pixel diagonal) stay NaN.
"""

from __future__ import annotations

import functools
import logging
import warnings
from collections.abc import Sequence

import numpy as np

__all__ = [
    "ALL_RADIOMICS_CLASSES",
    "TEXTURE_CLASSES",
    "radiomics_feature_names",
    "radiomics_features",
    "radiomics_features_batch",
    "radiomics_settings",
]

_logger = logging.getLogger("skcalc.features")

#: Feature classes in output order (shape first, as ``execute`` orders them).
ALL_RADIOMICS_CLASSES = ("shape2D", "firstorder", "glcm", "glrlm", "glszm", "gldm", "ngtdm")
#: Classes that build a gray-level texture matrix and need a 2-D object of some size.
TEXTURE_CLASSES = ("glcm", "glrlm", "glszm", "gldm", "ngtdm")

_CLASS_PATHS = {
    "shape2D": ("shape2D", "RadiomicsShape2D"),
    "firstorder": ("firstorder", "RadiomicsFirstOrder"),
    "glcm": ("glcm", "RadiomicsGLCM"),
    "glrlm": ("glrlm", "RadiomicsGLRLM"),
    "glszm": ("glszm", "RadiomicsGLSZM"),
    "gldm": ("gldm", "RadiomicsGLDM"),
    "ngtdm": ("ngtdm", "RadiomicsNGTDM"),
}


@functools.cache
def _feature_class(name: str):
    # pyradiomics is imported lazily (slow import, C extensions); its INFO/WARNING chatter
    # (one line per class and object) is silenced once here.
    import importlib

    module, cls = _CLASS_PATHS[name]
    cls = getattr(importlib.import_module(f"radiomics.{module}"), cls)
    # After the import: importing radiomics sets its logger's level itself.
    logging.getLogger("radiomics").setLevel(logging.ERROR)
    return cls


@functools.cache
def _class_feature_names(name: str) -> tuple[str, ...]:
    # Non-deprecated features, in pyradiomics' own (alphabetical) order.
    names = _feature_class(name).getFeatureNames()
    return tuple(sorted(k for k, deprecated in names.items() if not deprecated))


def _check_classes(classes: Sequence[str]) -> tuple[str, ...]:
    classes = tuple(classes)
    unknown = [c for c in classes if c not in _CLASS_PATHS]
    if unknown:
        raise ValueError(
            f"unknown pyradiomics feature class(es) {unknown}; choose from {ALL_RADIOMICS_CLASSES}"
        )
    return classes


def radiomics_feature_names(classes: Sequence[str]) -> list[str]:
    """Names ``"<class>_<feature>"`` of the features :func:`radiomics_features` returns.

    They are pyradiomics' own names without the ``"original_"`` image-type prefix.

    Examples
    --------
    >>> names = radiomics_feature_names(["shape2D", "firstorder"])
    >>> len(names), names[0], names[-1]
    (27, 'shape2D_Elongation', 'firstorder_Variance')
    """
    classes = _check_classes(classes)
    return [f"{c}_{f}" for c in classes for f in _class_feature_names(c)]


def radiomics_settings(bin_width: float = 5.0, bin_count: int | None = None) -> dict:
    """pyradiomics settings used by skcalc (also valid for ``RadiomicsFeatureExtractor``).

    ``bin_count``, when given, replaces the fixed ``bin_width``.

    Examples
    --------
    >>> radiomics_settings(10)
    {'label': 1, 'minimumROIDimensions': 1, 'binWidth': 10.0}
    """
    settings: dict = {"label": 1, "minimumROIDimensions": 1}
    if bin_count is not None:
        settings["binCount"] = int(bin_count)
    else:
        settings["binWidth"] = float(bin_width)
    return settings


def _has_2x2_block(mask: np.ndarray) -> bool:
    return bool((mask[:-1, :-1] & mask[1:, :-1] & mask[:-1, 1:] & mask[1:, 1:]).any())


class _Object:
    """One object cropped to its mask's bounding box, discretised once for every class."""

    __slots__ = ("image", "mask", "binned", "gray_levels", "ng", "n_pixels", "texture_ok", "_sitk")

    def __init__(self, image, mask, binned, gray_levels, n_pixels, texture_ok):
        self.image = image
        self.mask = mask
        self.binned = binned
        self.gray_levels = gray_levels
        self.ng = int(gray_levels.max())
        self.n_pixels = n_pixels
        self.texture_ok = texture_ok
        self._sitk = None

    def sitk_images(self, spacing):
        if self._sitk is None:
            import SimpleITK as sitk

            img = sitk.GetImageFromArray(self.image)
            # SimpleITK orders spacing (x, y) = (col, row).
            img.SetSpacing((float(spacing[1]), float(spacing[0])))
            msk = sitk.GetImageFromArray(self.mask.astype(np.uint32))
            msk.CopyInformation(img)
            self._sitk = (img, msk)
        return self._sitk


def _discretise(values: np.ndarray, settings: dict) -> np.ndarray:
    # pyradiomics' imageoperations.binImage restricted to the mask's values; the fixed-width
    # edges repeat getBinEdges' arithmetic with numpy's min/max (the same np.float64 values as
    # its Python min/max loop, without that loop).
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


def _prepare(image, mask, settings, min_texture_size) -> _Object | None:
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
    binned = np.zeros(m.shape, dtype=int)
    binned[m] = _discretise(img[m], settings)
    texture_ok = n_pixels >= min_texture_size and _has_2x2_block(m)
    return _Object(img, m, binned, np.unique(binned[m]), n_pixels, texture_ok)


class _NotBatchable(Exception):
    pass


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


def _per_object(cls, objs, settings, **attrs):
    return [
        _instance(
            cls,
            settings,
            imageArray=o.binned,
            maskArray=o.mask,
            coefficients={"grayLevels": o.gray_levels, "Ng": o.ng},
            **attrs,
        )
        for o in objs
    ]


def _batch_coefficients(ng_max: int, **more) -> dict:
    # With every gray level 1..Ng_max present as a (possibly all-zero) matrix row, pyradiomics
    # deletes no row; empty rows add exact zeros to every sum, as in its voxel-based mode.
    return {"grayLevels": np.arange(1, ng_max + 1), "Ng": ng_max, **more}


def _same_n_angles(mats) -> int:
    n_angles = {p.shape[-1] for p in mats}
    if len(n_angles) != 1:  # an object with an empty direction: pyradiomics drops the angle
        raise _NotBatchable
    return n_angles.pop()


def _batch_glcm(cls, objs, settings, spacing):
    mats = [inst._calculateMatrix() for inst in _per_object(cls, objs, settings)]
    n_angles = _same_n_angles(mats)
    ng_max = max(o.ng for o in objs)
    P = np.zeros((len(objs), ng_max, ng_max, n_angles))
    for k, (o, p) in enumerate(zip(objs, mats)):
        idx = o.gray_levels - 1
        P[k, idx[:, None], idx[None, :]] = p[0]
    b = _instance(cls, settings, P_glcm=P, coefficients=_batch_coefficients(ng_max))
    _glcm_coefficients(b)
    # Idmn and Idn normalise by each object's own Ng (its maximum gray level).
    b.coefficients["Ng"] = np.array([o.ng for o in objs], dtype=float)[:, None, None]
    b.getMCCFeatureValue = lambda: _glcm_mcc(b, objs)
    return b


def _glcm_coefficients(b) -> None:
    """``RadiomicsGLCM._calculateCoefficients`` with the same values, bit for bit.

    pyradiomics sums p(i, j) over each diagonal i + j = k and |i - j| = k with one boolean
    mask per k (O(Ng^3)); here each row i is added to its diagonals in turn, which adds the
    same terms in the same (row-major) order in O(Ng^2). Tested equal to the original.
    """
    P = b.P_glcm
    ng = b.coefficients["Ng"]
    eps = np.spacing(1)
    gray = b.coefficients["grayLevels"].astype("float")
    i, j = np.meshgrid(gray, gray, indexing="ij", sparse=True)
    n = P.shape[1]
    px_add_y = np.zeros((P.shape[0], 2 * ng - 1, P.shape[3]))
    px_sub_y = np.zeros((P.shape[0], ng, P.shape[3]))
    for r in range(n):
        px_add_y[:, r : r + n] += P[:, r]
        px_sub_y[:, r::-1] += P[:, r, : r + 1]
        px_sub_y[:, 1 : n - r] += P[:, r, r + 1 :]
    b.coefficients.update(
        eps=eps,
        i=i,
        j=j,
        kValuesSum=np.arange(2, (ng * 2) + 1, dtype="float"),
        kValuesDiff=np.arange(0, ng, dtype="float"),
        px=P.sum(2, keepdims=True),
        py=P.sum(1, keepdims=True),
        ux=np.sum(i[None, :, :, None] * P, (1, 2), keepdims=True),
        uy=np.sum(j[None, :, :, None] * P, (1, 2), keepdims=True),
        pxAddy=px_add_y,
        pxSuby=px_sub_y,
        HXY=(-1) * np.sum((P * np.log2(P + eps)), (1, 2)),
    )


def _glcm_mcc(b, objs):
    # pyradiomics' Q(i, j) = sum_k p(i, k) p(j, k) / (px(i) py(k) + eps) as one matrix product
    # per object and angle (pyradiomics loops over k: the sums differ in rounding only), then
    # its eigenvalues per object on the object's own gray levels: zero padding rows would add
    # zero eigenvalues and change the "second largest" of flat objects.
    P = b.P_glcm.transpose((0, 3, 1, 2))  # (v, angle, i, k)
    px = b.coefficients["px"][:, :, 0, :].transpose((0, 2, 1))  # (v, angle, i)
    py = b.coefficients["py"][:, 0, :, :].transpose((0, 2, 1))  # (v, angle, k)
    A = P / (px[:, :, :, None] * py[:, :, None, :] + b.coefficients["eps"])
    Q = (A @ P.transpose((0, 1, 3, 2))).transpose((0, 2, 3, 1))  # (v, i, j, angle)
    out = np.empty(len(objs))
    for k, o in enumerate(objs):
        idx = o.gray_levels - 1
        q = Q[k][idx[:, None], idx[None, :]]  # (n, n, angles)
        ev = np.linalg.eigvals(q.transpose((2, 0, 1))[None])
        ev.sort()
        if ev.shape[2] < 2:
            out[k] = 1  # flat region, as pyradiomics
        else:
            out[k] = np.nanmean(np.sqrt(ev[:, :, -2]), 1).real[0]
    return out


def _batch_glrlm(cls, objs, settings, spacing):
    insts = _per_object(cls, objs, settings)
    mats = [inst._calculateMatrix() for inst in insts]
    n_angles = _same_n_angles(mats)
    ng_max = max(o.ng for o in objs)
    P = np.zeros((len(objs), ng_max, max(p.shape[2] for p in mats), n_angles))
    for k, (o, p) in enumerate(zip(objs, mats)):
        P[k, o.gray_levels - 1, : p.shape[2]] = p[0]
    nr = np.concatenate([inst.coefficients["Nr"] for inst in insts])
    b = _instance(cls, settings, P_glrlm=P, coefficients=_batch_coefficients(ng_max, Nr=nr))
    b._calculateCoefficients()
    return b


def _batch_glszm(cls, objs, settings, spacing):
    mats = [inst._calculateMatrix() for inst in _per_object(cls, objs, settings)]
    ng_max = max(o.ng for o in objs)
    P = np.zeros((len(objs), ng_max, max(p.shape[2] for p in mats)))
    for k, (o, p) in enumerate(zip(objs, mats)):
        P[k, o.gray_levels - 1, : p.shape[2]] = p[0]
    b = _instance(cls, settings, P_glszm=P, coefficients=_batch_coefficients(ng_max))
    b._calculateCoefficients()
    return b


def _batch_gldm(cls, objs, settings, spacing):
    insts = _per_object(cls, objs, settings)
    mats = [inst._calculateMatrix() for inst in insts]
    ng_max = max(o.ng for o in objs)
    jvecs = [inst.coefficients["jvector"].astype(int) - 1 for inst in insts]
    P = np.zeros((len(objs), ng_max, max(int(j.max()) for j in jvecs) + 1))
    for k, (o, p, j) in enumerate(zip(objs, mats, jvecs)):
        P[k, (o.gray_levels - 1)[:, None], j[None, :]] = p[0]
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
    # pyradiomics already drops empty gray levels here and keeps each level's value in the
    # matrix; zero padding rows are skipped by its p_i == 0 handling (voxel-based mode).
    mats = [inst._calculateMatrix() for inst in _per_object(cls, objs, settings)]
    P = np.zeros((len(objs), max(p.shape[1] for p in mats), 3))
    for k, p in enumerate(mats):
        P[k, : p.shape[1]] = p[0]
    b = _instance(cls, settings, P_ngtdm=P, coefficients={})
    b._calculateCoefficients()
    return b


def _batch_firstorder(cls, objs, settings, spacing):
    insts = []
    for o in objs:
        inst = _instance(
            cls,
            settings,
            imageArray=o.image,
            maskArray=o.mask,
            discretizedImageArray=o.binned,
            coefficients={"grayLevels": o.gray_levels, "Ng": o.ng},
        )
        inst._initCalculation()
        insts.append(inst)
    n_max = max(inst.targetVoxelArray.shape[1] for inst in insts)
    l_max = max(inst.coefficients["p_i"].shape[1] for inst in insts)
    # NaN-padded voxels and zero-padded probabilities: firstorder's nan-aware reductions are
    # written for exactly this layout (its voxel-based mode).
    target = np.full((len(objs), n_max), np.nan)
    p_i = np.zeros((len(objs), l_max))
    for k, inst in enumerate(insts):
        target[k, : inst.targetVoxelArray.shape[1]] = inst.targetVoxelArray[0]
        p_i[k, : inst.coefficients["p_i"].shape[1]] = inst.coefficients["p_i"][0]
    b = _instance(
        cls,
        settings,
        targetVoxelArray=target,
        pixelSpacing=(float(spacing[1]), float(spacing[0])),  # inputImage.GetSpacing()
        coefficients={"p_i": p_i},
    )
    # The percentiles take most of firstorder's time (nanpercentile goes row by row, and
    # 10/90 are computed twice). They are computed once, row by row on each object's own
    # voxels: np.percentile of the voxels is what nanpercentile computes once it has dropped
    # the NaN (the same function on the same array), all four at once giving the same values.
    q = np.array([np.percentile(inst.targetVoxelArray[0], [10, 25, 75, 90]) for inst in insts])
    b.get10PercentileFeatureValue = lambda: q[:, 0]
    b.get90PercentileFeatureValue = lambda: q[:, 3]
    # pyradiomics: nanpercentile(x, 75) - nanpercentile(x, 25)
    b.getInterquartileRangeFeatureValue = lambda: q[:, 2] - q[:, 1]
    return b


_BATCHED = {
    "firstorder": _batch_firstorder,
    "glcm": _batch_glcm,
    "glrlm": _batch_glrlm,
    "glszm": _batch_glszm,
    "gldm": _batch_gldm,
    "ngtdm": _batch_ngtdm,
}


def _class_batch(cls_name, objs, spacing, settings) -> np.ndarray:
    """Features of one class for several objects with one call per feature."""
    cls = _feature_class(cls_name)
    b = _BATCHED[cls_name](cls, objs, settings, spacing)
    names = _class_feature_names(cls_name)
    out = np.empty((len(objs), len(names)))
    for j, f in enumerate(names):
        v = np.asarray(getattr(b, f"get{f}FeatureValue")(), dtype=np.float64)
        if v.size != 1 and v.shape != (len(objs),):
            raise _NotBatchable
        out[:, j] = v.reshape(-1)
    return out


class _Spacing:
    # Stands for the SimpleITK image where RadiomicsShape2D only reads its spacing.
    def __init__(self, spacing):
        self._spacing = (float(spacing[1]), float(spacing[0]))  # SimpleITK (x, y) order

    def GetSpacing(self):  # noqa: N802 - SimpleITK's name
        return self._spacing


def _shape2d_one(obj, spacing, settings) -> np.ndarray:
    """shape2D of one object: pyradiomics' own initialisation, without base-class overhead."""
    import SimpleITK as sitk

    cls = _feature_class("shape2D")
    msk = sitk.GetImageFromArray(obj.mask.astype(np.uint32))
    inst = _instance(cls, settings, inputImage=_Spacing(spacing), inputMask=msk)
    inst._initSegmentBasedCalculation()
    return np.array(
        [float(getattr(inst, f"get{f}FeatureValue")()) for f in _class_feature_names("shape2D")]
    )


def _class_one(cls_name, obj, spacing, settings) -> np.ndarray:
    """Features of one class for one object, through the class's own constructor."""
    names = _class_feature_names(cls_name)
    try:
        img, msk = obj.sitk_images(spacing)
        values = _feature_class(cls_name)(img, msk, **settings).execute()
        return np.array([float(values[f]) for f in names])
    except Exception as exc:  # pyradiomics raises bare ValueError/IndexError etc.
        _logger.debug("pyradiomics %s failed on a %d-pixel object: %r", cls_name, obj.n_pixels, exc)
        return np.full(len(names), np.nan)


# Objects are stacked in chunks of at most this many matrix cells (about 32 MB of float64):
# per object Ng x Ng x 4 angles (glcm) or Ng x n_pixels (glszm: one column per possible zone
# size), Ng being the largest in the chunk.
_MAX_CELLS = 4_000_000
# Fixed cost of one stacked class computation, in padded GLCM cells (K * Ng_max^2), as
# measured: splitting a stack pays when padding to the largest Ng would waste more.
_CHUNK_COST = 2000
_MAX_CHUNK = 64


def _chunk_rows(rows, objs):
    """Split ``rows`` into stacks of objects of similar gray-level counts.

    Sorted by Ng, the split minimising ``sum(_CHUNK_COST + K * Ng_max ** 2)`` is found by
    dynamic programming, within the memory bound.
    """
    rows = sorted(rows, key=lambda k: objs[k].ng)
    ng = [objs[k].ng for k in rows]
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


def radiomics_features_batch(
    images: Sequence[np.ndarray],
    masks: Sequence[np.ndarray],
    spacing: tuple[float, float],
    *,
    classes: Sequence[str] = ALL_RADIOMICS_CLASSES,
    bin_width: float = 5.0,
    bin_count: int | None = None,
    min_texture_size: int = 4,
) -> np.ndarray:
    """:func:`radiomics_features` of several objects, one row each (the fast path).

    Each object is discretised once for all classes; the texture matrices are computed per
    object by pyradiomics' own code, then stacked (zero-padded to common gray levels) so
    that every pyradiomics feature function runs once for all objects, as in pyradiomics'
    voxel-based mode. The values equal :func:`radiomics_features` (and pyradiomics'
    ``execute``) up to the rounding of sums taken in another order (about 1e-15 relative).
    A class that cannot be stacked (objects with different numbers of texture directions)
    or on which pyradiomics fails is computed object by object.

    Parameters
    ----------
    images : sequence of ndarray, shape (H_k, W_k)
        Raw detector values around each object.
    masks : sequence of ndarray of bool, shape (H_k, W_k)
        One mask per image.
    spacing, classes, bin_width, bin_count, min_texture_size
        See :func:`radiomics_features`.

    Returns
    -------
    ndarray of float64, shape (n_objects, n_features)

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> img = 1000 + 100 * rng.random((12, 12))
    >>> a = np.zeros((12, 12), bool); a[2:6, 2:7] = True
    >>> b = np.zeros((12, 12), bool); b[7:11, 4:9] = True
    >>> both = radiomics_features_batch([img, img], [a, b], (0.07, 0.07), classes=["glcm"])
    >>> one = radiomics_features(img, b, (0.07, 0.07), classes=["glcm"])
    >>> both.shape, bool(np.allclose(both[1], one, rtol=1e-12, atol=0))
    ((2, 24), True)
    """
    classes = _check_classes(classes)
    if len(images) != len(masks):
        raise ValueError(f"{len(images)} images but {len(masks)} masks")
    n_per_class = [len(_class_feature_names(c)) for c in classes]
    out = np.full((len(masks), sum(n_per_class)), np.nan)
    settings = radiomics_settings(bin_width, bin_count)
    objs = [_prepare(i, m, settings, min_texture_size) for i, m in zip(images, masks)]
    start = 0
    # pyradiomics warns (e.g. "Mean of empty slice") where it then returns NaN.
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for cls_name, n in zip(classes, n_per_class):
            cols = slice(start, start + n)
            start += n
            rows = [
                k
                for k, o in enumerate(objs)
                if o is not None and (cls_name not in TEXTURE_CLASSES or o.texture_ok)
            ]
            if cls_name not in _BATCHED:  # shape2D: cheap, per object
                for k in rows:
                    try:
                        out[k, cols] = _shape2d_one(objs[k], spacing, settings)
                    except Exception:
                        out[k, cols] = _class_one(cls_name, objs[k], spacing, settings)
                continue
            for chunk_rows in _chunk_rows(rows, objs):
                chunk = [objs[k] for k in chunk_rows]
                try:
                    out[chunk_rows, cols] = _class_batch(cls_name, chunk, spacing, settings)
                except Exception as exc:
                    _logger.debug("stacked %s failed (%r): object by object", cls_name, exc)
                    for k in chunk_rows:
                        out[k, cols] = _class_one(cls_name, objs[k], spacing, settings)
    return out


def radiomics_features(
    image: np.ndarray,
    mask: np.ndarray,
    spacing: tuple[float, float],
    *,
    classes: Sequence[str] = ALL_RADIOMICS_CLASSES,
    bin_width: float = 5.0,
    bin_count: int | None = None,
    min_texture_size: int = 4,
) -> np.ndarray:
    """pyradiomics features of the pixels of ``mask`` in ``image``.

    Parameters
    ----------
    image : ndarray, shape (H, W)
        Raw detector values (a crop around the object is enough and much faster).
    mask : ndarray of bool, shape (H, W)
        The object (one calcification, or one calcification's background band).
    spacing : (float, float)
        Pixel spacing in mm, (row, col).
    classes : sequence of str
        pyradiomics classes, from ``ALL_RADIOMICS_CLASSES``.
    bin_width : float, default=5.0
        Gray-level bin width in raw detector units (pyradiomics ``binWidth``).
    bin_count : int, optional
        Fixed number of gray-level bins instead of ``bin_width`` (pyradiomics ``binCount``).
    min_texture_size : int, default=4
        Objects with fewer pixels get NaN for the texture classes. A pixel count, not an area,
        on purpose: how well a texture matrix is estimated depends on how many pixels fill it.
        The default keeps every object with a 2x2 block (the paper computed texture on all
        objects; synthetic amorphous calcifications at 0.07 mm have a median of about 7 px,
        so a threshold of 10 px would leave most of them without texture).

    Returns
    -------
    ndarray of float64, shape (n_features,)
        In the order of :func:`radiomics_feature_names` ``(classes)``; NaN for the classes the
        object is too small for (see the module docstring) or that pyradiomics failed on.

    See Also
    --------
    radiomics_features_batch : the same for many objects at once, much faster per object.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.arange(36, dtype=float).reshape(6, 6) * 10
    >>> m = np.zeros((6, 6), bool); m[1:4, 1:5] = True
    >>> f = radiomics_features(img, m, (0.1, 0.1), classes=["shape2D", "firstorder"])
    >>> names = radiomics_feature_names(["shape2D", "firstorder"])
    >>> float(f[names.index("shape2D_PixelSurface")])  # 12 pixels of 0.01 mm^2
    0.12
    >>> bool(f[names.index("firstorder_Mean")] == img[m].mean())
    True
    >>> line = np.zeros((6, 6), bool); line[2, :] = True  # 1 pixel thick: no texture
    >>> bool(np.isnan(radiomics_features(img, line, (0.1, 0.1), classes=["glcm"])).all())
    True
    """
    return radiomics_features_batch(
        [image],
        [mask],
        spacing,
        classes=classes,
        bin_width=bin_width,
        bin_count=bin_count,
        min_texture_size=min_texture_size,
    )[0]
