"""Per-ROI loops that honour ``n_jobs`` and the active joblib backend (loky, dask, ...)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from joblib import effective_n_jobs
from sklearn.utils.parallel import Parallel, delayed
from sklearn.utils.validation import check_memory

from ..roi import ROI
from ._caching import MEMORY_FRONT, InProcessMemory, cached_call, front_key

__all__ = ["map_rois"]


def _limit_threads_and_call(func: Callable, roi: ROI, params: dict, memory, stage, fields):
    # Each worker handles one ROI at a time: one BLAS/torch thread avoids oversubscription.
    import sys

    from threadpoolctl import threadpool_limits

    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)
    with threadpool_limits(limits=1):
        return cached_call(func, roi, params, memory=memory, stage=stage, fields=fields)


def map_rois(
    func: Callable[..., Any],
    rois: Sequence[ROI],
    params: dict,
    *,
    n_jobs: int | None = None,
    memory: Any = None,
    stage: str,
    fields: Sequence[str] = ("image",),
) -> list[Any]:
    """Apply ``func(roi, **params)`` to every ROI, in parallel and memoised per ROI.

    Results come back in input order. ``n_jobs=None`` means 1 unless a
    ``joblib.parallel_config`` context says otherwise.
    """
    if len(rois) <= 1 or effective_n_jobs(n_jobs) == 1:
        return [
            cached_call(func, r, params, memory=memory, stage=stage, fields=fields) for r in rois
        ]
    if not isinstance(memory, InProcessMemory):
        memory = check_memory(memory)
    keys = [front_key(r, params, memory, stage, fields) for r in rois]
    out: list[Any] = [None] * len(rois)
    todo = []
    for i, key in enumerate(keys):
        hit, value = MEMORY_FRONT.get(key) if key is not None else (False, None)
        if hit:
            out[i] = value
        else:
            todo.append(i)
    results = Parallel(n_jobs=n_jobs)(
        delayed(_limit_threads_and_call)(func, rois[i], params, memory, stage, fields)
        for i in todo
    )
    for i, value in zip(todo, results):
        out[i] = value
        if keys[i] is not None:
            # Workers cached on disk; keep a copy here so later calls skip the disk.
            MEMORY_FRONT.put(keys[i], value)
    return out
