"""The ``skcalc`` command line.

``skcalc demo``                              the paper's protocol on the synthetic cohort
``skcalc train MANIFEST --out MODEL``        fit the method on a manifest, save a safe model file
``skcalc predict MODEL MANIFEST --out CSV``  probabilities and decisions per ROI
``skcalc evaluate MANIFEST --out DIR``       the paper's protocol on a manifest, with its report
``skcalc segment IMAGE --out DIR``           label image, overlay and counts of one image
``skcalc segment-demo``                      segment one synthetic ROI, write an overlay PNG

Manifests are CSV files described in :func:`skcalc.io.load_manifest`. Model files are
skops files (:mod:`skcalc.persistence`): loading one never runs code from it.

Exit codes: 0 success, 1 bad input or a failed step (the message, on stderr, says which),
2 usage error. Outputs go only where ``--out`` says, written atomically; every command says
what it wrote where. ``SKCALC_DEBUG=1`` shows the traceback of an error.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

__all__ = ["main"]

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


def _say(msg: str) -> None:
    print(msg, flush=True)


def _out_dir(path: str) -> Path:
    out = Path(path).expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {str(out)!r} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    return out


def _out_file(path: str) -> Path:
    out = Path(path).expanduser().resolve()
    if out.is_dir():
        raise ValueError(f"--out {str(out)!r} is a folder; give a file name")
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


def _cmd_segment(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from .io import read_mammogram, save_figure_atomic, write_image_atomic, write_json_atomic
    from .plotting import plot_roi
    from .roi import ROI
    from .segmentation import HDoGRegSegmenter

    src = Path(args.image).expanduser()
    t0 = time.perf_counter()
    image, spacing, meta = read_mammogram(src)
    t_read = time.perf_counter() - t0
    if args.spacing is not None:
        spacing = (args.spacing, args.spacing)
    if spacing is None:
        raise ValueError(f"{src}: the file gives no pixel spacing; pass --spacing MM")
    regressor = {"default": "default", "none": None}.get(args.regressor, args.regressor)
    # Only DICOM says how many bits are used; a PNG/TIFF/NPY container depth (16 for 12-bit
    # data) would mis-scale the HDoG threshold, so the depth is inferred from the values.
    bits = args.bit_depth or (meta.get("bits_stored") if meta.get("format") == "dicom" else None)
    roi = ROI(image, spacing=spacing, meta={"roi_id": src.stem, "bits_stored": bits})
    seg = HDoGRegSegmenter(regressor=regressor, combine=args.combine)
    t0 = time.perf_counter()
    labels = seg.fit_transform([roi])[0].calcifications
    t_seg = time.perf_counter() - t0
    n = int(labels.max())
    out = _out_dir(args.out)
    fmt = args.format
    if fmt == "png" and n > np.iinfo(np.uint16).max:
        fmt = "npy"  # more objects than a 16-bit PNG can label
    label_path = out / f"{src.stem}_labels.{fmt}"
    write_image_atomic(label_path, labels.astype(np.uint16) if fmt == "png" else labels)
    t0 = time.perf_counter()
    h, w = labels.shape
    fig, ax = plt.subplots(figsize=(8, 8 * h / w))
    plot_roi(roi.replace(calcifications=labels), ax=ax, title=f"{src.name}: {n} calcifications")
    overlay_path = out / f"{src.stem}_overlay.png"
    save_figure_atomic(fig, overlay_path, dpi=max(100, min(300, w // 8)))
    plt.close(fig)
    t_plot = time.perf_counter() - t0
    areas = np.bincount(labels.ravel())[1:] * spacing[0] * spacing[1]
    summary = {
        "image": str(src.resolve()),
        "shape": [h, w],
        "spacing_mm": list(spacing),
        "n_calcifications": n,
        "median_area_mm2": float(np.median(areas)) if n else None,
        "regressor": str(args.regressor),
        "combine": args.combine,
        "seconds": {"read": t_read, "segment": t_seg, "overlay": t_plot},
        "labels": str(label_path),
        "overlay": str(overlay_path),
    }
    write_json_atomic(out / f"{src.stem}_segmentation.json", summary)
    _say(
        f"{src.name}: {h}x{w} px at {spacing[0]:g} mm, {n} calcifications "
        f"(read {t_read:.2f} s, segmented {t_seg:.2f} s)"
    )
    _say(f"labels written to {label_path}")
    _say(f"overlay written to {overlay_path}")
    _say(f"summary written to {out / (src.stem + '_segmentation.json')}")
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


def _load_labelled_manifest(path: str, *, n_folds: int):
    """Manifest with labels and exam groups, enough of each class for ``n_folds`` folds."""
    import numpy as np

    from .io import load_manifest

    rois, y, groups = load_manifest(path)
    if y is None:
        raise ValueError(f"{path}: the manifest has no 'label' column; it is needed here")
    if groups is None:
        raise ValueError(
            f"{path}: the manifest has no 'exam_id' or 'patient_id' column; exams are needed "
            "to keep each exam on one side of every split"
        )
    for label, name in ((0, "benign"), (1, "actionable")):
        n_exams = len(set(groups[y == label]))
        if n_exams < n_folds:
            raise ValueError(
                f"{path}: {n_exams} exam(s) with {name} ROIs; at least {n_folds} are needed "
                f"for {n_folds}-fold grouped cross-validation (use --cv to lower it)"
            )
    return rois, np.asarray(y), groups


def _summary(rois, y, groups) -> str:
    return f"{len(rois)} ROIs, {int(y.sum())} actionable, {len(set(groups))} exams"


def _pipeline_from_args(args: argparse.Namespace):
    from .pipeline import make_calcification_pipeline

    return make_calcification_pipeline(
        n_clusters=args.n_clusters,
        threshold=args.threshold,
        aggregation=args.aggregation,
        n_jobs=args.n_jobs,
        random_state=args.random_state,
    )


def _grid_from_args(args: argparse.Namespace) -> dict:
    from .pipeline import paper_param_grid

    return paper_param_grid(aggregation=args.aggregation, lightgbm=not args.small_grid)


def _cmd_train(args: argparse.Namespace) -> int:
    from .model_selection import grid_search
    from .persistence import save_model

    out = _out_file(args.out)
    n_folds = args.cv if args.tune else 1
    rois, y, groups = _load_labelled_manifest(args.manifest, n_folds=n_folds)
    _say(_summary(rois, y, groups))
    pipe = _pipeline_from_args(args)
    t0 = time.perf_counter()
    info: dict = {}
    if args.tune:
        grid = _grid_from_args(args)
        _say(f"grid search over {grid} ({args.cv}-fold grouped, sensitivity-first) ...")
        search = grid_search(
            pipe, rois, y, groups, grid, cv=args.cv, random_state=args.random_state
        )
        model = search.best_estimator_
        info["best_params"] = dict(search.best_params_)  # JSON-encoded by save_model
        _say(f"best parameters: {info['best_params']}")
    else:
        model = pipe.fit(rois, y)
    elapsed = time.perf_counter() - t0
    meta = {
        "manifest": str(Path(args.manifest).resolve()),
        "n_rois": len(rois),
        "n_actionable": int(y.sum()),
        "n_exams": len(set(groups)),
        "params": {
            "n_clusters": args.n_clusters,
            "threshold": args.threshold,
            "aggregation": args.aggregation,
            "random_state": args.random_state,
        },
        "fit_seconds": elapsed,
        **info,
    }
    save_model(model, out, metadata=meta)
    _say(f"trained in {elapsed:.1f} s; model written to {out}")
    return EXIT_OK


def _threshold_of(model) -> float:
    """Decision threshold of a fitted pipeline's final ThresholdedClassifier."""
    final = model.steps[-1][1] if hasattr(model, "steps") else model
    threshold = getattr(final, "threshold", None)
    if isinstance(threshold, str) and threshold == "auto":
        return 0.5
    if not isinstance(threshold, (int, float)):
        raise ValueError(
            f"the model's final step {type(final).__name__} has no numeric decision threshold"
        )
    return float(threshold)


