"""Per-ROI memoisation of stateless image stages.

scikit-learn's ``Pipeline(memory=...)`` caches whole-fold ``fit_transform`` calls, keyed on
the whole X, so a grid search still recomputes every ROI once per fold and candidate. The
image stages are per-ROI and stateless, so they are cached per ROI instead: the key is a
content hash of the ROI's inputs, the stage's parameters and the skcalc version.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
from joblib import hash as joblib_hash
from sklearn.utils.validation import check_memory

from .._arrays import freeze
from ..roi import ROI
from ._lru import LRUCache

__all__ = ["InProcessMemory", "cached_call", "resolve_memory", "roi_content_hash"]


def roi_content_hash(roi: ROI, fields: Iterable[str] = ("image",)) -> str:
    """SHA-1 of an ROI's spacing and the named fields (:meth:`skcalc.ROI.content_hash`).

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
    return roi.content_hash(tuple(fields))


#: Per-ROI results in this process, in front of the on-disk joblib cache: reading a result
#: back from disk costs about a millisecond, and a grid search asks for each ROI's result once
#: per candidate and fold.
MEMORY_FRONT = LRUCache(max_items=20000)


class InProcessMemory:
    """A ``memory=`` value that caches per-ROI results in this process only (nothing on disk).

    The results live in a bounded LRU shared by all stages of the process: enough for a grid
    search with ``n_jobs=1`` to run each image stage once per ROI, without a cache folder.
    Worker processes each keep their own. Pass a folder or :class:`joblib.Memory` instead to
    share results between processes and runs.

    Examples
    --------
    >>> from skcalc.utils import InProcessMemory
    >>> InProcessMemory()
    InProcessMemory()
    """

    location = "<in-process>"

    def cache(self, func: Callable, ignore: Any = None, verbose: int = 0) -> Callable:
        return func

    def __repr__(self) -> str:
        return "InProcessMemory()"


def resolve_memory(memory: Any) -> Any:
    """The cache a ``memory=`` value means: ``"auto"`` is in-process everywhere.

    ``None`` -> no cache; ``"auto"`` -> :class:`InProcessMemory` (the same meaning as in
    :func:`skcalc.pipeline.make_calcification_pipeline`, never a folder called ``auto``);
    an :class:`InProcessMemory` as is; a folder or :class:`joblib.Memory` through
    :func:`sklearn.utils.validation.check_memory`.

    Examples
    --------
    >>> from skcalc.utils._caching import resolve_memory
    >>> resolve_memory("auto")
    InProcessMemory()
    >>> resolve_memory(None).location is None
    True
    """
    if isinstance(memory, str) and memory == "auto":
        return InProcessMemory()
    if isinstance(memory, InProcessMemory):
        return memory
    return check_memory(memory)


def _run_stage(stage: str, key: str, params: dict, version: str, func: Callable, roi: ROI) -> Any:
    # stage, key, params and version make the cache key; func and roi are ignored by joblib.
    return func(roi, **params)


def _freeze(value: Any) -> Any:
    """Make a cached result's arrays read-only, so they can be shared and hashed once."""
    if isinstance(value, np.ndarray):
        freeze(value)
    else:
        attrs = getattr(value, "__dict__", None)
        for v in (attrs or {}).values():
            if isinstance(v, np.ndarray):
                freeze(v)
    return value


def front_key(
    roi: ROI,
    params: dict,
    memory: Any,
    stage: str,
    fields: Iterable[str],
    params_hash: str | None = None,
):
    """Key of the in-process front cache, or None when ``memory`` does not cache.

    ``params_hash`` lets a loop over many ROIs hash the (shared) parameters once.
    """
    location = getattr(memory, "location", None)
    if location is None:
        return None
    from .. import __version__

    if params_hash is None:
        params_hash = joblib_hash(params)
    return (str(location), stage, roi_content_hash(roi, fields), params_hash, __version__)


def cached_call(
    func: Callable[..., Any],
    roi: ROI,
    params: dict,
    *,
    memory: Any,
    stage: str,
    fields: Iterable[str] = ("image",),
    params_hash: str | None = None,
    front: bool = True,
) -> Any:
    """Call ``func(roi, **params)``, memoised in ``memory`` per ROI content.

    Parameters
    ----------
    func : callable
        Module-level function computing one ROI's result (must be deterministic).
    roi : ROI
    params : dict
        Keyword parameters of ``func``; part of the cache key.
    memory : None, "auto", str, joblib.Memory or InProcessMemory
        Where to cache; ``None`` disables caching, ``"auto"`` caches in this process.
    stage : str
        Name of the stage, part of the key so stages never share entries.
    fields : iterable of str
        ROI fields the result depends on.
    params_hash : str, optional
        ``joblib.hash(params)`` when the caller already has it.
    front : bool, default=True
        Use the in-process front cache. Worker processes pass False: their results go back
        to the parent, which keeps them, and a worker that kept every result it computed
        would grow until loky restarts it as leaking.
    """
    memory = resolve_memory(memory)
    key = front_key(roi, params, memory, stage, fields, params_hash)
    if key is None:
        return func(roi, **params)
    if front:
        hit, value = MEMORY_FRONT.get(key)
        if hit:
            return value
    cached = memory.cache(_run_stage, ignore=["func", "roi"], verbose=0)
    value = _freeze(cached(stage, key[2], params, key[4], func, roi))
    if front:
        MEMORY_FRONT.put(key, value)
    return value
