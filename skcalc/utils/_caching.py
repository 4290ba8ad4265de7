"""Per-ROI memoisation of stateless image stages.

scikit-learn's ``Pipeline(memory=...)`` caches whole-fold ``fit_transform`` calls, keyed on
the whole X, so a grid search still recomputes every ROI once per fold and candidate. The
image stages are per-ROI and stateless, so they are cached per ROI instead: the key is a
content hash of the ROI's inputs, the stage's parameters and the skcalc version.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
from sklearn.utils.validation import check_memory

from ..roi import ROI

__all__ = ["roi_content_hash", "cached_call"]


def _update_array(h: "hashlib._Hash", a: np.ndarray | None) -> None:
    if a is None:
        h.update(b"none")
        return
    a = np.ascontiguousarray(a)
    h.update(f"{a.dtype.str}{a.shape}".encode())
    h.update(memoryview(a).cast("B"))


def roi_content_hash(roi: ROI, fields: Iterable[str] = ("image",)) -> str:
    """SHA-1 of an ROI's spacing and the named array fields.

    A lazy ROI's image is identified by its path, crop box, file size and modification time,
    so hashing it does not read the pixels.

    Examples
    --------
    >>> import numpy as np
    >>> from skcalc import ROI
    >>> a = ROI(np.zeros((2, 2), np.uint16))
    >>> b = ROI(np.zeros((2, 2), np.uint16), meta={"roi_id": "other"})
    >>> roi_content_hash(a) == roi_content_hash(b)
    True
    >>> roi_content_hash(a) == roi_content_hash(ROI(np.ones((2, 2), np.uint16)))
    False
    """
    h = hashlib.sha1()
    h.update(repr(roi.spacing).encode())
    for name in fields:
        h.update(name.encode())
        if name == "image" and roi.is_lazy:
            st = os.stat(roi.path)
            h.update(f"{os.path.abspath(roi.path)}|{roi.box}|{st.st_size}|{st.st_mtime_ns}".encode())
        elif name == "masks":
            m = roi.masks
            _update_array(h, None if m is None else m.foreground)
        else:
            _update_array(h, getattr(roi, name))
    return h.hexdigest()


def _run_stage(stage: str, key: str, params: dict, version: str, func: Callable, roi: ROI) -> Any:
    # stage, key, params and version make the cache key; func and roi are ignored by joblib.
    return func(roi, **params)


def cached_call(
    func: Callable[..., Any],
    roi: ROI,
    params: dict,
    *,
    memory: Any,
    stage: str,
    fields: Iterable[str] = ("image",),
) -> Any:
    """Call ``func(roi, **params)``, memoised in ``memory`` per ROI content.

    Parameters
    ----------
    func : callable
        Module-level function computing one ROI's result (must be deterministic).
    roi : ROI
    params : dict
        Keyword parameters of ``func``; part of the cache key.
    memory : None, str or joblib.Memory
        Where to cache; ``None`` disables caching.
    stage : str
        Name of the stage, part of the key so stages never share entries.
    fields : iterable of str
        ROI fields the result depends on.
    """
    memory = check_memory(memory)
    if getattr(memory, "location", None) is None:
        return func(roi, **params)
    from .. import __version__

    key = roi_content_hash(roi, fields)
    cached = memory.cache(_run_stage, ignore=["func", "roi"], verbose=0)
    return cached(stage, key, params, __version__, func, roi)
