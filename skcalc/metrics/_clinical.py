"""Clinical classification metrics, grid-search scorers and the bootstrap report.

The paper reports accuracy, sensitivity, specificity, F1, PPV, ROC AUC and the confusion
matrix of the held-out test set at threshold 0.4, and the headline figure "15 of 60 test
images (25 %) benign and spared biopsy at sensitivity 1.0". Everything here works on a
binary problem where ``pos_label`` is the actionable (high-risk/malignant) class and every
other label is benign.
"""

from __future__ import annotations

import math
import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import f1_score, get_scorer, make_scorer
from sklearn.utils import check_random_state, column_or_1d
from sklearn.utils._param_validation import Interval, StrOptions, validate_params
from sklearn.utils.validation import check_consistent_length

from .._arrays import array_digest
from ..utils._lru import LRUCache

__all__ = [
    "ClinicalReport",
    "ClinicalScorer",
    "clinical_report",
    "confusion_counts",
    "make_clinical_scorers",
    "negative_predictive_value",
    "positive_predictive_value",
    "sensitivity_score",
    "sensitivity_then_specificity",
    "spared_biopsy_fraction",
    "specificity_score",
]

_ZERO_DIVISION = [StrOptions({"warn"}), Interval(Real, 0, 1, closed="both"), type(np.nan)]


def _binarize(y_true, y_pred, pos_label):
    y_true = column_or_1d(y_true)
    y_pred = column_or_1d(y_pred)
    check_consistent_length(y_true, y_pred)
    labels = np.unique(np.concatenate([np.unique(y_true), np.unique(y_pred)]))
    if len(labels) > 2:
        raise ValueError(
            f"clinical metrics are binary; got {len(labels)} labels {labels.tolist()[:10]}"
        )
    if len(labels) == 2 and pos_label not in labels.tolist():
        raise ValueError(f"pos_label={pos_label!r} is not a label; labels are {labels.tolist()}")
    return y_true == pos_label, y_pred == pos_label


def confusion_counts(y_true, y_pred, *, pos_label=1) -> dict[str, int]:
    """True/false negatives/positives of a binary prediction.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        Labels; ``pos_label`` is positive, any other label negative.
    pos_label : int, float, bool or str, default=1

    Returns
    -------
    counts : dict
        ``{"tn": int, "fp": int, "fn": int, "tp": int}``.

    Examples
    --------
    >>> confusion_counts([0, 0, 1, 1], [0, 1, 1, 1])
    {'tn': 1, 'fp': 1, 'fn': 0, 'tp': 2}
    """
    return _counts(*_binarize(y_true, y_pred, pos_label))


def _counts(t: np.ndarray, p: np.ndarray) -> dict[str, int]:
    """Confusion counts of boolean truth ``t`` and prediction ``p`` (positive = True)."""
    return {
        "tn": int(np.sum(~t & ~p)),
        "fp": int(np.sum(~t & p)),
        "fn": int(np.sum(t & ~p)),
        "tp": int(np.sum(t & p)),
    }


def _ratio(num: int, den: int, zero_division, name: str) -> float:
    if den > 0:
        return float(num / den)
    if isinstance(zero_division, str):  # "warn"
        warnings.warn(
            f"{name} is ill-defined (no sample in its denominator); set to 0.0. "
            "Use `zero_division` to control this.",
            UndefinedMetricWarning,
            stacklevel=3,
        )
        return 0.0
    return float(zero_division)


_METRIC_PARAMS = {
    "y_true": ["array-like"],
    "y_pred": ["array-like"],
    "pos_label": [Real, str, "boolean"],
    "zero_division": _ZERO_DIVISION,
}


@validate_params(_METRIC_PARAMS, prefer_skip_nested_validation=True)
def sensitivity_score(y_true, y_pred, *, pos_label=1, zero_division="warn") -> float:
    """Sensitivity (recall of the actionable class): TP / (TP + FN).

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
    pos_label : int, float, bool or str, default=1
    zero_division : "warn", float in [0, 1] or nan, default="warn"
        Value when there is no positive sample ("warn": 0.0 with a warning).

    Returns
    -------
    float

    Examples
    --------
    >>> sensitivity_score([0, 1, 1, 1], [0, 1, 0, 1])
    0.666...
    """
    c = confusion_counts(y_true, y_pred, pos_label=pos_label)
    return _ratio(c["tp"], c["tp"] + c["fn"], zero_division, "Sensitivity")


