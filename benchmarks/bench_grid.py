"""Grid search over the paper grid vs one cold fit, each in a fresh process.

Acceptance figure of the tail's memoisation (:mod:`skcalc._fitcache`): ``GridSearchCV``
(``skcalc.model_selection.grid_search``: grouped 5-fold, clinical scorers, refit) over
``paper_param_grid(--grid)`` costs at most twice one cold ``fit`` of the same pipeline.
Both runs start from raw ROIs (image stages included, precompute-free) in a **fresh
process**, so neither finds the in-process per-ROI cache warm; within the grid search the
image stages run once per ROI thanks to that cache, and the tail fits each distinct thing
once (k-means per fold and K, the topology selection per fold, SMOTE+ENN per distinct
input, LightGBM per input and setting, never per threshold).

Measured on the shared 2-core machine (1-minute load 4-7, other jobs running), paper grid
(384 candidates, 1921 fits): 60 ROIs, fit 70.9 s, grid 136.1 s, ratio 1.92; 120 ROIs, fit
153.5 s, grid 303.6 s, ratio 1.98. The grid's tail overhead grows with the cohort about
as fast as the image stages, so the ratio sits near 2; most of what is left is per-ROI
cache look-ups of the image stages during scoring and 641 LightGBM fits.

At the demo's size (``--unit image``: 276 ROIs pooled into 248 images), December 2026, CPU
seconds of each process (2-core machine shared with another job):

- before LightGBM's boosting was shared (commit 814e8b7, load 3.0-3.7): fit 18.54 s, grid
  79.02 s, 4.26 x;
- now (load 2.7-3.7): fit 18.31 s (18.55 s wall), grid 61.68 s (62.92 s wall): **3.37 x**;
  again at load 1.6-1.9: fit 19.40 s, grid 61.83 s, 3.19 x. On a quiet machine (load
  0.5-0.9, after the candidate filter of December 2026): fit 18.73 s (16.31 s wall), grid
  61.38 s (58.68 s wall): 3.28 x in CPU time, 3.60 x in wall time. The grid builds LightGBM's
  ``Dataset`` 21 times (once per fold and K) instead of 641 and boosts 64,100 rounds
  instead of 96,100 (the 100-tree fit of a setting is the first 100 rounds of its 200-tree
  fit: the training Booster is kept, see ``skcalc._lightgbm_sharing``); scoring asks
  LightGBM once per response and fitted model instead of twice per candidate, and ROC AUC
  once per fitted model instead of once per threshold. Peak RSS 1.33 GB (1.14 GB before):
  the kept training Boosters, about 2.3-4 MB each here. ``cv_results_`` (all 104 score
  columns of the 384 candidates), the chosen candidate and the refitted LightGBM model's
  pickle are identical to those of ``cache_tail=False`` (no memo at all: 1564 s CPU) and
  of commit 814e8b7;
- with every estimator class's parameter names memoised during the search
  (``memoised_param_names``: 94,345 ``inspect.signature`` calls become 10,434), SMOTE+ENN
  on one thread and ROC AUC as ``auc(roc_curve)`` for 0/1 labels: five alternating runs
  each of commit b5e3918 and of this code (load 0.5-3.2, 1.0 in most runs, another job
  part of the time): grid 68.60 -> 64.01 s CPU (sd 3.2 and 2.1 s; paired difference
  4.6 s, sd 4.4 s, positive in 4 of 5 pairs), fit 21.68 -> 21.21 s, **3.17 x -> 3.02 x**
  (mean of the per-run ratios; 3.42 x -> 3.20 x in wall time). Under ``cProfile``:
  ``inspect.signature`` 5.7 -> 0.7 s, the ROC AUC memo 2.7 -> 1.6 s, SMOTE+ENN 2.0 ->
  0.25 s; the fresh ``threadpoolctl`` controller per ``single_threaded`` call adds about
  0.25 s (207 calls). All 112 compared ``cv_results_`` columns (every one but the times),
  the chosen candidate, the refitted model's pickle and its predictions are identical
  between the ten runs (``--save-cv-results`` / ``--compare-cv-results``).

**The 2 x target is out of reach with identical results at this size.** ``--breakdown``
times (CPU) the computations a grid search cannot skip without changing ``cv_results_``:
the image stages once per image 16.6 s, k-means 21 fits 8.1 s, the topology selection
6 fits 0.7 s, SMOTE+ENN 21 fits 2.2 s, and 64,100 distinct LightGBM rounds 16.9 s (every
LightGBM setting but ``n_estimators`` changes every tree; 0.26 ms a round): 44.5 s, 2.43 x
the cold fit (whose image stages are 16.8 of its 18.3 s); second run 43.9 s, 2.26 x. That
is before any prediction, scoring or bookkeeping: 2 x the fit (36.6 s; 38.8 s) is less
than the image stages, k-means and LightGBM's rounds alone (41.6 s; 42.3 s). The other
15 s of the grid are LightGBM's Booster creation and model texts (about 3 s) and
scikit-learn's per-candidate work on 1921 fits and 1920 scorings (``clone``,
``get_params``, input validation, the tail's cache keys; the signature inspection is
memoised since, see above).

Run: ``python benchmarks/bench_grid.py [--n-rois 276] [--unit image|roi] [--cv 5]
[--grid paper] [--no-tail-cache] [--breakdown] [--save-cv-results PATH]``; ``--unit
image`` (default) pools the ROIs of each image into one sample
(:func:`skcalc.samples.pool_by_image`) as the demo does: 276 ROIs, 248 images. Prints
``name: value`` lines (the two wall and CPU times and their ratios) and writes
``benchmarks/results/grid.json``. ``--phase fit|grid`` runs one measurement in this
process (what the parent runs in each child). ``--save-cv-results PATH`` pickles the
grid's ``cv_results_``, ``best_index_``, ``best_params_`` and the refitted model (its
pickle, and its predictions and probabilities on the search's samples), after the timing;
``--compare-cv-results A B`` compares two such files (every column but the ``*_time``
ones, exactly) and prints ``identical: True`` or what differs.
"""

