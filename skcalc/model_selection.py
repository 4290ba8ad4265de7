"""The paper's evaluation protocol: exam-level split, grouped grid search, nested CV.

Marathe et al. split exams 75/25, tuned K, the decision threshold and LightGBM by a
5-fold grid search on the training exams for the best sensitivity, refit, and reported the
held-out metrics; nested CV re-ran the analysis on the remaining three stratified splits
(4 outer x 5 inner). Exams (``groups``) never straddle a split: they reach the splitters
through scikit-learn's metadata routing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn import config_context
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold, cross_validate
from sklearn.utils import check_random_state

from .io import jsonable
from .metrics import (
    ClinicalScorer,
    clinical_report,
    make_clinical_scorers,
    sensitivity_then_specificity,
)
from .utils._base import memoised_param_names

__all__ = [
    "ProtocolResult",
    "check_classes_per_fold",
    "check_nested_folds",
    "evaluate_protocol",
    "grid_search",
    "grouped_train_test_split",
    "nested_cross_validate",
    "paper_exclusions",
]

# Metrics reported per outer fold of the nested CV (threshold-dependent ones use the
# refitted pipeline's own threshold).
NESTED_METRICS = ("roc_auc", "sensitivity", "specificity", "ppv", "npv", "f1", "accuracy")


def grouped_train_test_split(
    y: Sequence, groups: Sequence, *, test_size: float = 0.25, random_state: Any = None
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of an exam-level, class-stratified train/test split.

    The split is the first fold of ``StratifiedGroupKFold(round(1 / test_size))``: no exam
    appears on both sides, and the class balance of both sides follows the whole set's.

    Examples
    --------
    >>> import numpy as np
    >>> y = np.repeat([0, 1, 0, 1, 0, 0, 1, 0, 1, 0], 2)  # 4 of 10 exams actionable
    >>> groups = np.repeat(np.arange(10), 2)
    >>> train, test = grouped_train_test_split(y, groups, test_size=0.25, random_state=0)
    >>> len(train) + len(test) == len(y), set(groups[train]) & set(groups[test])
    (True, set())
    >>> grouped_train_test_split(y, groups, test_size=0.4)
    Traceback (most recent call last):
    ...
    ValueError: test_size=0.4 is not 1/k ...
    """
    valid = 0 < test_size < 1
    n_splits = max(2, int(round(1.0 / test_size))) if valid else 2
    if not valid or abs(1.0 / n_splits - test_size) > 0.05:
        # the held-out part is one fold of a k-fold exam split: only 1/k can be held out
        raise ValueError(
            f"test_size={test_size:g} is not 1/k for a whole number k >= 2 (the held-out "
            "exams are one fold of a k-fold exam-level split, so 1/2, 1/3, 1/4, 1/5 ... "
            f"within 0.05); the nearest would hold out {1.0 / n_splits:.2f}")
    check_classes_per_fold(y, groups, n_splits, "the held-out split")
    cv = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=random_state)
    y = np.asarray(y)
    train, test = next(cv.split(np.zeros((len(y), 1)), y, np.asarray(groups)))
    return train, test


def check_classes_per_fold(
    y: Sequence,
    groups: Sequence,
    n_splits: int,
    what: str = "split",
    *,
    hint: str = "fewer folds, or more exams",
) -> None:
    """Refuse a grouped, stratified ``n_splits``-fold split with a fold lacking a class.

    Every fold can hold both classes only when each class spans at least ``n_splits``
    exams; otherwise some folds have no actionable (or no benign) ROI, their sensitivity
    or AUC is undefined, and a grid search would choose on the rest without saying so.
    :func:`grouped_train_test_split` and :func:`grid_search` call it; call it yourself to
    check a cohort before the image stages run.

    Parameters
    ----------
    y : array-like of shape (n_rois,)
        Labels (1 actionable, 0 benign).
    groups : array-like of shape (n_rois,)
        Exam ids.
    n_splits : int
    what : str, default="split"
        Names the data in the error (a file, a step).
    hint : str, default="fewer folds, or more exams"
        What to do about it, ending the error.

    Raises
    ------
    ValueError
        Naming the class, its number of exams and ``n_splits``.

    Examples
    --------
    >>> check_classes_per_fold([0, 1, 0, 1], ["a", "b", "c", "d"], 2)
    >>> check_classes_per_fold([0, 1, 0, 1], ["a", "b", "c", "d"], 3, "m.csv")
    Traceback (most recent call last):
    ...
    ValueError: m.csv: 2 exam(s) with an actionable ROI for 3 grouped folds; ...
    """
    y, groups = np.asarray(y), np.asarray(groups)
    for label, name in ((1, "an actionable"), (0, "a benign")):
        n = len(np.unique(groups[y == label]))
        if n < n_splits:
            raise ValueError(
                f"{what}: {n} exam(s) with {name} ROI for {n_splits} grouped folds; every "
                f"fold needs both classes, so at least {n_splits} are needed ({hint})")


