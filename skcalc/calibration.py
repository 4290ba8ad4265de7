"""Calibrated probabilities for the whole pipeline, fitted by grouped cross-validation.

SMOTE + ENN resampling balances the classes the classifier sees, and boosting pushes its
scores to the extremes: the pipeline's "probabilities" pile up near 0.02 and 0.99 and are
not the risk of an actionable finding. :class:`CalibratedClassifier` wraps the *whole*
pipeline (segmentation to classifier, resampling included) in scikit-learn's
:class:`~sklearn.calibration.CalibratedClassifierCV`, with folds that keep each exam on one
side: every calibrator is fitted on real, unresampled held-out samples of the training
data, never on the test data and never on synthetic SMOTE samples.

Thresholds and calibrated probabilities
---------------------------------------
The wrapper's ``threshold`` applies to the *calibrated* probability: an ROI is called
actionable (``pos_label``) iff its calibrated probability of ``pos_label`` is
``>= threshold``. A threshold tuned on raw scores (the paper's 0.4) does not carry over.
Either tune ``threshold`` again (``{"threshold": [...]}`` in the grid search), or read it as
what it now is: the estimated risk above which a biopsy is recommended (with a prevalence of
20-30 %, thresholds of a few percent to keep sensitivity near 1).

Ranking and ROC curve
---------------------
Each calibrator maps its fold model's scores monotonically (sigmoid and temperature:
strictly; isotonic: non-decreasingly, with ties). Only with ``ensemble=False`` is the
result one monotone map of one model's scores: the ranking and the ROC curve are then
those of the pipeline refitted on all the training data (isotonic ties can only merge
operating points). With ``ensemble=True`` (the default) the probabilities are averaged over
the folds' (pipeline, calibrator) pairs, each pipeline fitted on other data: the average is
a monotone map of no single model, so the ranking, the ROC curve and its AUC change (a
little: the fold models agree on most samples).
"""

from __future__ import annotations

import warnings
from numbers import Integral, Real
from typing import Any

import numpy as np
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    MetaEstimatorMixin,
    _fit_context,
    clone,
)
from sklearn.calibration import CalibratedClassifierCV
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold
from sklearn.utils import get_tags
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_is_fitted, validate_data

from .classification import make_default_lightgbm
from .exceptions import SkcalcWarning
from .model_selection import check_classes_per_fold
from .roi import ROI, exam_groups

__all__ = ["CalibratedClassifier", "calibrated_param_grid"]

#: ROI metadata naming the group, finest first. A patient's exams share her anatomy, so
#: grouping by patient when exam ids are missing is coarser but never leaks.


def _is_roi_list(X) -> bool:
    return isinstance(X, (list, tuple)) and len(X) > 0 and isinstance(X[0], ROI)