import argparse
import json
import os
import subprocess
import sys
import time
import warnings

import numpy as np

# This checkout's skcalc, not an installed one (the children run this file too).
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from _common import peak_rss_mb, write_results  # noqa: E402


def _instrument() -> dict:
    """CPU seconds (and calls) of the computations a grid search cannot avoid, by kind.

    Wraps the functions that do the work when nothing is cached: an image stage on one ROI
    (``_run_stage``), the k-means bag of clusters (``_fit_pipelines``), the topology
    selection's forest (``_fit_model``), SMOTE+ENN (``_resample``), and LightGBM's boosting
    rounds (``Booster.update``) and Booster/Dataset creation. Re-entrant calls count once.
    """
    from collections import defaultdict

    import lightgbm

    from skcalc.aggregation import BagOfClustersAggregator
    from skcalc.feature_selection import ImportanceSelector
    from skcalc.resampling import SafeSMOTEENN
    from skcalc.utils import _caching

    acc = defaultdict(float)
    calls = defaultdict(int)
    depth = defaultdict(int)

    def wrap(owner, name, label):
        original = getattr(owner, name)

        def timed(*a, **k):
            depth[label] += 1
            t0 = time.process_time()
            try:
                return original(*a, **k)
            finally:
                depth[label] -= 1
                if depth[label] == 0:
                    acc[label] += time.process_time() - t0
                    calls[label] += 1

        setattr(owner, name, timed)

    wrap(_caching, "_run_stage", "image_stages")
    wrap(BagOfClustersAggregator, "_fit_pipelines", "kmeans")
    wrap(ImportanceSelector, "_fit_model", "topology_selection")
    wrap(SafeSMOTEENN, "_resample", "smote_enn")
    wrap(lightgbm.Booster, "update", "lightgbm_rounds")
    wrap(lightgbm.Booster, "__init__", "lightgbm_booster_init")
    return {"cpu_s": acc, "calls": calls}


