"""Shared base pieces of skcalc's estimators."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sklearn.base import BaseEstimator

__all__ = ["CachedParamNamesMixin", "ImageTransformerMixin", "memoised_param_names"]

# Parameter names per class, read from the constructor's signature once.
_PARAM_NAMES: dict[type, tuple[str, ...]] = {}


class CachedParamNamesMixin:
    """``_get_param_names`` read from the constructor's signature once per class.

    scikit-learn inspects ``__init__``'s signature at every ``get_params`` call; a grid
    search over the calcification pipeline makes hundreds of thousands of them (``clone``,
    the fit cache's keys), where ``inspect.signature`` was the largest single cost. The
    names cannot change (a class's ``__init__`` is fixed once the class exists), so the
    result is the one scikit-learn computes. Put it left of ``BaseEstimator``.

    Examples
    --------
    >>> from sklearn.base import BaseEstimator
    >>> class Est(CachedParamNamesMixin, BaseEstimator):
    ...     def __init__(self, b=1, a=2):
    ...         self.b, self.a = b, a
    >>> Est._get_param_names(), Est(a=3).get_params()
    (['a', 'b'], {'a': 3, 'b': 1})
    """

    @classmethod
    def _get_param_names(cls) -> list[str]:
        names = _PARAM_NAMES.get(cls)
        if names is None:
            names = _PARAM_NAMES[cls] = tuple(super()._get_param_names())
        return list(names)


# memoised_param_names: scikit-learn's own classmethod (kept while patched), the names read
# inside the context, and how many users (threads, nested calls) are inside it.
_MEMO_LOCK = threading.Lock()
_MEMO_STATE: dict = {"depth": 0, "original": BaseEstimator.__dict__["_get_param_names"]}
_MEMO_NAMES: dict[type, tuple[str, ...]] = {}


def _memoised_get_param_names(cls) -> list[str]:
    names = _MEMO_NAMES.get(cls)
    if names is None:
        # scikit-learn's function, with its errors (varargs): nothing is stored then
        names = tuple(_MEMO_STATE["original"].__func__(cls))
        _MEMO_NAMES[cls] = names
    return list(names)


@contextmanager
def memoised_param_names() -> Iterator[None]:
    """Read every estimator class's parameter names once while inside this context.

    :class:`CachedParamNamesMixin` for all classes, skcalc's or not: scikit-learn's
    ``BaseEstimator._get_param_names`` (``inspect.signature`` of ``__init__`` at every
    ``get_params``, so at every ``clone``) is replaced by a per-class memo of its own
    result, and put back when the last user leaves, also on an exception. Re-entrant and
    safe with several threads of one process; a class overriding ``_get_param_names`` is
    not affected. Only this process: the workers of a process-based joblib backend
    (``n_jobs > 1`` with loky) keep scikit-learn's function. The names are forgotten on
    exit.

    Examples
    --------
    >>> from sklearn.base import BaseEstimator
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skcalc.utils._base import memoised_param_names
    >>> original = BaseEstimator.__dict__["_get_param_names"]
    >>> with memoised_param_names():
    ...     StandardScaler._get_param_names()
    ['copy', 'with_mean', 'with_std']
    >>> BaseEstimator.__dict__["_get_param_names"] is original
    True
    """
    with _MEMO_LOCK:
        if _MEMO_STATE["depth"] == 0:
            _MEMO_STATE["original"] = BaseEstimator.__dict__["_get_param_names"]
            BaseEstimator._get_param_names = classmethod(_memoised_get_param_names)
        _MEMO_STATE["depth"] += 1
    try:
        yield
    finally:
        with _MEMO_LOCK:
            _MEMO_STATE["depth"] -= 1
            if _MEMO_STATE["depth"] == 0:
                # "original" stays set: a call that found the memo just before this
                # line still needs it
                BaseEstimator._get_param_names = _MEMO_STATE["original"]
                _MEMO_NAMES.clear()


class ImageTransformerMixin:
    """Tags, feature names and output configuration of the image stages.

    Image stages take lists of :class:`~skcalc.ROI`, not 2-D arrays. Like scikit-learn's
    ``PatchExtractor``, an image stage declares ``two_d_array=False`` (the common estimator
    checks then run only the data-free ones; skcalc's image checks cover the rest) and
    ``requires_fit=False`` (it learns nothing by default).

    So that ``Pipeline.get_feature_names_out`` and ``Pipeline.set_output`` work through a
    pipeline that starts with image stages:

    - a stage whose output is a list of records (not a table) answers
      ``get_feature_names_out(input_features)`` with ``input_features`` (passthrough:
      ``None`` through the ROI stages), and ``set_output`` is a no-op for it (its
      output is never wrapped in a DataFrame, whatever the global configuration);
    - a stage that returns a 2-D array defines its own ``get_feature_names_out`` and keeps
      scikit-learn's ``set_output`` (pandas output included).

    Put it left of ``TransformerMixin`` and ``BaseEstimator``.
    """

    def __init_subclass__(cls, **kwargs):
        # A stage without its own feature names returns records: never auto-wrap its output.
        if "auto_wrap_output_keys" not in kwargs and not _defines_own_names(cls):
            kwargs["auto_wrap_output_keys"] = None
        super().__init_subclass__(**kwargs)

    def get_feature_names_out(self, input_features=None):
        """Passthrough: a stage returning records has no output columns of its own.

        Parameters
        ----------
        input_features : array-like of str or None
            Returned unchanged.

        Returns
        -------
        input_features : array-like of str or None
        """
        return input_features

    def set_output(self, *, transform=None):
        """Configure pandas/polars output (array-returning stages only; else a no-op).

        Parameters
        ----------
        transform : {"default", "pandas", "polars"} or None

        Returns
        -------
        self
        """
        if getattr(self, "_sklearn_auto_wrap_output_keys", None):
            return super().set_output(transform=transform)
        return self

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.requires_fit = False
        return tags


def _defines_own_names(cls) -> bool:
    for klass in cls.__mro__:
        if klass is ImageTransformerMixin:
            return False
        if "get_feature_names_out" in vars(klass):
            return True
    return False
