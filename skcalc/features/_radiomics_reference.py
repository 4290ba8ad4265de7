"""The reference path: pyradiomics' own feature classes and extractor, object by object.

Nothing here reaches into pyradiomics' internals: every value comes from a public
constructor and ``execute``. This is what the batched path
(:mod:`skcalc.features._radiomics_batched`) is tested against, and what
:func:`~skcalc.features._radiomics.radiomics_features_batch` falls back to (with a
:class:`~skcalc.features.RadiomicsFallbackWarning`) when a class cannot be stacked.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import logging
from collections.abc import Iterator, Sequence

import numpy as np

__all__ = [
    "class_feature_names",
    "feature_class",
    "pyradiomics_execute",
    "reference_class_features",
]

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
def feature_class(name: str):
    """The pyradiomics feature class ``name`` (imported lazily; its chatter silenced)."""
    module, cls = _CLASS_PATHS[name]
    return getattr(importlib.import_module(f"radiomics.{module}"), cls)


@contextlib.contextmanager
def quiet_radiomics() -> Iterator[None]:
    """pyradiomics' logger at ERROR inside the block, back at the user's level after it.

    pyradiomics logs a message per tiny object; skcalc reports those conditions itself, once
    per call. Other libraries' logging is left as the user set it.
    """
    import radiomics  # noqa: F401  (its import sets the logger up; do that first)

    logger = logging.getLogger("radiomics")
    old = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(old)


@functools.cache
def class_feature_names(name: str) -> tuple[str, ...]:
    """Non-deprecated features of class ``name``, in pyradiomics' (alphabetical) order."""
    names = feature_class(name).getFeatureNames()
    return tuple(sorted(k for k, deprecated in names.items() if not deprecated))


def to_sitk(image: np.ndarray, mask: np.ndarray, spacing: Sequence[float]):
    """2-D SimpleITK image and label-1 mask with the spacing in SimpleITK's (x, y) order."""
    import SimpleITK as sitk

    img = sitk.GetImageFromArray(np.asarray(image))
    img.SetSpacing((float(spacing[1]), float(spacing[0])))  # (x, y) = (col, row)
    msk = sitk.GetImageFromArray(np.asarray(mask, dtype=bool).astype(np.uint32))
    msk.CopyInformation(img)
    return img, msk


def reference_class_features(
    cls_name: str, image: np.ndarray, mask: np.ndarray, spacing, settings: dict
) -> np.ndarray:
    """One class of one object through the class's own constructor and ``execute``.

    pyradiomics' errors (``ValueError`` for single-pixel masks, ``IndexError`` ...) propagate.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.arange(16.0).reshape(4, 4); m = np.ones((4, 4), bool)
    >>> float(reference_class_features("firstorder", img, m, (1, 1), {"binWidth": 5})[7])
    7.5
    """
    img, msk = to_sitk(np.asarray(image, dtype=np.float64), mask, spacing)
    values = feature_class(cls_name)(img, msk, **settings).execute()
    return np.array([float(values[f]) for f in class_feature_names(cls_name)])


def pyradiomics_execute(
    image: np.ndarray, mask: np.ndarray, spacing, classes: Sequence[str], settings: dict
) -> np.ndarray:
    """``RadiomicsFeatureExtractor.execute`` on the whole image (the slow, plain reference).

    Returns the features of ``classes`` in :func:`class_feature_names` order.
    """
    from radiomics import featureextractor

    ex = featureextractor.RadiomicsFeatureExtractor(additionalInfo=False, **settings)
    ex.disableAllFeatures()
    for c in classes:
        ex.enableFeatureClassByName(c)
    img, msk = to_sitk(image, mask, spacing)
    with quiet_radiomics():
        out = ex.execute(img, msk)
    return np.array(
        [float(out[f"original_{c}_{f}"]) for c in classes for f in class_feature_names(c)]
    )