def _take(seq: Sequence, idx: np.ndarray) -> list:
    return [seq[i] for i in idx]


def _grouped_folds(n_splits: int, random_state: Any) -> StratifiedGroupKFold:
    """The protocol's splitter: grouped by exam, stratified, shuffled."""
    return StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=random_state)


def _paper_search(pipeline, param_grid, n_splits, refit, random_state, n_jobs, verbose, error):
    """GridSearchCV with the clinical scorers and grouped, stratified, shuffled folds."""
    return GridSearchCV(
        pipeline,
        param_grid,
        scoring=ClinicalScorer(),
        refit=refit,
        cv=_grouped_folds(n_splits, random_state),
        n_jobs=n_jobs,
        verbose=verbose,
        error_score=error,
    )


def grid_search(
    pipeline: Any,
    rois: Sequence,
    y: Sequence,
    groups: Sequence,
    param_grid: dict | list,
    *,
    cv: int = 5,
    refit: str | Callable = sensitivity_then_specificity,
    n_jobs: int | None = None,
    random_state: Any = None,
    verbose: int = 0,
    error_score: Any = "raise",
) -> GridSearchCV:
    """Grouped, stratified grid search scored sensitivity-first, then refit on all data.

    The default ``refit`` (:func:`skcalc.metrics.sensitivity_then_specificity`) picks the
    candidate with the best mean cross-validated sensitivity and, among those, the best
    specificity, as the paper tuned "to obtain the best possible sensitivity" (a callable
    ``refit`` leaves ``best_score_`` unset). A scorer name (e.g. ``"sensitivity_first"``,
    sensitivity + 1e-3 * specificity) works too. Every scorer of
    ``make_clinical_scorers`` is recorded in ``cv_results_``.

    ``error_score="raise"`` (default): a fit that fails here is bad input (an ROI the feature
    budget refuses, an unreadable image) and stops the search with its own message, naming
    the ROI; ``np.nan`` scores such candidates NaN and goes on, as scikit-learn does (a
    search where every candidate failed then has nothing to choose from).
    """
    if isinstance(cv, int | np.integer):
        check_classes_per_fold(y, groups, int(cv), f"grid search ({len(y)} ROIs)")
    search = _paper_search(
        pipeline, param_grid, cv, refit, random_state, n_jobs, verbose, error_score
    )
    # clone and get_params read every estimator's parameter names once (this process)
    with config_context(enable_metadata_routing=True), memoised_param_names():
        search.fit(list(rois), np.asarray(y), groups=np.asarray(groups))
    return search


def _nested_seed(random_state: Any) -> Any:
    """Seed of the nested CV's splitters: ``random_state`` if an int, else an int drawn from it.

    With ``None`` or a ``RandomState`` every inner search would draw its folds afresh when
    it fits (``None`` from the global generator, which the fits draw from too), so no check
    made before fitting could see the folds actually used; one seed fixes them, the check
    reads them and the searches use them.
    """
    if isinstance(random_state, int | np.integer):
        return random_state
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


