"""The paper's classifier: LightGBM with a fixed decision threshold (t = 0.4).

:class:`ThresholdedClassifier` is a thin subclass of scikit-learn's
:class:`~sklearn.model_selection.FixedThresholdClassifier`: same parameters, same
thresholding code (``predict`` returns the positive class iff the score is ``>= threshold``),
two different defaults: ``threshold=0.4`` (the paper's) and ``estimator=None`` meaning a
small-data LightGBM (:func:`make_default_lightgbm`). Put it last in an imbalanced-learn
pipeline, after SMOTE+ENN, so the threshold applies to real samples only.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import ClassifierMixin, clone
from sklearn.metrics._scorer import _threshold_scores_to_class_labels
from sklearn.model_selection import FixedThresholdClassifier
from sklearn.utils import get_tags
from sklearn.utils._param_validation import HasMethods
from sklearn.utils.metadata_routing import MetadataRouter, MethodMapping, process_routing
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_is_fitted

from ._fitcache import cache_enabled, data_key, memoised
from ._lightgbm_sharing import fit_classifier
from .utils._base import CachedParamNamesMixin
from .utils._lru import LRUCache

__all__ = ["ThresholdedClassifier", "make_default_lightgbm"]


#: Responses of memoised fitted classifiers, by (classifier identity, method, input content).
_RESPONSE_MEMO = LRUCache(max_items=256)


def _resolved_has(attr):
    # ``available_if`` condition of the parent, with ``estimator=None`` resolved to LightGBM.
    def check(self):
        fitted = getattr(self, "estimator_", None)
        return hasattr(fitted if fitted is not None else self._get_estimator(), attr)

    return check


def make_default_lightgbm(random_state: int | None = 0, **params: Any):
    """The LightGBM classifier of skcalc: ``ThresholdedClassifier(estimator=None)`` and the
    pipeline's default.

    Small-data settings (the paper's cohort has a few hundred ROIs and a few hundred
    features): 150 trees of at most 15 leaves, learning rate 0.05, leaves of at least 5
    samples, 80 % row and 50 % column subsampling per tree, L2 regularisation 1, against the
    over-fitting the paper reports; a fixed seed; one thread (the per-ROI and CV loops
    parallelise outside); silent. ``params`` override any of these.

    Returns
    -------
    lightgbm.LGBMClassifier

    Examples
    --------
    >>> make_default_lightgbm().get_params()["num_leaves"]
    15
    >>> make_default_lightgbm(n_estimators=10).get_params()["n_estimators"]
    10
    """
    from lightgbm import LGBMClassifier

    settings = dict(
        n_estimators=150,
        learning_rate=0.05,
        num_leaves=15,
        min_child_samples=5,
        subsample=0.8,
        subsample_freq=1,
        colsample_bytree=0.5,
        reg_lambda=1.0,
        random_state=random_state,
        n_jobs=1,
        verbose=-1,
    )
    settings.update(params)
    return LGBMClassifier(**settings)


class ThresholdedClassifier(CachedParamNamesMixin, FixedThresholdClassifier):
    """Binary classifier predicting the positive class iff its score is ``>= threshold``.

    A :class:`~sklearn.model_selection.FixedThresholdClassifier` with the paper's defaults.
    ``threshold`` is an ordinary parameter, so it can be grid-searched
    (``{"classify__threshold": [0.3, 0.4, 0.5]}``); use a threshold-dependent scorer
    (see :func:`skcalc.metrics.make_clinical_scorers`).

    Parameters
    ----------
    estimator : estimator instance or None, default=None
        Binary classifier with ``predict_proba`` or ``decision_function``, fitted or not.
        ``None`` means :func:`make_default_lightgbm`, built (fresh) at each ``fit``; the
        parameter itself is never modified, so ``clone``/``get_params`` are unchanged.
    threshold : "auto" or float, default=0.4
        Decision threshold on the positive-class score (paper: 0.4 on LightGBM's
        probability). ``"auto"`` means 0.5 for probabilities and 0 for decision values.
    pos_label : int, float, bool, str or None, default=None
        The positive class (``None``: 1 for {0, 1} or {-1, 1} labels).
    response_method : {"auto", "decision_function", "predict_proba"}, default="auto"
        Score used for thresholding; ``"auto"`` tries ``predict_proba`` first.
    memory : None or object with a ``location``, default=None
        When set (e.g. :class:`skcalc.utils.InProcessMemory`), the fitted classifier is
        memoised in this process, keyed on the content of ``X``, ``y`` and the fit
        metadata and on the classifier's parameters, **not** on ``threshold``: a grid
        search over thresholds fits the classifier once per fold and setting and only
        re-thresholds its scores. A single-threaded binary ``LGBMClassifier`` also shares
        LightGBM's ``Dataset`` between its fits on the same data and keeps its training
        Booster, so that a fit with more trees continues the one with fewer (the models
        are LightGBM's own, byte for byte; see the notes in this module's source). Results
        are identical with and without it (only deterministic fits, with an integer
        ``random_state``, are memoised; see :mod:`skcalc._fitcache`).

    Attributes
    ----------
    estimator_ : estimator instance
        The fitted classifier (possibly shared with other memoised fits: read-only).
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when the wrapped classifier defines them.

    Notes
    -----
    ``fit`` is scikit-learn's (validation, routing); only the hook that fits the
    classifier (``_fit``) is overridden, to resolve ``estimator=None`` without writing the
    parameter and to memoise. With ``estimator=None`` the prediction methods go through a
    ``FixedThresholdClassifier`` over the fitted ``estimator_`` (scikit-learn's own code path
    for prefitted estimators): scikit-learn's fitted check reads the ``estimator``
    parameter, and ``None`` is not an estimator. The ``allow_nan`` tag is copied from the
    wrapped classifier (LightGBM handles NaN).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skcalc.classification import ThresholdedClassifier
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0]]); y = np.array([0, 0, 1, 1])
    >>> clf = ThresholdedClassifier(LogisticRegression(), threshold=0.2).fit(X, y)
    >>> proba = clf.predict_proba(X)[:, 1]
    >>> bool(np.all(clf.predict(X) == (proba >= 0.2)))
    True
    """

    _parameter_constraints: dict = {
        **FixedThresholdClassifier._parameter_constraints,
        "estimator": [*FixedThresholdClassifier._parameter_constraints["estimator"], None],
        "memory": [None, HasMethods(["cache"])],
    }

    def __init__(
        self,
        estimator=None,
        *,
        threshold=0.4,
        pos_label=None,
        response_method="auto",
        memory=None,
    ):
        super().__init__(
            estimator=estimator,
            threshold=threshold,
            pos_label=pos_label,
            response_method=response_method,
        )
        self.memory = memory

    def _get_estimator(self):
        """The classifier to fit: ``estimator``, or a new default LightGBM when None."""
        return make_default_lightgbm() if self.estimator is None else self.estimator

    def _fit(self, X, y, **params):
        # scikit-learn's FixedThresholdClassifier._fit, with the resolved estimator and the
        # threshold-independent memoisation of the fitted classifier.
        routed = process_routing(self, "fit", **params)
        fit_params = dict(routed.estimator.fit)
        estimator = self._get_estimator()
        names = sorted(fit_params)
        key_params = {
            "estimator_class": type(estimator),
            "estimator": estimator.get_params(deep=True),
            "fit_params": names,
        }
        # Only a memoised fit may share LightGBM's boosting with other fits (same rule:
        # memory set, integer random states), so that memory=None stays plain LightGBM.
        share = cache_enabled(self, key_params)
        self.estimator_ = memoised(
            self,
            "fit",
            (X, y, *(fit_params[k] for k in names)),
            lambda: fit_classifier(clone(estimator), X, y, fit_params, share=share),
            params=key_params,
        )
        return self

    def _prefitted(self):
        # estimator=None only: scikit-learn's path for a prefitted estimator.
        check_is_fitted(self, "estimator_")
        return FixedThresholdClassifier(
            self.estimator_,
            threshold=self.threshold,
            pos_label=self.pos_label,
            response_method=self.response_method,
        )

    def _thresholder(self):
        return super() if self.estimator is not None else self._prefitted()

    def predict(self, X):
        """Positive class iff the score is ``>= threshold``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
        """
        return self._thresholder().predict(X)

    @available_if(_resolved_has("predict_proba"))
    def predict_proba(self, X):
        """Class probabilities of the fitted classifier.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        return self._thresholder().predict_proba(X)

    @available_if(_resolved_has("predict_log_proba"))
    def predict_log_proba(self, X):
        """Log class probabilities of the fitted classifier.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
        """
        return self._thresholder().predict_log_proba(X)

    @available_if(_resolved_has("decision_function"))
    def decision_function(self, X):
        """Decision values of the fitted classifier (when it has ``decision_function``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        scores : ndarray of shape (n_samples,)
        """
        return self._thresholder().decision_function(X)

    def _predict_and_score(self, X):
        """``(predict(X), score)``, ``score`` being what the ROC AUC scorer reads
        (``decision_function(X)``, else ``predict_proba(X)[:, -1]``), or None.

        For :class:`skcalc.metrics.ClinicalScorer`, which needs both for one input:
        ``predict`` thresholds one of the same responses with scikit-learn's code, so each
        response is computed once. With ``memory`` set, the responses of a memoised (shared,
        read-only) fitted classifier are also remembered for the content of ``X``: the
        candidates of a grid search that differ only in the threshold score the same
        classifier on the same fold. None when the classes are not binary.
        """
        check_is_fitted(self, "estimator_")
        est = self.estimator_
        classes = est.classes_
        # two integer or string labels are "binary" to type_of_target, which costs more
        # than the rest of this method; other dtypes ask it
        if len(classes) != 2 or (
            classes.dtype.kind not in "biuUS" and type_of_target(classes) != "binary"
        ):
            return None
        pos_label = classes[-1] if self.pos_label is None else self.pos_label
        if pos_label not in classes.tolist():
            return None
        # scikit-learn's _get_response_values_binary: the first available method of
        # response_method ("auto": predict_proba, then decision_function)
        methods = (("predict_proba", "decision_function") if self.response_method == "auto"
                   else (self.response_method,))
        method = next((m for m in methods if hasattr(est, m)), None)
        if method is None:
            return None
        response = self._response(est, method, X)
        if method == "predict_proba":
            if response.ndim != 2 or response.shape[1] != 2:
                return None
            y_score = response[:, np.flatnonzero(classes == pos_label)[0]]
            threshold = 0.5 if self.threshold == "auto" else self.threshold
        else:
            y_score = -1 * response if pos_label == classes[0] else response
            threshold = 0.0 if self.threshold == "auto" else self.threshold
        # FixedThresholdClassifier.predict
        y_pred = _threshold_scores_to_class_labels(y_score, threshold, classes, self.pos_label)
        if hasattr(est, "decision_function"):
            auc_score = self._response(est, "decision_function", X)
        else:
            auc_score = self._response(est, "predict_proba", X)[:, -1]
        return y_pred, np.array(auc_score)

    def _response(self, est, method: str, X):
        if self.memory is None:
            return getattr(est, method)(X)
        key = (id(est), method, data_key(X))
        found, entry = _RESPONSE_MEMO.get(key)
        if found and entry[0] is est:
            return entry[1]
        value = getattr(est, method)(X)
        _RESPONSE_MEMO.put(key, (est, value))  # holding est: its id stays its own
        return value

    @property
    def classes_(self):
        """Class labels of the fitted classifier."""
        if self.estimator is None:
            if not hasattr(self, "estimator_"):
                raise AttributeError("The underlying estimator is not fitted yet.")
            return self.estimator_.classes_
        return super().classes_

    def get_metadata_routing(self):
        """Metadata routing: ``fit`` metadata goes to the wrapped classifier's ``fit``.

        Returns
        -------
        routing : MetadataRouter
        """
        return MetadataRouter(owner=self).add(
            estimator=self._get_estimator(),
            method_mapping=MethodMapping().add(callee="fit", caller="fit"),
        )

    def __sklearn_tags__(self):
        estimator = self._get_estimator()
        # The parent reads tags from ``self.estimator``, which may be None: start from the
        # mixins' tags and redo its two lines with the resolved estimator.
        tags = ClassifierMixin.__sklearn_tags__(self)
        tags.classifier_tags.multi_class = False
        inner = get_tags(estimator).input_tags
        tags.input_tags.sparse = inner.sparse
        tags.input_tags.allow_nan = inner.allow_nan
        return tags
