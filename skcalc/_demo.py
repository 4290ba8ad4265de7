"""``skcalc demo``: the paper's protocol on the embedded synthetic cohort.

Exam-level 75/25 split; 5-fold grouped grid search over K, the decision threshold and
the five LightGBM settings (``paper_param_grid("paper")``; ``"quick"`` with ``--quick``),
scored sensitivity-first; refit; held-out tables like the paper's
Tables 2 and 3 for the bag-of-clusters method and the mean/std baseline; ROC figure; JSON.
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
from .exceptions import SkcalcWarning

__all__ = ["run_demo", "format_comparison"]

_ROWS = [
    ("Accuracy", "accuracy"),
    ("Sensitivity", "sensitivity"),
    ("Specificity", "specificity"),
    ("F1", "f1"),
    ("PPV", "ppv"),
    ("NPV", "npv"),
    ("ROC AUC", "roc_auc"),
]


def _say(msg: str) -> None:
    print(msg, flush=True)


def _peak_rss_mb() -> float:
    # ru_maxrss is in kB on Linux; children are the joblib workers.
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    scale = 1 / 1024 if sys.platform != "darwin" else 1 / 1024**2
    return max(own, kids) * scale


def _fmt(x: float | None, spec: str = ".2f") -> str:
    return "n/a" if x is None else format(x, spec)


def format_comparison(reports: dict[str, dict]) -> str:
    """Paper-style Table 2 (metrics with 95% CIs) and Table 3 (confusion matrices)."""
    names = list(reports)
    width = 30
    lines = ["Held-out test set (95% bootstrap intervals over exams)", ""]
    lines.append(f"{'':<12}" + "".join(f"{n:>{width}}" for n in names))
    for label, key in _ROWS:
        cells = []
        for n in names:
            m = reports[n]["metrics"][key]
            cells.append(f"{_fmt(m['value'])} [{_fmt(m['ci_low'])}, {_fmt(m['ci_high'])}]")
        lines.append(f"{label:<12}" + "".join(f"{c:>{width}}" for c in cells))
    lines.append("")
    lines.append("Confusion matrices (rows: truth; columns: predicted benign / actionable)")
    for n in names:
        cm = reports[n]["confusion_matrix"]
        lines.append(f"  {n} (threshold {reports[n]['threshold']:.2f})")
        lines.append(f"    {'benign':<11}{cm['tn']:>6}{cm['fp']:>6}")
        lines.append(f"    {'actionable':<11}{cm['fn']:>6}{cm['tp']:>6}")
    lines.append("")
    lines.append("Benign ROIs that would be spared biopsy at a fixed sensitivity")
    for n in names:
        parts = []
        for s in reports[n]["spared_biopsies"]:
            parts.append(
                f"sensitivity {s['sensitivity_target']:.2f}: "
                f"{_fmt(s['benign_fraction'], '.0%')} of benign ({s['n_spared']} ROIs, "
                f"threshold {_fmt(s['threshold'], '.3f')})"
            )
        lines.append(f"  {n}: " + "; ".join(parts))
    return "\n".join(lines)


def _warm_image_stages(pipe: Any, rois: list, n_jobs: int | None) -> int:
    """Run the image stages once per ROI, in chunks, so progress is visible.

    They are memoised per ROI: the grid search that follows reads them from the cache.
    Returns the number of ROIs with fewer than two segmented calcifications.
    """
    seg, masks = pipe.named_steps["segment"], pipe.named_steps["masks"]
    features = pipe.named_steps["features"]
    extract = features.transformer_list[0][1].named_steps["extract"]
    topo = features.transformer_list[1][1].named_steps["topology"]
    chunk = max(1, len(rois) // 10)
    t0 = time.perf_counter()
    n_calc = n_few = 0
    for start in range(0, len(rois), chunk):
        part = rois[start : start + chunk]
        with warnings.catch_warnings():
            # counted and reported once below instead of once per chunk
            warnings.simplefilter("ignore", SkcalcWarning)
            part = masks.fit_transform(seg.fit_transform(part))
            extract.fit_transform(part)
            topo.fit_transform(part)
        n_calc += sum(r.masks.n_objects for r in part)
        n_few += sum(r.masks.n_objects < 2 for r in part)
        done = min(start + chunk, len(rois))
        _say(
            f"    image stages: {done:>4}/{len(rois)} ROIs, {n_calc} calcifications, "
            f"{time.perf_counter() - t0:6.1f} s"
        )
    if n_few:
        _say(
            f"    {n_few} ROI(s) have fewer than two segmented calcifications; the protocol "
            "excludes such samples, as the paper did (counts per class in report.json)"
        )
    return n_few


def run_demo(out: Path, **kwargs: Any) -> int:
    """Run the demo and write ``report.json``, ``roc.png``, ``table.txt`` and an overlay.

    Keyword arguments: ``quick``, ``n_jobs``, ``random_state``, ``nested``. The warning
    filters it sets are undone on return.
    """
    with warnings.catch_warnings():
        return _run_demo(out, **kwargs)


def _run_demo(
    out: Path,
    *,
    quick: bool = False,
    n_jobs: int | None = None,
    random_state: int = 0,
    nested: bool = False,
) -> int:
    import joblib
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .datasets import make_calcification_cohort
    from .io import save_figure_atomic, write_json_atomic, write_text_atomic
    from .model_selection import evaluate_protocol
    from .pipeline import make_calcification_pipeline, paper_param_grid
    from .plotting import plot_confusion_matrix, plot_roc, plot_roi

    warnings.filterwarnings("ignore", category=FutureWarning)
    t_start = time.perf_counter()
    n_jobs = -1 if n_jobs is None else n_jobs
    n_rois = 72 if quick else 276
    _say(f"skcalc {__version__} demo ({'quick' if quick else 'full'}), output in {out}")
    _say(f"[1/5] synthetic cohort: {n_rois} ROIs (random_state={random_state})")
    t0 = time.perf_counter()
    rois, y, groups = make_calcification_cohort(n_rois=n_rois, random_state=random_state)
    t_gen = time.perf_counter() - t0
    _say(
        f"    {len(rois)} ROIs, {int(y.sum())} actionable, {len(set(groups))} exams "
        f"({t_gen:.1f} s)"
    )

    # Shared by the parallel workers of the image stages; removed at the end (it is not an
    # output).
    cache_dir = tempfile.TemporaryDirectory(prefix="skcalc-demo-cache-")
    cache = Path(cache_dir.name)
    memory = joblib.Memory(cache, verbose=0)
    bag = make_calcification_pipeline(memory=memory, n_jobs=n_jobs, random_state=random_state)
    meanstd = make_calcification_pipeline(
        aggregation="meanstd", memory=memory, n_jobs=n_jobs, random_state=random_state
    )
    _say("[2/5] image stages (segmentation, masks, local and topology features), once per ROI")
    t0 = time.perf_counter()
    n_few = _warm_image_stages(bag, rois, n_jobs)
    t_image = time.perf_counter() - t0
    # The same notices would repeat for every fold and candidate of the grid search.
    warnings.simplefilter("ignore", SkcalcWarning)

    cv = 3 if quick else 5
    size = "quick" if quick else "paper"
    grids = {
        "bag of clusters": paper_param_grid(size),
        "mean/std baseline": paper_param_grid(size, aggregation="meanstd"),
    }
    results = {}
    for step, (name, pipe) in enumerate(
        [("bag of clusters", bag), ("mean/std baseline", meanstd)], start=3
    ):
        grid = grids[name]
        n_cand = int(np.prod([len(v) for v in grid.values()]))
        _say(
            f"[{step}/5] {name}: exam-level 75/25 split, {cv}-fold grouped grid search over "
            f"{n_cand} candidates ({n_cand * cv} fits), sensitivity-first"
        )
        t0 = time.perf_counter()
        # The grid search runs in this process: the image stages come from the in-process
        # cache, which worker processes would have to re-read from disk.
        res = evaluate_protocol(
            pipe,
            rois,
            y,
            groups,
            grid,
            cv=cv,
            nested=nested,
            n_jobs=1,
            random_state=random_state,
            verbose=1,
            unit="image",
        )
        res.timings["total"] = time.perf_counter() - t0
        _say(f"    best: {res.best_params} ({res.timings['total']:.1f} s)")
        results[name] = res

    _say("[5/5] reports")
    reports = {name: r.report for name, r in results.items()}
    table = format_table1(results["bag of clusters"].split) + "\n\n" + format_comparison(reports)
    _say("")
    _say(table)
    _say("")

    fig, axes = plt.subplots(1, 3, figsize=(17, 5), layout="constrained")
    for name, r in results.items():
        plot_roc(r.y_test, r.y_score, ax=axes[0], label=name, threshold=r.threshold)
    axes[0].set_title("ROC, held-out exams")
    for ax, (name, r) in zip(axes[1:], results.items()):
        plot_confusion_matrix(r.y_test, (r.y_score >= r.threshold).astype(int), ax=ax)
        ax.set_title(f"{name}, threshold {r.threshold:.2f}")
    roc_path = out / "roc.png"
    save_figure_atomic(fig, roc_path)
    plt.close(fig)

    # An overlay of one held-out actionable ROI, as the pipeline segmented it.
    bag_res = results["bag of clusters"]
    model = bag_res.search.best_estimator_
    from .samples import pool_by_image

    images, _, image_groups = pool_by_image(rois, None, groups)
    test_rois = [images[i] for i in bag_res.test_index]
    pick = int(np.argmax(bag_res.y_test)) if bag_res.y_test.any() else 0
    shown = model.named_steps["masks"].transform(
        model.named_steps["segment"].transform([test_rois[pick]])
    )[0]
    fig, ax = plt.subplots(figsize=(7, 7))
    plot_roi(shown, ax=ax, show_background=True)
    overlay_path = out / "example_overlay.png"
    save_figure_atomic(fig, overlay_path)
    plt.close(fig)

    wall = time.perf_counter() - t_start
    payload = {
        "skcalc_version": __version__,
        "python": platform.python_version(),
        "settings": {
            "quick": quick,
            "n_rois": n_rois,
            "random_state": random_state,
            "cv_folds": cv,
            "n_jobs": n_jobs,
            "grids": grids,
            "refit": "best mean sensitivity, then best mean specificity",
        },
        "cohort": {
            "n_rois": len(rois),
            "n_actionable": int(y.sum()),
            "n_exams": len(set(groups)),
            "n_rois_fewer_than_two_calcifications": int(n_few),
            "generation_s": t_gen,
        },
        "results": {name: r.to_dict() for name, r in results.items()},
        "timings_s": {
            "image_stages": t_image,
            "wall": wall,
            **{f"protocol[{n}]": r.timings for n, r in results.items()},
        },
        "peak_rss_mb": _peak_rss_mb(),
    }
    report_path = out / "report.json"
    write_json_atomic(report_path, payload)
    table_path = out / "table.txt"
    write_text_atomic(table_path, table + "\n")
    _say(f"wall time {wall:.1f} s, peak memory {payload['peak_rss_mb']:.0f} MB")
    _say(f"wrote {report_path}")
    _say(f"wrote {table_path}")
    _say(f"wrote {roc_path}")
    _say(f"wrote {overlay_path}")
    from .reporting import write_protocol_report

    html_path = out / "report.html"
    write_protocol_report(
        html_path,
        results["bag of clusters"],
        groups=image_groups,
        rois=images,
        other_results={"mean/std baseline": results["mean/std baseline"]},
        title="skcalc demo: held-out images",
        overwrite=True,
    )
    _say(f"wrote {html_path}")
    cache_dir.cleanup()
    return 0


def format_table1(split: dict) -> str:
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
    return "\n".join(lines)