@validate_params(_METRIC_PARAMS, prefer_skip_nested_validation=True)
def specificity_score(y_true, y_pred, *, pos_label=1, zero_division="warn") -> float:
    """Specificity (recall of the benign class): TN / (TN + FP).

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
    pos_label : int, float, bool or str, default=1
    zero_division : "warn", float in [0, 1] or nan, default="warn"

    Returns
    -------
    float

    Examples
    --------
    >>> specificity_score([0, 0, 0, 1], [0, 1, 0, 1])
    0.666...
    """
    c = confusion_counts(y_true, y_pred, pos_label=pos_label)
    return _ratio(c["tn"], c["tn"] + c["fp"], zero_division, "Specificity")


@validate_params(_METRIC_PARAMS, prefer_skip_nested_validation=True)
def positive_predictive_value(y_true, y_pred, *, pos_label=1, zero_division="warn") -> float:
    """Positive predictive value (precision): TP / (TP + FP).

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
    pos_label : int, float, bool or str, default=1
    zero_division : "warn", float in [0, 1] or nan, default="warn"

    Returns
    -------
    float

    Examples
    --------
    >>> positive_predictive_value([0, 0, 1, 1], [1, 1, 1, 1])
    0.5
    """
    c = confusion_counts(y_true, y_pred, pos_label=pos_label)
    return _ratio(c["tp"], c["tp"] + c["fp"], zero_division, "PPV")


@validate_params(_METRIC_PARAMS, prefer_skip_nested_validation=True)
def negative_predictive_value(y_true, y_pred, *, pos_label=1, zero_division="warn") -> float:
    """Negative predictive value: TN / (TN + FN).

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
    pos_label : int, float, bool or str, default=1
    zero_division : "warn", float in [0, 1] or nan, default="warn"

    Returns
    -------
    float

    Examples
    --------
    >>> negative_predictive_value([0, 1, 0, 1], [0, 0, 0, 1])
    0.666...
    """
    c = confusion_counts(y_true, y_pred, pos_label=pos_label)
    return _ratio(c["tn"], c["tn"] + c["fn"], zero_division, "NPV")


def _sensitivity_first(y_true, y_pred, *, pos_label=1, weight=1e-3):
    return sensitivity_score(
        y_true, y_pred, pos_label=pos_label, zero_division=0.0
    ) + weight * specificity_score(y_true, y_pred, pos_label=pos_label, zero_division=0.0)


def sensitivity_then_specificity(cv_results: dict) -> int:
    """``refit`` rule of the paper's grid search: best sensitivity, then best specificity.

    The paper tuned "to obtain the best possible sensitivity"; many candidates reach the
    same sensitivity (every threshold low enough to call all actionable samples positive
    scores 1.0), so among those with the best mean cross-validated sensitivity this picks
    the best mean specificity, then the first candidate. Pass it as
    ``GridSearchCV(refit=sensitivity_then_specificity)`` with ``scoring`` holding
    ``"sensitivity"`` and ``"specificity"`` (:func:`make_clinical_scorers`). Candidates
    whose fits failed (NaN scores) rank last.

    Unlike the ``"sensitivity_first"`` scorer (sensitivity + 1e-3 * specificity, a single
    number that ``GridSearchCV`` can rank), the order is exactly lexicographic whatever
    the number of samples. As with any callable ``refit``, ``GridSearchCV`` then sets no
    ``best_score_``; read ``cv_results_["mean_test_sensitivity"][best_index_]``.

    Parameters
    ----------
    cv_results : dict
        ``GridSearchCV.cv_results_``.

    Returns
    -------
    best_index : int

    Examples
    --------
    >>> import numpy as np
    >>> res = {"mean_test_sensitivity": np.array([0.8, 1.0, 1.0, np.nan]),
    ...        "mean_test_specificity": np.array([0.9, 0.2, 0.4, 1.0])}
    >>> sensitivity_then_specificity(res)
    2
    """
    for key in ("mean_test_sensitivity", "mean_test_specificity"):
        if key not in cv_results:
            raise ValueError(
                f"cv_results has no {key!r}: score the search with make_clinical_scorers() "
                "(or a dict holding 'sensitivity' and 'specificity')"
            )
    sens = np.nan_to_num(np.asarray(cv_results["mean_test_sensitivity"], float), nan=-np.inf)
    spec = np.nan_to_num(np.asarray(cv_results["mean_test_specificity"], float), nan=-np.inf)
    # np.lexsort sorts by the last key first; negate for "largest first", stable on index.
    order = np.lexsort((np.arange(len(sens)), -spec, -sens))
    return int(order[0])