def _cmd_predict(args: argparse.Namespace) -> int:
    import csv
    import io as _io

    from .io import load_manifest, write_text_atomic
    from .persistence import load_model

    out = _out_file(args.out)
    model, info = load_model(args.model, return_metadata=True)
    trained = info["metadata"].get("n_rois")
    _say(
        f"model {Path(args.model).resolve()} (skcalc {info['skcalc_version']}, "
        f"{info['created']}" + (f", trained on {trained} ROIs)" if trained else ")")
    )
    rois, y, _ = load_manifest(args.manifest)
    threshold = _threshold_of(model)
    t0 = time.perf_counter()
    proba = model.predict_proba(rois)[:, 1]
    buf = _io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(
        ["roi_id", "probability", "decision", "threshold"] + (["label"] if y is not None else [])
    )
    for i, (roi, p) in enumerate(zip(rois, proba)):
        # repr: the shortest text that reads back as exactly the same float.
        row = [
            roi.roi_id,
            repr(float(p)),
            "actionable" if p >= threshold else "benign",
            repr(threshold),
        ]
        writer.writerow(row + ([int(y[i])] if y is not None else []))
    write_text_atomic(out, buf.getvalue())
    n_pos = int((proba >= threshold).sum())
    _say(
        f"{len(rois)} ROIs scored in {time.perf_counter() - t0:.1f} s: {n_pos} actionable, "
        f"{len(rois) - n_pos} benign at threshold {threshold:g}"
    )
    _say(f"predictions written to {out}")
    return EXIT_OK


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from ._demo import format_comparison
    from .io import write_json_atomic, write_text_atomic
    from .model_selection import evaluate_protocol

    out = _out_dir(args.out)
    rois, y, groups = _load_labelled_manifest(
        args.manifest, n_folds=max(args.cv, args.n_outer if args.nested else 0, 2)
    )
    _say(_summary(rois, y, groups))
    grid = _grid_from_args(args)
    _say(
        f"exam-level split (test size {args.test_size:g}), {args.cv}-fold grouped grid search "
        f"over {grid}" + (f", {args.n_outer}-fold nested CV" if args.nested else "")
    )
    res = evaluate_protocol(
        _pipeline_from_args(args),
        rois,
        y,
        groups,
        grid,
        test_size=args.test_size,
        cv=args.cv,
        nested=args.nested,
        n_outer=args.n_outer,
        n_bootstrap=args.n_bootstrap,
        random_state=args.random_state,
    )
    _say(f"best parameters: {res.best_params}")
    table = format_comparison({"bag of clusters": res.report})
    _say(table)
    report = {
        "manifest": str(Path(args.manifest).resolve()),
        "settings": {
            "cv": args.cv,
            "test_size": args.test_size,
            "nested": args.nested,
            "n_outer": args.n_outer,
            "n_bootstrap": args.n_bootstrap,
            "grid": grid,
            "aggregation": args.aggregation,
            "random_state": args.random_state,
        },
        "test_roi_ids": [rois[i].roi_id for i in res.test_index],
        **res.to_dict(),
    }
    paths = [out / "report.json", out / "table.txt", out / "metrics.csv"]
    write_json_atomic(paths[0], report)
    write_text_atomic(paths[1], table + "\n")
    write_text_atomic(paths[2], res.to_frame().to_csv(index=False))
    _say("wrote " + ", ".join(str(p) for p in paths))
    return EXIT_OK


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {value}")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {value}")
    return value


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a probability in [0, 1], got {value}")
    return value


