"""Discovery of skcalc's public estimators (adapted from ``sklearn.utils.discovery``)."""

from __future__ import annotations

import inspect
import pkgutil
from importlib import import_module
from operator import itemgetter

from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.utils import get_tags

__all__ = ["all_estimators"]

_SKIP_MODULES = {"tests", "testing", "cli", "__main__"}
_TYPES = ("classifier", "transformer", "image", "tabular")


def _is_image_estimator(cls) -> bool:
    try:
        return not get_tags(cls()).input_tags.two_d_array
    except Exception:  # a class that cannot be default-constructed is checked elsewhere
        return False


def all_estimators(type_filter=None) -> list[tuple[str, type]]:
    """Public estimator classes of skcalc, as sorted ``(name, class)`` pairs.

    Every ``skcalc`` submodule is imported (test and estimator-check modules excepted; an
    import error propagates, so a broken module cannot hide its estimators from the common
    tests). Classes whose name starts with ``_``, abstract classes and classes defined
    outside skcalc are left out.

    Parameters
    ----------
    type_filter : {"classifier", "transformer", "image", "tabular"} or list of them, optional
        Keep estimators of any of these kinds: ``"image"`` estimators take lists of ROIs
        (tag ``input_tags.two_d_array=False``), ``"tabular"`` ones take 2-D arrays.

    Returns
    -------
    estimators : list of (str, type)

    Examples
    --------
    >>> from skcalc.testing.discovery import all_estimators
    >>> names = [name for name, _ in all_estimators(type_filter="tabular")]
    >>> "BagOfClustersAggregator" in names
    True
    """
    import skcalc

    found = {}
    for _, module_name, _ in pkgutil.walk_packages(skcalc.__path__, prefix="skcalc."):
        if set(module_name.split(".")) & _SKIP_MODULES:
            continue
        module = import_module(module_name)
        for name, cls in inspect.getmembers(module, inspect.isclass):
            if (
                not name.startswith("_")
                and cls.__module__.startswith("skcalc")
                and issubclass(cls, BaseEstimator)
                and not inspect.isabstract(cls)
            ):
                found[name] = cls
    estimators = sorted(found.items(), key=itemgetter(0))

    if type_filter is None:
        return estimators
    filters = [type_filter] if isinstance(type_filter, str) else list(type_filter)
    unknown = set(filters) - set(_TYPES)
    if unknown:
        raise ValueError(f"type_filter must be in {_TYPES} or None, got {sorted(unknown)}")
    keep = []
    for name, cls in estimators:
        kinds = {
            "classifier": issubclass(cls, ClassifierMixin),
            "transformer": issubclass(cls, TransformerMixin),
            "image": _is_image_estimator(cls),
        }
        kinds["tabular"] = not kinds["image"]
        if any(kinds[f] for f in filters):
            keep.append((name, cls))
    return keep
