"""The paper's classifier: LightGBM with a fixed decision threshold (t = 0.4).

:class:`ThresholdedClassifier` is a thin subclass of scikit-learn's
:class:`~sklearn.model_selection.FixedThresholdClassifier`: same parameters, same
thresholding code (``predict`` returns the positive class iff the score is ``>= threshold``),
two different defaults: ``threshold=0.4`` (the paper's) and ``estimator=None`` meaning a
small-data LightGBM (:func:`make_default_lightgbm`). Put it last in an imbalanced-learn
pipeline, after SMOTE+ENN, so the threshold applies to real samples only.
"""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
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

from ._fitcache import FIT_CACHE, cache_enabled, data_key, memoised
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
            lambda: _fit_classifier(clone(estimator), X, y, fit_params, share=share),
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


# ------------------------------------------------ LightGBM boosting shared across n_estimators
# A grid over ``n_estimators`` fits the same LightGBM setting on the same data several times
# with different numbers of trees. Gradient boosting is sequential and, with one thread and
# an integer seed, deterministic: the first 100 trees of a 200-tree model are the 100-tree
# model (the bagging and column-sampling generators advance the same way, whatever the
# total). Continuing a *finished* model (``init_model``) is not the same (its generators
# restart); keeping the training Booster alive and calling ``update`` again is. So, for the
# verified cases only, ``LGBMClassifier.fit`` (LightGBM's own code: validation, label
# encoding, attributes) runs while ``lightgbm.sklearn.train`` is replaced by
# :func:`_train_sharing`, which
#
# * builds LightGBM's ``Dataset`` once per training data and Dataset-relevant parameters
#   (the parameters in ``_BOOSTER_ONLY`` do not change its binning), instead of once per fit;
# * keeps the training Booster of each (data, parameters but the number of trees) and boosts
#   it further when more trees are asked; a fit of N trees returns a Booster loaded from the
#   kept one's model text cut at its N-th boosting round, the way ``lightgbm.train`` returns
#   one loaded from its own model text. The text is LightGBM's for a fresh N-tree fit
#   character for character (tested), once the parameter line ``num_iterations`` says N.
#
# Everything else (other LightGBM versions, parameters, data types, fit arguments, other
# threads) goes through the real ``lightgbm.train`` unchanged.

#: LightGBM minor versions whose ``train``/``LGBMModel.fit`` were read and tested for this.
_VERIFIED_LIGHTGBM = ("4.7",)

#: Parameters (as ``LGBMModel._process_params`` passes them) under which sharing was verified.
_SHAREABLE_PARAMS = frozenset({
    "boosting_type", "colsample_bytree", "learning_rate", "max_depth", "metric",
    "min_child_samples", "min_child_weight", "min_split_gain", "num_leaves", "num_threads",
    "objective", "random_state", "reg_alpha", "reg_lambda", "subsample",
    "subsample_for_bin", "subsample_freq", "verbose",
})

#: Tree-learning parameters that do not enter the Dataset's construction (LightGBM's own
#: check, ``LGBM_DatasetUpdateParamChecking``, accepts changing them on a built Dataset).
_BOOSTER_ONLY = frozenset({
    "learning_rate", "max_depth", "min_split_gain", "num_iterations", "num_leaves",
    "reg_alpha", "reg_lambda",
})

#: Built Datasets, by training data and Dataset-relevant parameters (one per fold and K in
#: the paper grid: a few hundred KB each at the demo's size).
_DATASETS = LRUCache(max_items=32)

#: Training Boosters kept for more rounds, bounded in number and in estimated bytes. A kept
#: Booster's size is dominated by its histogram pool, ``num_leaves`` x (total bins of the
#: Dataset) x 16 bytes (measured: 4.1 MB for 15 leaves at the demo's 250 x 185 data with
#: 15,725 bins, 11.3 MB at 1000 x 185 with 47,175 bins). The paper grid's candidate order
#: puts 80 distinct LightGBM fits between the 100- and the 200-tree fit of one setting:
#: about 230 MB at the demo's size. When they do not fit in the budget, the oldest are
#: dropped and the larger fits train again from the start (same result, no time saved).
#: An evicted Booster is freed with its last reference (nothing else refers to it).
_BOOSTERS = LRUCache(max_items=96, max_weight=512 * 2**20)

FIT_CACHE.dependents += [_DATASETS, _BOOSTERS]  # FIT_CACHE.clear() frees them too

