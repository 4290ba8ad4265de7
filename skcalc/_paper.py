"""The paper's comparisons: nested CV of the method, the mean/std baseline and the deep
baselines, Figure 6, the supplementary threshold table, feature importances and the
biopsies avoided.

Marathe et al. report a single exam-level 75/25 split (Tables 1-3, Figure 6) and then
"re-ran [the] entire analysis on the remaining three" stratified splits: a nested CV of
4 outer grouped stratified folds, each with its own 5-fold grid search. Here the held-out
split **is outer fold 0**: :func:`skcalc.model_selection.grouped_train_test_split` is the
first fold of the same ``StratifiedGroupKFold(4, shuffle=True, random_state)``, so the grid
search of the held-out analysis is reused for fold 0 and only folds 1-3 are searched anew.

Every comparison is scored on the same outer folds:

- ``bag of clusters`` (the method) and ``mean/std baseline``: grid search on the outer
  training images, refit, score the outer test images at the refitted threshold;
- ``<arch> fine-tuned``: :class:`skcalc.deep.DeepROIClassifier` (class-weighted
  cross-entropy) at threshold 0.4, no grid (the paper reports the deep baselines at 0.4);
- ``<arch> fine-tuned + LightGBM``: SMOTE + ENN and LightGBM (threshold 0.4) on the
  features of **the same fine-tuned network** (one fine-tuning per outer fold and
  architecture serves both: :class:`skcalc.deep.DeepFeatureExtractor` with
  ``fine_tune=True`` trains exactly the same network from the same seed);
- ``<arch> pretrained + LightGBM``: the same on the features of the network as loaded
  (ImageNet weights when the file is present). Those features learn nothing from the
  labels, so they are computed once for all images and reused by every fold.

When torchvision's ImageNet file is absent (these machines cannot download it), the
networks start from a seeded random initialisation and every label says so: "random-init,
ImageNet weights not found at <path>".
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import StratifiedGroupKFold

from .io import jsonable
from .metrics import confusion_counts, sensitivity_then_specificity
from .model_selection import (
    NESTED_METRICS,
    ProtocolResult,
    check_nested_folds,
    grid_search,
)

__all__ = [
    "DEEP_DEFAULTS",
    "PaperComparison",
    "biopsies_avoided",
    "format_nested_table",
    "format_threshold_table",
    "metrics_at_threshold",
    "outer_folds",
    "run_paper_analysis",
    "run_paper_comparison",
    "threshold_table",
    "write_paper_outputs",
]

#: Deep-baseline settings of the demo and ``evaluate --paper``: a small input and few
#: epochs keep CPU fine-tuning of two networks on 4 outer folds within a few minutes
#: (measured in the demo's report). The paper used full-size crops and many epochs.
DEEP_DEFAULTS: dict[str, Any] = {
    "input_size": 32,
    "epochs": 3,
    "batch_size": 32,
    "lr": 3e-4,
    "n_iter_no_change": 2,
}

_THRESHOLDS = tuple(round(t, 1) for t in np.arange(0.1, 0.91, 0.1))
_NESTED_HINT = "lower cv or n_outer, the CLI's --cv or --n-outer, or add exams"


def outer_folds(
    y: Sequence, groups: Sequence, *, n_outer: int = 4, random_state: Any = 0
) -> list[tuple[np.ndarray, np.ndarray]]:
    """The nested CV's outer folds; fold 0 is :func:`grouped_train_test_split`'s split
    with ``test_size=1 / n_outer`` and the same ``random_state``.

    Examples
    --------
    >>> import numpy as np
    >>> from skcalc.model_selection import grouped_train_test_split
    >>> y = np.array([0, 1] * 12); groups = np.repeat(np.arange(12), 2)
    >>> folds = outer_folds(y, groups, n_outer=4, random_state=0)
    >>> train, test = grouped_train_test_split(y, groups, test_size=0.25, random_state=0)
    >>> len(folds), np.array_equal(folds[0][1], test)
    (4, True)
    """
    cv = StratifiedGroupKFold(n_splits=n_outer, shuffle=True, random_state=random_state)
    y = np.asarray(y)
    return list(cv.split(np.zeros((len(y), 1)), y, np.asarray(groups)))


def metrics_at_threshold(y_true: Sequence, y_score: Sequence, threshold: float) -> dict:
    """ROC AUC and the threshold metrics of :data:`NESTED_METRICS` (None when undefined).

    Examples
    --------
    >>> m = metrics_at_threshold([0, 0, 1, 1], [0.1, 0.6, 0.5, 0.9], 0.5)
    >>> m["sensitivity"], m["specificity"], m["roc_auc"]
    (1.0, 0.5, 0.75)
    """
    from sklearn.metrics import roc_auc_score

    y = np.asarray(y_true).astype(int)
    s = np.asarray(y_score, dtype=float)
    c = confusion_counts(y, (s >= threshold).astype(int))
    tn, fp, fn, tp = c["tn"], c["fp"], c["fn"], c["tp"]

    def div(a, b):
        return a / b if b else None

    sens, ppv = div(tp, tp + fn), div(tp, tp + fp)
    out = {
        "roc_auc": float(roc_auc_score(y, s)) if len(set(y.tolist())) == 2 else None,
        "sensitivity": sens,
        "specificity": div(tn, tn + fp),
        "ppv": ppv,
        "npv": div(tn, tn + fn),
        "f1": div(2 * tp, 2 * tp + fp + fn),
        "accuracy": div(tp + tn, len(y)),
    }
    out.update(tp=tp, fp=fp, fn=fn, tn=tn)
    return out


def biopsies_avoided(y_true: Sequence, y_score: Sequence, threshold: float) -> dict:
    """Benign samples classified benign with no false negative (the paper's 15/60 images).

    At ``threshold``: when no actionable sample is called benign, the benign samples called
    benign are biopsies avoided; with a false negative the rule misses a cancer, and
    ``at_threshold`` is None. ``best``: the largest such number over all thresholds (just
    below the lowest actionable score), with its threshold.

    Examples
    --------
    >>> r = biopsies_avoided([0, 0, 0, 1, 1], [0.1, 0.2, 0.7, 0.5, 0.9], 0.4)
    >>> r["at_threshold"]["n"], r["best"]["n"], r["best"]["threshold"]
    (2, 2, 0.5)
    """
    y = np.asarray(y_true).astype(int)
    s = np.asarray(y_score, dtype=float)
    n_benign, n_all = int((y == 0).sum()), len(y)
    neg, pos = s[y == 0], s[y == 1]
    fn = int(np.sum(pos < threshold))
    at = None
    if fn == 0:
        k = int(np.sum(neg < threshold))
        at = {"n": k, "benign_fraction": k / n_benign if n_benign else None,
              "all_fraction": k / n_all if n_all else None}
    best_thr = float(pos.min()) if pos.size else None
    k = int(np.sum(neg < best_thr)) if pos.size else n_benign
    best = {"n": k, "threshold": best_thr,
            "benign_fraction": k / n_benign if n_benign else None,
            "all_fraction": k / n_all if n_all else None}
    return {"threshold": float(threshold), "n_benign": n_benign, "n_samples": n_all,
            "false_negatives_at_threshold": fn, "at_threshold": at, "best": best}


def threshold_table(
    y_true: Sequence, y_score: Sequence, thresholds: Sequence[float] = _THRESHOLDS
) -> list[dict]:
    """The supplementary table: held-out metrics at each threshold (one row per threshold).

    Examples
    --------
    >>> rows = threshold_table([0, 1, 0, 1], [0.2, 0.8, 0.6, 0.4], [0.3, 0.7])
    >>> [(r["threshold"], r["sensitivity"], r["specificity"]) for r in rows]
    [(0.3, 1.0, 0.5), (0.7, 0.5, 1.0)]
    """
    rows = []
    for t in thresholds:
        m = metrics_at_threshold(y_true, y_score, t)
        m.pop("roc_auc")
        rows.append({"threshold": float(t), **m})
    return rows


@dataclass
class PaperComparison:
    """Output of :func:`run_paper_comparison`.

    Attributes
    ----------
    folds : list of dict
        Per outer fold: ``train``/``test`` sample indices (into the pooled, kept samples'
        positions given to the function), ``n_train``, ``n_test``, ``n_test_actionable``.
    models : dict
        Per comparison name: ``label`` (how the weights were obtained for the deep ones),
        ``per_fold`` (list of metric dicts with ``threshold``, and ``best_params`` for
        the grid-searched ones), ``summary`` (metric -> mean, std, folds), ``y_score``
        (list per fold of test scores) and ``seconds`` per fold.
    reused_fold0 : list of str
        Comparisons whose fold 0 is the held-out analysis' grid search, reused.
    settings : dict
        Grids, deep settings, n_outer, cv, random_state.
    """

    folds: list
    models: dict
    reused_fold0: list
    settings: dict
    timings: dict = field(default_factory=dict)

    def held_out(self, name: str) -> tuple[np.ndarray, np.ndarray, float]:
        """``(y_test, y_score, threshold)`` of ``name`` on outer fold 0 (the held-out split)."""
        m = self.models[name]
        return (np.asarray(self.folds[0]["y_test"]), np.asarray(m["y_score"][0]),
                float(m["per_fold"][0]["threshold"]))

    def to_dict(self) -> dict:
        return jsonable({
            "description": "nested CV: outer fold 0 is the held-out split",
            "folds": self.folds, "models": self.models, "reused_fold0": self.reused_fold0,
            "settings": self.settings, "timings_s": self.timings,
        })


def _summary(per_fold: list[dict]) -> dict:
    out = {}
    for m in NESTED_METRICS:
        vals = np.array([np.nan if f.get(m) is None else f[m] for f in per_fold], float)
        ok = np.isfinite(vals)
        out[m] = {"folds": [None if not np.isfinite(v) else float(v) for v in vals],
                  "mean": float(vals[ok].mean()) if ok.any() else None,
                  "std": float(vals[ok].std()) if ok.any() else None}
    return out


_PRETTY = {"resnet50": "ResNet-50", "vgg16": "VGG-16"}


def _deep_fold(arch, weights, params, threads, random_state, x_train, y_train, x_test):
    """Fine-tune one network on one outer fold: its test probabilities and the
    penultimate features of both sides (for LightGBM)."""
    from .deep import DeepROIClassifier

    t0 = time.perf_counter()
    clf = DeepROIClassifier(arch, weights=weights, n_threads=threads,
                            random_state=random_state, **params).fit(x_train, y_train)
    return {"proba": clf.predict_proba(x_test)[:, 1], "f_train": clf.extract_features(x_train),
            "f_test": clf.extract_features(x_test), "n_iter": int(clf.n_iter_),
            "best_epoch": int(clf.best_epoch_), "seconds": time.perf_counter() - t0}


def _lgbm(random_state: int):
    from imblearn.pipeline import Pipeline

    from .classification import ThresholdedClassifier, make_default_lightgbm
    from .resampling import SafeSMOTEENN

    return Pipeline([
        ("resample", SafeSMOTEENN(random_state=random_state)),
        ("classify", ThresholdedClassifier(make_default_lightgbm(random_state), threshold=0.4)),
    ])


def run_paper_comparison(
    samples: Sequence,
    y: Sequence,
    groups: Sequence,
    pipelines: dict[str, Any],
    grids: dict[str, dict],
    *,
    held_out: dict[str, ProtocolResult] | None = None,
    n_outer: int = 4,
    cv: int = 5,
    deep: Sequence[str] = ("resnet50", "vgg16"),
    deep_params: dict | None = None,
    deep_threads: int | None = 1,
    n_jobs: int | None = None,
    refit: str | Callable = sensitivity_then_specificity,
    random_state: int = 0,
    say: Callable[[str], None] = lambda msg: None,
) -> PaperComparison:
    """Nested CV with every comparison of the paper on the same outer folds.

    Parameters
    ----------
    samples : sequence of ROI
        The samples (pooled images, after the exclusions) the held-out analysis used.
    y, groups : array-like of shape (n_samples,)
    pipelines : dict of str -> Pipeline
        The grid-searched comparisons (e.g. the method and the mean/std baseline).
    grids : dict of str -> dict
        The grid of each pipeline for the outer folds that are searched anew.
    held_out : dict of str -> ProtocolResult, optional
        The held-out analysis of each pipeline, run with ``test_size=1 / n_outer`` and the
        same ``random_state`` on the same ``samples`` (``test_index`` must index them):
        its grid search is reused as fold 0 (checked: the test indices must be fold 0's).
    n_outer, cv : int
        Outer folds; inner grid-search folds.
    deep : sequence of {"resnet50", "vgg16"}
        Deep baselines to run (empty: none).
    deep_params : dict, optional
        Settings of the deep estimators (default :data:`DEEP_DEFAULTS`).
    deep_threads : int, optional
        torch threads of each fine-tuning (default 1: on a busy machine more threads
        spin-wait and cost CPU time without gain).
    n_jobs : int, optional
        Fine-tunings run side by side (joblib; None = 1, -1 = all cores).
    refit, random_state
        As :func:`skcalc.model_selection.grid_search`.
    say : callable
        Progress lines.

    Returns
    -------
    PaperComparison
    """
    samples = list(samples)
    y = np.asarray(y)
    groups = np.asarray(groups)
    if pipelines:  # their grid searches need both classes in every inner fold
        check_nested_folds(y, groups, n_outer, cv, random_state, hint=_NESTED_HINT)
    folds = outer_folds(y, groups, n_outer=n_outer, random_state=random_state)
    models: dict[str, dict] = {}
    reused: list[str] = []
    timings: dict[str, float] = {}
    fold_info = [
        {"fold": k, "train": tr, "test": te, "n_train": int(len(tr)), "n_test": int(len(te)),
         "n_test_actionable": int(y[te].sum()), "y_test": y[te]}
        for k, (tr, te) in enumerate(folds)
    ]

    def record(name, label, k, scores, threshold, seconds, extra=None):
        entry = models.setdefault(name, {"label": label, "deep": label != name,
                                         "per_fold": [], "y_score": [], "seconds": []})
        m = metrics_at_threshold(y[folds[k][1]], scores, threshold)
        entry["per_fold"].append({"fold": k, "threshold": float(threshold), **m,
                                  **(extra or {})})
        entry["y_score"].append(np.asarray(scores, float))
        entry["seconds"].append(float(seconds))

    for name, pipe in pipelines.items():
        t_name = time.perf_counter()
        for k, (tr, te) in enumerate(folds):
            t0 = time.perf_counter()
            prev = (held_out or {}).get(name)
            if k == 0 and prev is not None:
                if not np.array_equal(np.sort(prev.test_index), np.sort(te)):
                    raise ValueError(
                        f"{name}: the held-out split is not outer fold 0 (run the held-out "
                        f"analysis with test_size=1/{n_outer} and random_state="
                        f"{random_state} on the same samples)"
                    )
                order = {int(i): j for j, i in enumerate(prev.test_index)}
                scores = np.asarray(prev.y_score)[[order[int(i)] for i in te]]
                record(name, name, k, scores, prev.threshold, 0.0,
                       {"best_params": prev.best_params, "grid": "held-out grid (reused)"})
                reused.append(name)
                say(f"    {name}, outer fold 0: the held-out analysis' grid search, reused")
                continue
            search = grid_search(clone(pipe), [samples[i] for i in tr], y[tr], groups[tr],
                                 grids[name], cv=cv, refit=refit, random_state=random_state)
            model = search.best_estimator_
            last = model.steps[-1][1] if hasattr(model, "steps") else model
            thr = float(getattr(last, "threshold", 0.5))
            scores = model.predict_proba([samples[i] for i in te])[:, 1]
            record(name, name, k, scores, thr, time.perf_counter() - t0,
                   {"best_params": jsonable(search.best_params_)})
            say(f"    {name}, outer fold {k}: AUC {_f(models[name]['per_fold'][-1]['roc_auc'])}"
                f" ({time.perf_counter() - t0:.1f} s)")
        timings[name] = time.perf_counter() - t_name

    params = {**DEEP_DEFAULTS, **(deep_params or {})}
    if deep:
        from joblib import Parallel, delayed

        from .deep import DeepFeatureExtractor, imagenet_or_random

        t_deep = time.perf_counter()
        weights = {arch: imagenet_or_random(arch) for arch in deep}
        tasks = [(arch, k) for arch in deep for k in range(len(folds))]
        say(f"    deep baselines: {len(tasks)} fine-tunings ({len(deep)} networks x "
            f"{len(folds)} folds, {params['input_size']} px, at most {params['epochs']} "
            f"epochs) in {n_jobs if n_jobs else 1} process(es)")
        # One fine-tuning per (network, fold) serves "fine-tuned" and "fine-tuned +
        # LightGBM"; the tasks are independent, so they run side by side.
        done = Parallel(n_jobs=n_jobs)(
            delayed(_deep_fold)(arch, weights[arch][0], params, deep_threads, random_state,
                                [samples[i] for i in folds[k][0]], y[folds[k][0]],
                                [samples[i] for i in folds[k][1]])
            for arch, k in tasks)
        for arch in deep:
            w, wlabel = weights[arch]
            pretty = _PRETTY.get(arch, arch)
            t0 = time.perf_counter()
            ext = DeepFeatureExtractor(arch, weights=w, n_threads=deep_threads,
                                       random_state=random_state,
                                       input_size=params["input_size"],
                                       batch_size=params["batch_size"])
            feats_all = ext.fit(samples).transform(samples)
            t_feats = time.perf_counter() - t0
            init = "ImageNet" if w == "imagenet" else "random-init"
            ft_name = f"{pretty} fine-tuned ({init})"
            ftl_name = f"{pretty} fine-tuned ({init}) + LightGBM"
            pre_name = f"{pretty} not fine-tuned ({init}) + LightGBM"
            for k, (tr, te) in enumerate(folds):
                r = done[tasks.index((arch, k))]
                record(ft_name, wlabel, k, r["proba"], 0.4, r["seconds"],
                       {"epochs_run": r["n_iter"], "best_epoch": r["best_epoch"]})
                t0 = time.perf_counter()
                lgbm = _lgbm(random_state).fit(r["f_train"], y[tr])
                record(ftl_name, wlabel, k, lgbm.predict_proba(r["f_test"])[:, 1], 0.4,
                       time.perf_counter() - t0)
                t0 = time.perf_counter()
                lgbm = _lgbm(random_state).fit(feats_all[tr], y[tr])
                record(pre_name, wlabel, k, lgbm.predict_proba(feats_all[te])[:, 1], 0.4,
                       time.perf_counter() - t0 + t_feats / len(folds))
            aucs = "; ".join(
                f"{n.removeprefix(pretty + ' ')} {_f(_mean_auc(models[n]))}"
                for n in (ft_name, ftl_name, pre_name))
            spent = sum(done[tasks.index((arch, k))]["seconds"] for k in range(len(folds)))
            say(f"    {pretty} ({wlabel}): mean AUC {aucs}; fine-tuning {spent:.1f} s in all")
        timings["deep"] = time.perf_counter() - t_deep

    for entry in models.values():
        entry["summary"] = _summary(entry["per_fold"])
    for f in fold_info:
        f["train"], f["test"] = f["train"].tolist(), f["test"].tolist()
    settings = {"n_outer": n_outer, "cv": cv, "random_state": random_state,
                "grids_folds_1_to_3": grids, "deep": list(deep), "deep_params": params,
                "deep_threshold": 0.4, "deep_threads": deep_threads}
    return PaperComparison(fold_info, models, reused, settings, timings)


def _mean_auc(entry: dict) -> float | None:
    vals = [f["roc_auc"] for f in entry["per_fold"] if f["roc_auc"] is not None]
    return float(np.mean(vals)) if vals else None


def _f(x, spec=".2f") -> str:
    return "n/a" if x is None else format(x, spec)


_NESTED_ROWS = (("ROC AUC", "roc_auc"), ("Sensitivity", "sensitivity"),
                ("Specificity", "specificity"), ("PPV", "ppv"), ("NPV", "npv"), ("F1", "f1"),
                ("Accuracy", "accuracy"))


def format_nested_table(comp: PaperComparison) -> str:
    """Mean +- std over the outer folds, one row per comparison."""
    n = comp.settings["n_outer"]
    sizes = ", ".join(f"{f['n_test']} ({f['n_test_actionable']} actionable)"
                      for f in comp.folds)
    lines = [
        f"Nested CV: {n} outer grouped stratified folds x {comp.settings['cv']}-fold inner "
        f"grid search; mean +- std over the {n} outer test folds",
        f"  outer test folds (images): {sizes}; fold 0 is the held-out split above"
        + (f" (grid search reused for: {', '.join(comp.reused_fold0)})"
           if comp.reused_fold0 else ""),
        "",
    ]
    width = 13
    name_w = max([len(n) for n in comp.models] + [10]) + 2
    head = f"{'':{name_w}}" + "".join(f"{lab:>{width}}" for lab, _ in _NESTED_ROWS)
    lines.append(head)
    for name, m in comp.models.items():
        cells = []
        for _, key in _NESTED_ROWS:
            s = m["summary"][key]
            cells.append("n/a" if s["mean"] is None else f"{s['mean']:.2f}+-{s['std']:.2f}")
        lines.append(f"{name:{name_w}}" + "".join(f"{c:>{width}}" for c in cells))
    labels = sorted({m["label"] for m in comp.models.values() if m["deep"]})
    if labels:
        p = comp.settings["deep_params"]
        lines.append("")
        lines.append(f"  deep baselines: threshold 0.4, no grid; input {p['input_size']} px, at "
                     f"most {p['epochs']} epoch(s); initial weights:")
        lines += [f"    {lab}" for lab in labels]
    return "\n".join(lines)


def format_threshold_table(rows: list[dict], name: str) -> str:
    """The supplementary table as text."""
    lines = [f"Supplementary: {name} on the held-out split at other thresholds",
             f"{'threshold':>10}{'sens':>7}{'spec':>7}{'PPV':>7}{'NPV':>7}{'F1':>7}{'acc':>7}"
             f"{'TN':>5}{'FP':>5}{'FN':>5}{'TP':>5}"]
    for r in rows:
        lines.append(
            f"{r['threshold']:>10.1f}" + "".join(
                f"{_f(r[k]):>7}" for k in ("sensitivity", "specificity", "ppv", "npv", "f1",
                                           "accuracy"))
            + "".join(f"{r[k]:>5}" for k in ("tn", "fp", "fn", "tp")))
    return "\n".join(lines)


def run_paper_analysis(
    rois: Sequence,
    y: Sequence,
    groups: Sequence,
    *,
    make_pipeline: Callable[[str], Any],
    grid: str = "paper",
    nested_grid: str = "small",
    cv: int = 5,
    n_outer: int = 4,
    nested: bool = True,
    deep: Sequence[str] = ("resnet50", "vgg16"),
    deep_params: dict | None = None,
    deep_threads: int | None = 1,
    n_jobs: int | None = None,
    n_bootstrap: int = 1000,
    random_state: int = 0,
    verbose: int = 0,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Every result of the paper on ``rois``: held-out split (Tables 1-3), nested CV with
    every comparison, Figure 6's scores, the threshold table, feature importances and the
    biopsies avoided. Images are the unit (ROIs pooled per image), the exclusions on.

    ``make_pipeline(aggregation)`` builds the method (``"bag"``) and the baseline
    (``"meanstd"``). The held-out grid is ``paper_param_grid(grid)``; the 3 further outer
    folds use ``paper_param_grid(nested_grid)`` (smaller, to keep the run short; fold 0
    reuses the held-out search). Returns a dict with ``results`` (ProtocolResult per
    method), ``comparison`` (PaperComparison or None), ``tables`` (text), ``payload``
    (JSON-ready), ``images`` (pooled samples), ``image_groups`` and ``timings``.
    """
    from .model_selection import evaluate_protocol
    from .pipeline import feature_importances, paper_param_grid
    from .samples import pool_by_image

    names = {"bag": "bag of clusters", "meanstd": "mean/std baseline"}
    pipes = {names[a]: make_pipeline(a) for a in names}
    grids = {names[a]: paper_param_grid(grid, aggregation=a) for a in names}
    ngrids = {names[a]: paper_param_grid(nested_grid, aggregation=a) for a in names}
    test_size = 1.0 / n_outer
    results: dict[str, ProtocolResult] = {}
    timings: dict[str, float] = {}
    if nested:
        # Refused before the held-out searches, not after them: the nested CV's folds are
        # made on the images the exclusions keep (their segmentation is cached per ROI for
        # the held-out analysis that follows).
        from .model_selection import paper_exclusions

        images, y_img, g_img = pool_by_image(list(rois), np.asarray(y), np.asarray(groups))
        keep, _ = paper_exclusions(pipes[names["bag"]], images, y_img)
        check_nested_folds(y_img[keep], g_img[keep], n_outer, cv, random_state,
                           hint=_NESTED_HINT)
    for name, pipe in pipes.items():
        n_cand = int(np.prod([len(v) for v in grids[name].values()]))
        say(f"  {name}: exam-level {1 - test_size:.0%}/{test_size:.0%} split (outer fold 0), "
            f"{cv}-fold grouped grid search over {n_cand} candidates ({n_cand * cv} fits)")
        t0 = time.perf_counter()
        res = evaluate_protocol(pipe, rois, y, groups, grids[name], test_size=test_size, cv=cv,
                                n_bootstrap=n_bootstrap, random_state=random_state,
                                verbose=verbose, unit="image", n_jobs=1)
        res.timings["total"] = timings[f"held-out[{name}]"] = time.perf_counter() - t0
        say(f"    best: {res.best_params} ({res.timings['total']:.1f} s)")
        results[name] = res

    images, y_img, g_img = pool_by_image(list(rois), np.asarray(y), np.asarray(groups))
    method = results["bag of clusters"]
    excluded = set((method.exclusions or {}).get("excluded_roi_ids", []))
    kept = np.array([i for i, im in enumerate(images) if str(im.roi_id) not in excluded], int)

    comparison = None
    if nested:
        say(f"  nested CV: {n_outer} outer folds x {cv}-fold grid search "
            f"(folds 1-{n_outer - 1}: grid {nested_grid!r}), deep baselines: "
            f"{', '.join(deep) if deep else 'none'}")
        t0 = time.perf_counter()
        comparison = run_paper_comparison(
            [images[i] for i in kept], y_img[kept], g_img[kept], pipes, ngrids,
            held_out={n: _reindexed(r, kept) for n, r in results.items()},
            n_outer=n_outer, cv=cv, deep=deep, deep_params=deep_params,
            deep_threads=deep_threads, n_jobs=n_jobs, random_state=random_state, say=say)
        timings["nested"] = time.perf_counter() - t0

    # The final model's most used features, named (the paper's feature discussion).
    model = method.search.best_estimator_
    try:
        imp = feature_importances(model, normalize=True).head(15)
        importances = [{"feature": str(k), "importance": float(v)} for k, v in imp.items()]
    except (ValueError, AttributeError) as exc:  # e.g. a calibrated wrapper
        importances = [{"feature": f"not available: {exc}", "importance": float("nan")}]

    supp = {n: threshold_table(r.y_test, r.y_score) for n, r in results.items()}
    curves = {n: (r.y_test, r.y_score, r.threshold) for n, r in results.items()}
    if comparison is not None:
        for n in comparison.models:
            if n not in curves:
                curves[n] = comparison.held_out(n)
                supp[n] = threshold_table(*curves[n][:2])
    biopsies = {n: biopsies_avoided(*c) for n, c in curves.items()}

    tables = {
        "table1": format_table1(method.split, method.exclusions),
        "tables23": format_comparison({n: r.report for n, r in results.items()}),
        "nested": format_nested_table(comparison) if comparison is not None else None,
        "supplementary": format_threshold_table(supp["bag of clusters"], "bag of clusters"),
        "importances": format_importances(importances),
        "biopsies": format_biopsies(biopsies),
    }
    payload = {
        "unit": "image",
        "results": {n: r.to_dict() for n, r in results.items()},
        "held_out_image_ids": [str(images[i].roi_id) for i in method.test_index],
        "nested_comparison": comparison.to_dict() if comparison is not None else None,
        "supplementary_thresholds": supp,
        "feature_importances": importances,
        "biopsies_avoided": biopsies,
        "grids": {"held_out": grids, "nested_folds_1_to_3": ngrids if nested else None},
        "timings_s": timings,
    }
    return {"results": results, "comparison": comparison, "tables": tables,
            "payload": jsonable(payload), "images": images, "image_groups": g_img,
            "curves": curves, "supplementary": supp, "importances": importances,
            "biopsies": biopsies, "timings": timings}


def _reindexed(res: ProtocolResult, kept: np.ndarray) -> ProtocolResult:
    """The result with ``test_index`` into the kept samples instead of all images."""
    pos = {int(i): j for j, i in enumerate(kept)}
    return replace(res, test_index=np.array([pos[int(i)] for i in res.test_index]))


def paper_text(analysis: dict) -> str:
    """All printed tables, in the paper's order."""
    t = analysis["tables"]
    parts = [t["table1"], t["tables23"]]
    if t["nested"]:
        parts.append(t["nested"])
    parts += [t["supplementary"], t["biopsies"], t["importances"]]
    return "\n\n".join(parts)


def format_importances(rows: list[dict]) -> str:
    lines = ["Features the final model uses most (LightGBM split importance, share of all)"]
    for i, r in enumerate(rows, 1):
        lines.append(f"  {i:>2}. {r['feature']:<60} {r['importance']:.3f}")
    return "\n".join(lines)


def format_biopsies(biopsies: dict) -> str:
    lines = ["Biopsies avoided on the held-out images (benign images called benign, "
             "no actionable image missed)"]
    for n, b in biopsies.items():
        at = b["at_threshold"]
        now = (f"{at['n']}/{b['n_benign']} benign ({_f(at['benign_fraction'], '.0%')}) at "
               f"threshold {b['threshold']:.2f}" if at is not None else
               f"none at threshold {b['threshold']:.2f} ({b['false_negatives_at_threshold']} "
               "actionable missed)")
        best = b["best"]
        lines.append(f"  {n}: {now}; at most {best['n']}/{b['n_benign']} "
                     f"({_f(best['benign_fraction'], '.0%')}, threshold "
                     f"{_f(best['threshold'], '.3f')})")
    return "\n".join(lines)


def format_table1(split: dict, exclusions: dict | None = None) -> str:
    """The paper's Table 1: ROIs (images) per class in the training and test sets."""
    lines = [
        f"Table 1: split by exam, unit = {split.get('unit', 'roi')}",
        f"{'':14s}{'train ROIs (images)':>22s}{'test ROIs (images)':>22s}",
    ]
    for name in ("benign", "actionable"):
        cells = []
        for side in ("train", "test"):
            e = split[side][name]
            cells.append(f"{e.get('rois', e['samples'])} ({e['samples']} images)")
        lines.append(f"{name:14s}{cells[0]:>22s}{cells[1]:>22s}")
    tot = []
    for side in ("train", "test"):
        r = sum(split[side][n].get("rois", split[side][n]["samples"]) for n in split[side])
        i = sum(split[side][n]["samples"] for n in split[side])
        tot.append(f"{r} ({i} images)")
    lines.append(f"{'total':14s}{tot[0]:>22s}{tot[1]:>22s}")
    if exclusions:
        per = exclusions["excluded_per_class"]
        lines.append(
            f"excluded before the split: {exclusions['n_excluded']} of {exclusions['n_input']}"
            f" images ({exclusions['rule'].replace('ROIs', 'samples')}): "
            f"{per.get('0', 0)} benign, {per.get('1', 0)} actionable")
    return "\n".join(lines)


_ROWS = [
    ("Accuracy", "accuracy"),
    ("Sensitivity", "sensitivity"),
    ("Specificity", "specificity"),
    ("F1", "f1"),
    ("PPV", "ppv"),
    ("NPV", "npv"),
    ("ROC AUC", "roc_auc"),
]


def format_comparison(reports: dict[str, dict]) -> str:
    """Paper-style Table 2 (metrics with 95% CIs) and Table 3 (confusion matrices)."""
    names = list(reports)
    width = 30
    first = reports[names[0]]
    n, npos = first.get("n_samples"), first.get("n_positive")
    size = f": n = {n} ({npos} actionable)" if n is not None else ""
    lines = [f"Table 2: held-out test set{size}; 95% bootstrap intervals over exams", ""]
    lines.append(f"{'':<12}" + "".join(f"{n:>{width}}" for n in names))
    for label, key in _ROWS:
        cells = []
        for n in names:
            m = reports[n]["metrics"][key]
            cells.append(f"{_f(m['value'])} [{_f(m['ci_low'])}, {_f(m['ci_high'])}]")
        lines.append(f"{label:<12}" + "".join(f"{c:>{width}}" for c in cells))
    lines.append("")
    lines.append("Table 3: confusion matrices (rows: truth; columns: predicted benign / "
                 "actionable)")
    for n in names:
        cm = reports[n]["confusion_matrix"]
        lines.append(f"  {n} (threshold {reports[n]['threshold']:.2f})")
        lines.append(f"    {'benign':<11}{cm['tn']:>6}{cm['fp']:>6}")
        lines.append(f"    {'actionable':<11}{cm['fn']:>6}{cm['tp']:>6}")
    return "\n".join(lines)


def plot_figure6(curves: dict, ax: Any = None):
    """Figure 6: held-out ROC curves of the method and every baseline on one axes."""
    import matplotlib.pyplot as plt

    from .plotting import plot_roc

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 7.5))
    colours = {"bag": "#0072B2", "mean": "#E69F00", "ResNet": "#009E73", "VGG": "#CC79A7"}
    curves_drawn = []
    for name, (yt, ys, thr) in curves.items():
        n_before, n_coll = len(ax.lines), len(ax.collections)
        plot_roc(yt, ys, ax=ax, label=name, threshold=thr)
        line = ax.lines[n_before]
        family = next((k for k in colours if name.startswith(k)), None)
        if family is not None:
            line.set_color(colours[family])
        # the method bold; per network: fine-tuned solid, + LightGBM dashed, not
        # fine-tuned dotted
        line.set_linestyle(":" if "not fine-tuned" in name else "--" if "LightGBM" in name
                           else "-")
        line.set_linewidth(2.6 if name == "bag of clusters" else 1.4)
        for extra in ax.lines[n_before + 1:]:
            if extra.get_marker() not in (None, "None", ""):
                extra.set_color(line.get_color())
        for dots in ax.collections[n_coll:]:
            dots.set_facecolor(line.get_color())
        curves_drawn.append(line)
    ax.set_title("Figure 6: ROC on the held-out images (outer fold 0); dots: operating "
                 "points", fontsize=10)
    # One legend entry per curve (the operating points are the dots on each).
    ax.legend(handles=curves_drawn, loc="lower right", fontsize=7.5)
    return ax