def _check_nested_folds(
    y: np.ndarray,
    groups: np.ndarray,
    outer: StratifiedGroupKFold,
    inner: StratifiedGroupKFold,
    *,
    hint: str = "lower n_inner or n_outer, the CLI's --cv or --n-outer, or add exams",
) -> None:
    """Refuse a nested CV with an outer test fold, or an inner grid-search fold, lacking a class.

    Splits as the nested CV will, with its own splitters (fixed seeds): ``outer`` on ``y``
    and ``groups``, then ``inner`` on each outer training part's labels and exam ids, what
    ``cross_validate`` routes to the inner search. Reads labels and exam ids only.
    """
    names = {1: "actionable", 0: "benign"}
    n_inner, n_outer = inner.get_n_splits(), outer.get_n_splits()
    for k, (train, test) in enumerate(outer.split(np.zeros((len(y), 1)), y, groups)):
        absent = [c for c in names if not np.any(y[test] == c)]
        if absent:
            c = absent[0]
            n_exams = len(np.unique(groups[y == c]))
            metric = "sensitivity" if c == 1 else "specificity"
            fix = hint if n_exams < n_outer else f"{hint}, or another random_state"
            raise ValueError(
                f"nested CV ({len(y)} ROIs): outer fold {k} of {n_outer} (counted from 0) "
                f"would test on no {names[c]} ROI ({n_exams} exam(s) in all have one, for "
                f"{n_outer} grouped outer folds): its {metric} and ROC AUC would be "
                f"undefined, and the nested CV's means would silently leave that fold out "
                f"({fix})")
        y_tr, g_tr = y[train], groups[train]
        counts = {c: (len(np.unique(g_tr[y_tr == c])), int((y_tr == c).sum())) for c in names}
        few = [c for c in names if counts[c][0] < n_inner]
        if few:
            # too few exams of a class to reach every inner fold, whatever the shuffle (the
            # inner splitter may even refuse): no need to say which fold goes without
            lacking, where = few[0], (
                f"some of the {n_inner} grouped inner folds of its grid search would have no "
                f"{names[few[0]]} ROI (each inner fold needs both classes: at least {n_inner} "
                "exams of each)")
            fix = hint
        else:
            # both classes in every inner test fold leave both in every inner training part
            found = next(
                ((j, c) for j, (_, test) in enumerate(
                    inner.split(np.zeros((len(y_tr), 1)), y_tr, g_tr))
                 for c in names if not np.any(y_tr[test] == c)),
                None,
            )  # fmt: skip
            if found is None:
                continue
            j, lacking = found
            where = (
                f"inner fold {j} of the {n_inner} grouped inner folds of its grid search "
                f"(random_state={inner.random_state}) would have no {names[lacking]} ROI")
            # enough exams of each class: another shuffle may well spread them
            fix = f"{hint}, or another random_state"
        metric = "sensitivity" if lacking == 1 else "specificity"
        raise ValueError(
            f"nested CV ({len(y)} ROIs): outer fold {k} of {n_outer} (counted from "
            f"0) trains on {counts[1][0]} exam(s) ({counts[1][1]} ROIs) with an actionable ROI "
            f"and {counts[0][0]} exam(s) ({counts[0][1]} ROIs) with a benign ROI: {where}; "
            f"on such a fold {metric} is undefined, scored 0 for every candidate, and ROC "
            f"AUC NaN, so the grid search would choose on scores that measure nothing there "
            f"({fix})")


