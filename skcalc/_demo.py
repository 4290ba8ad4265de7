"""``skcalc demo``: every result of the paper on the embedded synthetic cohort.

Images are the unit (ROIs pooled per image), the paper's exclusions on. Exam-level 75/25
split (Table 1); 5-fold grouped grid search over K, the decision threshold and the five
LightGBM settings (``paper_param_grid("paper")``; ``"quick"`` with ``--quick``), scored
sensitivity-first; refit; held-out Tables 2 and 3 for the bag-of-clusters method and the
mean/std baseline. Then the nested CV with every comparison of the paper
(:mod:`skcalc._paper`): 4 outer grouped stratified folds, of which fold 0 is the held-out
split (its grid search is reused), folds 1-3 searched with the smaller
``paper_param_grid("small")`` (``"quick"`` with ``--quick``) to keep the demo within
10 minutes on 2 cores; the deep baselines (ResNet-50 and VGG-16: fine-tuned, fine-tuned
features + LightGBM, not fine-tuned features + LightGBM) at threshold 0.4 with
:data:`skcalc._paper.DEEP_DEFAULTS` (32 px input, at most 3 epochs). Figure 6, the
supplementary threshold table, the named feature importances and the biopsies avoided
follow; everything goes to the console, ``table.txt``, ``report.json`` and ``report.html``.
"""

from __future__ import annotations

import platform
import resource
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from ._paper import DEEP_DEFAULTS, format_comparison, format_table1
from .exceptions import SkcalcWarning

__all__ = ["run_demo", "format_comparison", "format_table1"]


def _say(msg: str) -> None:
    print(msg, flush=True)


def _peak_rss_mb() -> float:
    # ru_maxrss is in kB on Linux; children are the joblib workers.
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    scale = 1 / 1024 if sys.platform != "darwin" else 1 / 1024**2
    return max(own, kids) * scale