def write_paper_outputs(out, analysis: dict, *, title: str, settings: dict,
                        say: Callable[[str], None] = print) -> dict[str, Any]:
    """Write table.txt, report.json, roc.png, figure6_roc.png and report.html in ``out``.

    Returns the paths written (name -> path).
    """
    import matplotlib

    matplotlib.use("Agg")
    from pathlib import Path
    from types import SimpleNamespace

    import matplotlib.pyplot as plt

    from .io import save_figure_atomic, write_json_atomic, write_text_atomic
    from .plotting import plot_confusion_matrix, plot_roc
    from .reporting import write_protocol_report

    out = Path(out)
    results = analysis["results"]
    paths = {}
    fig, axes = plt.subplots(1, 3, figsize=(17, 5), layout="constrained")
    for name, r in results.items():
        plot_roc(r.y_test, r.y_score, ax=axes[0], label=name, threshold=r.threshold)
    axes[0].set_title("ROC, held-out images")
    for ax, (name, r) in zip(axes[1:], results.items()):
        plot_confusion_matrix(r.y_test, (r.y_score >= r.threshold).astype(int), ax=ax)
        ax.set_title(f"{name}, threshold {r.threshold:.2f}")
    paths["roc"] = out / "roc.png"
    save_figure_atomic(fig, paths["roc"])
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(8, 7.5), layout="constrained")
    plot_figure6(analysis["curves"], ax=ax)
    paths["figure6"] = out / "figure6_roc.png"
    save_figure_atomic(fig, paths["figure6"])
    plt.close(fig)

    text = paper_text(analysis)
    paths["table"] = out / "table.txt"
    write_text_atomic(paths["table"], text + "\n")
    paths["report"] = out / "report.json"
    write_json_atomic(paths["report"], {"settings": jsonable(settings), **analysis["payload"]})

    comp = analysis["comparison"]
    tables: dict[str, Any] = {}
    t1 = results["bag of clusters"].split
    tables["Table 1: split by exam (ROIs and images per class)"] = [
        {"side": side, "class": c, "ROIs": e.get("rois", e["samples"]), "images": e["samples"],
         "exams": e["exams"]}
        for side in ("train", "test") for c, e in t1[side].items()]
    exc = results["bag of clusters"].exclusions
    if exc:
        tables["Exclusions before the split (the paper's)"] = {
            "rule": exc["rule"].replace("ROIs", "samples"), "images excluded": exc["n_excluded"],
            "of": exc["n_input"], "benign": exc["excluded_per_class"].get("0", 0),
            "actionable": exc["excluded_per_class"].get("1", 0)}
    if comp is not None:
        rows = []
        for name, m in comp.models.items():
            row = {"comparison": name, "weights / grid": m["label"] if m["deep"]
                   else "grid search (fold 0 reused from the held-out split)"}
            for lab, key in _NESTED_ROWS:
                s = m["summary"][key]
                row[lab] = ("n/a" if s["mean"] is None
                            else f"{s['mean']:.3f} ± {s['std']:.3f}")
            rows.append(row)
        tables[f"Nested CV with every comparison ({comp.settings['n_outer']} outer grouped "
               f"stratified folds, mean ± std; fold 0 = the held-out split)"] = rows
    for name, rows in analysis["supplementary"].items():
        if name in results:
            tables[f"Supplementary: {name}, held-out metrics at other thresholds"] = rows
    tables["Biopsies avoided (held-out images, no false negative)"] = [
        {"comparison": n, "threshold": b["threshold"],
         "benign called benign at threshold": "none (false negatives)" if b["at_threshold"]
         is None else f"{b['at_threshold']['n']}/{b['n_benign']}",
         "best": f"{b['best']['n']}/{b['n_benign']}", "best threshold": b["best"]["threshold"]}
        for n, b in analysis["biopsies"].items()]
    tables["Features the final model uses most (named)"] = analysis["importances"]
    others = {n: SimpleNamespace(y_test=c[0], y_score=c[1])
              for n, c in analysis["curves"].items() if n != "bag of clusters"}
    paths["html"] = out / "report.html"
    write_protocol_report(
        paths["html"], results["bag of clusters"], groups=analysis["image_groups"],
        rois=analysis["images"], other_results=others, title=title, extra_tables=tables,
        overwrite=True)
    return paths
