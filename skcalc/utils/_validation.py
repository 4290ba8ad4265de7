"""Input checks shared by the pure functions."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["check_label_image"]


def check_label_image(labels: Any, name: str = "labels", *, nonnegative: bool = False):
    """``labels`` as a 2-D integer (or boolean) array; ValueError/TypeError naming ``name``.

    Examples
    --------
    >>> check_label_image([[0, 1], [2, 0]]).shape
    (2, 2)
    >>> check_label_image(np.zeros((2, 2)), "calcifications")
    Traceback (most recent call last):
    ...
    TypeError: calcifications must be an integer label image, got dtype float64
    """
    a = np.asarray(labels)
    if a.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got shape {a.shape}")
    if not (np.issubdtype(a.dtype, np.integer) or a.dtype == bool):
        raise TypeError(f"{name} must be an integer label image, got dtype {a.dtype}")
    if nonnegative and np.issubdtype(a.dtype, np.signedinteger) and a.size and a.min() < 0:
        raise ValueError(f"{name} has negative labels")
    return a
