"""Arrays that records own: read-only, never changed behind their back, hashed once.

The per-ROI cache keys results on array content. A digest can be remembered for an array
only if nobody can write to its memory any more; a read-only *view* of a caller's writeable
array does not qualify (the caller can still change it), so records own their arrays: they
keep arrays that are already frozen and copy everything else once.
"""

from __future__ import annotations

import hashlib
import threading
import weakref
from typing import Any

import numpy as np

__all__ = ["array_digest", "freeze", "is_frozen", "owned"]

# Digest of a frozen array by id, valid while the array is alive: a grid search passes the
# same arrays through every fold and candidate, so each buffer is hashed once per process.
_DIGESTS: dict[int, tuple[weakref.ref, bytes]] = {}
_LOCK = threading.Lock()


def is_frozen(a: np.ndarray) -> bool:
    """True when no one can write to ``a``'s memory: it and every array it views are read-only.

    A view of a buffer that is not a numpy array (``bytes`` are immutable, a memory map or
    a ``bytearray`` is not) counts as frozen only for ``bytes``.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.zeros(3)
    >>> v = a.view(); v.flags.writeable = False
    >>> is_frozen(v)          # the caller can still write through ``a``
    False
    >>> is_frozen(freeze(a.copy()))
    True
    """
    while isinstance(a, np.ndarray):
        if a.flags.writeable:
            return False
        if a.base is None:
            return True
        a = a.base
    return isinstance(a, bytes)


def freeze(a: np.ndarray) -> np.ndarray:
    """Mark an array that the caller owns (and no one else references) read-only, in place."""
    a.flags.writeable = False
    return a


def owned(a: Any) -> Any:
    """``a`` if it is a frozen array, else a frozen copy of it; non-arrays pass unchanged.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.arange(3)
    >>> b = owned(a)
    >>> a[0] = 7; int(b[0])   # the record's copy does not follow the caller's array
    0
    >>> owned(b) is b         # a frozen array is kept as it is
    True
    """
    if not isinstance(a, np.ndarray) or is_frozen(a):
        return a
    return freeze(np.array(a, copy=True, order="K"))


def array_digest(a: np.ndarray) -> bytes:
    """SHA-1 of an array's dtype, shape and bytes; remembered for frozen arrays only."""
    frozen = is_frozen(a)
    if frozen:
        entry = _DIGESTS.get(id(a))
        if entry is not None and entry[0]() is a:
            return entry[1]
    c = np.ascontiguousarray(a)
    # tobytes() of an empty array is b"" (a memoryview of it cannot be cast).
    data = memoryview(c).cast("B") if c.size else b""
    digest = hashlib.sha1(f"{c.dtype.str}{c.shape}".encode() + data).digest()
    if frozen:
        key = id(a)
        try:
            ref = weakref.ref(a, lambda _: _DIGESTS.pop(key, None))
        except TypeError:
            return digest
        with _LOCK:
            _DIGESTS[key] = (ref, digest)
    return digest
