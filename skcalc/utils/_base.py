"""Shared base pieces of skcalc's estimators."""

from __future__ import annotations

__all__ = ["CachedParamNamesMixin", "ImageTransformerMixin"]

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