def check_nested_folds(
    y: Sequence,
    groups: Sequence,
    n_outer: int,
    n_inner: int,
    random_state: int | None,
    *,
    hint: str = "lower n_inner or n_outer, the CLI's --cv or --n-outer, or add exams",
) -> None:
    """Refuse a grouped nested CV whose outer test folds or inner search folds lack a class.

    Makes the folds :func:`nested_cross_validate` makes with an integer ``random_state``
    (grouped by exam, stratified, shuffled; each inner split on an outer training part) and
    refuses the first outer test fold, or inner grid-search fold, without an actionable or
    a benign ROI: its sensitivity or specificity would be undefined and its ROC AUC NaN. A
    count of exams per class (:func:`check_classes_per_fold`) cannot see this: the shuffle
    decides it. Reads labels and exam ids only, so call it before the image stages run.

    Parameters
    ----------
    y : array-like of shape (n_rois,)
        Labels (1 actionable, 0 benign).
    groups : array-like of shape (n_rois,)
        Exam ids.
    n_outer, n_inner : int
        Numbers of outer folds and of the inner grid search's folds.
    random_state : int or None
        Seed of both splitters (``None``: folds drawn afresh, which the run will not reuse).
    hint : str
        What to do about it, ending the error.

    Raises
    ------
    ValueError
        Naming the outer fold (counted from 0), the class it lacks and its exams per class.

    Examples
    --------
    >>> y = [1, 0] * 6
    >>> groups = [f"e{i}" for i in range(12)]
    >>> check_nested_folds(y, groups, n_outer=3, n_inner=2, random_state=0)
    >>> check_nested_folds(y[:6], groups[:6], n_outer=3, n_inner=3, random_state=0)
    Traceback (most recent call last):
    ...
    ValueError: nested CV (6 ROIs): outer fold 0 of 3 (counted from 0) trains on 2 exam(s) ...
    """
    _check_nested_folds(
        np.asarray(y), np.asarray(groups), _grouped_folds(n_outer, random_state),
        _grouped_folds(n_inner, random_state), hint=hint,
    )


def nested_cross_validate(
    pipeline: Any,
    rois: Sequence,
    y: Sequence,
    groups: Sequence,
    param_grid: dict | list,
    *,
    n_outer: int = 4,
    n_inner: int = 5,
    refit: str | Callable = sensitivity_then_specificity,
    n_jobs: int | None = None,
    random_state: Any = None,
    verbose: int = 0,
) -> dict[str, Any]:
    """Nested CV: ``n_outer`` grouped stratified outer folds around an inner grid search.

    Each outer training part is tuned by a grouped, stratified ``n_inner``-fold grid search
    as in :func:`grid_search` (clinical scorers, ``refit``), then scored on its outer test
    fold. Before any fit, the outer folds and each outer training part's inner folds are
    made exactly as the run will make them, and every outer test fold and every inner fold
    must hold both classes.
    An inner fit that fails nonetheless scores NaN (``error_score=np.nan``): that candidate
    loses instead of stopping the run.

    Parameters
    ----------
    pipeline : estimator
    rois : sequence of ROI
    y : array-like of shape (n_rois,)
        Labels (1 actionable, 0 benign).
    groups : array-like of shape (n_rois,)
        Exam ids: an exam never straddles an outer or an inner fold.
    param_grid : dict or list of dict
    n_outer : int, default=4
    n_inner : int, default=5
    refit : str or callable, default=sensitivity_then_specificity
    n_jobs : int or None, default=None
        Outer folds run in parallel.
    random_state : int, RandomState instance or None, default=None
        Shuffles the outer and the inner folds (the same int for both). ``None`` or a
        ``RandomState`` gives one int drawn from it, so the folds checked are the folds used.
    verbose : int, default=0

    Returns
    -------
    dict
        ``n_outer``, ``n_inner``; per metric of ``NESTED_METRICS`` the outer test folds'
        scores (``folds``) with their NaN-ignoring ``mean`` and ``std``; ``best_params``
        and ``fit_time`` per outer fold.

    Raises
    ------
    ValueError
        When an outer test fold, or a fold of the inner grid search of an outer training
        part, would have no actionable or no benign ROI (its sensitivity or specificity,
        and ROC AUC, undefined): naming the outer fold (from 0), the exams and ROIs of each
        class it trains on, the inner fold when the counts alone do not show it, and what
        to lower.
    """
    random_state = _nested_seed(random_state)
    y, groups = np.asarray(y), np.asarray(groups)
    inner = _paper_search(pipeline, param_grid, n_inner, refit, random_state, None, 0, np.nan)
    outer = _grouped_folds(n_outer, random_state)
    _check_nested_folds(y, groups, outer, inner.cv)
    scorers = make_clinical_scorers()
    with config_context(enable_metadata_routing=True), memoised_param_names():
        res = cross_validate(
            inner,
            list(rois),
            y,
            cv=outer,
            scoring={m: scorers[m] for m in NESTED_METRICS},
            params={"groups": groups},
            return_estimator=True,
            n_jobs=n_jobs,
            verbose=verbose,
        )
    out: dict[str, Any] = {"n_outer": n_outer, "n_inner": n_inner}
    for m in NESTED_METRICS:
        vals = np.asarray(res[f"test_{m}"], dtype=float)
        out[m] = {
            "folds": vals.tolist(),
            "mean": float(np.nanmean(vals)),
            "std": float(np.nanstd(vals)),
        }
    out["best_params"] = [jsonable(est.best_params_) for est in res["estimator"]]
    out["fit_time"] = [float(t) for t in res["fit_time"]]
    return out