def _count(y_true, y_pred, *, which, pos_label=1):
    return confusion_counts(y_true, y_pred, pos_label=pos_label)[which]


_SCORER_NAMES = ("sensitivity", "specificity", "ppv", "npv", "f1", "accuracy",
                 "balanced_accuracy", "roc_auc", "sensitivity_first", "tn", "fp", "fn", "tp")


@validate_params(
    {
        "pos_label": [Real, str, "boolean"],
        "tie_break_weight": [Interval(Real, 0, 1, closed="both")],
        "zero_division": _ZERO_DIVISION,
    },
    prefer_skip_nested_validation=True,
)
def make_clinical_scorers(*, pos_label=1, tie_break_weight=1e-3, zero_division=0.0) -> dict:
    """Scorers for ``GridSearchCV(scoring=...)`` / ``cross_validate``.

    Parameters
    ----------
    pos_label : int, float, bool or str, default=1
        The actionable class.
    tie_break_weight : float, default=1e-3
        Weight ``w`` of specificity in the ``"sensitivity_first"`` score = sensitivity + w *
        specificity. Pure sensitivity ties for every threshold low enough to call all
        positives positive (all of them score 1.0), so the tie is broken by specificity. The
        ranking is lexicographic (sensitivity first) as long as any two candidates' mean
        sensitivities differ by more than ``w``, i.e. with fewer than ``1 / w`` positive
        samples over all folds. To choose by best sensitivity then best specificity
        exactly, pass :func:`sensitivity_then_specificity` as ``refit`` instead.
    zero_division : float in [0, 1], nan or "warn", default=0.0
        Value of sensitivity/specificity/PPV/NPV on folds where they are undefined.

    Returns
    -------
    scorers : dict of str -> scorer
        ``sensitivity, specificity, ppv, npv, f1, accuracy, balanced_accuracy, roc_auc,
        sensitivity_first, tn, fp, fn, tp``. The counts are not scores to maximise; use
        them in ``cross_validate(scoring=...)`` to collect confusion matrices (with
        ``refit=`` set to another key in a grid search).

    Examples
    --------
    >>> sorted(make_clinical_scorers())[:4]
    ['accuracy', 'balanced_accuracy', 'f1', 'fn']
    """
    kw = {"pos_label": pos_label}
    zd = {**kw, "zero_division": zero_division}
    scorers = {
        "sensitivity": make_scorer(sensitivity_score, **zd),
        "specificity": make_scorer(specificity_score, **zd),
        "ppv": make_scorer(positive_predictive_value, **zd),
        "npv": make_scorer(negative_predictive_value, **zd),
        "f1": make_scorer(f1_score, **kw, zero_division=0.0 if zero_division == "warn"
                          else zero_division),
        "accuracy": get_scorer("accuracy"),
        "balanced_accuracy": get_scorer("balanced_accuracy"),
        "roc_auc": get_scorer("roc_auc"),
        "sensitivity_first": make_scorer(_sensitivity_first, **kw, weight=tie_break_weight),
    }
    for which in ("tn", "fp", "fn", "tp"):
        scorers[which] = make_scorer(_count, which=which, **kw)
    return scorers


