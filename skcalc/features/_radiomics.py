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
  first changes no value. The feature classes are then called directly
  (``RadiomicsGLCM(image, mask, **settings).execute()``), skipping ``execute``'s per-call work
  on the full image (label statistics, ``numpy.unique`` of the whole mask, casts).
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

    logging.getLogger("radiomics").setLevel(logging.ERROR)
    module, cls = _CLASS_PATHS[name]
    return getattr(importlib.import_module(f"radiomics.{module}"), cls)


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
    import SimpleITK as sitk

    classes = _check_classes(classes)
    n_per_class = [len(_class_feature_names(c)) for c in classes]
    out = np.full(sum(n_per_class), np.nan)
    mask = np.asarray(mask, dtype=bool)
    if image.shape != mask.shape:
        raise ValueError(f"image shape {image.shape} and mask shape {mask.shape} differ")
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    n_pixels = int(np.count_nonzero(mask))
    if n_pixels < 2:
        return out
    # The same crop pyradiomics' execute makes (mask bounding box, no padding).
    box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    m = mask[box]
    texture_ok = n_pixels >= min_texture_size and _has_2x2_block(m)

    sitk_image = sitk.GetImageFromArray(np.asarray(image[box], dtype=np.float64))
    # SimpleITK orders spacing (x, y) = (col, row).
    sitk_image.SetSpacing((float(spacing[1]), float(spacing[0])))
    sitk_mask = sitk.GetImageFromArray(m.astype(np.uint32))
    sitk_mask.CopyInformation(sitk_image)
    settings = radiomics_settings(bin_width, bin_count)

    start = 0
    for cls_name, n in zip(classes, n_per_class):
        stop = start + n
        if cls_name in TEXTURE_CLASSES and not texture_ok:
            start = stop
            continue
        try:
            # pyradiomics warns (e.g. "Mean of empty slice") where it then returns NaN.
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                values = _feature_class(cls_name)(sitk_image, sitk_mask, **settings).execute()
            out[start:stop] = [float(values[f]) for f in _class_feature_names(cls_name)]
        except Exception as exc:  # pyradiomics raises bare ValueError/IndexError etc.
            _logger.debug("pyradiomics %s failed on a %d-pixel object: %r", cls_name, n_pixels, exc)
        start = stop
    return out
