"""The full pipeline: fit, predict and the paper's grid search, with the per-ROI cache.

On the synthetic cohort (``--n-rois``, default 276 as in the paper), in one process
(``n_jobs=1``) and in this order:

1. ``fit`` of ``make_calcification_pipeline()`` on all ROIs with an empty cache (the
   baseline: one fit, image stages included), then the same fit again with the cache warm:
   the difference is the image stages' time, the warm fit is the "tail" (k-means bag,
   SMOTE-ENN, LightGBM);
2. ``predict_proba`` on all ROIs, cache cold and warm;
3. ``skcalc.model_selection.grid_search`` over ``paper_param_grid(--grid)`` (default
   ``"small"``, 48 candidates; ``"paper"`` has 384), 5-fold grouped, refit, caches cold
   again (per-ROI and tail): its time relative to one cold fit is the cost of tuning; with
   the per-ROI cache the image stages run once per ROI, not once per fold and candidate,
   and the tail's memoisation fits each distinct k-means/SMOTE/LightGBM once.
   ``benchmarks/bench_grid.py`` measures the same ratio with each run in a fresh process.

Peak RSS (``ru_maxrss``) is recorded after each phase. Prints ``name: value`` lines and
writes ``benchmarks/results/pipeline.json``.
Run: ``python benchmarks/bench_pipeline.py [--n-rois 276] [--cv 5] [--grid small]
[--skip-grid]``.
"""

import argparse
import os
import time
import warnings

import numpy as np
from _common import peak_rss_mb, write_results  # noqa: E402

from skcalc._fitcache import FIT_CACHE
from skcalc.datasets import make_calcification_cohort
from skcalc.model_selection import grid_search
from skcalc.pipeline import make_calcification_pipeline, paper_param_grid
from skcalc.utils._caching import MEMORY_FRONT


def timed(func, *args, **kwargs):
    t0 = time.perf_counter()
    out = func(*args, **kwargs)
    return out, time.perf_counter() - t0




def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-rois", type=int, default=276)
    parser.add_argument("--cv", type=int, default=5)
    parser.add_argument("--random-state", type=int, default=0)
    parser.add_argument("--grid", default="small", choices=["paper", "small", "quick"])
    parser.add_argument("--skip-grid", action="store_true", help="fit and predict only")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")

    res = {"n_rois": args.n_rois, "cpu_count": os.cpu_count(), "n_jobs": 1}
    res["load_average_1min_before"] = round(os.getloadavg()[0], 2)
    (rois, y, groups), t = timed(make_calcification_cohort, args.n_rois, random_state=0)
    res["cohort_generation_s"] = round(t, 2)
    res["rss_after_cohort_mb"] = peak_rss_mb()

    pipe = make_calcification_pipeline(random_state=args.random_state)
    MEMORY_FRONT.clear()
    FIT_CACHE.clear()
    _, t_fit = timed(pipe.fit, rois, y)
    _, t_fit_warm = timed(pipe.fit, rois, y)
    res["fit_s"] = round(t_fit, 2)
    res["fit_warm_cache_s"] = round(t_fit_warm, 2)
    res["image_stages_s"] = round(t_fit - t_fit_warm, 2)
    res["image_stages_ms_per_roi"] = round(1000 * (t_fit - t_fit_warm) / len(rois), 1)
    res["tail_fit_s"] = round(t_fit_warm, 2)
    res["rss_after_fit_mb"] = peak_rss_mb()

    MEMORY_FRONT.clear()
    proba, t_pred = timed(pipe.predict_proba, rois)
    _, t_pred_warm = timed(pipe.predict_proba, rois)
    res["predict_s"] = round(t_pred, 2)
    res["predict_warm_cache_s"] = round(t_pred_warm, 2)
    res["predict_ms_per_roi"] = round(1000 * t_pred / len(rois), 1)
    res["rss_after_predict_mb"] = peak_rss_mb()
    res["train_roc_auc"] = round(
        float(__import__("sklearn.metrics").metrics.roc_auc_score(y, proba[:, 1])), 3
    )

    if not args.skip_grid:
        grid = paper_param_grid(args.grid)
        n_cand = int(np.prod([len(v) for v in grid.values()]))
        MEMORY_FRONT.clear()
        FIT_CACHE.clear()
        search, t_grid = timed(
            grid_search,
            make_calcification_pipeline(random_state=args.random_state),
            rois,
            y,
            groups,
            grid,
            cv=args.cv,
            n_jobs=1,
            random_state=args.random_state,
        )
        n_fits = n_cand * args.cv + 1
        res["grid"] = args.grid
        res["grid_candidates"] = n_cand
        res["grid_fits"] = n_fits
        res["grid_search_s"] = round(t_grid, 2)
        res["grid_search_over_one_fit"] = round(t_grid / t_fit, 2)
        res["grid_image_stages_share"] = round((t_fit - t_fit_warm) / t_grid, 3)
        res["grid_tail_s_per_fit"] = round((t_grid - (t_fit - t_fit_warm)) / n_fits, 3)
        # Without the per-ROI cache every fold's fit (train ROIs) and score (test ROIs) and
        # the refit would run the image stages on all ROIs again: an estimate from the
        # measured parts, not a run.
        res["grid_search_without_cache_estimate_s"] = round(
            t_grid + (n_fits - 1) * (t_fit - t_fit_warm), 1
        )
        res["grid_best_params"] = {k: v for k, v in search.best_params_.items()}
        res["grid_best_sensitivity"] = round(
            float(search.cv_results_["mean_test_sensitivity"][search.best_index_]), 3
        )
        res["grid_tail_computations"] = {
            f"{c}.{s}": n for (c, s), n in FIT_CACHE.computed.items()
        }
        res["rss_after_grid_mb"] = peak_rss_mb()

    res["load_average_1min_after"] = round(os.getloadavg()[0], 2)
    for k, v in res.items():
        print(f"{k}: {v}")
    write_results(res, "pipeline")
    return res


if __name__ == "__main__":
    main()