@dataclass
class ProtocolResult:
    """What :func:`evaluate_protocol` measured.

    Attributes
    ----------
    best_params : dict
        Grid-search winner.
    report : dict
        :func:`skcalc.metrics.clinical_report` on the held-out exams.
    y_test, y_score, test_index : ndarray
        Held-out labels, predicted probabilities of "actionable" and their positions.
    threshold : float
        Decision threshold of the refitted model.
    search : GridSearchCV
        The fitted search (its ``best_estimator_`` is the refitted pipeline).
    nested : dict or None
        :func:`nested_cross_validate` output when asked for.
    timings : dict
        Wall times in seconds.
    split : dict or None
        The paper's Table 1: per side (``train``/``test``) and class, the number of samples
        (images with ``unit="image"``), their ROIs and exams.
    exclusions : dict or None
        What :func:`paper_exclusions` dropped before the split (None when off): ``rule``,
        ``min_objects``, ``n_input``, ``n_excluded``, ``excluded_per_class`` (label ->
        count), ``excluded_roi_ids``.
    """

    best_params: dict
    report: dict
    y_test: np.ndarray
    y_score: np.ndarray
    test_index: np.ndarray
    threshold: float
    search: Any = None
    nested: dict | None = None
    timings: dict = field(default_factory=dict)
    exclusions: dict | None = None
    split: dict | None = None

    def to_frame(self):
        """Tidy pandas table: one row per (evaluation, metric) with value and interval.

        ``evaluation`` is ``"held-out"`` (value with its bootstrap interval) or
        ``"nested-cv"`` (mean, with mean - std and mean + std as the interval columns).
        """
        import pandas as pd

        rows = []
        for name, m in self.report["metrics"].items():
            rows.append(
                {
                    "evaluation": "held-out",
                    "metric": name,
                    "value": m["value"],
                    "ci_low": m["ci_low"],
                    "ci_high": m["ci_high"],
                }
            )
        if self.nested:
            for name in NESTED_METRICS:
                m = self.nested[name]
                rows.append(
                    {
                        "evaluation": "nested-cv",
                        "metric": name,
                        "value": m["mean"],
                        "ci_low": m["mean"] - m["std"],
                        "ci_high": m["mean"] + m["std"],
                    }
                )
        return pd.DataFrame(rows, columns=["evaluation", "metric", "value", "ci_low", "ci_high"])

    def to_dict(self) -> dict:
        """JSON-serialisable summary (no estimator)."""
        return jsonable(
            {
                "best_params": self.best_params,
                "threshold": self.threshold,
                "held_out": self.report,
                "n_test": int(len(self.y_test)),
                "y_test": self.y_test,
                "y_score": self.y_score,
                "nested_cv": self.nested,
                "exclusions": self.exclusions,
                "split": self.split,
                "timings_s": self.timings,
            }
        )


