"""Per-ROI loops that honour ``n_jobs`` and the active joblib backend (loky, dask, ...).

Work is split by ROI: each task receives one ROI record (a lazy ROI carries only its path,
so the worker reads the image itself) and returns that ROI's compact result. A worker
therefore holds one ROI's working set at a time, whatever the cohort size.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from joblib import effective_n_jobs
from joblib import hash as joblib_hash
from sklearn.utils.parallel import Parallel, delayed

from ..roi import ROI
from ._caching import MEMORY_FRONT, _freeze, cached_call, front_key, resolve_memory

__all__ = ["inner_threads", "map_rois", "single_threaded"]

# BLAS pools (OpenBLAS, MKL) and torch's intra-op pool are process-wide, while several tasks
# may run at once in one process (threading backend, dask workers with several threads or
# ``processes=False``): their limit is reference-counted, set by the first task in and
# restored by the last one out. OpenMP keeps its thread count per calling thread, so it is
# limited and restored by every task in its own thread.
_LIMIT_LOCK = threading.Lock()
_GLOBAL_STATE: dict[str, Any] = {"depth": 0, "blas": None, "torch": None}
# OpenBLAS (0.3.30/0.3.31 measured) ignores a thread count raised from one thread while the
# thread that lowered it is still alive: the last task out, often another worker thread,
# could not restore the limit the first task in had set, and the process stayed at one
# BLAS thread. So the process-wide limits (BLAS, torch) are set and restored by one thread.
_LIMITS_THREAD: dict[str, Any] = {"pid": None, "executor": None}


def _on_limits_thread(func: Callable[[], Any]) -> Any:
    import os
    from concurrent.futures import ThreadPoolExecutor

    # Threads do not survive fork: a child process starts its own.
    if _LIMITS_THREAD["pid"] != os.getpid():
        _LIMITS_THREAD.update(
            pid=os.getpid(),
            executor=ThreadPoolExecutor(1, thread_name_prefix="skcalc-thread-limits"),
        )
    return _LIMITS_THREAD["executor"].submit(func).result()


def _limit_process_pools(blas) -> None:
    _GLOBAL_STATE["blas"] = blas.limit(limits=1)
    torch = sys.modules.get("torch")
    if torch is not None:
        _GLOBAL_STATE["torch"] = torch.get_num_threads()
        torch.set_num_threads(1)


def _restore_process_pools() -> None:
    _GLOBAL_STATE["blas"].restore_original_limits()
    n_torch, torch = _GLOBAL_STATE["torch"], sys.modules.get("torch")
    if n_torch is not None and torch is not None:
        torch.set_num_threads(n_torch)
    _GLOBAL_STATE.update(blas=None, torch=None)


@contextmanager
def single_threaded() -> Iterator[None]:
    """Limit BLAS/OpenMP pools (and torch, when imported) to one thread for this task.

    Also for an estimator's own small in-process steps (k-means on a few thousand objects,
    SMOTE's and ENN's nearest neighbours), whose threads cost more than they save and
    compete with the other work on the machine; the results do not depend on it.

    Re-entrant and safe when several threads of one process use it at once: the original
    limits come back when the last user leaves.

    Examples
    --------
    >>> from threadpoolctl import threadpool_info
    >>> from skcalc.utils._parallel import single_threaded
    >>> with single_threaded():
    ...     all(p["num_threads"] == 1 for p in threadpool_info())
    True
    """
    from threadpoolctl import ThreadpoolController

    # A limiter restores every library its controller holds, so each one gets a controller
    # restricted to its own kind: restoring this thread's OpenMP must not undo another
    # task's BLAS limit. A fresh controller (about a millisecond) also sees libraries loaded
    # since the last task, which threadpoolctl's cached one would miss.
    controller = ThreadpoolController()
    with _LIMIT_LOCK:
        if _GLOBAL_STATE["depth"] == 0:
            blas = controller.select(user_api="blas")
            _on_limits_thread(lambda: _limit_process_pools(blas))
        _GLOBAL_STATE["depth"] += 1
    omp = controller.select(user_api="openmp").limit(limits=1)
    try:
        yield
    finally:
        omp.restore_original_limits()
        with _LIMIT_LOCK:
            _GLOBAL_STATE["depth"] -= 1
            if _GLOBAL_STATE["depth"] == 0:
                _on_limits_thread(_restore_process_pools)


def inner_threads(n_parts: int) -> int:
    """Threads that ``n_parts`` independent GIL-releasing computations may use here.

    One inside a :func:`single_threaded` task (a ``map_rois`` worker: the workers already
    use every core), else ``n_parts`` capped by the cores this process may run on.

    Examples
    --------
    >>> from skcalc.utils._parallel import inner_threads, single_threaded
    >>> with single_threaded():
    ...     inner_threads(4)
    1
    >>> 1 <= inner_threads(4) <= 4
    True
    """
    import os

    if _GLOBAL_STATE["depth"] > 0:
        return 1
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(int(n_parts), cores))


def _limit_threads_and_call(func: Callable, rois: list[ROI], params: dict, memory, stage,
                            fields) -> list[Any]:
    # Each worker handles one task (usually one ROI) at a time and the pool of workers
    # already uses every core: nested BLAS/OpenMP/torch threads would only oversubscribe them.
    with single_threaded():
        return [cached_call(func, roi, params, memory=memory, stage=stage, fields=fields,
                            front=False) for roi in rois]


def _tasks(todo: list[int], together: Sequence[Hashable | None] | None) -> list[list[int]]:
    """``todo``'s positions as tasks: one per position, those sharing a key in one task
    (in the order of their first position)."""
    if together is None:
        return [[i] for i in todo]
    tasks: list[list[int]] = []
    by_key: dict = {}
    for i in todo:
        key = together[i]
        if key is None:
            tasks.append([i])
        elif key in by_key:
            by_key[key].append(i)
        else:
            by_key[key] = [i]
            tasks.append(by_key[key])
    return tasks


def map_rois(
    func: Callable[..., Any],
    rois: Sequence[ROI],
    params: dict,
    *,
    n_jobs: int | None = None,
    memory: Any = None,
    stage: str,
    fields: Sequence[str] = ("image",),
    together: Sequence[Hashable | None] | None = None,
) -> list[Any]:
    """Apply ``func(roi, **params)`` to every ROI, in parallel and memoised per ROI.

    Parameters
    ----------
    func : callable
        Module-level function (so that workers can import it) computing one ROI's result.
    rois : sequence of ROI
    params : dict
        Keyword parameters of ``func``; part of the cache key.
    n_jobs : int, optional
        Number of parallel tasks. ``None`` means 1 unless a ``joblib.parallel_config``
        context says otherwise; under ``parallel_config(backend="dask")`` the tasks run on
        the dask cluster. Inside a task, BLAS/OpenMP/torch use one thread.
    memory : None, str, joblib.Memory or InProcessMemory
        Per-ROI cache (see :func:`skcalc.utils.cached_call`). Results found in this
        process's front cache are not sent to the workers again.
    stage : str
        Stage name, part of the cache key.
    fields : sequence of str
        ROI fields the result depends on.
    together : sequence of hashable or None, optional
        One key per ROI: ROIs with the same key (not None) run in one task, one after the
        other, so that a worker's in-process state serves them all (e.g. the segmentation
        of the file they are cut from). Results and caching are per ROI as without it.

    Returns
    -------
    list
        One result per ROI, in input order.

    Examples
    --------
    >>> import numpy as np
    >>> from skcalc import ROI
    >>> from skcalc.utils import map_rois
    >>> rois = [ROI(np.zeros((2, 2), np.uint16), meta={"roi_id": f"r{i}"}) for i in range(3)]
    >>> [text[:11] for text in map_rois(repr, rois, {}, stage="doc")]
    ["ROI(id='r0'", "ROI(id='r1'", "ROI(id='r2'"]
    """
    phash = joblib_hash(params)  # once per call, not once per ROI
    if len(rois) <= 1 or effective_n_jobs(n_jobs) == 1:
        return [
            cached_call(
                func, r, params, memory=memory, stage=stage, fields=fields, params_hash=phash
            )
            for r in rois
        ]
    memory = resolve_memory(memory)
    keys = [front_key(r, params, memory, stage, fields, phash) for r in rois]
    out: list[Any] = [None] * len(rois)
    todo = []
    for i, key in enumerate(keys):
        hit, value = MEMORY_FRONT.get(key) if key is not None else (False, None)
        if hit:
            out[i] = value
        else:
            todo.append(i)
    tasks = _tasks(todo, together)
    results = Parallel(n_jobs=n_jobs)(
        delayed(_limit_threads_and_call)(func, [rois[i] for i in task], params, memory,
                                         stage, fields)
        for task in tasks
    )
    for task, values in zip(tasks, results):
        for i, value in zip(task, values):
            out[i] = value
            if keys[i] is not None:
                # Workers cached on disk; keep a copy here so later calls skip the disk.
                MEMORY_FRONT.put(keys[i], _freeze(value))
    return out
