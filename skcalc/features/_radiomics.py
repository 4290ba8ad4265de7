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

Two paths compute the same values (tested equal to ``RadiomicsFeatureExtractor.execute`` on the
whole image to 1e-9 relative):

* the **batched path** (:mod:`skcalc.features._radiomics_batched`, the default): each object is
  discretised once and every pyradiomics feature function runs once on the stacked matrices
  of all objects of a chunk;
* the **reference path** (:mod:`skcalc.features._radiomics_reference`, ``batched=False``):
  pyradiomics' own feature classes, object by object, through their public constructor and
  ``execute``. The batched path falls back to it for a chunk on which it fails, and then
  emits one :class:`RadiomicsFallbackWarning` per call naming the ROI, the classes and the
  reason.

Settings. The reference path passes 2-D SimpleITK images with the detector spacing in
SimpleITK's ``(x, y)`` = ``(col, row)`` order (the batched path uses the same spacing), so
shape2D is in mm and mm^2 and firstorder's TotalEnergy is per mm^2. pyradiomics processes a
2-D image natively in 2-D (4 in-plane angles), which is what ``force2D=True,
force2Ddimension=0`` gives on a ``(1, H, W)`` volume (verified); ``force2D`` must *not* be
passed with a 2-D image. The mask is binarised (label 1). Gray levels are
discretised with a fixed ``binWidth`` in raw detector units (default 5: on the synthetic 12-bit
cohort, calcifications span about 50-110 units and their bands 135-205 units, i.e. about 10-22
and 27-41 bins), or a fixed ``binCount``.

Gray-level budget. The texture matrices grow as Ng^2 (glcm) and MCC's eigenvalues as Ng^3, so
an object may get at most ``max_gray_levels`` gray levels (default
:data:`DEFAULT_MAX_GRAY_LEVELS` = 256, between three and four times the widest band of the
synthetic 12-bit cohort, 70 levels at ``bin_width=5``). At that maximum (uniform noise filling
every level of every band) an object costs about 0.5-1.5 s, nearly all of it MCC; on cohort
data 3-8 ms. An object whose value range would need more is refused **before** any bin edge
is built (:class:`~skcalc.exceptions.ROIValidationError` naming the ROI, the range and a
``bin_width`` that fits): images scaled to huge values (float x 1e6, int64) need a larger
``bin_width`` or a ``bin_count``. The opposite case, values in [0, 1] with ``bin_width=5``,
leaves one gray level per object and constant texture features: when more than half of the
objects whose values differ are left with a single gray level, a :class:`DiscretisationWarning`
names the ROI and suggests ``bin_width`` of about (typical object range) / 30, or ``bin_count``.

Objects too small for a class get NaN for that whole class, never an exception:

* 1 pixel: every class is NaN (pyradiomics refuses single-pixel ROIs: "mask only contains 1
  segmented voxel"). 1-pixel-thick lines are accepted (``minimumROIDimensions=1``).
* Texture classes (glcm, glrlm, glszm, gldm, ngtdm) additionally need at least
  ``min_texture_size`` pixels **and** a 2x2 block of object pixels (a 1-pixel-thick line or a
  scatter of diagonal pixels gives texture matrices with empty directions).
* An error pyradiomics raises on one object in the reference path (``ValueError``,
  ``IndexError``, ``ArithmeticError``, ``numpy.linalg.LinAlgError``) turns that class of that
  object into NaN, is logged at DEBUG level on the ``skcalc.features`` logger and is counted
  in the call's :class:`RadiomicsFallbackWarning`. Any other exception propagates. Features
  pyradiomics itself returns as NaN (e.g. firstorder RobustMeanAbsoluteDeviation of a
  2-pixel diagonal) stay NaN.
"""

from __future__ import annotations

import logging
import warnings
from collections import Counter
from collections.abc import Sequence

import numpy as np

from ..exceptions import ROIValidationError, SkcalcWarning
from . import _radiomics_batched as _batched
from ._radiomics_reference import class_feature_names, reference_class_features

__all__ = [
    "ALL_RADIOMICS_CLASSES",
    "DEFAULT_MAX_GRAY_LEVELS",
    "DiscretisationWarning",
    "RadiomicsFallbackWarning",
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
#: Most gray levels one object may be discretised into (see the module docstring).
DEFAULT_MAX_GRAY_LEVELS = 256

# What pyradiomics (reference path) or the stacking (batched path) raise on data they cannot
# handle. Anything else (MemoryError, KeyboardInterrupt, TypeError ...) propagates.
_PYRADIOMICS_ERRORS = (ValueError, IndexError, ArithmeticError, np.linalg.LinAlgError)
# The batched path also reaches into pyradiomics' internals: a pyradiomics release that renamed
# them raises AttributeError/KeyError, and the reference path takes over (with the warning).
_BATCH_ERRORS = (_batched.NotBatchable, AttributeError, KeyError, *_PYRADIOMICS_ERRORS)


class RadiomicsFallbackWarning(SkcalcWarning):
    """Some objects of an ROI went through the slow reference path, or failed in it.

    Emitted at most once per :func:`radiomics_features_batch` call (one feature set of one
    ROI); the message names the ROI, the classes, the number of objects and the reason.
    """


class DiscretisationWarning(SkcalcWarning):
    """The gray-level discretisation leaves (almost) no texture information in an ROI."""


def _check_classes(classes: Sequence[str]) -> tuple[str, ...]:
    classes = tuple(classes)
    unknown = [c for c in classes if c not in ALL_RADIOMICS_CLASSES]
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
    return [f"{c}_{f}" for c in classes for f in class_feature_names(c)]


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


def _roi_label(roi_id) -> str:
    return "<unnamed>" if roi_id is None else str(roi_id)


def _fits(width_hint: float) -> str:
    """``width_hint`` rounded up to two significant digits, as text."""
    if not np.isfinite(width_hint) or width_hint <= 0:
        return f"{width_hint:g}"
    unit = 10.0 ** (np.floor(np.log10(width_hint)) - 1)
    return f"{np.ceil(width_hint / unit) * unit:.2g}"


class _Report:
    """Fallbacks, failures and collapsed discretisations of one ROI, warned about once."""

    def __init__(self, settings: dict) -> None:
        self.settings = settings
        self.fallback: Counter = Counter()  # (class, reason) -> objects
        self.failed: Counter = Counter()  # (class, reason) -> objects
        self.n_varied = 0  # objects whose values differ
        self.spans: list[float] = []  # value ranges of objects left with one gray level
        self.varied_spans: list[float] = []

    def count_discretisation(self, objs) -> None:
        for o in objs:
            if o is not None and (o.collapsed or o.gray_levels.size > 1):
                self.n_varied += 1
                span = float(o.span)
                self.varied_spans.append(span)
                if o.collapsed:
                    self.spans.append(span)

    def warn(self, roi_id, stacklevel: int = 3) -> None:
        """Emit (at most) one warning of each kind for everything counted so far."""
        name = _roi_label(roi_id)
        if self.n_varied and 2 * len(self.spans) > self.n_varied:
            how = (
                f"bin_count={self.settings['binCount']}"
                if self.settings.get("binCount") is not None
                else f"bin_width={self.settings['binWidth']:g}"
            )
            typical = float(np.median(self.varied_spans))
            warnings.warn(
                f"ROI {name!r}: {how} leaves a single gray level in {len(self.spans)} of "
                f"{self.n_varied} objects whose values differ (median value range "
                f"{typical:.3g}); their texture features are constant. Set bin_width to about "
                f"{_fits(typical / 30)} (range / 30) or use bin_count.",
                DiscretisationWarning,
                stacklevel=stacklevel,
            )
        if not (self.fallback or self.failed):
            return
        parts = []
        if self.fallback:
            items = "; ".join(f"{c} x{n} ({r})" for (c, r), n in sorted(self.fallback.items()))
            parts.append(
                f"the batched path failed and pyradiomics' own classes were used for {items}"
            )
        if self.failed:
            items = "; ".join(f"{c} x{n} ({r})" for (c, r), n in sorted(self.failed.items()))
            parts.append(f"pyradiomics failed, the values are NaN, for {items}")
        warnings.warn(
            f"ROI {name!r}: " + "; ".join(parts), RadiomicsFallbackWarning, stacklevel=stacklevel
        )


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _class_reference(cls_name, obj, spacing, settings, report: _Report) -> np.ndarray:
    """One class of one prepared object through pyradiomics' own class (NaN if it fails)."""
    try:
        return reference_class_features(cls_name, obj.image, obj.mask, spacing, settings)
    except _PYRADIOMICS_ERRORS as exc:
        _logger.debug("pyradiomics %s failed on a %d-pixel object: %r", cls_name, obj.n_pixels, exc)
        report.failed[cls_name, _reason(exc)] += 1
        return np.full(len(class_feature_names(cls_name)), np.nan)


def _prepare_all(images, masks, settings, min_texture_size, max_gray_levels, roi_id):
    objs = []
    for image, mask in zip(images, masks):
        try:
            objs.append(_batched.prepare(image, mask, settings, min_texture_size, max_gray_levels))
        except _batched.GrayLevelBudgetError as exc:
            raise ROIValidationError(
                _roi_label(roi_id), "an " + gray_level_message(exc, settings)
            ) from exc
        except ValueError as exc:
            raise ROIValidationError(_roi_label(roi_id), str(exc)) from exc
    return objs


def gray_level_message(exc, settings: dict) -> str:
    """The advice given when an object exceeds the gray-level budget."""
    span = exc.vmax - exc.vmin
    how = (
        f"bin_count={settings['binCount']} exceeds it"
        if settings.get("binCount") is not None
        else f"bin_width={settings['binWidth']:g} gives {exc.n_levels} gray levels; "
        f"use bin_width >= {_fits(span / max(exc.max_levels - 2, 1))} or bin_count"
    )
    return (
        f"object's values span {exc.vmin:g}..{exc.vmax:g}: {how} (at most "
        f"max_gray_levels={exc.max_levels} gray levels per object bound the texture cost)"
    )


def radiomics_features_batch(
    images: Sequence[np.ndarray],
    masks: Sequence[np.ndarray],
    spacing: tuple[float, float],
    *,
    classes: Sequence[str] = ALL_RADIOMICS_CLASSES,
    bin_width: float = 5.0,
    bin_count: int | None = None,
    min_texture_size: int = 4,
    max_gray_levels: int | None = DEFAULT_MAX_GRAY_LEVELS,
    roi_id: str | None = None,
    batched: bool = True,
) -> np.ndarray:
    """:func:`radiomics_features` of several objects, one row each.

    With ``batched=True`` (the fast path) each object is discretised once and every
    pyradiomics feature function runs once per chunk of objects on their stacked texture
    matrices (see :mod:`skcalc.features._radiomics_batched`); a chunk on which that fails is
    recomputed by the reference path with one :class:`RadiomicsFallbackWarning` per call.
    ``batched=False`` uses pyradiomics' own classes object by object. Both give
    ``execute``'s values (the batched path up to the rounding of sums taken in another
    order, about 1e-13 relative).

    Parameters
    ----------
    images : sequence of ndarray, shape (H_k, W_k)
        Raw detector values around each object.
    masks : sequence of ndarray of bool, shape (H_k, W_k)
        One mask per image.
    spacing, classes, bin_width, bin_count, min_texture_size, max_gray_levels
        See :func:`radiomics_features`.
    roi_id : str, optional
        Named in warnings and errors.
    batched : bool, default=True
        False: the reference path only (slow; for checks).

    Returns
    -------
    ndarray of float64, shape (n_objects, n_features)

    Raises
    ------
    ROIValidationError
        An object exceeds ``max_gray_levels`` or has non-finite values (raised before any
        feature is computed).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> img = 1000 + 100 * rng.random((12, 12))
    >>> a = np.zeros((12, 12), bool); a[2:6, 2:7] = True
    >>> b = np.zeros((12, 12), bool); b[7:11, 4:9] = True
    >>> both = radiomics_features_batch([img, img], [a, b], (0.07, 0.07), classes=["glcm"])
    >>> ref = radiomics_features_batch([img], [b], (0.07, 0.07), classes=["glcm"], batched=False)
    >>> both.shape, bool(np.allclose(both[1], ref[0], rtol=1e-12, atol=0))
    ((2, 24), True)
    """
    report = _Report(radiomics_settings(bin_width, bin_count))
    out = _features_batch(
        images, masks, spacing, classes, min_texture_size, max_gray_levels, roi_id, batched, report
    )
    report.warn(roi_id)
    return out


def _features_batch(
    images, masks, spacing, classes, min_texture_size, max_gray_levels, roi_id, batched, report
) -> np.ndarray:
    """:func:`radiomics_features_batch` counting its warnings into ``report``."""
    classes = _check_classes(classes)
    if len(images) != len(masks):
        raise ValueError(f"{len(images)} images but {len(masks)} masks")
    n_per_class = [len(class_feature_names(c)) for c in classes]
    out = np.full((len(masks), sum(n_per_class)), np.nan)
    settings = report.settings
    objs = _prepare_all(images, masks, settings, min_texture_size, max_gray_levels, roi_id)
    report.count_discretisation(objs)
    splits: dict = {}
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
            if not batched:
                for k in rows:
                    out[k, cols] = _class_reference(cls_name, objs[k], spacing, settings, report)
                continue
            if cls_name == "shape2D":  # cheap, per object
                for k in rows:
                    try:
                        out[k, cols] = _batched.shape2d_one(objs[k], spacing, settings)
                    except _BATCH_ERRORS as exc:
                        report.fallback[cls_name, _reason(exc)] += 1
                        out[k, cols] = _class_reference(
                            cls_name, objs[k], spacing, settings, report
                        )
                continue
            # firstorder's stack is flat (linear in pixels): one chunk; the texture matrices
            # are padded to the largest object of a chunk: chunks of similar objects.
            if cls_name == "firstorder":
                chunks = [rows] if rows else []
            else:  # the same split serves every class with the same sizes and rows
                key = (cls_name == "glcm", tuple(rows))
                if key not in splits:
                    splits[key] = _batched.chunk_rows(rows, objs, cls_name)
                chunks = splits[key]
            for chunk in chunks:
                try:
                    out[chunk, cols] = _batched.class_batch(
                        cls_name, [objs[k] for k in chunk], spacing, settings
                    )
                except _BATCH_ERRORS as exc:
                    _logger.debug("stacked %s failed (%r): object by object", cls_name, exc)
                    report.fallback[cls_name, _reason(exc)] += len(chunk)
                    for k in chunk:
                        out[k, cols] = _class_reference(
                            cls_name, objs[k], spacing, settings, report
                        )
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
    max_gray_levels: int | None = DEFAULT_MAX_GRAY_LEVELS,
    roi_id: str | None = None,
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
    max_gray_levels : int or None, default=DEFAULT_MAX_GRAY_LEVELS (256)
        Most gray levels the object may be discretised into; more raises
        :class:`~skcalc.exceptions.ROIValidationError` before any work. None: no bound (the
        cost then grows as Ng^2 to Ng^3).
    roi_id : str, optional
        Named in warnings and errors.

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
        max_gray_levels=max_gray_levels,
        roi_id=roi_id,
    )[0]