def _save_search(search, rois, path: str) -> None:
    """Pickle what must not change between two grid searches: ``cv_results_`` (every
    column, the ``*_time`` ones included; :func:`_compare` skips those), ``best_index_``,
    ``best_params_``, the refitted model's pickle and its ``predict``/``predict_proba`` on
    the search's samples."""
    import pickle

    model = search.best_estimator_
    saved = {
        "cv_results": dict(search.cv_results_),
        "best_index": int(search.best_index_),
        "best_params": search.best_params_,
        "best_estimator_pickle": pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL),
        "predict": model.predict(rois),
        "predict_proba": model.predict_proba(rois),
    }
    with open(path, "wb") as f:
        pickle.dump(saved, f, protocol=pickle.HIGHEST_PROTOCOL)


def _compare(path_a: str, path_b: str) -> bool:
    """Print which saved items of two ``--save-cv-results`` files differ; True if none.

    Columns are compared exactly (``np.array_equal``, NaN equal to NaN where the dtype
    allows); the ``*_time`` columns are wall times and are not compared.
    """
    import pickle

    with open(path_a, "rb") as f:
        a = pickle.load(f)
    with open(path_b, "rb") as f:
        b = pickle.load(f)

    def same(u, v) -> bool:
        # the param_* columns are masked arrays: their masks must agree too
        if not np.array_equal(np.ma.getmaskarray(u), np.ma.getmaskarray(v)):
            return False
        u, v = np.asarray(u), np.asarray(v)
        if u.dtype != v.dtype or u.shape != v.shape:
            return False
        if u.dtype.kind in "fc":
            return bool(np.array_equal(u, v, equal_nan=True))
        return u.tolist() == v.tolist()

    ra, rb = a["cv_results"], b["cv_results"]
    differ = []
    if sorted(ra) != sorted(rb):
        differ.append("cv_results columns")
    compared = [k for k in ra if k in rb and not k.endswith("_time")]
    differ += [k for k in compared if not same(ra[k], rb[k])]
    for key in ("best_index", "best_params", "best_estimator_pickle"):
        if a[key] != b[key]:
            differ.append(key)
    for key in ("predict", "predict_proba"):
        if not same(a[key], b[key]):
            differ.append(key)
    print(f"compared: {len(compared)} cv_results_ columns ({len(ra[compared[0]])} candidates), "
          "best_index, best_params, best_estimator_pickle, predict, predict_proba")
    print(f"identical: {not differ}" + (f" (differ: {differ})" if differ else ""))
    return not differ