_SHARE_LOCK = threading.RLock()  # the stores and the kept Boosters (``update`` mutates them)
_PATCH_LOCK = threading.Lock()  # installing/removing the replacement of lightgbm's train
_patch = {"users": 0, "original": None}
_local = threading.local()  # this thread's depth inside _shared_boosting()

#: Attributes that ``Booster(params, train_set)`` sets and loading a model text does not.
_TRAINING_ATTRIBUTES = (
    "_Booster__higher_better_inner_eval", "_Booster__init_predictor",
    "_Booster__name_inner_eval", "_Booster__need_reload_eval_info", "_Booster__num_dataset",
    "_Booster__num_inner_eval", "name_valid_sets", "train_set_version",
)

#: ``lightgbm.train``'s arguments as ``LGBMModel.fit`` passes them (all by keyword).
_TRAIN_KWARGS = frozenset({
    "params", "train_set", "num_boost_round", "valid_sets", "valid_names", "feval",
    "init_model", "callbacks",
})


class _KeptBooster:
    """A training Booster and, after each ``update`` call, its number of boosting rounds.

    ``lightgbm.train`` calls ``update`` ``num_boost_round`` times whatever it returns; a
    call that finds no split adds no tree, so a fit of N rounds is the model after N calls,
    which may hold fewer than N trees.
    """

    def __init__(self, booster, n_iterations_param: int) -> None:
        self.booster = booster
        self.n_iterations_param = n_iterations_param
        self.rounds_after: list[int] = [0]  # rounds_after[k]: trees after k update calls

    def grow(self, n_calls: int) -> None:
        while len(self.rounds_after) <= n_calls:
            self.booster.update()
            self.rounds_after.append(self.booster.current_iteration())
            FIT_CACHE.computed[("LightGBM", "update")] += 1


def _lightgbm_verified() -> bool:
    import lightgbm

    return ".".join(lightgbm.__version__.split(".")[:2]) in _VERIFIED_LIGHTGBM


def _fit_classifier(estimator, X, y, fit_params: dict, *, share: bool):
    """``estimator.fit(X, y, **fit_params)``, sharing LightGBM's boosting when ``share``
    and the case is one verified to give the same model (see above)."""
    if share and not fit_params and isinstance(X, np.ndarray) and X.ndim == 2:
        from lightgbm import LGBMClassifier

        if type(estimator) is LGBMClassifier and _lightgbm_verified():
            with _shared_boosting():
                return estimator.fit(X, y)
    return estimator.fit(X, y, **fit_params)


@contextmanager
def _shared_boosting() -> Iterator[None]:
    """Within this thread, ``LGBMClassifier.fit`` trains through :func:`_train_sharing`.

    The replacement of ``lightgbm.sklearn.train`` is installed while any thread is inside;
    for every other thread it passes calls to the real ``train``.
    """
    import lightgbm.sklearn as lgb_sklearn

    with _PATCH_LOCK:
        if _patch["users"] == 0:
            _patch["original"] = lgb_sklearn.train
            lgb_sklearn.train = _train_sharing
        _patch["users"] += 1
    _local.depth = getattr(_local, "depth", 0) + 1
    try:
        yield
    finally:
        _local.depth -= 1
        with _PATCH_LOCK:
            _patch["users"] -= 1
            if _patch["users"] == 0 and lgb_sklearn.train is _train_sharing:
                lgb_sklearn.train = _patch["original"]


def _train_sharing(*args, **kwargs):
    """``lightgbm.train`` as ``LGBMModel.fit`` calls it, with the Dataset and the boosting
    shared between fits (see above); any other call goes to the real ``train``."""
    original = _patch["original"]
    if getattr(_local, "depth", 0) <= 0 or args or not _shareable_call(kwargs):
        return original(*args, **kwargs)
    with _SHARE_LOCK:
        return _train_shared(**kwargs)