def _warm_image_stages(pipe: Any, images: list, n_jobs: int | None) -> int:
    """Run the image stages once per image (its ROIs pooled), in chunks, so progress shows.

    They are memoised per record: the protocol, which analyses the same pooled images, reads
    them from the cache. Returns the number of images with fewer than two segmented
    calcifications.
    """
    seg, masks = pipe.named_steps["segment"], pipe.named_steps["masks"]
    features = pipe.named_steps["features"]
    extract = features.transformer_list[0][1].named_steps["extract"]
    topo = features.transformer_list[1][1].named_steps["topology"]
    chunk = max(1, len(images) // 10)
    t0 = time.perf_counter()
    n_calc = n_few = 0
    for start in range(0, len(images), chunk):
        part = images[start : start + chunk]
        with warnings.catch_warnings():
            # counted and reported once below instead of once per chunk
            warnings.simplefilter("ignore", SkcalcWarning)
            part = masks.fit_transform(seg.fit_transform(part))
            extract.fit_transform(part)
            topo.fit_transform(part)
        n_calc += sum(r.masks.n_objects for r in part)
        n_few += sum(r.masks.n_objects < 2 for r in part)
        done = min(start + chunk, len(images))
        _say(
            f"    image stages: {done:>4}/{len(images)} images, {n_calc} calcifications, "
            f"{time.perf_counter() - t0:6.1f} s"
        )
    if n_few:
        _say(
            f"    {n_few} image(s) have fewer than two segmented calcifications; the protocol "
            "excludes such samples, as the paper did (counts per class in report.json)"
        )
    return n_few


def run_demo(out: Path, **kwargs: Any) -> int:
    """Run the demo and write ``report.json``, ``table.txt``, ``report.html``, ``roc.png``,
    ``figure6_roc.png`` and an overlay.

    Keyword arguments: ``quick`` (72 ROIs, quick grids, 1 epoch), ``n_jobs`` (scikit-learn's
    convention: None = 1, -1 = all cores), ``random_state``, ``nested`` (default True: the
    nested CV with every comparison), ``deep`` (default True: the deep baselines in it).
    The warning filters it sets are undone on return.
    """
    with warnings.catch_warnings():
        return _run_demo(out, **kwargs)


def _run_demo(
    out: Path,
    *,
    quick: bool = False,
    n_jobs: int | None = None,
    random_state: int = 0,
    nested: bool = True,
    deep: bool = True,
) -> int:
    import joblib
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ._paper import paper_text, run_paper_analysis, write_paper_outputs
    from .datasets import make_calcification_cohort
    from .io import save_figure_atomic
    from .pipeline import make_calcification_pipeline
    from .plotting import plot_roi
    from .samples import pool_by_image

    warnings.filterwarnings("ignore", category=FutureWarning)
    t_start = time.perf_counter()
    cpu_start = time.process_time()
    # scikit-learn's convention: None means 1, -1 all cores.
    n_jobs = 1 if n_jobs is None else n_jobs
    n_cores = joblib.effective_n_jobs(n_jobs)
    out = Path(out)
    n_rois = 72 if quick else 276
    deep_archs = ("resnet50", "vgg16") if (deep and nested) else ()
    deep_params = {**DEEP_DEFAULTS, **({"epochs": 1} if quick else {})}
    _say(f"skcalc {__version__} demo ({'quick' if quick else 'full'}), output in {out}")
    _say(f"[1/5] synthetic cohort: {n_rois} ROIs (random_state={random_state})")
    t0 = time.perf_counter()
    rois, y, groups = make_calcification_cohort(n_rois=n_rois, random_state=random_state)
    t_gen = time.perf_counter() - t0
    n_images = len({r.meta.get("image_id") or r.roi_id for r in rois})
    _say(
        f"    {len(rois)} ROIs in {n_images} images of {len(set(groups))} exams, "
        f"{int(y.sum())} actionable ROIs ({t_gen:.1f} s)"
    )

    # Shared by the parallel workers of the image stages; removed at the end (it is not an
    # output).
    cache_dir = tempfile.TemporaryDirectory(prefix="skcalc-demo-cache-")
    memory = joblib.Memory(Path(cache_dir.name), verbose=0)

    def make_pipeline(aggregation: str):
        return make_calcification_pipeline(aggregation=aggregation, memory=memory,
                                           n_jobs=n_jobs, random_state=random_state)

    _say("[2/5] image stages (segmentation, masks, local and topology features), once per image")
    t0 = time.perf_counter()
    # The protocol's unit is the image: warming the ROIs of the 28 two-ROI images would be
    # wasted work, and their pooled records would then run one by one inside the grid search.
    n_few = _warm_image_stages(make_pipeline("bag"), pool_by_image(rois)[0], n_jobs)
    t_image = time.perf_counter() - t0
    # The same notices would repeat for every fold and candidate of the grid search.
    warnings.simplefilter("ignore", SkcalcWarning)

    cv = 3 if quick else 5
    grid = "quick" if quick else "paper"
    nested_grid = "quick" if quick else "small"
    _say("[3/5] held-out split (Tables 1-3) and nested CV with every comparison"
         if nested else "[3/5] held-out split (Tables 1-3)")
    t0 = time.perf_counter()
    analysis = run_paper_analysis(
        rois, y, groups, make_pipeline=make_pipeline, grid=grid, nested_grid=nested_grid,
        cv=cv, nested=nested, deep=deep_archs, deep_params=deep_params,
        deep_threads=1, n_jobs=n_cores, random_state=random_state, say=_say)
    t_analysis = time.perf_counter() - t0

    _say("[4/5] tables")
    table = paper_text(analysis)
    _say("")
    _say(table)
    _say("")

    _say("[5/5] reports")
    # An overlay of one held-out actionable image, as the pipeline segmented it, with the
    # model's probability and decision.
    bag_res = analysis["results"]["bag of clusters"]
    model = bag_res.search.best_estimator_
    images = analysis["images"]
    test_images = [images[i] for i in bag_res.test_index]
    pick = int(np.argmax(bag_res.y_test)) if bag_res.y_test.any() else 0
    shown = model.named_steps["masks"].transform(
        model.named_steps["segment"].transform([test_images[pick]])
    )[0]
    fig, ax = plt.subplots(figsize=(7, 7))
    plot_roi(shown, ax=ax, show_background=True, proba=float(bag_res.y_score[pick]),
             threshold=float(bag_res.threshold), y_true=int(bag_res.y_test[pick]))
    overlay_path = out / "example_overlay.png"
    save_figure_atomic(fig, overlay_path)
    plt.close(fig)

    settings = {
        "quick": quick,
        "n_rois": n_rois,
        "random_state": random_state,
        "cv_folds": cv,
        "n_jobs": n_jobs,
        "held_out_grid": grid,
        "nested": nested,
        "nested_grid_folds_1_to_3": nested_grid if nested else None,
        "deep": list(deep_archs),
        "deep_params": deep_params if deep_archs else None,
        "refit": "best mean sensitivity, then best mean specificity",
        "python": platform.python_version(),
        "skcalc_version": __version__,
    }
    analysis["payload"]["cohort"] = {
        "n_rois": len(rois),
        "n_images": n_images,
        "n_actionable_rois": int(y.sum()),
        "n_exams": len(set(groups)),
        "n_images_fewer_than_two_calcifications": int(n_few),
        "generation_s": t_gen,
    }
    analysis["payload"]["timings_s"].update(image_stages=t_image, analysis=t_analysis)
    paths = write_paper_outputs(out, analysis, title="skcalc demo: every result of the paper "
                                "on the synthetic cohort", settings=settings, say=_say)
    wall = time.perf_counter() - t_start
    cpu = time.process_time() - cpu_start
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    _say(f"wall time {wall:.1f} s, CPU time {cpu:.1f} s in this process "
         f"(+{kids.ru_utime + kids.ru_stime:.1f} s in worker processes), "
         f"peak memory {_peak_rss_mb():.0f} MB")
    for key in ("report", "table", "html", "roc", "figure6"):
        _say(f"wrote {paths[key]}")
    _say(f"wrote {overlay_path}")
    cache_dir.cleanup()
    return 0
