"""Which way round a mammogram is: breast brighter than the air (as skcalc expects) or darker.

Every detector in skcalc looks for bright spots on a bright breast. A raw ("for processing")
image stores detector exposure, highest in the air, and so does ``MONOCHROME1`` data read
without its inversion (a PNG or TIFF export, a reader that ignores the tag): there the breast
is darker than the air and calcifications are dark spots, which no bright-spot detector finds.
Nothing in the pixel values says so, but the anatomy does: breast tissue is textured at
millimetre scales, the air around it is flat.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from .._units import check_spacing
from ..roi import reflect
from ._breast import _otsu_centre
from ._calibrated import _block_mean

__all__ = ["breast_polarity"]

# Measured on the four real NYU views (as given, inverted, as raw exposure with and without
# saturated air, printed on simulated film) and skcalc's synthetic full fields: the band-pass
# sd of the tissue is 0.008-0.08 of the tissue-air contrast (0.003-0.006 when an exponential
# compresses the synthetic tissue), that of the air at most 0.0005.
_FLAT = 0.003      # the air's band-pass sd, at most this fraction of the contrast
_TEXTURED = 0.002  # the breast's, at least this fraction ...
_RATIO = 8.0       # ... and this many times the air's
_MIN_CORE_CM2 = 2.0
_MIN_BORDER_SHARE = 0.2  # of the image border held by the air
_FLAT_BLOCK = 0.001  # a flat block's band-pass, as a fraction of the contrast
_MAX_FLAT_TISSUE_CM2 = 1.0  # flat ground the breast's side may hold


def breast_polarity(
    image: np.ndarray,
    spacing: float | Sequence[float] = (0.07, 0.07),
    *,
    block_mm: float = 0.5,
) -> str:
    """Whether the breast is brighter (``"bright"``) or darker (``"dark"``) than the air.

    The image is averaged in blocks of ``block_mm`` and split in two by Otsu's threshold. The
    interior of each side (more than 6 mm from the other side) is band-passed (Gaussian of
    1 mm minus Gaussian of 2 mm, which removes the pixel noise and the slow heel-effect
    gradient) and its robust sd taken relative to the contrast between the two sides. The
    breast is the textured side, the air the flat one: the answer is given only when one
    side is flat (sd at most 0.003 of the contrast), the other textured (at least 0.002, and
    8 times the flat side's) without a flat area of its own (1 cm^2 of blocks under 0.001
    after a 1 mm erosion: air beside a bright band of clear film or a shutter), both
    interiors cover 2 cm^2 and the flat side holds a fifth of the image border (the air
    surrounds the breast; a flat region inside it, such as an implant, does not).
    Otherwise, and for crops without air, ``"unknown"``.

    On the real NYU GMIC views (0.1 mm assumed) the textured side's sd is 0.03-0.08 of the
    contrast and the air's below 0.0005, as given, inverted, as raw exposure (with saturated
    or noisy air) and printed on simulated film; 0.008-0.010 on skcalc's synthetic fields.

    Parameters
    ----------
    image : ndarray of shape (H, W)
        Mammogram, any numeric dtype.
    spacing : float or (float, float), default=(0.07, 0.07)
        Pixel spacing in mm.
    block_mm : float, default=0.5
        Side of the averaging blocks in mm.

    Returns
    -------
    {"bright", "dark", "unknown"}

    Examples
    --------
    >>> import numpy as np
    >>> from scipy import ndimage
    >>> rng = np.random.default_rng(0)
    >>> img = np.zeros((400, 300))                       # air at 0, 0.25 mm pixels
    >>> texture = ndimage.gaussian_filter(rng.standard_normal((400, 150)), 4)
    >>> img[:, :150] = 1000 + 400 * texture              # textured breast at the left
    >>> breast_polarity(img, 0.25), breast_polarity(img.max() - img, 0.25)
    ('bright', 'dark')
    >>> breast_polarity(img[:, :150], 0.25)              # no air: cannot tell
    'unknown'
    """
    image = np.asarray(image)
    if image.ndim != 2 or image.size == 0:
        raise ValueError(f"image must be a non-empty 2-D array, got shape {image.shape}")
    if not block_mm > 0:
        raise ValueError(f"block_mm must be positive, got {block_mm}")
    sp = check_spacing(spacing, plausible=False)
    f = [max(1, int(round(block_mm / s))) for s in sp]
    bs = (f[0] * sp[0], f[1] * sp[1])
    H, W = (image.shape[0] // f[0]) * f[0], (image.shape[1] // f[1]) * f[1]
    if H < 2 * f[0] or W < 2 * f[1]:
        return "unknown"
    b = _block_mean(image[:H, :W].astype(np.float32), f).astype(np.float64)
    if not np.isfinite(b).all() or b.max() == b.min():
        return "unknown"
    bright = b > _otsu_centre(b)
    contrast = float(np.median(b[bright]) - np.median(b[~bright]))
    band = (ndimage.gaussian_filter(b, [1.0 / s for s in bs])
            - ndimage.gaussian_filter(b, [2.0 / s for s in bs]))
    border = np.concatenate([bright[0], bright[-1], bright[1:-1, 0], bright[1:-1, -1]])
    min_core = _MIN_CORE_CM2 * 100 / (bs[0] * bs[1])
    share = {True: float(border.mean()), False: 1 - float(border.mean())}
    rel = np.abs(band) / contrast
    sd, flat_cm2 = {}, {}
    for side in (True, False):
        # the image border is not the other side: pad with this side
        dist = ndimage.distance_transform_edt(np.pad(bright == side, 1, constant_values=True),
                                              sampling=bs)[1:-1, 1:-1]
        core = dist > 6.0
        if core.sum() < min_core:
            return "unknown"
        sd[side] = 1.482602218505602 * float(np.median(rel[core]))
        # flat ground of its own (air beside a bright band of clear film or a shutter):
        # flat blocks that survive a 1 mm erosion; tissue is flat only along thin lines
        flat = ndimage.binary_erosion(core & (rel < _FLAT_BLOCK), iterations=max(
            1, int(round(1.0 / min(bs)))))
        flat_cm2[side] = float(flat.sum()) * bs[0] * bs[1] / 100
    for breast_side, name in ((True, "bright"), (False, "dark")):
        tissue, air = sd[breast_side], sd[not breast_side]
        if (air <= _FLAT and tissue >= _TEXTURED and tissue >= _RATIO * air
                and share[not breast_side] >= _MIN_BORDER_SHARE
                and flat_cm2[breast_side] < _MAX_FLAT_TISSUE_CM2):
            return name
    return "unknown"


def orient_breast(
    image: np.ndarray, spacing, polarity: str, bit_depth: int | None = None
) -> tuple[np.ndarray, str, float | None]:
    """``image`` with the breast bright, the polarity found, and the reflection used.

    ``polarity``: ``"auto"`` (:func:`breast_polarity` decides; ``"unknown"`` keeps the image),
    ``"bright"`` (as given) or ``"dark"`` (inverted). An integer image is reflected within its
    bit depth (``2**bit_depth - 1 - value``, so an inverted ``MONOCHROME1`` image gets its
    values back), a float image within its own range. The third item is ``top`` (the image
    returned is ``top - image``), or None when the image is returned as given.
    """
    if polarity not in ("auto", "bright", "dark"):
        raise ValueError(f"polarity must be 'auto', 'bright' or 'dark', got {polarity!r}")
    found = breast_polarity(image, spacing) if polarity == "auto" else polarity
    if found != "dark":
        return image, found, None
    image = np.asarray(image)
    if np.issubdtype(image.dtype, np.integer):
        top = max((1 << int(bit_depth)) - 1 if bit_depth else 0, int(image.max()))
    else:
        top = float(np.max(image))
    return reflect(image, top), found, top
