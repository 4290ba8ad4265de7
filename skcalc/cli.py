"""The ``skcalc`` command line.

``skcalc demo``                          the paper's protocol on the embedded synthetic cohort
``skcalc train MANIFEST --out MODEL``    fit the method on a manifest, save a safe model file
``skcalc predict MODEL MANIFEST --out CSV``  probabilities and decisions per ROI
``skcalc evaluate MANIFEST --out DIR``   the paper's protocol on a manifest, with its report
``skcalc segment IMAGE --out DIR``       segment the calcifications of one image
``skcalc segment-demo``                  segment one synthetic ROI, write an overlay PNG

Exit codes: 0 success, 1 bad input or a failed step (the message says which), 2 usage error.
Outputs go only where ``--out`` says, written atomically.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = ["main"]

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


def _say(msg: str) -> None:
    print(msg, flush=True)


def _out_dir(path: str) -> Path:
    out = Path(path).expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    return out


def _cmd_segment_demo(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .datasets import make_calcification_cohort
    from .io import save_figure_atomic
    from .metrics import match_objects
    from .plotting import plot_roi
    from .segmentation import HDoGRegSegmenter

    out = _out_dir(args.out)
    rois, y, _ = make_calcification_cohort(n_rois=4, random_state=args.random_state)
    roi = rois[int(y.argmax())]
    t0 = time.perf_counter()
    seg = HDoGRegSegmenter().fit_transform([roi])[0]
    elapsed = time.perf_counter() - t0
    m = match_objects(seg.calcifications, roi.reference)
    fig, ax = plt.subplots(figsize=(7, 7))
    plot_roi(seg, ax=ax)
    path = out / "segment_demo_overlay.png"
    save_figure_atomic(fig, path)
    plt.close(fig)
    _say(
        f"{roi.roi_id}: {m['n_pred']} objects segmented in {elapsed:.2f} s; "
        f"{m['tp']} of {m['n_gt']} reference calcifications found, {m['fp']} false positives"
    )
    _say(f"overlay written to {path}")
    return EXIT_OK


def _cmd_demo(args: argparse.Namespace) -> int:
    from ._demo import run_demo

    return run_demo(
        out=_out_dir(args.out),
        quick=args.quick,
        n_jobs=args.n_jobs,
        random_state=args.random_state,
        nested=args.nested,
    )


def _load_labelled_manifest(path: str):
    from .io import load_manifest

    rois, y, groups = load_manifest(path)
    if y is None:
        raise ValueError(f"{path}: the manifest has no 'label' column; it is needed here")
    if groups is None:
        raise ValueError(f"{path}: the manifest has no exam_id or patient_id column")
    return rois, y, groups


def _pipeline_from_args(args: argparse.Namespace):
    from .pipeline import make_calcification_pipeline

    return make_calcification_pipeline(
        n_clusters=args.n_clusters,
        threshold=args.threshold,
        n_jobs=args.n_jobs,
        random_state=args.random_state,
    )


def _cmd_train(args: argparse.Namespace) -> int:
    from .model_selection import grid_search
    from .persistence import save_model
    from .pipeline import paper_param_grid

    rois, y, groups = _load_labelled_manifest(args.manifest)
    _say(f"{len(rois)} ROIs, {int(y.sum())} actionable, {len(set(groups))} exams")
    pipe = _pipeline_from_args(args)
    t0 = time.perf_counter()
    if args.tune:
        _say("grid search (paper grid, 5-fold grouped, sensitivity-first) ...")
        search = grid_search(pipe, rois, y, groups, paper_param_grid(), verbose=1)
        model, info = search.best_estimator_, {"best_params": search.best_params_}
        _say(f"best parameters: {search.best_params_}")
    else:
        model, info = pipe.fit(rois, y), {}
    elapsed = time.perf_counter() - t0
    meta = {
        "manifest": str(Path(args.manifest).resolve()),
        "n_rois": len(rois),
        "n_actionable": int(y.sum()),
        "fit_seconds": elapsed,
        **{k: {kk: (vv if isinstance(vv, (int, float, str)) else str(vv))
               for kk, vv in v.items()} for k, v in info.items()},
    }
    out = save_model(model, Path(args.out).expanduser(), metadata=meta)
    _say(f"trained in {elapsed:.1f} s; model written to {out.resolve()}")
    return EXIT_OK


def _cmd_predict(args: argparse.Namespace) -> int:
    import csv
    import io as _io

    from .io import load_manifest, write_text_atomic
    from .persistence import load_model

    model = load_model(args.model)
    rois, y, _ = load_manifest(args.manifest)
    t0 = time.perf_counter()
    proba = model.predict_proba(rois)[:, 1]
    threshold = float(model.steps[-1][1].threshold)
    buf = _io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    header = ["roi_id", "probability", "decision", "threshold"]
    writer.writerow(header + (["label"] if y is not None else []))
    for i, (roi, p) in enumerate(zip(rois, proba)):
        row = [roi.roi_id, f"{p:.6f}", "actionable" if p >= threshold else "benign", threshold]
        writer.writerow(row + ([int(y[i])] if y is not None else []))
    out = Path(args.out).expanduser()
    write_text_atomic(out, buf.getvalue())
    n_pos = int((proba >= threshold).sum())
    _say(
        f"{len(rois)} ROIs scored in {time.perf_counter() - t0:.1f} s: {n_pos} actionable, "
        f"{len(rois) - n_pos} benign at threshold {threshold:g}; written to {out.resolve()}"
    )
    return EXIT_OK


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from ._demo import format_comparison
    from .io import write_json_atomic, write_text_atomic
    from .model_selection import evaluate_protocol
    from .pipeline import paper_param_grid

    rois, y, groups = _load_labelled_manifest(args.manifest)
    out = _out_dir(args.out)
    _say(f"{len(rois)} ROIs, {int(y.sum())} actionable, {len(set(groups))} exams")
    res = evaluate_protocol(
        _pipeline_from_args(args),
        rois,
        y,
        groups,
        paper_param_grid(lightgbm=not args.small_grid),
        nested=args.nested,
        random_state=args.random_state,
        verbose=1,
    )
    table = format_comparison({"bag of clusters": res.report})
    _say(table)
    write_json_atomic(out / "report.json", res.to_dict())
    write_text_atomic(out / "table.txt", table + "\n")
    write_text_atomic(out / "metrics.csv", res.to_frame().to_csv(index=False))
    _say(f"wrote {out / 'report.json'}, {out / 'table.txt'} and {out / 'metrics.csv'}")
    return EXIT_OK


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="skcalc",
        description="Benign vs actionable amorphous breast calcifications (Marathe et al.).",
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"skcalc {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="the paper's protocol on the synthetic cohort")
    p.add_argument("--out", default="skcalc-out", help="output folder (default: skcalc-out)")
    p.add_argument("--quick", action="store_true", help="small cohort and grid (< 2 min)")
    p.add_argument("--nested", action="store_true", help="also run the 4x5 nested CV")
    p.add_argument("--n-jobs", type=int, default=None, help="parallel jobs (default: all cores)")
    p.add_argument("--random-state", type=int, default=0)
    p.set_defaults(func=_cmd_demo)

    def add_model_args(p):
        p.add_argument("--n-clusters", type=int, default=15, help="K (default 15)")
        p.add_argument("--threshold", type=float, default=0.4, help="decision threshold")
        p.add_argument("--n-jobs", type=int, default=None)
        p.add_argument("--random-state", type=int, default=0)

    p = sub.add_parser("train", help="fit the method on a manifest CSV, save a model file")
    p.add_argument("manifest")
    p.add_argument("--out", required=True, help="model file to write (.skops)")
    p.add_argument("--tune", action="store_true", help="grid-search K, threshold, LightGBM")
    add_model_args(p)
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("predict", help="score the ROIs of a manifest with a model file")
    p.add_argument("model")
    p.add_argument("manifest")
    p.add_argument("--out", required=True, help="CSV to write")
    p.set_defaults(func=_cmd_predict)

    p = sub.add_parser("evaluate", help="the paper's protocol on a manifest")
    p.add_argument("manifest")
    p.add_argument("--out", default="skcalc-evaluate", help="output folder")
    p.add_argument("--nested", action="store_true", help="also run the 4x5 nested CV")
    p.add_argument("--small-grid", action="store_true", help="K and threshold only")
    add_model_args(p)
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("segment-demo", help="segment one synthetic ROI, write an overlay PNG")
    p.add_argument("--out", default="skcalc-out")
    p.add_argument("--random-state", type=int, default=0)
    p.set_defaults(func=_cmd_segment_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``skcalc`` command; returns the exit code."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or EXIT_OK)
    except (ValueError, TypeError, OSError) as exc:
        print(f"skcalc {args.command}: error: {exc}", file=sys.stderr)
        if os.environ.get("SKCALC_DEBUG"):
            raise
        return EXIT_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