def _build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="skcalc",
        description="Benign vs actionable amorphous breast calcifications (Marathe et al.).",
        epilog="Exit codes: 0 success, 1 bad input or failed step, 2 usage error.",
    )
    parser.add_argument("--version", action="version", version=f"skcalc {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("demo", help="the paper's protocol on the synthetic cohort")
    p.add_argument("--out", default="skcalc-out", help="output folder (default: skcalc-out)")
    p.add_argument("--quick", action="store_true", help="small cohort and grid (< 2 min)")
    p.add_argument("--nested", action="store_true", help="also run the 4x5 nested CV")
    p.add_argument("--n-jobs", type=int, default=None, help="parallel jobs (default: all cores)")
    p.add_argument("--random-state", type=int, default=0)
    p.set_defaults(func=_cmd_demo)

    def add_model_args(p):
        p.add_argument("--n-clusters", type=_positive_int, default=15, help="K (default 15)")
        p.add_argument(
            "--threshold",
            type=_probability,
            default=0.4,
            help="decision threshold on P(actionable) (default 0.4)",
        )
        p.add_argument(
            "--aggregation",
            choices=("bag", "meanstd"),
            default="bag",
            help="bag of clusters (the paper's method) or mean/std baseline",
        )
        p.add_argument(
            "--n-jobs", type=int, default=None, help="parallel jobs of the per-ROI image stages"
        )
        p.add_argument("--random-state", type=int, default=0)

    def add_grid_args(p):
        p.add_argument(
            "--small-grid",
            action="store_true",
            help="search K and the threshold only (no LightGBM grid)",
        )
        p.add_argument(
            "--cv",
            type=_positive_int,
            default=5,
            help="grouped cross-validation folds of the grid search (default 5)",
        )

    p = sub.add_parser("train", help="fit the method on a manifest CSV, save a model file")
    p.add_argument("manifest", help="CSV manifest with a label column")
    p.add_argument("--out", required=True, help="model file to write (.skops)")
    p.add_argument(
        "--tune",
        action="store_true",
        help="grid-search K, threshold and LightGBM first (paper grid)",
    )
    add_model_args(p)
    add_grid_args(p)
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("predict", help="score the ROIs of a manifest with a model file")
    p.add_argument("model", help="model file written by 'skcalc train'")
    p.add_argument("manifest", help="CSV manifest (a label column is copied if present)")
    p.add_argument("--out", required=True, help="CSV to write")
    p.set_defaults(func=_cmd_predict)

    p = sub.add_parser("evaluate", help="the paper's protocol on a manifest")
    p.add_argument("manifest", help="CSV manifest with label and exam_id/patient_id columns")
    p.add_argument("--out", default="skcalc-evaluate", help="output folder")
    p.add_argument("--nested", action="store_true", help="also run the nested CV")
    p.add_argument(
        "--n-outer", type=_positive_int, default=4, help="outer folds of the nested CV (default 4)"
    )
    p.add_argument(
        "--test-size",
        type=_fraction,
        default=0.25,
        help="fraction of exams held out (default 0.25)",
    )
    p.add_argument(
        "--n-bootstrap",
        type=int,
        default=1000,
        help="bootstrap resamples of the confidence intervals (default 1000)",
    )
    add_model_args(p)
    add_grid_args(p)
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("segment", help="segment the calcifications of one image file")
    p.add_argument("image", help="DICOM, PNG, TIFF, PGM or NPY file")
    p.add_argument("--out", default="skcalc-segment", help="output folder")
    p.add_argument("--spacing", type=float, default=None, help="pixel spacing in mm")
    p.add_argument("--bit-depth", type=int, default=None, help="bits of the stored values")
    p.add_argument(
        "--regressor", default="default", help="'default', 'none' (HDoG only) or a weights file"
    )
    p.add_argument(
        "--combine", default="overlap", choices=["overlap", "multiply", "cnn", "hdog"]
    )
    p.add_argument("--format", default="png", choices=["png", "npy"], help="label image format")
    p.set_defaults(func=_cmd_segment)

    p = sub.add_parser("segment-demo", help="segment one synthetic ROI, write an overlay PNG")
    p.add_argument("--out", default="skcalc-out")
    p.add_argument("--random-state", type=int, default=0)
    p.set_defaults(func=_cmd_segment_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``skcalc`` command; returns the exit code.

    Examples
    --------
    >>> from skcalc.cli import main
    >>> main(["--version"])  # doctest: +ELLIPSIS
    skcalc ...
    0
    """
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 for --help/--version
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    from .exceptions import SkcalcWarning

    debug = bool(os.environ.get("SKCALC_DEBUG"))
    try:
        with warnings.catch_warnings():
            # Each skcalc notice once: a grid search would repeat it for every fold.
            warnings.simplefilter("once", SkcalcWarning)
            return int(args.func(args) or EXIT_OK)
    except KeyboardInterrupt:
        print(f"skcalc {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if debug:
            raise
        # Bad input raises ValueError/TypeError/OSError with a message naming the problem;
        # anything else is a failed step, reported with its type.
        expected = isinstance(exc, (ValueError, TypeError, OSError))
        text = str(exc) if expected else f"{type(exc).__name__}: {exc}"
        print(f"skcalc {args.command}: error: {text}", file=sys.stderr)
        if not expected:
            print("(set SKCALC_DEBUG=1 to see the traceback)", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
