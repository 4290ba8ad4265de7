"""From ROI records to network inputs: crop, resample, scale, 3 channels, ImageNet norm.

Per ROI (:func:`roi_to_array`): the bounding box of the annotated ``region`` (the whole crop
when there is none), grown by ``margin_mm`` and squared in millimetres (so anisotropic
spacings keep the anatomy's aspect ratio), is cut from the image (pixels outside the image
repeat its edge), resampled with anti-aliasing to ``input_size`` x ``input_size`` pixels and
scaled to [0, 1] by its own 0.5th and 99.5th percentiles (robust to a few saturated
pixels; a constant crop gives zeros). With ``field_of_view_mm`` every ROI instead gets a
square of that many mm centred on its region, so all inputs share one mm-per-pixel.

The network side (:func:`to_network_input`) replicates the grey level to 3 channels and
applies ImageNet's per-channel normalisation, as torchvision's pretrained weights expect.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from skimage.transform import resize

from ..roi import ROI, bright_image, check_roi

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "preprocess_rois", "roi_to_array",
           "to_network_input"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: Percentiles that map to 0 and 1 in the per-ROI intensity scaling.
SCALE_PERCENTILES = (0.5, 99.5)


def _square_box(roi: ROI, margin_mm: float, field_of_view_mm: float | None):
    """(row0, row1, col0, col1) of the square (in mm) crop, possibly beyond the image."""
    mask = roi.region_mask
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    sr, sc = roi.spacing
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    if field_of_view_mm is None:
        side_mm = max((r1 - r0) * sr, (c1 - c0) * sc) + 2.0 * margin_mm
    else:
        side_mm = float(field_of_view_mm)
    cr, cc = (r0 + r1) / 2.0, (c0 + c1) / 2.0
    hr = max(side_mm / sr / 2.0, 0.5)
    hc = max(side_mm / sc / 2.0, 0.5)
    return (int(np.floor(cr - hr)), int(np.ceil(cr + hr)),
            int(np.floor(cc - hc)), int(np.ceil(cc + hc)))


def _cut(image: np.ndarray, box) -> np.ndarray:
    """``image[r0:r1, c0:c1]`` with edge replication outside the image."""
    r0, r1, c0, c1 = box
    h, w = image.shape
    inner = image[max(r0, 0):min(r1, h), max(c0, 0):min(c1, w)]
    pad = ((max(-r0, 0), max(r1 - h, 0)), (max(-c0, 0), max(c1 - w, 0)))
    if any(p for pp in pad for p in pp):
        if inner.size == 0:  # the box misses the image entirely (cannot happen for a region)
            return np.zeros((r1 - r0, c1 - c0))
        inner = np.pad(inner, pad, mode="edge")
    return inner


def roi_to_array(
    roi: ROI,
    input_size: int = 64,
    *,
    margin_mm: float = 1.0,
    field_of_view_mm: float | None = None,
) -> np.ndarray:
    """One ROI as a float32 ``(input_size, input_size)`` array scaled to [0, 1].

    Parameters
    ----------
    roi : ROI
    input_size : int, default=64
        Side of the output, in pixels.
    margin_mm : float, default=1.0
        Context added around the region's bounding box (ignored with ``field_of_view_mm``).
    field_of_view_mm : float, optional
        Side of a fixed square field of view centred on the region, in mm.

    Returns
    -------
    ndarray of float32, shape (input_size, input_size)

    Examples
    --------
    >>> import numpy as np
    >>> from skcalc import ROI
    >>> img = np.arange(400, dtype=np.uint16).reshape(20, 20)
    >>> a = roi_to_array(ROI(img, spacing=0.1), input_size=8, margin_mm=0.0)
    >>> a.shape, a.dtype, float(a.min()) >= 0.0, float(a.max()) <= 1.0
    ((8, 8), dtype('float32'), True, True)
    """
    check_roi(roi)
    crop = _cut(np.asarray(bright_image(roi), dtype=np.float64), _square_box(
        roi, margin_mm, field_of_view_mm))
    out = resize(crop, (input_size, input_size), order=1, mode="edge",
                 anti_aliasing=crop.shape[0] > input_size or crop.shape[1] > input_size,
                 preserve_range=True)
    lo, hi = np.percentile(out, SCALE_PERCENTILES)
    if not hi > lo:
        return np.zeros((input_size, input_size), np.float32)
    return np.clip((out - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def preprocess_rois(
    rois: Sequence[ROI],
    input_size: int = 64,
    *,
    margin_mm: float = 1.0,
    field_of_view_mm: float | None = None,
) -> np.ndarray:
    """:func:`roi_to_array` over a list: float32 array of shape (n_rois, size, size)."""
    return np.stack([roi_to_array(r, input_size, margin_mm=margin_mm,
                                  field_of_view_mm=field_of_view_mm) for r in rois])


def to_network_input(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    """(n, H, W) grey levels in [0, 1] -> (n, 3, H, W) ImageNet-normalised tensor.

    Examples
    --------
    >>> import numpy as np
    >>> t = to_network_input(np.full((1, 2, 2), 0.485, np.float32))
    >>> tuple(t.shape), round(float(t[0, 0, 0, 0]), 6)
    ((1, 3, 2, 2), 0.0)
    """
    t = torch.as_tensor(x, dtype=torch.float32)
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=torch.float32).view(1, 3, 1, 1)
    return (t[:, None] - mean) / std