def paper_exclusions(
    pipeline: Any, rois: Sequence, y: Sequence, *, min_objects: int = 2
) -> tuple[np.ndarray, dict]:
    """The paper's exclusions: samples with fewer than ``min_objects`` segmented objects.

    Marathe et al. excluded ROIs overlapping no segmented calcification and images with
    0 or 1 of them (their graph and handcrafted features are undefined). skcalc's sample
    is the ROI: an ROI is excluded when the pipeline's own ``segment`` and ``masks`` steps
    find fewer than ``min_objects`` calcifications in it. Those steps are per-ROI and
    stateless (cached per ROI with the pipeline's ``memory``), so the grid search that
    follows reuses their output.

    Parameters
    ----------
    pipeline : Pipeline
        Has steps named ``segment`` and ``masks`` (:func:`make_calcification_pipeline`),
        or wraps one as ``estimator`` (:class:`skcalc.calibration.CalibratedClassifier`).
    rois : sequence of ROI
    y : array-like of shape (n_rois,)
    min_objects : int, default=2

    Returns
    -------
    keep : ndarray of bool, shape (n_rois,)
    summary : dict
        ``rule``, ``min_objects``, ``n_input``, ``n_excluded``, ``excluded_per_class``
        (label -> count, every label present), ``excluded_roi_ids``.
    """
    steps = dict(getattr(pipeline, "named_steps", {}))
    inner = getattr(pipeline, "estimator", None)  # a wrapper (CalibratedClassifier)
    if not steps and inner is not None:
        steps = dict(getattr(inner, "named_steps", {}))
    if "segment" not in steps or "masks" not in steps:
        raise ValueError(
            "the exclusions need the pipeline's 'segment' and 'masks' steps; pass "
            "exclude=False for a pipeline without them"
        )
    rois = list(rois)
    y = np.asarray(y)
    # Clones keep the steps' parameters, ``memory`` included: the per-ROI cache is shared.
    seg, masks = clone(steps["segment"]), clone(steps["masks"])
    out = masks.fit_transform(seg.fit_transform(rois))
    n_objects = np.array([r.masks.n_objects for r in out])
    keep = n_objects >= min_objects
    labels = [v.item() if isinstance(v, np.generic) else v for v in np.unique(y)]
    summary = {
        "rule": f"ROIs with fewer than {min_objects} segmented calcifications",
        "min_objects": int(min_objects),
        "n_input": int(len(rois)),
        "n_excluded": int((~keep).sum()),
        "excluded_per_class": {str(c): int(((y == c) & ~keep).sum()) for c in labels},
        # The paper names both reasons: no segmented object, and a single one.
        "excluded_per_reason": {
            reason: {str(c): int(((y == c) & sel).sum()) for c in labels}
            for reason, sel in (
                ("no segmented object", n_objects == 0),
                ("fewer than min_objects", (n_objects > 0) & ~keep),
            )
        },
        "excluded_roi_ids": [str(r.roi_id) for r, k in zip(rois, keep) if not k],
    }
    return keep, summary