def _shareable_call(kw: dict) -> bool:
    from lightgbm import Dataset
    from lightgbm.callback import _RecordEvaluationCallback

    if set(kw) != _TRAIN_KWARGS:
        return False
    callbacks = kw["callbacks"] or []
    if (
        kw["valid_sets"] or kw["valid_names"] is not None or kw["feval"]
        or kw["init_model"] is not None
        or len(callbacks) != 1 or type(callbacks[0]) is not _RecordEvaluationCallback
    ):
        return False
    n = kw["num_boost_round"]
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n <= 0:
        return False
    params = kw["params"]
    if not set(params) <= _SHAREABLE_PARAMS or not (
        params.get("boosting_type") == "gbdt"
        and params.get("objective") == "binary"
        and params.get("num_threads") == 1
        and isinstance(params.get("random_state"), (int, np.integer))
        and not isinstance(params.get("random_state"), bool)
    ):
        return False
    ds = kw["train_set"]
    return (
        type(ds) is Dataset
        and ds._handle is None  # not built yet: LightGBM builds it in train()
        and isinstance(ds.data, np.ndarray) and ds.data.ndim == 2
        and ds.data.dtype.kind == "f"
        and isinstance(ds.label, np.ndarray)
        and ds.weight is None and ds.group is None and ds.init_score is None
        and ds.reference is None and ds.used_indices is None and ds._predictor is None
        and isinstance(ds.feature_name, str) and ds.feature_name == "auto"
        and isinstance(ds.categorical_feature, str) and ds.categorical_feature == "auto"
    )


def _params_repr(params: dict, leave_out: frozenset) -> str:
    return repr(sorted((k, repr(v)) for k, v in params.items() if k not in leave_out))


def _train_shared(*, params, train_set, num_boost_round, callbacks, **_):
    from lightgbm import Booster
    from lightgbm.callback import CallbackEnv
    from lightgbm.engine import _choose_num_iterations

    # lightgbm.engine.train's preparation of the parameters (objective and early stopping
    # are plain here: checked by _shareable_call).
    params = _choose_num_iterations(num_boost_round_kwarg=num_boost_round,
                                    params=copy.deepcopy(params))
    n = params["num_iterations"]
    data = data_key(train_set.data, train_set.label)
    ds_key = (data, _params_repr(params, _BOOSTER_ONLY))
    found, ds = _DATASETS.get(ds_key)
    if not found:
        ds = train_set
    booster_key = (data, _params_repr(params, frozenset({"num_iterations"})))
    found_booster, kept = _BOOSTERS.get(booster_key)
    if not found_booster:
        # As lightgbm.engine.train: the Dataset is built (or, already built, checked by
        # LightGBM against these parameters) when the Booster is created.
        ds._update_params(params)._set_predictor(None)
        try:
            booster = Booster(params=params, train_set=ds)
        finally:
            ds._reverse_update_params()
        kept = _KeptBooster(booster, n)
        n_bins = sum(ds.feature_num_bin(i) for i in range(ds.num_feature()))
        _BOOSTERS.put(booster_key, kept, weight=16 * n_bins * int(params["num_leaves"])
                      + 64 * ds.num_data())
        FIT_CACHE.computed[("LightGBM", "Booster")] += 1
        if not found:
            _DATASETS.put(ds_key, ds)
            FIT_CACHE.computed[("LightGBM", "Dataset")] += 1
    kept.grow(n)
    rounds = kept.rounds_after[n]
    line = f"\n[num_iterations: {kept.n_iterations_param}]\n"
    text = kept.booster.model_to_string(num_iteration=rounds) if rounds else ""
    if text.count(line) != 1:
        # No tree at all (LightGBM's text would then hold every round), or a model text
        # unlike the verified ones: leave it to LightGBM itself.
        return _patch["original"](params=params, train_set=train_set,
                                  num_boost_round=num_boost_round, valid_sets=[],
                                  valid_names=None, feval=[], init_model=None,
                                  callbacks=callbacks)
    # The kept Booster was created for its first request's number of rounds.
    text = text.replace(line, f"\n[num_iterations: {n}]\n")
    out = Booster(model_str=text)
    # The attributes lightgbm.engine.train leaves on its Booster: the parameters it was
    # created with (Booster.__init__ adds the Dataset's), best_iteration and best_score.
    out.params = {**params, **ds.get_params()}
    out.best_iteration = 0
    out.best_score = defaultdict(OrderedDict)
    # ... and the bookkeeping its training Booster had (read by nothing once the data is
    # freed, but pickled with the model): taken from the kept training Booster.
    for name in _TRAINING_ATTRIBUTES:
        setattr(out, name, copy.copy(getattr(kept.booster, name)))
    # In the training Booster's order, so that the fitted model pickles to the same bytes.
    order = [k for k in vars(kept.booster) if k in vars(out)]
    order += [k for k in vars(out) if k not in order]
    out.__dict__ = {k: out.__dict__[k] for k in order}
    # The record_evaluation callback clears its dict at the first round and records
    # nothing without validation sets.
    callbacks[0](CallbackEnv(model=out, params=params, iteration=0, begin_iteration=0,
                             end_iteration=n, evaluation_result_list=[]))
    return out