class ClinicalScorer:
    """Every value of :func:`make_clinical_scorers` from one call: a faster ``scoring=``.

    ``GridSearchCV(scoring=make_clinical_scorers())`` validates its inputs once per metric (13
    per fold and candidate), which took about a third of a grid search's time. This callable
    counts the confusion matrix once and derives the same numbers from it with the same
    floating-point operations as scikit-learn's and skcalc's metric functions; only ROC AUC
    calls scikit-learn. When the fold has other than 0/1-style binary labels, both classes
    absent from ``y_true``, or a zero denominator, it falls back to the 13 scorers. The
    results, and so ``cv_results_``, are identical (tested).

    Parameters
    ----------
    pos_label, tie_break_weight, zero_division
        As :func:`make_clinical_scorers`.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skcalc.metrics import ClinicalScorer
    >>> X = np.arange(8.0)[:, None]; y = np.array([0, 0, 0, 1, 0, 1, 1, 1])
    >>> scores = ClinicalScorer()(LogisticRegression().fit(X, y), X, y)
    >>> scores["sensitivity"], scores["specificity"], scores["tp"]
    (0.75, 0.75, 3)
    """

    def __init__(self, *, pos_label=1, tie_break_weight=1e-3, zero_division=0.0) -> None:
        self.pos_label = pos_label
        self.tie_break_weight = tie_break_weight
        self.zero_division = zero_division

    def _scorers(self) -> dict:
        return make_clinical_scorers(pos_label=self.pos_label,
                                     tie_break_weight=self.tie_break_weight,
                                     zero_division=self.zero_division)

    def __call__(self, estimator, X, y_true) -> dict:
        y_true = np.asarray(y_true)
        # skcalc's pipelines and ThresholdedClassifier give predict and the ROC AUC score
        # from one pass (the same values as the separate calls).
        both = getattr(estimator, "_predict_and_score", None)
        pair = both(X) if both is not None else None
        y_pred = np.asarray(pair[0] if pair is not None else estimator.predict(X))
        zd = self.zero_division
        fast = (
            y_true.ndim == 1 and y_pred.shape == y_true.shape
            and y_true.dtype.kind in "biu" and y_pred.dtype.kind in "biu"
            and set(np.unique(y_true).tolist()) == {0, 1} and self.pos_label == 1
            and set(np.unique(y_pred).tolist()) <= {0, 1}
            and not isinstance(zd, str)
        )
        if not fast:
            return {name: scorer(estimator, X, y_true)
                    for name, scorer in self._scorers().items()}
        c = _counts(y_true == 1, y_pred == 1)
        tn, fp, fn, tp = c["tn"], c["fp"], c["fn"], c["tp"]
        # roc_auc's scorer: decision_function, else the positive column of predict_proba
        if pair is not None:
            y_score = pair[1]
        elif getattr(estimator, "decision_function", None) is not None:
            y_score = estimator.decision_function(X)
        else:
            y_score = estimator.predict_proba(X)[:, -1]
        sens = _ratio(tp, tp + fn, zd, "Sensitivity")
        spec = _ratio(tn, tn + fp, zd, "Specificity")
        f1_den = (tp + fn) + (tp + fp)
        out = {
            "sensitivity": sens,
            "specificity": spec,
            "ppv": _ratio(tp, tp + fp, zd, "PPV"),
            "npv": _ratio(tn, tn + fn, zd, "NPV"),
            # scikit-learn's F-beta: (1 + b^2) tp / (b^2 (tp + fn) + (tp + fp))
            "f1": float(2 * tp / f1_den) if f1_den else float(zd),
            "accuracy": float(np.mean((y_true == y_pred).astype(np.float64))),
            # scikit-learn: mean over classes of diag(C) / C.sum(axis=1)
            "balanced_accuracy": float(np.mean(np.array([tn, tp]) / np.array([tn + fp, tp + fn]))),
            "roc_auc": _memoised_roc_auc(y_true, y_score),
            "sensitivity_first": _ratio(tp, tp + fn, 0.0, "Sensitivity")
            + self.tie_break_weight * _ratio(tn, tn + fp, 0.0, "Specificity"),
            **c,
        }
        return {name: out[name] for name in _SCORER_NAMES}


_AUC_MEMO = LRUCache(max_items=1024)


def _roc_auc(y_true: np.ndarray, y_score: np.ndarray) -> float:
    """scikit-learn's ``roc_auc_score`` without its input checks when they cannot matter.

    For 1-D labels that are exactly {0, 1} (or {False, True}) and 1-D numeric scores,
    ``roc_auc_score`` binarises the labels to themselves and returns
    ``auc(*roc_curve(y_true, y_score)[:2])``: that is computed directly (the same
    floating-point operations, so the same value; tested). Anything else goes to
    ``roc_auc_score``, with its checks, errors and warnings.
    """
    from sklearn.metrics import auc, roc_auc_score, roc_curve

    if (
        y_true.ndim == 1 and y_score.ndim == 1 and y_true.shape == y_score.shape
        and y_true.dtype.kind in "biu" and y_score.dtype.kind in "biuf"
        and set(np.unique(y_true).tolist()) == {0, 1}
    ):
        fpr, tpr, _ = roc_curve(y_true, y_score)
        return float(auc(fpr, tpr))
    return float(roc_auc_score(y_true, y_score))


