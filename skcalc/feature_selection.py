"""Selection of the topology features by importance (paper: 122 of the 520 graph features).

"Following the work of Chen et al, we computed eight features describing the distribution
of microcalcifications at 65 different scales [...] resulting in a total of 520 features.
Then using feature importance, 122 features were selected." The paper does not say which
model gave the importances nor on which data; :class:`ImportanceSelector` fits a model on
the **training fold only** (it is an ordinary pipeline step) and keeps the ``max_features``
most important columns, so the selection is part of what cross-validation evaluates.
"""

from __future__ import annotations

from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator, MetaEstimatorMixin, _fit_context, clone
from sklearn.ensemble import ExtraTreesClassifier
from sklearn.feature_selection import SelectorMixin
from sklearn.utils import get_tags
from sklearn.utils._param_validation import HasMethods, Interval
from sklearn.utils.validation import check_is_fitted, validate_data

from ._fitcache import memoised
from .utils._base import CachedParamNamesMixin

__all__ = ["ImportanceSelector"]


def model_importances(estimator) -> np.ndarray:
    imp = getattr(estimator, "feature_importances_", None)
    if imp is None:
        coef = getattr(estimator, "coef_", None)
        if coef is None:
            raise ValueError(
                f"{type(estimator).__name__} has neither feature_importances_ nor coef_"
            )
        imp = np.abs(np.atleast_2d(coef)).sum(axis=0)
    return np.asarray(imp, dtype=np.float64)


class ImportanceSelector(
    CachedParamNamesMixin, SelectorMixin, MetaEstimatorMixin, BaseEstimator
):
    """Keep the ``max_features`` columns a model finds most important (training data only).

    Parameters
    ----------
    estimator : estimator or None, default=None
        Supervised model exposing ``feature_importances_`` (or ``coef_``) after ``fit``;
        cloned. None means ``ExtraTreesClassifier(n_estimators=100, random_state=
        random_state)`` (impurity importances of randomised trees: stable on a few hundred
        samples, and fast).
    max_features : int or None, default=122
        Number of columns kept (paper: 122 of 520), among those not in ``keep``; more than
        available keeps them all. None keeps every column (the step is then a no-op).
        Grid-searchable.
    keep : array-like of int or None, default=None
        Column indices (negative ones count from the end) always kept and never ranked,
        e.g. ``[-3, -2, -1]`` for the three handcrafted features that
        :class:`~skcalc.features.TopologyFeatures` appends to the graph features.
    random_state : int, RandomState instance or None, default=None
        Seed of the default estimator.
    memory : None or object with a ``location``, default=None
        When set, the importances are memoised in this process, keyed on the content of
        ``X``, ``y`` and the model's parameters (not ``max_features`` nor ``keep``), so a
        grid search fits the model once per fold. See :mod:`skcalc._fitcache`.

    Attributes
    ----------
    n_samples_fit_ : int
        Number of training rows the importances were computed on.
    importances_ : ndarray of shape (n_features_in_,)
        Importance of every input column.
    support_ : ndarray of bool of shape (n_features_in_,)
        Kept columns.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when fitted on a DataFrame.

    Notes
    -----
    Ties in importance are broken by column order (the first column wins), so the selection
    is deterministic. :meth:`get_feature_names_out` gives the kept columns' names.

    Examples
    --------
    >>> import numpy as np
    >>> from skcalc.feature_selection import ImportanceSelector
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(80, 6)); y = (X[:, 4] + 0.1 * X[:, 1] > 0).astype(int)
    >>> sel = ImportanceSelector(max_features=1, keep=[-1], random_state=0).fit(X, y)
    >>> sel.get_support(indices=True).tolist()
    [4, 5]
    >>> sel.transform(X).shape
    (80, 2)
    """

    _parameter_constraints: dict = {
        "estimator": [HasMethods(["fit"]), None],
        "max_features": [Interval(Integral, 0, None, closed="left"), None],
        "keep": ["array-like", None],
        "random_state": ["random_state"],
        "memory": [None, HasMethods(["cache"])],
    }

    def __init__(
        self, estimator=None, *, max_features=122, keep=None, random_state=None, memory=None
    ):
        self.estimator = estimator
        self.max_features = max_features
        self.keep = keep
        self.random_state = random_state
        self.memory = memory

    def _get_estimator(self):
        if self.estimator is not None:
            return self.estimator
        return ExtraTreesClassifier(n_estimators=100, random_state=self.random_state, n_jobs=1)

    def _fit_model(self, X, y):
        est = clone(self._get_estimator()).fit(X, y)
        return est, model_importances(est)

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y):
        """Fit the model on ``(X, y)`` and select the most important columns.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)

        Returns
        -------
        self : ImportanceSelector
        """
        X, y = validate_data(self, X, y, ensure_all_finite="allow-nan")
        n = X.shape[1]
        keep = np.zeros(n, dtype=bool)
        if self.keep is not None:
            idx = np.asarray(self.keep, dtype=int).ravel()
            if idx.size and (idx.min() < -n or idx.max() >= n):
                raise ValueError(f"keep={idx.tolist()} is out of range for {n} features")
            keep[idx] = True
        estimator = self._get_estimator()
        key_params = {"estimator_class": type(estimator), **estimator.get_params(deep=True)}
        # Only the importances are kept: a fitted forest would make model files carry tree
        # objects that skops rebuilds by calling a type with arguments from the file.
        self.n_samples_fit_ = X.shape[0]
        _, self.importances_ = memoised(
            self, "fit", (X, y), lambda: self._fit_model(X, y), params=key_params
        )
        support = keep.copy()
        ranked = np.flatnonzero(~keep)
        if self.max_features is None:
            support[ranked] = True
        else:
            # stable sort on -importance: ties keep column order
            order = ranked[np.argsort(-self.importances_[ranked], kind="stable")]
            support[order[: self.max_features]] = True
        self.support_ = support
        return self

    def _get_support_mask(self):
        check_is_fitted(self, "support_")
        return self.support_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = get_tags(self._get_estimator()).input_tags.allow_nan
        return tags