def evaluate_protocol(
    pipeline: Any,
    rois: Sequence,
    y: Sequence,
    groups: Sequence,
    param_grid: dict | list,
    *,
    test_size: float = 0.25,
    cv: int = 5,
    nested: bool = False,
    n_outer: int = 4,
    refit: str | Callable = sensitivity_then_specificity,
    n_bootstrap: int = 1000,
    n_jobs: int | None = None,
    random_state: Any = 0,
    verbose: int = 0,
    exclude: bool = True,
    unit: str = "roi",
) -> ProtocolResult:
    """Run the paper's protocol on any list of ROIs.

    ``unit="image"`` analyses images as the paper does: the ROIs of each image are pooled
    into one sample first (:func:`skcalc.samples.pool_by_image`; ``test_index`` then indexes
    the pooled images); ``unit="roi"`` classifies each ROI.

    Exclusions (``exclude=True``, the paper's: ROIs with fewer than two segmented
    calcifications, see :func:`paper_exclusions`; what was dropped, per class, is in
    ``ProtocolResult.exclusions``), then an exam-level 75/25 split, grouped 5-fold grid
    search on the training exams (best sensitivity, then specificity), refit, held-out
    clinical report with bootstrap intervals over exams, and optionally nested CV
    (``n_outer`` grouped stratified outer splits) on all kept data. ``test_index`` indexes
    the input ``rois``.

    With ``nested=True`` the nested CV's folds are checked right after the exclusions,
    before anything is fitted (see :func:`nested_cross_validate`, which raises the same
    ``ValueError``); a ``random_state`` that is not an int then gives that check and the
    nested CV one int seed, drawn first.
    """
    rois = list(rois)
    y = np.asarray(y)
    groups = np.asarray(groups)
    if unit not in ("roi", "image"):
        raise ValueError(f"unit must be 'roi' or 'image', got {unit!r}")
    counts_in = {"n_rois": len(rois)}
    n_rois_per = None
    if unit == "image":
        # The paper's sample: all ROIs of one image pooled, actionable if any ROI is.
        from .samples import pool_by_image

        rois, y, groups = pool_by_image(rois, y, groups)
        n_rois_per = np.array([len(r.meta.get("pooled_roi_ids", [r.roi_id])) for r in rois])
    timings: dict[str, float] = {}
    exclusions = None
    kept = np.arange(len(rois))
    if exclude:
        keep, exclusions = paper_exclusions(pipeline, rois, y)
        kept = np.flatnonzero(keep)
    if nested:
        nested_seed = _nested_seed(random_state)
        # refused now rather than after the held-out search has fitted everything
        check_nested_folds(
            y[kept], groups[kept], n_outer, cv, nested_seed,
            hint="lower cv or n_outer, the CLI's --cv or --n-outer, or add exams",
        )  # fmt: skip
    train, test = grouped_train_test_split(
        y[kept], groups[kept], test_size=test_size, random_state=random_state
    )
    train, test = kept[train], kept[test]
    split = _split_table(y, groups, train, test, n_rois_per)
    split.update(unit=unit, **counts_in)
    t0 = time.perf_counter()
    search = grid_search(
        clone(pipeline),
        _take(rois, train),
        y[train],
        groups[train],
        param_grid,
        cv=cv,
        refit=refit,
        n_jobs=n_jobs,
        random_state=random_state,
        verbose=verbose,
    )
    timings["grid_search"] = time.perf_counter() - t0
    model = search.best_estimator_
    t0 = time.perf_counter()
    y_score = model.predict_proba(_take(rois, test))[:, 1]
    timings["predict_test"] = time.perf_counter() - t0
    # A pipeline's last step holds the threshold; a wrapper (calibration) holds its own.
    last = model.steps[-1][1] if hasattr(model, "steps") else model
    threshold = float(getattr(last, "threshold", 0.5))
    report = clinical_report(
        y[test],
        y_score,
        threshold=threshold,
        groups=groups[test],
        n_bootstrap=n_bootstrap,
        random_state=random_state,
    )
    nested_res = None
    if nested:
        t0 = time.perf_counter()
        nested_res = nested_cross_validate(
            clone(pipeline),
            _take(rois, kept),
            y[kept],
            groups[kept],
            param_grid,
            n_outer=n_outer,
            n_inner=cv,
            refit=refit,
            n_jobs=n_jobs,
            random_state=nested_seed,
            verbose=verbose,
        )
        timings["nested_cv"] = time.perf_counter() - t0
    return ProtocolResult(
        best_params=jsonable(search.best_params_),
        report=report,
        y_test=y[test],
        y_score=y_score,
        test_index=test,
        threshold=threshold,
        search=search,
        nested=nested_res,
        timings=timings,
        exclusions=exclusions,
        split=split,
    )


def _split_table(y, groups, train, test, rois_per_sample) -> dict:
    """The paper's Table 1: samples (and ROIs) per class on each side of the split."""
    table = {}
    for side, idx in (("train", train), ("test", test)):
        row = {}
        for label, name in ((0, "benign"), (1, "actionable")):
            sel = idx[y[idx] == label]
            entry = {"samples": int(sel.size), "exams": int(len(set(groups[sel])))}
            if rois_per_sample is not None:
                entry["rois"] = int(rois_per_sample[sel].sum())
            row[name] = entry
        table[side] = row
    return table
