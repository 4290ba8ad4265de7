"""Physical units of the records: pixel spacing in mm and the bit depth of stored values.

Each concept has one implementation here, at the bottom of the package's layers, so that
every stage, reader and metric reads a spacing argument and a bit depth the same way.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

__all__ = [
    "DEFAULT_SPACING",
    "plausible_spacing",
    "PLAUSIBLE_SPACING_MM",
    "check_spacing",
    "resolve_bit_depth",
]

#: The paper's detector pitch (Hologic Selenia), mm per pixel (row, col).
DEFAULT_SPACING: tuple[float, float] = (0.07, 0.07)

#: Pixel spacings a mammogram can have, in mm: from magnified or high-resolution film scans
#: (about 0.025 mm) to heavily down-sampled images (1 mm). A value outside is almost always a
#: unit slip (70 for 70 um, 0.007 cm) and would make the mm-sized filters absurdly large or
#: small; callers may widen the range on purpose with ``plausible=(lo, hi)``.
PLAUSIBLE_SPACING_MM: tuple[float, float] = (0.02, 1.0)
_RANGE = {"mm": PLAUSIBLE_SPACING_MM}


@contextmanager
def plausible_spacing(low: float, high: float) -> Iterator[None]:
    """Accept pixel spacings in ``[low, high]`` mm inside this block (default 0.02-1 mm).

    For data that really has an unusual pitch (a specimen radiograph, a thumbnail).

    Examples
    --------
    >>> from skcalc import ROI, plausible_spacing
    >>> import numpy as np
    >>> with plausible_spacing(0.01, 5.0):
    ...     ROI(np.zeros((4, 4)), spacing=2.0).spacing
    (2.0, 2.0)
    """
    if not (0 < low <= high and math.isfinite(high)):
        raise ValueError(f"need 0 < low <= high, got ({low!r}, {high!r})")
    previous = _RANGE["mm"]
    _RANGE["mm"] = (float(low), float(high))
    try:
        yield
    finally:
        _RANGE["mm"] = previous


def check_spacing(
    spacing: float | Sequence[float] | None,
    *,
    name: str = "spacing",
    plausible: tuple[float, float] | None | bool = True,
) -> tuple[float, float]:
    """Validate a pixel spacing and return it as ``(row_mm, col_mm)``.

    Parameters
    ----------
    spacing : float or (float, float) or None
        One number (square pixels) or two, in mm. ``None`` gives :data:`DEFAULT_SPACING`.
    name : str, default="spacing"
        How the value is called in error messages (e.g. ``"ROI 'r1': spacing"``).
    plausible : bool or (float, float) or None, default=True
        Range of spacings accepted, in mm. ``True`` uses :data:`PLAUSIBLE_SPACING_MM`
        (widened inside :func:`plausible_spacing`); ``False`` or ``None`` accepts any
        positive finite value (the pure functions: only entry points check plausibility).

    Returns
    -------
    (float, float)

    Raises
    ------
    ValueError
        Not one or two numbers, not positive and finite, or outside the plausible range.

    Examples
    --------
    >>> check_spacing(0.07)
    (0.07, 0.07)
    >>> check_spacing([0.1, 0.05])
    (0.1, 0.05)
    >>> check_spacing(70)
    Traceback (most recent call last):
    ...
    ValueError: spacing (70.0, 70.0) mm is outside the plausible range for a mammogram ...
    """
    if spacing is None:
        return DEFAULT_SPACING
    try:
        arr = np.asarray(spacing, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be one or two numbers in mm, got {spacing!r}") from None
    if arr.ndim == 0:
        arr = np.array([arr, arr])
    if arr.shape != (2,):
        raise ValueError(f"{name} must be one or two numbers in mm, got {spacing!r}")
    sp = (float(arr[0]), float(arr[1]))
    if not all(math.isfinite(s) and s > 0 for s in sp):
        raise ValueError(f"{name} must be positive finite mm values, got {sp}")
    if plausible is True:
        plausible = _RANGE["mm"]
    if plausible:
        lo, hi = plausible
        if not all(lo <= s <= hi for s in sp):
            raise ValueError(
                f"{name} {sp} mm is outside the plausible range for a mammogram "
                f"[{lo}, {hi}] mm; is it in um or cm? (a spacing outside it is accepted "
                "within `with skcalc.plausible_spacing(low, high):`)"
            )
    return sp


def resolve_bit_depth(image: Any, declared: Any = None) -> int | None:
    """The bit depth that scales ``image`` to [0, 1]: ``value / (2**bits - 1)``.

    This is the single rule used by both HDoGReg branches (the HDoG candidates and the
    regression CNN), so that they always divide by the same number.

    Parameters
    ----------
    image : array-like
        Raw stored values (the whole image, or a crop of it).
    declared : int or None
        The depth the file's header declares (DICOM ``BitsStored``, a PNG's mode) or the user
        gives. It wins whenever it is given: a crop's maximum says nothing about the
        detector's depth.

    Returns
    -------
    int or None
        Bits per pixel, or ``None`` for a floating-point image already in [0, 1].

    Notes
    -----
    Without a declared depth: ``bool`` -> 1; 1-byte integers -> 8; floats with maximum
    <= 1 -> ``None`` (already in [0, 1]); other values -> 12 when the maximum is <= 4095
    (the paper's 12-bit detector; the authors' DICOM reader rescaled 12-bit data stored in
    16 bits), else 16 up to 65535, else the smallest depth that holds the maximum.

    Examples
    --------
    >>> import numpy as np
    >>> resolve_bit_depth(np.array([[0, 900]], np.uint16))
    12
    >>> resolve_bit_depth(np.array([[0, 900]], np.uint16), declared=10)
    10
    >>> resolve_bit_depth(np.array([[0, 200]], np.uint8))
    8
    >>> resolve_bit_depth(np.array([[0.0, 0.5]])) is None
    True
    """
    if declared is not None:
        try:
            bits = int(declared)
        except (TypeError, ValueError):
            bits = -1
        if isinstance(declared, float) and bits != declared:
            bits = -1
        if not 1 <= bits <= 32:
            raise ValueError(f"bit_depth must be an integer in [1, 32], got {declared!r}")
        return bits
    a = np.asarray(image)
    if a.dtype == bool:
        return 1
    if a.dtype.itemsize == 1 and np.issubdtype(a.dtype, np.integer):
        return 8
    vmax = float(a.max()) if a.size else 0.0
    if np.issubdtype(a.dtype, np.floating) and vmax <= 1.0:
        return None
    if vmax <= 4095:
        return 12
    if vmax <= 65535:
        return 16
    if not math.isfinite(vmax):
        raise ValueError("cannot infer a bit depth from non-finite values")
    return min(int(math.ceil(math.log2(vmax + 1))), 32)
