"""Content-keyed memoisation of the tabular tail's fits.

A grid search over K, the decision threshold and the LightGBM settings fits the pipeline
once per candidate and fold, but most of what it fits does not depend on most of the
candidate: the k-means bag of clusters depends on the fold and K only, SMOTE+ENN on its
input (fold and K), LightGBM on its input and its own settings, never on the threshold.
The tail's steps therefore memoise their fits in this process, keyed on

* the **content** of their training data (SHA-1 of the arrays' bytes, shape and dtype),
* all their parameters (``joblib.hash`` of ``get_params(deep=True)``, the cache's own
  ``memory`` parameter left out), and the skcalc version,

so a cache hit returns what the fit would have computed: results are identical with and
without the cache. A fit is memoised only when it is deterministic: every ``random_state``
among the (nested) parameters is an integer (``None`` or a ``RandomState`` draw different
numbers at each fit, so they are never cached). Caching is on when the step's ``memory``
parameter is not ``None`` (``"auto"`` pipelines pass :class:`skcalc.utils.InProcessMemory`).

Cached fitted objects are shared, not copied: a cache hit's fitted sub-estimator (e.g.
``ThresholdedClassifier.estimator_``) may be the very object another fit returned. They are
only ever used for prediction; do not modify them in place.

The cache is a bounded LRU in this process (``FIT_CACHE``); each joblib worker keeps its own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import numpy as np
from joblib import hash as joblib_hash

from ._arrays import array_digest
from .utils._lru import LRUCache

__all__ = ["FIT_CACHE", "cache_enabled", "data_key", "memoised"]


#: The process-wide cache of fitted tail results.
FIT_CACHE = LRUCache(max_items=512)


def _update(h, value: Any) -> None:
    if value is None:
        h.update(b"<none>")
        return
    columns = getattr(value, "columns", None)
    if columns is not None and hasattr(value, "to_numpy"):  # pandas DataFrame
        h.update(b"<frame>" + repr([str(c) for c in columns]).encode())
        value = value.to_numpy()
    elif hasattr(value, "to_numpy") and not isinstance(value, np.ndarray):  # Series
        value = value.to_numpy()
    if hasattr(value, "toarray") and hasattr(value, "nnz"):  # sparse: rare in the tail
        h.update(joblib_hash(value).encode())
        return
    a = np.asarray(value)
    if a.dtype == object:
        h.update(b"<object>" + joblib_hash(a).encode())
        return
    h.update(array_digest(a))


def data_key(*values: Any) -> str:
    """SHA-1 of the content of arrays (shape, dtype and bytes; DataFrame columns too).

    Examples
    --------
    >>> import numpy as np
    >>> a = np.arange(6.0).reshape(2, 3)
    >>> data_key(a, [0, 1]) == data_key(a.copy(), np.array([0, 1]))
    True
    >>> data_key(a) == data_key(a.reshape(3, 2))
    False
    """
    h = hashlib.sha1()
    for v in values:
        h.update(b"|")
        _update(h, v)
    return h.hexdigest()


def all_params(estimator: Any) -> dict:
    params = estimator.get_params(deep=True)
    params.pop("memory", None)
    return params


def _output_key(estimator: Any, params: dict) -> str:
    """The ``set_output`` containers configured on an estimator and its sub-estimators (and
    globally): not parameters, yet they change what ``fit_transform`` returns."""
    from sklearn import get_config

    parts = [get_config()["transform_output"]]
    for value in (estimator, *params.values()):
        config = getattr(value, "_sklearn_output_config", None)
        if config:
            parts.append(f"{type(value).__qualname__}:{sorted(config.items())!r}")
    return "|".join(parts)


def deterministic(params: dict) -> bool:
    for name, value in params.items():
        if name == "random_state" or name.endswith("__random_state"):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
                return False
        if isinstance(value, (np.random.RandomState, np.random.Generator)):
            return False
    return True


def cache_enabled(estimator: Any, params: dict | None = None) -> bool:
    """Whether ``estimator`` memoises its fits: ``memory`` set and the fit is deterministic.

    ``params`` (default: all of ``estimator``'s parameters) are those the fit depends on.
    """
    memory = getattr(estimator, "memory", None)
    if memory is None or getattr(memory, "location", "") is None:
        return False
    return deterministic(all_params(estimator) if params is None else params)


def memoised(
    estimator: Any,
    stage: str,
    data: tuple,
    compute: Callable[[], Any],
    params: dict | None = None,
) -> Any:
    """``compute()``, or its memoised value for the same stage, parameters and data.

    Parameters
    ----------
    estimator : estimator
        Supplies ``memory`` (caching is off when it is None).
    stage : str
        Name of the cached computation (distinguishes two computations of one estimator).
    data : tuple
        The data the computation reads (arrays, DataFrames, None); hashed by content.
    compute : callable
        Computes the value when it is not cached.
    params : dict, optional
        The parameters the computation depends on (default: all of ``estimator``'s, deep,
        ``memory`` excepted). Leave out a parameter only if the result cannot depend on it
        (e.g. the decision threshold for the fit of the thresholded classifier).
    """
    if params is None:
        params = all_params(estimator)
    if not cache_enabled(estimator, params):
        return compute()
    from . import __version__

    location = str(getattr(estimator.memory, "location", estimator.memory))
    key = (
        location,
        type(estimator).__qualname__,
        stage,
        params_key(params),
        _output_key(estimator, params),
        data_key(*data),
        __version__,
    )
    found, value = FIT_CACHE.get(key)
    if found:
        return value
    value = compute()
    FIT_CACHE.put(key, value)
    FIT_CACHE.computed[(key[1], stage)] += 1
    return value


# --------------------------------------------------------------------- pipeline memory
_OBJECT_KEYS = LRUCache(max_items=50000)


def _object_key(obj: Any) -> str:
    """Content key of one record (an ROI), computed once per object.

    Records are immutable (they own read-only arrays and stages return new records), so a
    record's key is remembered by identity; the LRU holds the object, so its id cannot be
    reused while the entry lives.
    """
    found, entry = _OBJECT_KEYS.get(id(obj))
    if found and entry[0] is obj:
        return entry[1]
    key = obj.content_hash(_ROI_FIELDS) + joblib_hash(dict(obj.meta))
    _OBJECT_KEYS.put(id(obj), (obj, key))
    return key


_ROI_FIELDS = ("image", "region", "calcifications", "reference", "masks")


#: Keys of lists of records, by the records' identities (a grid search passes new lists of
#: the same records at every fit and scoring call).
_LIST_KEYS = LRUCache(max_items=2048)


def input_key(X: Any) -> str:
    """Content key of a pipeline input: a list of records (ROIs) or an array-like.

    The key of a list of records is remembered by the records' identities (the entry holds
    them, so no id is reused while it lives); records are immutable.
    """
    if isinstance(X, (list, tuple)) and X and all(hasattr(x, "content_hash") for x in X):
        ids = tuple(map(id, X))
        found, entry = _LIST_KEYS.get(ids)
        if found and all(a is b for a, b in zip(entry[0], X)):
            return entry[1]
        h = hashlib.sha1(b"<records>")
        for x in X:
            h.update(_object_key(x).encode())
        key = h.hexdigest()
        _LIST_KEYS.put(ids, (tuple(X), key))
        return key
    return data_key(X)


def params_key(params: dict) -> str:
    """Key of a (deep) parameter dict: nested estimators by class (their parameters are
    in the dict already), everything else by ``repr`` (exact for numbers and strings).

    Estimators inside lists and tuples (a pipeline's ``steps``, a union's
    ``transformer_list``) are named by class too when the dict holds them under their step
    name (as scikit-learn's deep ``get_params`` does, with their parameters); otherwise by
    class and the key of their own deep parameters. Their ``repr`` is never taken:
    scikit-learn's pretty-printer inspected every nested signature and cost more than the
    fits it keyed in a grid search.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.pipeline import Pipeline
    >>> def key(C):
    ...     return params_key(Pipeline([("lr", LogisticRegression(C=C))]).get_params(deep=True))
    >>> key(1.0) == key(1.0), key(1.0) == key(2.0)
    (True, False)
    """
    parts = []
    for name in sorted(params):
        # a nested pipeline's steps ("local__steps") hold estimators the dict names
        # "local__<step>"
        prefix = name.rpartition("__")[0] + "__" if "__" in name else ""
        parts.append(f"{name}={_key_repr(params[name], params, prefix)}")
    return hashlib.sha1("\n".join(parts).encode()).hexdigest()


def _is_estimator(value: Any) -> bool:
    return hasattr(value, "get_params") and not isinstance(value, type)


def _key_repr(value: Any, params: dict, prefix: str = "") -> str:
    if _is_estimator(value):
        return f"<{type(value).__module__}.{type(value).__qualname__}>"
    if isinstance(value, (list, tuple)) and any(
        _is_estimator(v) or isinstance(v, (list, tuple)) for v in value
    ):
        items = []
        for v in value:
            if (  # (name, estimator) whose parameters the dict holds under name__
                isinstance(v, tuple)
                and len(v) >= 2
                and isinstance(v[0], str)
                and _is_estimator(v[1])
                and params.get(prefix + v[0]) is v[1]
            ):
                items.append(repr((v[0], _key_repr(v[1], params), *v[2:])))
            elif _is_estimator(v):
                own = v.get_params(deep=True)
                items.append(f"<{type(v).__module__}.{type(v).__qualname__}:{params_key(own)}>")
            elif isinstance(v, (list, tuple)):
                items.append(_key_repr(v, {}))
            else:
                items.append(repr(v))
        return f"{type(value).__name__}[{', '.join(items)}]"
    return repr(value)


class PipelineMemory:
    """``Pipeline(memory=PipelineMemory())``: in-process memoisation of the steps' fits.

    scikit-learn's and imbalanced-learn's ``Pipeline(memory=...)`` wrap each step's
    ``fit_transform`` (and a sampler's ``fit_resample``) in ``memory.cache``. This memory
    keys those calls on the step's class and parameters and on the **content** of ``X``
    (records by their content hash and metadata, remembered per object; arrays by their
    bytes) and ``y``, and keeps the results in this process. In a grid search, the
    candidates that share the steps' parameters on a fold (e.g. all thresholds and
    LightGBM settings for one K) fit the segmentation-to-features prefix once: the
    results are those the fit would compute (only deterministic steps, with integer
    random states, are memoised).

    The fitted step and its output are shared between the pipelines that hit the same
    entry: use them read-only.

    Examples
    --------
    >>> from skcalc._fitcache import PipelineMemory
    >>> PipelineMemory().location
    '<in-process-pipeline>'
    """

    location = "<in-process-pipeline>"

    def cache(self, func: Callable, ignore: Any = None, verbose: int = 0, mmap_mode=None):
        def cached(step, X, y=None, *args, **kwargs):
            params = all_params(step)
            if not deterministic(params):
                return func(step, X, y, *args, **kwargs)
            from . import __version__

            extra = {k: v for k, v in kwargs.items() if k not in ("message_clsname", "message")}
            key = (
                self.location,
                func.__name__,
                type(step).__qualname__,
                params_key(params),
                _output_key(step, params),
                input_key(X),
                data_key(y),
                _args_key((args, extra)),
                __version__,
            )
            found, value = FIT_CACHE.get(key)
            if not found:
                value = func(step, X, y, *args, **kwargs)
                FIT_CACHE.put(key, value)
                FIT_CACHE.computed[(type(step).__qualname__, func.__name__)] += 1
            # Hand out a fresh container; arrays are copied, records are immutable.
            return tuple(_fresh(v) for v in value)

        return cached

    def __repr__(self) -> str:
        return "PipelineMemory()"


_PLAIN_SCALARS = (type(None), bool, int, float, str)


def _plain(value: Any) -> bool:
    if type(value) in _PLAIN_SCALARS:
        return True
    if isinstance(value, dict) and type(value).__repr__ is dict.__repr__:  # e.g. Bunch
        return all(type(k) is str and _plain(v) for k, v in value.items())
    if type(value) in (list, tuple):
        return all(_plain(v) for v in value)
    return False


def _args_key(value: Any) -> str:
    """Key of a step's extra fit arguments: their ``repr`` when they are only None, bools,
    numbers, strings and dicts, lists and tuples of them (exact, and what the pipeline
    passes without metadata: dicts of empty dicts), else joblib's hash.

    Examples
    --------
    >>> _args_key(((), {"params": {"fit": {}}})) == _args_key(((), {"params": {"fit": {}}}))
    True
    >>> _args_key({"w": 1}) == _args_key({"w": 1.0}), _args_key({"w": [1]})[:5]
    (False, 'repr:')
    """
    if _plain(value):
        return "repr:" + repr(value)
    return joblib_hash(value)


def _fresh(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, list):
        return list(value)
    return value
