"""The largest image the readers decode, checked against each file's declared size first.

A file's header says how many pixels it holds before any pixel is decoded. A damaged or
hostile header (a PNG claiming 100000 x 100000 pixels, an NPY or TIFF claiming terabytes)
would otherwise make the reader allocate that much, or fail deep inside a library with an
error that does not name the file. Every reader of :mod:`skcalc.io` compares the declared
size with :data:`MAX_IMAGE_PIXELS` first and raises
:class:`~skcalc.exceptions.UnreadableImageError` naming the file when it is larger.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence

from ..exceptions import UnreadableImageError

__all__ = ["MAX_IMAGE_PIXELS", "check_declared_size"]

#: Largest number of pixels a reader decodes: 150 megapixels (12 000 x 12 500), about 300 MB
#: as uint16, more than any mammogram (a full-field detector has 10-40 megapixels, a 0.04 mm
#: film scan about 50). Set ``skcalc.io.MAX_IMAGE_PIXELS`` higher to read larger files on
#: purpose.
MAX_IMAGE_PIXELS: int = 150_000_000


def check_declared_size(path: str, shape: Sequence[int], itemsize: int = 2) -> None:
    """Refuse a file whose header declares more than :data:`MAX_IMAGE_PIXELS` pixels.

    Parameters
    ----------
    path : str
        The file, named in the error.
    shape : sequence of int
        The shape its header declares (rows, columns and any further axes).
    itemsize : int, default=2
        Bytes per value, only for the message.

    Raises
    ------
    UnreadableImageError
        A negative dimension, or more pixels than the limit.

    Examples
    --------
    >>> check_declared_size("a.png", (4096, 3328))
    >>> check_declared_size("b.png", (100000, 100000))
    Traceback (most recent call last):
    ...
    skcalc.exceptions.UnreadableImageError: b.png: the header declares an image of ...
    """
    # The package attribute is the setting users change (``skcalc.io.MAX_IMAGE_PIXELS``).
    limit = int(getattr(sys.modules.get("skcalc.io"), "MAX_IMAGE_PIXELS", MAX_IMAGE_PIXELS))
    dims = [int(d) for d in shape]
    if any(d < 0 for d in dims):
        raise UnreadableImageError(f"{path}: the header declares a negative size {tuple(dims)}")
    n = math.prod(dims)
    if n > limit:
        size = " x ".join(str(d) for d in dims)
        raise UnreadableImageError(
            f"{path}: the header declares an image of {size} values "
            f"({n * max(int(itemsize), 1) / 2**30:.3g} GiB), more than skcalc reads "
            f"(skcalc.io.MAX_IMAGE_PIXELS = {limit}); the file is damaged, or raise the limit"
        )