def _memoised_roc_auc(y_true: np.ndarray, y_score) -> float:
    """scikit-learn's ``roc_auc_score`` (see :func:`_roc_auc`), remembered for the same
    labels and scores: the candidates of a grid search that differ only in the decision
    threshold score the same classifier on the same fold (key: SHA-1 of both arrays'
    dtype, shape and bytes)."""
    from sklearn.metrics import roc_auc_score

    y_score = np.asarray(y_score)
    if y_true.dtype == object or y_score.dtype == object:
        return float(roc_auc_score(y_true, y_score))
    key = array_digest(y_true) + array_digest(y_score)
    found, value = _AUC_MEMO.get(key)
    if not found:
        value = _roc_auc(y_true, y_score)
        _AUC_MEMO.put(key, value)
    return value


def _spared(t_pos: np.ndarray, scores: np.ndarray, sensitivity: float) -> dict:
    """Operating point at the highest threshold keeping sensitivity >= target."""
    pos = scores[t_pos]
    neg = scores[~t_pos]
    n_pos, n_neg, n = len(pos), len(neg), len(scores)
    if n_pos == 0 or n_neg == 0:
        return {"sensitivity_target": float(sensitivity), "threshold": None, "n_spared": None,
                "benign_fraction": None, "all_fraction": None}
    # The m-th highest positive score is the highest threshold (score >= t is positive)
    # that still calls m positives positive; a tiny slack absorbs 0.95 * 20 = 18.999...
    m = max(1, math.ceil(sensitivity * n_pos - 1e-9))
    thr = float(np.sort(pos)[::-1][m - 1])
    n_spared = int(np.sum(neg < thr))
    return {
        "sensitivity_target": float(sensitivity),
        "threshold": thr,
        "n_spared": n_spared,
        "benign_fraction": n_spared / n_neg,
        "all_fraction": n_spared / n,
    }


@validate_params(
    {
        "y_true": ["array-like"],
        "y_score": ["array-like"],
        "sensitivity": [Interval(Real, 0, 1, closed="right")],
        "pos_label": [Real, str, "boolean"],
        "normalize": [StrOptions({"benign", "all"})],
        "return_threshold": ["boolean"],
    },
    prefer_skip_nested_validation=True,
)
def spared_biopsy_fraction(
    y_true, y_score, *, sensitivity=1.0, pos_label=1, normalize="benign", return_threshold=False
):
    """Share of benign ROIs spared biopsy at a fixed sensitivity (the paper's headline).

    The threshold is the highest one that keeps sensitivity >= ``sensitivity`` (an ROI is
    called actionable iff its score is ``>= threshold``); the benign ROIs scoring below it
    would be spared biopsy without missing more actionable ROIs than allowed.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
    y_score : array-like of shape (n_samples,)
        Score of the actionable class (e.g. ``predict_proba(X)[:, 1]``).
    sensitivity : float in (0, 1], default=1.0
        Sensitivity to keep.
    pos_label : int, float, bool or str, default=1
    normalize : {"benign", "all"}, default="benign"
        Divide the number of spared benign ROIs by the number of benign ROIs (a
        specificity), or by all ROIs (the share of biopsies avoided; the paper's
        "15 of 60 images = 25 %").
    return_threshold : bool, default=False
        Also return the threshold.

    Returns
    -------
    fraction : float
        NaN when ``y_true`` has a single class.
    threshold : float
        Only when ``return_threshold=True``.

    Examples
    --------
    >>> y = [0, 0, 0, 0, 1, 1]
    >>> s = [0.1, 0.2, 0.5, 0.9, 0.4, 0.8]
    >>> spared_biopsy_fraction(y, s)
    0.5
    >>> spared_biopsy_fraction(y, s, normalize="all", return_threshold=True)
    (0.333..., 0.4)
    """
    y_true = column_or_1d(y_true)
    y_score = column_or_1d(y_score).astype(np.float64)
    check_consistent_length(y_true, y_score)
    res = _spared(y_true == pos_label, y_score, sensitivity)
    frac = res["benign_fraction" if normalize == "benign" else "all_fraction"]
    frac = float("nan") if frac is None else float(frac)
    if return_threshold:
        return frac, (float("nan") if res["threshold"] is None else res["threshold"])
    return frac