def _phase(args) -> dict:
    from skcalc._fitcache import FIT_CACHE
    from skcalc.datasets import make_calcification_cohort
    from skcalc.model_selection import grid_search
    from skcalc.pipeline import make_calcification_pipeline, paper_param_grid

    warnings.simplefilter("ignore")
    rois, y, groups = make_calcification_cohort(args.n_rois, random_state=args.random_state)
    if args.unit == "image":  # the demo's unit: the ROIs of one image are one sample
        from skcalc.samples import pool_by_image

        rois, y, groups = pool_by_image(rois, y, groups)
    pipe = make_calcification_pipeline(
        random_state=args.random_state, cache_tail=not args.no_tail_cache
    )
    out = {"phase": args.phase, "n_samples": len(rois),
           "load_average_1min_before": round(os.getloadavg()[0], 2)}
    breakdown = _instrument() if args.breakdown else None
    t0, c0 = time.perf_counter(), time.process_time()
    if args.phase == "fit":
        pipe.fit(rois, y)
    else:
        grid = paper_param_grid(args.grid)
        search = grid_search(
            pipe, rois, y, groups, grid, cv=args.cv, n_jobs=1, random_state=args.random_state
        )
        out["candidates"] = int(np.prod([len(v) for v in grid.values()]))
        out["fits"] = out["candidates"] * args.cv + 1
        out["best_params"] = search.best_params_
        out["best_mean_sensitivity"] = float(
            search.cv_results_["mean_test_sensitivity"][search.best_index_]
        )
    out["wall_s"] = round(time.perf_counter() - t0, 2)
    # CPU seconds of this process (all its threads): steadier than wall time on a shared box
    out["cpu_s"] = round(time.process_time() - c0, 2)
    if args.phase == "grid" and args.save_cv_results:  # after the timing: not measured
        _save_search(search, rois, args.save_cv_results)
    if breakdown is not None:
        out["breakdown_cpu_s"] = {k: round(v, 2) for k, v in breakdown["cpu_s"].items()}
        out["breakdown_calls"] = dict(breakdown["calls"])
    out["tail_computations"] = {f"{c}.{s}": n for (c, s), n in FIT_CACHE.computed.items()}
    out["tail_cache_hits"] = FIT_CACHE.hits
    out["peak_rss_mb"] = peak_rss_mb()
    out["load_average_1min_after"] = round(os.getloadavg()[0], 2)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-rois", type=int, default=276)
    parser.add_argument("--cv", type=int, default=5)
    parser.add_argument("--grid", default="paper", choices=["paper", "small", "quick"])
    parser.add_argument("--random-state", type=int, default=0)
    parser.add_argument("--unit", default="image", choices=["image", "roi"],
                        help="sample unit: 'image' pools each image's ROIs, as the demo")
    parser.add_argument("--no-tail-cache", action="store_true",
                        help="measure the grid without the tail's memoisation")
    parser.add_argument("--breakdown", action="store_true",
                        help="also time (CPU) the image stages, k-means, the selection, "
                             "SMOTE+ENN and LightGBM's rounds in each phase")
    parser.add_argument("--save-cv-results", metavar="PATH",
                        help="pickle the grid's cv_results_, best index and parameters, "
                             "and the refitted model (pickle, predictions) to PATH")
    parser.add_argument("--compare-cv-results", nargs=2, metavar=("A", "B"),
                        help="compare two --save-cv-results files and exit")
    parser.add_argument("--phase", choices=["fit", "grid"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.compare_cv_results:
        return _compare(*args.compare_cv_results)
    if args.phase:
        print(json.dumps(_phase(args), default=str))
        return None

    res = {"n_rois": args.n_rois, "unit": args.unit, "cv": args.cv, "grid": args.grid, "n_jobs": 1,
           "tail_cache": not args.no_tail_cache, "cpu_count": os.cpu_count()}
    base = [sys.executable, os.path.abspath(__file__), "--n-rois", str(args.n_rois),
            "--cv", str(args.cv), "--grid", args.grid, "--random-state", str(args.random_state),
            "--unit", args.unit]
    if args.no_tail_cache:
        base.append("--no-tail-cache")
    if args.breakdown:
        base.append("--breakdown")
    for phase in ("fit", "grid"):
        extra = []
        if phase == "grid" and args.save_cv_results:
            extra = ["--save-cv-results", os.path.abspath(args.save_cv_results)]
        proc = subprocess.run(base + ["--phase", phase] + extra, capture_output=True,
                              text=True, check=True)
        res[phase] = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"{phase}_s: {res[phase]['wall_s']} (cpu {res[phase]['cpu_s']})", flush=True)
        if args.breakdown:
            print(f"{phase}_breakdown_cpu_s: {res[phase]['breakdown_cpu_s']}", flush=True)
    res["fit_s"] = res["fit"]["wall_s"]
    res["grid_search_s"] = res["grid"]["wall_s"]
    res["grid_over_fit"] = round(res["grid_search_s"] / res["fit_s"], 2)
    res["fit_cpu_s"] = res["fit"]["cpu_s"]
    res["grid_search_cpu_s"] = res["grid"]["cpu_s"]
    res["grid_over_fit_cpu"] = round(res["grid_search_cpu_s"] / res["fit_cpu_s"], 2)
    for k, v in res.items():
        print(f"{k}: {v}")
    write_results(res, "grid" if not args.no_tail_cache else "grid_no_tail_cache")
    return res


if __name__ == "__main__":
    main()