class CalibratedClassifier(MetaEstimatorMixin, ClassifierMixin, BaseEstimator):
    """Calibrate a whole (imbalanced-learn) pipeline by grouped CV, then threshold.

    ``fit(X, y, groups=groups)`` splits the training data with
    :class:`~sklearn.model_selection.StratifiedGroupKFold` (exams never straddle a fold),
    and hands these folds to :class:`~sklearn.calibration.CalibratedClassifierCV`: for each
    fold, a clone of ``estimator`` is fitted on the other folds and a calibrator (``method``)
    on this fold's predictions. ``groups`` is requested for ``fit`` by default, so with
    scikit-learn's metadata routing enabled (as in :func:`skcalc.model_selection.grid_search`)
    a grid search hands the exam ids of its training folds to this estimator. Without
    ``groups``, the groups of a list of ROIs are their ``meta["exam_id"]`` (else
    ``meta["patient_id"]``, see :func:`skcalc.roi.exam_groups`); with none, the folds are
    not grouped by exam and a :class:`~skcalc.exceptions.SkcalcWarning` says so.

    Every fold's training and calibration parts must hold both classes: a calibrator fitted
    on a fold without an actionable sample maps every score to a near-zero probability. With
    an int ``cv`` and groups, ``fit`` first checks that each class spans at least ``cv``
    exams (:func:`skcalc.model_selection.check_classes_per_fold`); any fold lacking a class
    is refused with an error.

    Parameters
    ----------
    estimator : estimator, optional
        The classifier or pipeline to calibrate (e.g.
        :func:`skcalc.make_calcification_pipeline`); needs ``predict_proba`` or
        ``decision_function``. Default: skcalc's LightGBM
        (:func:`skcalc.classification.make_default_lightgbm`).
    method : {"sigmoid", "isotonic", "temperature"}, default="sigmoid"
        Calibrator. Sigmoid (Platt) suits small data sets (a few hundred samples);
        isotonic needs more (and produces ties); temperature scaling needs scikit-learn
        1.8 or later.
    cv : int or CV splitter, default=5
        Number of folds (grouped and stratified when ``groups`` are given, stratified
        otherwise; shuffled with ``random_state``), or a splitter (its ``split`` receives
        ``groups``).
    threshold : float, default=0.5
        Decision threshold on the calibrated probability of ``pos_label``.
    pos_label : int, float, bool, str or None, default=None
        The positive (actionable) class, whose calibrated probability is thresholded.
        ``None``: the greater of the two labels (1 for {0, 1} labels), as
        :class:`skcalc.classification.ThresholdedClassifier`. With string labels pass it
        (``pos_label="actionable"``): the greater of ``"actionable"`` and ``"benign"`` is
        ``"benign"``.
    ensemble : bool, default=True
        True: one (pipeline, calibrator) pair per fold, probabilities averaged (the ranking
        and ROC curve then differ a little from any single model's, see the module notes).
        False: the calibrator is fitted on out-of-fold predictions and applied to one
        pipeline refitted on all the training data (a monotone map: the ranking is kept).
    n_jobs : int, optional
        Folds fitted in parallel.
    random_state : int, RandomState instance or None, default=0
        Shuffling of the folds.

    Attributes
    ----------
    calibrated_ : CalibratedClassifierCV
        The fitted calibration.
    classes_ : ndarray of shape (2,)
        The labels; ``predict_proba``'s columns are in this order.
    splits_ : list of (ndarray, ndarray)
        The (train, calibration) indices of each fold, for auditing.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(120, 3)); y = (X[:, 0] + rng.normal(size=120) > 0.8).astype(int)
    >>> groups = np.repeat(np.arange(60), 2)
    >>> clf = CalibratedClassifier(LogisticRegression(), cv=3, threshold=0.3)
    >>> clf = clf.fit(X, y, groups=groups)
    >>> all(set(groups[tr]).isdisjoint(groups[te]) for tr, te in clf.splits_)
    True
    >>> clf.predict_proba(X[:2]).shape, set(clf.predict(X)) <= {0, 1}
    ((2, 2), True)
    """

    __metadata_request__fit = {"groups": True}

    _parameter_constraints: dict = {
        "estimator": [HasMethods(["fit", "predict_proba"]),
                      HasMethods(["fit", "decision_function"]), None],
        "method": [StrOptions({"sigmoid", "isotonic", "temperature"})],
        "cv": ["cv_object"],
        "threshold": [Interval(Real, 0, 1, closed="both")],
        "pos_label": [Real, str, "boolean", None],
        "ensemble": ["boolean"],
        "n_jobs": [Integral, None],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        estimator: Any = None,
        *,
        method: str = "sigmoid",
        cv: Any = 5,
        threshold: float = 0.5,
        pos_label: Any = None,
        ensemble: bool = True,
        n_jobs: int | None = None,
        random_state: Any = 0,
    ) -> None:
        self.estimator = estimator
        self.method = method
        self.cv = cv
        self.threshold = threshold
        self.pos_label = pos_label
        self.ensemble = ensemble
        self.n_jobs = n_jobs
        self.random_state = random_state

    def _splits(self, X, y, groups) -> list[tuple[np.ndarray, np.ndarray]]:
        dummy = np.zeros((len(y), 1))
        if isinstance(self.cv, Integral):
            if groups is not None:
                cv = StratifiedGroupKFold(int(self.cv), shuffle=True,
                                          random_state=self.random_state)
            else:
                cv = StratifiedKFold(int(self.cv), shuffle=True, random_state=self.random_state)
        else:
            cv = self.cv
        return [(np.asarray(tr), np.asarray(te)) for tr, te in cv.split(dummy, y, groups)]

    def _pos_label(self, classes: np.ndarray):
        """``pos_label``, or the greater label when None; refused when not a label."""
        if self.pos_label is None:
            return classes[-1]
        if self.pos_label not in classes.tolist():
            raise ValueError(
                f"pos_label={self.pos_label!r} is not one of the labels {classes.tolist()}"
            )
        return self.pos_label

    def _check_folds(self, y: np.ndarray, groups, positive: np.ndarray) -> None:
        """Refuse folds whose training or calibration part lacks a class."""
        what = f"{type(self).__name__}(cv={self.cv!r})"
        if isinstance(self.cv, Integral) and groups is not None:
            # Names the class and its number of exams before any fold is drawn.
            check_classes_per_fold(positive.astype(int), groups, int(self.cv), what,
                                   hint="fewer calibration folds (cv), or more exams")
        for k, (train, calib) in enumerate(self.splits_):
            for part, idx in (("calibration", calib), ("training", train)):
                present = np.unique(y[idx])
                if len(present) < 2:
                    raise ValueError(
                        f"{what}: the {part} part of calibration fold {k} has only the "
                        f"label(s) {present.tolist()} ({len(idx)} samples); every fold needs "
                        "both classes, or its calibrator maps every score to one class. Use "
                        "fewer folds (cv), or more exams of the rarer class"
                    )

    # The wrapped estimator's parameters are validated when its clones are fitted.
    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y, groups=None, **fit_params):
        """Fit the calibrated pipeline on the training data.

        Parameters
        ----------
        X : list of ROI or array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        groups : array-like of shape (n_samples,), optional
            Exam ids: the calibration folds never split an exam. Default: for a list of
            ROIs, their ``meta["exam_id"]`` (else ``meta["patient_id"]``).
        **fit_params
            Passed to the estimator's ``fit`` (through metadata routing when enabled).

        Returns
        -------
        self

        Raises
        ------
        ValueError
            When ``y`` is not binary, ``pos_label`` is not one of its labels, or a fold's
            training or calibration part lacks a class.

        Warns
        -----
        SkcalcWarning
            When no groups are given or found: the folds may then split an exam.
        """
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None"
            )
        X = self._validate_X(X, reset=True)
        y_type = type_of_target(y, input_name="y", raise_unknown=True)
        if y_type != "binary":
            raise ValueError(
                f"Only binary classification is supported. The type of the target is {y_type}."
            )
        y = np.asarray(y)
        classes = np.unique(y)
        if len(classes) != 2:
            raise ValueError(
                f"{type(self).__name__} needs two classes; y has {len(classes)} class"
            )
        positive = y == self._pos_label(classes)
        if groups is None and _is_roi_list(X):
            groups, _ = exam_groups(X)
        if groups is None:
            warnings.warn(
                f"{type(self).__name__}: no groups given (and no ROI meta 'exam_id' or "
                "'patient_id'): the calibration folds are not grouped by exam, so an exam's "
                "ROIs can be both in a fold model's training data and in its calibration "
                "data. Pass groups=<exam ids> (with metadata routing in a grid search)",
                SkcalcWarning,
                stacklevel=3,  # the caller of fit, past scikit-learn's _fit_context
            )
        else:
            groups = np.asarray(groups)
            if len(groups) != len(y):
                raise ValueError(f"groups has {len(groups)} entries, y has {len(y)}")
        self.splits_ = self._splits(X, y, groups)
        self._check_folds(y, groups, positive)
        estimator = make_default_lightgbm() if self.estimator is None else clone(self.estimator)
        self.calibrated_ = CalibratedClassifierCV(
            estimator, method=self.method, cv=self.splits_,
            ensemble=self.ensemble, n_jobs=self.n_jobs,
        ).fit(X, y, **fit_params)
        self.classes_ = self.calibrated_.classes_
        return self

    def _validate_X(self, X, *, reset: bool):
        tags = self.__sklearn_tags__().input_tags
        if not tags.two_d_array or (
            isinstance(X, (list, tuple)) and len(X) and isinstance(X[0], ROI)
        ):  # lists of ROIs: the pipeline's image stages validate them
            return X
        return validate_data(
            self, X, reset=reset, accept_sparse=["csr", "csc"] if tags.sparse else False,
            ensure_all_finite=not tags.allow_nan, dtype=None if tags.string else "numeric",
        )

    def predict_proba(self, X) -> np.ndarray:
        """Calibrated class probabilities, shape (n_samples, 2)."""
        check_is_fitted(self, "calibrated_")
        return self.calibrated_.predict_proba(self._validate_X(X, reset=False))

    def predict(self, X) -> np.ndarray:
        """``pos_label`` iff its calibrated probability is ``>= threshold``."""
        proba = self.predict_proba(X)
        pos = self._pos_label(self.classes_)
        is_pos = self.classes_ == pos
        score = proba[:, np.flatnonzero(is_pos)[0]]
        return np.where(score >= self.threshold, pos, self.classes_[~is_pos][0])

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False  # a threshold on P(positive class)
        inner = make_default_lightgbm() if self.estimator is None else self.estimator
        tags.input_tags = get_tags(inner).input_tags
        # A pipeline takes what its first step takes (imbalanced-learn's Pipeline does not
        # say so in its tags): lists of ROIs for the image pipeline.
        while hasattr(inner, "steps") and inner.steps:
            inner = inner.steps[0][1]
        if not get_tags(inner).input_tags.two_d_array:
            tags.input_tags.two_d_array = False
        return tags


def calibrated_param_grid(param_grid: dict | list, *, threshold_key: str = "classify__threshold"):
    """Rewrite a pipeline's parameter grid for :class:`CalibratedClassifier` around it.

    Keys get the ``estimator__`` prefix, and the pipeline's own decision threshold (which
    the calibrated probabilities ignore) becomes the wrapper's ``threshold``: give it values
    on the calibrated scale.

    Examples
    --------
    >>> calibrated_param_grid({"features__local__bag__n_clusters": [5, 15],
    ...                        "classify__threshold": [0.05, 0.1]})
    {'estimator__features__local__bag__n_clusters': [5, 15], 'threshold': [0.05, 0.1]}
    """
    if isinstance(param_grid, list):
        return [calibrated_param_grid(g, threshold_key=threshold_key) for g in param_grid]
    return {
        ("threshold" if k == threshold_key else f"estimator__{k}"): v
        for k, v in param_grid.items()
    }