# --------------------------------------------------------------------------- report
def _weighted_auc(W: np.ndarray, t_pos: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """ROC AUC of every row of sample weights ``W`` (B, n); NaN without both classes.

    AUC = P(score_pos > score_neg) + P(tie) / 2 under the weights, computed on the distinct
    score values (sorted once for all resamples).
    """
    uniq, inv = np.unique(scores, return_inverse=True)
    U = len(uniq)
    onehot = np.zeros((len(scores), U))
    onehot[np.arange(len(scores)), inv] = 1.0
    P = (W * t_pos) @ onehot  # (B, U) positive weight at each score value
    N = (W * ~t_pos) @ onehot
    below = np.cumsum(N, axis=1) - N
    num = np.sum(P * (below + 0.5 * N), axis=1)
    den = P.sum(axis=1) * N.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def _metrics_from_counts(tn, fp, fn, tp) -> dict[str, np.ndarray]:
    tn, fp, fn, tp = (np.asarray(v, dtype=np.float64) for v in (tn, fp, fn, tp))

    def div(a, b):
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(b > 0, a / np.where(b > 0, b, 1.0), np.nan)

    return {
        "sensitivity": div(tp, tp + fn),
        "specificity": div(tn, tn + fp),
        "ppv": div(tp, tp + fp),
        "npv": div(tn, tn + fn),
        "f1": div(2 * tp, 2 * tp + fp + fn),
        "accuracy": div(tp + tn, tn + fp + fn + tp),
        "balanced_accuracy": 0.5 * (div(tp, tp + fn) + div(tn, tn + fp)),
    }


def _num(x):
    x = float(x)
    return None if not math.isfinite(x) else x


class ClinicalReport(dict):
    """The dict returned by :func:`clinical_report`, with ``to_dict`` and ``to_frame``.

    It is a plain ``dict`` subclass of JSON-serialisable values (``json.dumps`` works).
    """

    def to_dict(self) -> dict:
        """A plain-dict copy."""
        import copy

        return copy.deepcopy(dict(self))

    def to_frame(self):
        """The metrics as a pandas DataFrame (rows: metric; columns: value, ci_low, ci_high)."""
        import pandas as pd

        rows = {k: v for k, v in self["metrics"].items()}
        return pd.DataFrame.from_dict(rows, orient="index", columns=["value", "ci_low", "ci_high"])


@validate_params(
    {
        "y_true": ["array-like"],
        "y_score": ["array-like"],
        "threshold": [Real],
        "groups": ["array-like", None],
        "n_bootstrap": [Interval(Integral, 0, None, closed="left")],
        "confidence": [Interval(Real, 0, 1, closed="neither")],
        "random_state": ["random_state"],
        "pos_label": [Real, str, "boolean"],
    },
    prefer_skip_nested_validation=True,
)
def clinical_report(
    y_true,
    y_score,
    threshold=0.4,
    *,
    groups=None,
    n_bootstrap=1000,
    confidence=0.95,
    random_state=None,
    pos_label=1,
) -> ClinicalReport:
    """Test-set report of the paper's metrics with bootstrap percentile intervals.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels (``pos_label`` = actionable, anything else = benign).
    y_score : array-like of shape (n_samples,)
        Score of the actionable class; an ROI is predicted actionable iff
        ``y_score >= threshold``.
    threshold : float, default=0.4
        Operating threshold (paper: 0.4).
    groups : array-like of shape (n_samples,), optional
        Exam (or patient) ids. When given, the bootstrap resamples whole groups with
        replacement (cluster bootstrap): ROIs of one exam are correlated, and resampling
        them independently gives too narrow intervals. Otherwise ROIs are resampled.
    n_bootstrap : int, default=1000
        Number of resamples (0: no intervals).
    confidence : float, default=0.95
        Coverage of the percentile interval.
    random_state : int, RandomState instance or None, default=None
    pos_label : int, float, bool or str, default=1

    Returns
    -------
    report : ClinicalReport (a dict)
        ``metrics``: ``{name: {"value", "ci_low", "ci_high"}}`` for sensitivity,
        specificity, ppv, npv, f1 (of the actionable class), accuracy, balanced_accuracy,
        roc_auc; ``confusion_matrix``: ``{"tn", "fp", "fn", "tp", "matrix"}`` with
        ``matrix = [[tn, fp], [fn, tp]]`` (rows: true benign, actionable);
        ``spared_biopsies``: a list, for sensitivity targets 1.0 and 0.95, of the
        threshold, number of benign ROIs spared, ``benign_fraction`` (share of benign ROIs
        spared) and ``all_fraction`` (share of all ROIs, i.e. of biopsies, avoided);
        ``benign_spared_at_threshold``: TN / n at ``threshold`` (the paper's 15/60);
        ``threshold``, ``n_samples``, ``n_positive``, ``n_bootstrap``, ``confidence``,
        ``bootstrap_unit`` ("group" or "sample"), ``n_units``.

    Notes
    -----
    A metric undefined on a resample (e.g. sensitivity or ROC AUC of a resample with no
    actionable ROI) is skipped for that resample; the interval comes from the remaining
    resamples, and an interval is None when no resample defines it. Undefined point values
    are None too, so the report is JSON-serialisable.

    Examples
    --------
    >>> r = clinical_report([0, 0, 1, 1], [0.1, 0.5, 0.45, 0.9], n_bootstrap=0)
    >>> r["metrics"]["sensitivity"]["value"], r["confusion_matrix"]["matrix"]
    (1.0, [[1, 1], [0, 2]])
    """
    y_true = column_or_1d(y_true)
    y_score = column_or_1d(y_score).astype(np.float64)
    check_consistent_length(y_true, y_score)
    if not np.all(np.isfinite(y_score)):
        raise ValueError("y_score contains NaN or infinite values")
    if len(np.unique(y_true)) > 2:
        raise ValueError("clinical_report is binary; y_true has more than two labels")
    t_pos = y_true == pos_label
    p_pos = y_score >= threshold
    n = len(y_true)

    def counts(W):
        return (W @ (~t_pos & ~p_pos), W @ (~t_pos & p_pos), W @ (t_pos & ~p_pos),
                W @ (t_pos & p_pos))

    ones = np.ones((1, n))
    point = _metrics_from_counts(*counts(ones))
    point["roc_auc"] = _weighted_auc(ones, t_pos, y_score)

    if groups is not None:
        groups = column_or_1d(groups)
        check_consistent_length(y_true, groups)
        _, unit = np.unique(groups, return_inverse=True)
        unit_name = "group"
    else:
        unit = np.arange(n)
        unit_name = "sample"
    n_units = int(unit.max()) + 1 if n else 0

    alpha = (1.0 - confidence) / 2.0
    intervals = {k: (None, None) for k in point}
    if n_bootstrap > 0 and n > 0:
        rng = check_random_state(random_state)
        # Resampling units with replacement = multinomial counts per unit; a sample's
        # weight is its unit's count, so all resamples are evaluated as matrix products.
        Wu = rng.multinomial(n_units, np.full(n_units, 1.0 / n_units), size=n_bootstrap)
        W = Wu[:, unit].astype(np.float64)
        boot = _metrics_from_counts(*counts(W))
        boot["roc_auc"] = _weighted_auc(W, t_pos, y_score)
        for k, vals in boot.items():
            vals = vals[np.isfinite(vals)]
            if len(vals):
                lo, hi = np.percentile(vals, [100 * alpha, 100 * (1 - alpha)])
                intervals[k] = (float(lo), float(hi))

    c = confusion_counts(t_pos.astype(int), p_pos.astype(int), pos_label=1)
    report = ClinicalReport(
        metrics={
            k: {"value": _num(point[k][0]), "ci_low": intervals[k][0],
                "ci_high": intervals[k][1]}
            for k in ("sensitivity", "specificity", "ppv", "npv", "f1", "accuracy",
                      "balanced_accuracy", "roc_auc")
        },
        confusion_matrix={**c, "matrix": [[c["tn"], c["fp"]], [c["fn"], c["tp"]]]},
        spared_biopsies=[_spared(t_pos, y_score, s) for s in (1.0, 0.95)],
        benign_spared_at_threshold=(c["tn"] / n) if n else None,
        threshold=float(threshold),
        n_samples=int(n),
        n_positive=int(t_pos.sum()),
        n_bootstrap=int(n_bootstrap),
        confidence=float(confidence),
        bootstrap_unit=unit_name,
        n_units=n_units,
    )
    return report

