"""The ``skcalc`` command line.

``skcalc demo``                              the paper's protocol on the synthetic cohort
``skcalc train MANIFEST --out MODEL``        fit the method on a manifest, save a safe model file
``skcalc predict MODEL MANIFEST --out CSV``  probabilities and the model's decisions per ROI
``skcalc evaluate MANIFEST --out DIR``       the paper's protocol on a manifest, with its report
``skcalc features MANIFEST --out CSV``       one row per segmented calcification (pyradiomics
                                             batch style: ids, position, size, every feature)
``skcalc segment IMAGE --out DIR``           label image, overlay and counts of one image
``skcalc segment-demo``                      segment one synthetic ROI, write an overlay PNG

Manifests are CSV files described in :func:`skcalc.io.load_manifest`. Model files are
skops files (:mod:`skcalc.persistence`): loading one never runs code from it.

Outputs go only where ``--out`` says, written atomically. An output is never an input (the
model, the manifest, its images, a weights file; compared after resolving symbolic and hard
links), an existing output is replaced only with ``--overwrite``, and the output folder is
checked to be writable before any work starts. Temporary files that a killed run left next
to an output are removed by the next run. ``predict`` reports the model's own decisions
(``model.predict``), whatever score and threshold the model uses. Its CSV has the columns
``roi_id, probability, decision, threshold`` and, when the manifest has labels, ``label``:
decision and label are both the words ``benign`` / ``actionable``
(:func:`skcalc.io.parse_label` reads them back as 0/1). ``evaluate`` writes its held-out
predictions (``predictions.csv``: one row per held-out ROI, per image with ``--paper``) in
the same columns, ``label`` included.

Every command takes ``-q`` (errors only) and ``-v`` (step durations on stdout, every
warning). Progress of the long steps goes to stderr when it is a terminal (never with
``-q``). ``train``, ``predict``, ``evaluate`` and ``features`` take ``--spacing MM`` for
images whose spacing is neither in the manifest nor in a DICOM header; ``train`` needs exam
ids only with ``--tune``.

Exit codes: 0 success, 1 bad input or a failed step (the message, on stderr, says which),
2 usage error. ``SKCALC_DEBUG=1`` shows the traceback of an error.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

__all__ = ["main"]

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2

#: Verbosity of the running command: -1 quiet (-q), 0 normal, >= 1 verbose (-v, -vv).
_STATE = {"verbosity": 0}

#: Words for 0/1 in every CSV skcalc writes (decisions and labels alike).
_LABEL_WORDS = {0: "benign", 1: "actionable"}


def _say(msg: str, *, level: int = 0) -> None:
    """Print a result line on stdout, unless the command runs with less verbosity."""
    if _STATE["verbosity"] >= level:
        print(msg, flush=True)


def _progress_enabled() -> bool:
    """Progress goes to stderr only when it is a terminal and the command is not quiet."""
    if _STATE["verbosity"] < 0:
        return False
    try:
        return bool(sys.stderr.isatty())
    except (AttributeError, ValueError):  # closed or replaced stream
        return False


@contextlib.contextmanager
def _step(what: str):
    """Report a long step on stderr (``what ...`` then ``what: done in 1.2 s``).

    On a terminal only (see :func:`_progress_enabled`); with ``-v`` the duration is also
    printed on stdout, so that logs keep it.
    """
    show = _progress_enabled()
    if show:
        print(f"{what} ...", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    yield
    elapsed = time.perf_counter() - t0
    if show:
        print(f"{what}: done in {elapsed:.1f} s", file=sys.stderr, flush=True)
    _say(f"{what}: {elapsed:.1f} s", level=1)


def _samefile(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def _probe_writable(folder: Path, what: str) -> None:
    """Fail now, before any work, when ``folder`` (or the nearest existing parent) is
    not a writable folder."""
    probe = folder
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise ValueError(f"{what}: {str(probe)!r} is not a folder")
    try:
        fd, tmp = tempfile.mkstemp(dir=probe, prefix=".skcalc-write-test.")
    except OSError as exc:
        raise ValueError(
            f"{what}: cannot write in {str(probe)!r} ({exc.strerror or exc}); choose another --out"
        ) from None
    os.close(fd)
    os.unlink(tmp)


def _check_outputs(paths, inputs, *, overwrite: bool, what: str = "--out") -> None:
    """Refuse outputs that are inputs, or that exist (without ``--overwrite``); clean the
    temporary files of interrupted earlier writes; check the folders are writable."""
    from .io._writers import clean_stale_temporaries

    for out in paths:
        out = Path(out)
        for src in inputs:
            if src is not None and _samefile(out, Path(src)):
                raise ValueError(
                    f"{what} {str(out)!r} is the input {str(src)!r}; refusing to write over "
                    "an input file"
                )
        if out.is_dir():
            raise ValueError(f"{what} {str(out)!r} is a folder; give a file name")
        if out.exists() and not overwrite:
            raise ValueError(f"{what} {str(out)!r} already exists; pass --overwrite to replace it")
        if out.parent.is_dir():
            clean_stale_temporaries(out)
        _probe_writable(out.parent, what)


def _out_dir(path: str) -> Path:
    out = Path(path).expanduser().absolute()
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {str(out)!r} exists and is not a folder")
    _probe_writable(out, "--out")
    return out


def _out_file(path: str) -> Path:
    out = Path(path).expanduser().absolute()
    if out.is_dir():
        raise ValueError(f"--out {str(out)!r} is a folder; give a file name")
    return out


def _spacing_arg(args: argparse.Namespace, what: str = "--spacing"):
    """``--spacing`` checked by the one spacing validator (None when not given)."""
    from ._units import check_spacing

    value = getattr(args, "spacing", None)
    if value is None:
        return None
    return check_spacing(value, name=what)


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
    path = out / "segment_demo_overlay.png"
    _check_outputs([path], [], overwrite=args.overwrite)
    rois, y, _ = make_calcification_cohort(n_rois=4, random_state=args.random_state)
    roi = rois[int(y.argmax())]
    t0 = time.perf_counter()
    with _step(f"segmenting {roi.roi_id}"):
        seg = HDoGRegSegmenter().fit_transform([roi])[0]
    elapsed = time.perf_counter() - t0
    m = match_objects(seg.calcifications, roi.reference)
    fig, ax = plt.subplots(figsize=(7, 7))
    plot_roi(seg, ax=ax)
    save_figure_atomic(fig, path)
    plt.close(fig)
    _say(
        f"{roi.roi_id}: {m['n_pred']} objects segmented in {elapsed:.2f} s; "
        f"{m['tp']} of {m['n_gt']} reference calcifications found, {m['fp']} false positives"
    )
    _say(f"overlay written to {path}")
    return EXIT_OK


def _number_or(text: str, words: Sequence[str], option: str) -> str | float:
    """A CLI value that is one of ``words`` or a number."""
    if text in words:
        return text
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{option} must be one of {', '.join(words)} or a number, "
                         f"got {text!r}") from None  # fmt: skip


def _cmd_segment(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from ._units import check_spacing
    from .features import LocalFeatureExtractor, write_local_features_csv
    from .io import read_mammogram, save_figure_atomic, write_image_atomic, write_json_atomic
    from .masks import MaskBuilder
    from .plotting import plot_roi, save_overlay_png
    from .roi import ROI
    from .segmentation import HDoGRegSegmenter

    src = Path(args.image).expanduser()
    spacing_arg = _spacing_arg(args)  # before reading: a unit slip fails at once
    regressor = {"auto": "auto", "default": "default", "none": None}.get(
        args.regressor, args.regressor
    )
    candidate_filter = {"default": "default", "none": None}.get(
        args.candidate_filter, args.candidate_filter
    )
    threshold = _number_or(args.threshold, ("auto", "authors"), "--threshold")
    operating_point = args.operating_point
    out = _out_dir(args.out)
    fmt = args.format
    outputs = {
        "labels": out / f"{src.stem}_labels.{fmt}",
        "overlay": out / f"{src.stem}_overlay.png",
        "native": out / f"{src.stem}_overlay_native.png",
        "objects": out / f"{src.stem}_objects.csv",
        "summary": out / f"{src.stem}_segmentation.json",
    }
    inputs = [src] + [
        p for p in (regressor, candidate_filter)
        if isinstance(p, str) and p not in ("auto", "default")
    ]  # fmt: skip
    _check_outputs(outputs.values(), inputs, overwrite=args.overwrite)
    t0 = time.perf_counter()
    with _step(f"reading {src.name}"):
        image, spacing, meta = read_mammogram(src, warn_spacing=False)  # checked below
    t_read = time.perf_counter() - t0
    if spacing_arg is not None:
        spacing = spacing_arg
    elif spacing is None:
        raise ValueError(f"{src}: the file gives no pixel spacing; pass --spacing MM")
    else:
        spacing = check_spacing(
            spacing, name=f"{src}: the pixel spacing in the file's header (override: --spacing MM)"
        )
    # DICOM's BitsStored, else the depth the values use (read_mammogram: a 16-bit PNG of
    # 12-bit data is 12), as the Python API gets it from the same reader.
    bits = args.bit_depth or meta.get("bits_stored")
    roi = ROI(image, spacing=spacing, meta={"roi_id": src.stem, "bits_stored": bits})
    seg = HDoGRegSegmenter(
        threshold=threshold,
        operating_point=operating_point,
        fp_calibration=args.fp_calibration,
        candidate_filter=candidate_filter,
        regressor=regressor,
        combine=args.combine,
        polarity=args.polarity,
    )
    t0 = time.perf_counter()
    with _step(f"segmenting {src.name} ({image.shape[0]}x{image.shape[1]} px)"):
        segmented = seg.fit_transform([roi])[0]
        labels = segmented.calcifications
    t_seg = time.perf_counter() - t0
    n = int(labels.max())
    if fmt == "png" and n > np.iinfo(np.uint16).max:
        # more objects than a 16-bit PNG can label
        fmt = "npy"
        outputs["labels"] = out / f"{src.stem}_labels.npy"
        _check_outputs([outputs["labels"]], inputs, overwrite=args.overwrite)
    label_path = outputs["labels"]
    write_image_atomic(label_path, labels.astype(np.uint16) if fmt == "png" else labels)
    t0 = time.perf_counter()
    h, w = labels.shape
    with _step("drawing the overlays"):
        fig, ax = plt.subplots(figsize=(8, 8 * h / w))
        plot_roi(segmented, ax=ax, title=f"{src.name}: {n} calcifications")
        save_figure_atomic(fig, outputs["overlay"], dpi=max(100, min(300, w // 8)))
        plt.close(fig)
        save_overlay_png(outputs["native"], segmented, overwrite=True)
    t_plot = time.perf_counter() - t0
    with _step("measuring each calcification"):
        # Geometry and intensity of every object, one row each (regionprops: cheap, so no
        # object budget: the authors' rule finds thousands on a real mammogram). Nothing
        # here asks for the masks' merge index, so it is never computed: an n x n matrix
        # built pair by pair (10 GB and most of the time for the 50k objects of a busy view).
        masked = MaskBuilder().fit_transform([segmented.replace(region=None)])
        tables = LocalFeatureExtractor(feature_sets=("fg_regionprops",),
                                       max_objects=None).fit_transform(masked)
        write_local_features_csv(tables, outputs["objects"], overwrite=True)
    areas = np.bincount(labels.ravel())[1:] * spacing[0] * spacing[1]
    summary = {
        "image": str(src.resolve()),
        "shape": [h, w],
        "spacing_mm": list(spacing),
        "n_calcifications": n,
        "median_area_mm2": float(np.median(areas)) if n else None,
        "segmentation": segmented.meta.get("segmentation"),
        "regressor": str(args.regressor),
        "combine": args.combine,
        "seconds": {"read": t_read, "segment": t_seg, "overlay": t_plot},
        "labels": str(label_path),
        "overlay": str(outputs["overlay"]),
        "overlay_native": str(outputs["native"]),
        "objects_csv": str(outputs["objects"]),
    }
    write_json_atomic(outputs["summary"], summary)
    _say(
        f"{src.name}: {h}x{w} px at {spacing[0]:g} mm, {n} calcifications "
        f"(read {t_read:.2f} s, segmented {t_seg:.2f} s)"
    )
    seg_summary = segmented.meta.get("segmentation") or {}
    if seg_summary.get("fp_per_cm2") is not None:
        area = seg_summary.get("breast_area_cm2") or float("nan")
        how = (
            f"threshold for {seg_summary['fp_scale']:.2g} x that rate in the filter's table, "
            f"for this image's {seg_summary['candidate_density_per_cm2']:.2g} candidates/cm2"
            if seg_summary.get("fp_calibration") == "image"
            else "threshold from the filter's table"
        )
        _say(
            f"operating point {seg_summary['operating_point']}: "
            f"{seg_summary['fp_per_cm2']:g} FP/cm2 expected ({how}); "
            f"{n / area:.2g} objects/cm2 of {area:.0f} cm2 of breast"
        )
    if seg_summary.get("n_impulse_pixels"):
        _say(
            f"{seg_summary['n_impulse_pixels']} hot pixel(s) repaired before detection "
            "(single-pixel spikes, which the image's air shows its detector makes)"
        )
    if seg_summary.get("n_on_clipped_plateaus"):
        _say(
            f"{seg_summary['n_on_clipped_plateaus']} detection(s) on or next to plateaus at "
            "the image's maximum or large regions of one value (burned-in text, markers, "
            "boxes, clipped tissue) left out"
        )
    _say(f"labels written to {label_path}")
    _say(f"overlays written to {outputs['overlay']} and {outputs['native']}")
    _say(f"per-calcification table written to {outputs['objects']}")
    _say(f"summary written to {outputs['summary']}")
    return EXIT_OK


@contextlib.contextmanager
def _naming_the_roi(rois):
    """Add the ROI id and manifest line to an error that names only an ROI's file.

    The stages name the ROI in their own errors; a lazy image that fails to read names its
    file, which several ROIs of a manifest may share.
    """
    try:
        yield
    except ValueError as exc:
        text = str(exc)
        if getattr(exc, "roi_id", None) is not None or any(
            f"ROI {r.roi_id!r}" in text for r in rois
        ):
            raise
        named = [r for r in rois if r.path and r.path in text]
        if not named:
            raise
        where = ", ".join(
            f"ROI {r.roi_id!r} (line {r.meta.get('manifest_line')})" for r in named[:3]
        )
        raise ValueError(f"{named[0].meta.get('manifest', 'manifest')}, {where}: {text}") from exc


def _cmd_features(args: argparse.Namespace) -> int:
    import numpy as np

    from .exceptions import SkcalcWarning
    from .features import LocalFeatureExtractor, local_features_table
    from .features._local import FEATURE_SETS
    from .io import load_manifest, write_text_atomic
    from .masks import MaskBuilder
    from .segmentation import HDoGRegSegmenter

    out = _out_file(args.out)
    _check_outputs([out], [args.manifest], overwrite=args.overwrite)
    feature_sets = tuple(s.strip() for s in args.feature_sets.split(",") if s.strip())
    unknown = sorted(set(feature_sets) - set(FEATURE_SETS))
    if unknown or not feature_sets:
        raise ValueError(
            f"--feature-sets: unknown {unknown or 'empty list'}; choose among "
            f"{','.join(FEATURE_SETS)}"
        )
    with _step(f"reading the manifest {args.manifest}"):
        rois, y, groups = load_manifest(args.manifest, spacing=_spacing_arg(args))
    _check_outputs([out], sorted({r.path for r in rois if r.path}), overwrite=True)
    t0 = time.perf_counter()
    # The stages and defaults of make_calcification_pipeline, so that the table describes
    # the objects the model sees.
    with warnings.catch_warnings():
        # ROIs without calcification are listed in the result line below (they add no row);
        # the stages' notices about the model's features of such ROIs do not apply here.
        warnings.filterwarnings(
            "ignore", message=r".*have no calcification", category=SkcalcWarning
        )
        with _step(f"segmenting {len(rois)} ROIs"), _naming_the_roi(rois):
            segmented = HDoGRegSegmenter(n_jobs=args.n_jobs).fit_transform(rois)
        with _step("building the masks"), _naming_the_roi(rois):
            masked = MaskBuilder(n_jobs=args.n_jobs).fit_transform(segmented)
        n_objects = sum(int(r.masks.foreground.max()) for r in masked)
        extractor = LocalFeatureExtractor(feature_sets=feature_sets, n_jobs=args.n_jobs,
                                          **_binning(args))
        with _step(f"measuring {n_objects} calcifications"), _naming_the_roi(rois):
            tables = extractor.fit_transform(masked)
    frame = local_features_table(tables)
    # Positions in the image file's pixel grid (what a viewer shows), not in the crop the
    # ROI was cut to: shift by the crop's origin, in pixels and in mm.
    origin = {r.roi_id: (r.box.row0, r.box.col0) if r.box is not None else (0, 0) for r in rois}
    spacing = {r.roi_id: r.spacing for r in rois}
    rows0 = frame["roi_id"].map(lambda i: origin[i][0]).to_numpy(dtype=float)
    cols0 = frame["roi_id"].map(lambda i: origin[i][1]).to_numpy(dtype=float)
    srow = frame["roi_id"].map(lambda i: spacing[i][0]).to_numpy(dtype=float)
    scol = frame["roi_id"].map(lambda i: spacing[i][1]).to_numpy(dtype=float)
    for axis, shift, step in (("row", rows0, srow), ("col", cols0, scol)):
        for col in (f"centroid_{axis}", f"bbox_{axis}_min", f"bbox_{axis}_max"):
            px = frame[f"{col}_px"] + shift.astype(frame[f"{col}_px"].dtype)
            frame[f"{col}_px"] = px
            frame[f"{col}_mm"] = px.to_numpy(dtype=float) * step
    extra = {"image": {r.roi_id: r.meta.get("source", "") for r in rois}}
    if groups is not None:
        extra["exam_id"] = {r.roi_id: str(g) for r, g in zip(rois, groups)}
    if y is not None:
        extra["roi_label"] = {r.roi_id: _LABEL_WORDS[int(v)] for r, v in zip(rois, y)}
    for pos, (name, values) in enumerate(extra.items(), start=1):
        frame.insert(pos, name, frame["roi_id"].map(values))
    # pandas writes the shortest text that reads back as the same float (1.4, not 1.4000...01)
    write_text_atomic(out, frame.to_csv(index=False))
    empty = [t.roi_id for t in tables if t.n_objects == 0]
    _say(
        f"{len(rois)} ROIs, {len(frame)} calcifications, {frame.shape[1]} columns "
        f"in {time.perf_counter() - t0:.1f} s"
        + (f"; {len(empty)} ROI(s) without calcification (no rows): {empty[:5]}" if empty else "")
    )
    if len(frame):
        per_roi = np.array([t.n_objects for t in tables])
        _say(f"calcifications per ROI: median {np.median(per_roi):g}, max {per_roi.max()}", level=1)
    _say(f"per-calcification table written to {out}")
    return EXIT_OK


def _cmd_demo(args: argparse.Namespace) -> int:
    from ._demo import run_demo

    out = _out_dir(args.out)
    names = ("report.json", "table.txt", "report.html", "roc.png", "figure6_roc.png",
             "example_overlay.png")
    existing = [p for p in names if (out / p).exists()]
    if existing and not args.overwrite:
        raise ValueError(
            f"--out {str(out)!r} already holds {', '.join(existing)}; pass --overwrite to "
            "replace them"
        )
    out.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        if _STATE["verbosity"] < 0:
            stack.enter_context(
                contextlib.redirect_stdout(stack.enter_context(open(os.devnull, "w")))
            )
        return run_demo(
            out=out,
            quick=args.quick,
            n_jobs=args.n_jobs,
            random_state=args.random_state,
            nested=args.nested,
            deep=args.deep,
        )


def _load_labelled_manifest(args: argparse.Namespace, *, n_folds: int, need_groups: bool):
    """Manifest with labels (and exam groups when splits are made), both classes present,
    enough exams of each class for ``n_folds`` grouped folds."""
    import numpy as np

    from .io import load_manifest

    path = args.manifest
    with _step(f"reading the manifest {path}"):
        rois, y, groups = load_manifest(path, spacing=_spacing_arg(args))
    if y is None:
        raise ValueError(f"{path}: the manifest has no 'label' column; it is needed here")
    y = np.asarray(y)
    counts = {0: int((y == 0).sum()), 1: int((y == 1).sum())}
    for label, name, other in ((0, "benign", "actionable"), (1, "actionable", "benign")):
        if counts[label] == len(y):
            raise ValueError(
                f"{path}: all {len(y)} ROIs are {name}; training needs both benign and "
                f"actionable ROIs (add {other} ones)"
            )
    if groups is None:
        if need_groups:
            raise ValueError(
                f"{path}: the manifest has no 'exam_id' or 'patient_id' column; exams are "
                "needed to keep each exam on one side of every split"
            )
        return rois, y, None
    if need_groups:
        from .model_selection import check_classes_per_fold

        # before any image is read: the splits check it again on what they are given
        check_classes_per_fold(y, groups, n_folds, str(path), hint="use --cv to lower it")
    return rois, y, groups


def _summary(rois, y, groups) -> str:
    exams = f", {len(set(groups))} exams" if groups is not None else ""
    return f"{len(rois)} ROIs, {int(y.sum())} actionable{exams}"


def _pipeline_from_args(args: argparse.Namespace, aggregation: str | None = None):
    from .pipeline import make_calcification_pipeline

    pipe = make_calcification_pipeline(
        n_clusters=args.n_clusters,
        threshold=args.threshold,
        aggregation=aggregation or args.aggregation,
        n_jobs=args.n_jobs,
        random_state=args.random_state,
    )
    binning = {f"features__local__extract__{k}": v for k, v in _binning(args).items()}
    return pipe.set_params(**binning) if binning else pipe


def _binning(args: argparse.Namespace) -> dict:
    """``--bin-width`` / ``--bin-count`` as LocalFeatureExtractor keywords (given ones)."""
    out = {}
    if getattr(args, "bin_width", None) is not None:
        out["bin_width"] = args.bin_width
    if getattr(args, "bin_count", None) is not None:
        out["bin_count"] = args.bin_count
    return out


def _grid_from_args(args: argparse.Namespace) -> dict:
    from .pipeline import paper_param_grid

    return paper_param_grid(aggregation=args.aggregation, lightgbm=not args.small_grid)


def _cmd_train(args: argparse.Namespace) -> int:
    from .model_selection import grid_search
    from .persistence import save_model

    out = _out_file(args.out)
    _check_outputs([out], [args.manifest], overwrite=args.overwrite)
    rois, y, groups = _load_labelled_manifest(args, n_folds=args.cv, need_groups=args.tune)
    _say(_summary(rois, y, groups))
    # The manifest's images are inputs too.
    _check_outputs([out], sorted({r.path for r in rois if r.path}), overwrite=True)
    pipe = _pipeline_from_args(args)
    t0 = time.perf_counter()
    info: dict = {}
    if args.tune:
        grid = _grid_from_args(args)
        _say(f"grid search over {grid} ({args.cv}-fold grouped, sensitivity-first) ...")
        with _step(f"grid search on {len(rois)} ROIs"), _naming_the_roi(rois):
            search = grid_search(
                pipe, rois, y, groups, grid, cv=args.cv, random_state=args.random_state
            )
        model = search.best_estimator_
        info["best_params"] = dict(search.best_params_)  # JSON-encoded by save_model
        _say(f"best parameters: {info['best_params']}")
    else:
        with _step(f"fitting the pipeline on {len(rois)} ROIs"), _naming_the_roi(rois):
            model = pipe.fit(rois, y)
    elapsed = time.perf_counter() - t0
    meta = {
        "manifest": str(Path(args.manifest).resolve()),
        "n_rois": len(rois),
        "n_actionable": int(y.sum()),
        "n_exams": len(set(groups)) if groups is not None else None,
        # the command line's settings; with --tune, best_params says what the search chose
        # in their place (the model holds both)
        "params": {
            "n_clusters": args.n_clusters,
            "threshold": args.threshold,
            "aggregation": args.aggregation,
            "random_state": args.random_state,
            **_binning(args),
        },
        "fit_seconds": elapsed,
        **info,
    }
    with _step(f"writing {out.name}"):
        save_model(model, out, metadata=meta)
    _say(f"trained in {elapsed:.1f} s; model written to {out}")
    return EXIT_OK


def _threshold_text(model) -> str:
    """The final step's decision threshold, as written in the predictions (informative)."""
    final = model.steps[-1][1] if hasattr(model, "steps") else model
    threshold = getattr(final, "threshold", None)
    if isinstance(threshold, (int, float)) and not isinstance(threshold, bool):
        return repr(float(threshold))
    return str(threshold)


def _cmd_predict(args: argparse.Namespace) -> int:
    import csv
    import io as _io

    import numpy as np

    from .io import load_manifest, write_text_atomic
    from .persistence import load_model

    out = _out_file(args.out)
    _check_outputs([out], [args.model, args.manifest], overwrite=args.overwrite)
    with _step(f"loading the model {args.model}"):
        model, info = load_model(args.model, return_metadata=True)
    trained = info["metadata"].get("n_rois")
    _say(
        f"model {Path(args.model).resolve()} (skcalc {info['skcalc_version']}, "
        f"{info['created']}" + (f", trained on {trained} ROIs)" if trained else ")")
    )
    if not hasattr(model, "predict"):
        raise ValueError(f"{args.model}: the model has no predict method")
    with _step(f"reading the manifest {args.manifest}"):
        rois, y, _ = load_manifest(args.manifest, spacing=_spacing_arg(args))
    _check_outputs([out], sorted({r.path for r in rois if r.path}), overwrite=True)
    threshold = _threshold_text(model)
    t0 = time.perf_counter()
    by_image = info["metadata"].get("unit") == "image"
    samples, of_roi = rois, np.arange(len(rois))
    if by_image:
        # A model evaluated with images as the unit (evaluate --paper) saw the ROIs of each
        # image pooled into one sample: score them the same way, each ROI with its image.
        from .samples import pool_by_image

        samples, _, _ = pool_by_image(rois)
        where = {rid: k for k, im in enumerate(samples) for rid in im.meta["pooled_roi_ids"]}
        of_roi = np.array([where[r.roi_id] for r in rois])
        _say(f"the model's unit is the image: {len(rois)} ROIs pooled into {len(samples)} "
             "images, each ROI gets its image's score")
    what = f"{len(samples)} images" if by_image else f"{len(rois)} ROIs"
    with _step(f"scoring {what}"), _naming_the_roi(rois):
        # The model decides (its own threshold, whatever its score); skcalc only reports.
        decisions = np.asarray(model.predict(samples))[of_roi]
        proba = (model.predict_proba(samples)[:, 1][of_roi]
                 if hasattr(model, "predict_proba") else None)
    buf = _io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(
        ["roi_id", "probability", "decision", "threshold"] + (["label"] if y is not None else [])
    )
    for i, roi in enumerate(rois):
        # repr: the shortest text that reads back as exactly the same float.
        row = [
            roi.roi_id,
            repr(float(proba[i])) if proba is not None else "",
            _LABEL_WORDS[int(decisions[i])],
            threshold,
        ]
        # The manifest's truth in the same words as the decision (parse_label reads it back).
        writer.writerow(row + ([_LABEL_WORDS[int(y[i])]] if y is not None else []))
    write_text_atomic(out, buf.getvalue())
    n_pos = int((decisions == 1).sum())
    _say(
        f"{len(rois)} ROIs scored in {time.perf_counter() - t0:.1f} s: {n_pos} actionable, "
        f"{len(rois) - n_pos} benign at threshold {threshold}"
    )
    _say(f"predictions written to {out}")
    return EXIT_OK


def _write_predictions(path: Path, ids, y_true, y_score, threshold: float) -> None:
    """Held-out predictions in ``predict``'s columns: ``roi_id, probability, decision,
    threshold, label``; decision and label as words, the probability exactly.

    One file format for both commands, so that whatever reads one reads the other.
    """
    import csv
    import io as _io

    from .io import write_text_atomic

    buf = _io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["roi_id", "probability", "decision", "threshold", "label"])
    for i, t, p in zip(ids, y_true, y_score):
        writer.writerow([i, repr(float(p)), _LABEL_WORDS[int(p >= threshold)],
                         repr(float(threshold)), _LABEL_WORDS[int(t)]])
    write_text_atomic(path, buf.getvalue())


def _evaluation_inputs(args: argparse.Namespace, names: Sequence[str], *, n_folds: int):
    """Output paths (by file name, checked before any work), then the labelled manifest."""
    out = _out_dir(args.out)
    by_name = {n: out / n for n in names}
    _check_outputs(list(by_name.values()), [args.manifest], overwrite=args.overwrite)
    rois, y, groups = _load_labelled_manifest(args, n_folds=n_folds, need_groups=True)
    _say(_summary(rois, y, groups))
    # The manifest's images are inputs too.
    _check_outputs(list(by_name.values()), sorted({r.path for r in rois if r.path}),
                   overwrite=True)
    return by_name, rois, y, groups


def _write_model_and_finish(by_name: dict, res, *, manifest: str, **metadata) -> None:
    """Save the refitted model of a protocol result and list the files written."""
    from .persistence import save_model

    with _step("writing the refitted model"):
        save_model(res.search.best_estimator_, by_name["model.skops"],
                   metadata={"manifest": manifest, "best_params": res.best_params, **metadata})
    _say("wrote " + ", ".join(str(p) for p in by_name.values()))


def _cmd_evaluate(args: argparse.Namespace) -> int:
    if args.paper:
        return _cmd_evaluate_paper(args)
    from ._demo import format_comparison
    from .io import save_figure_atomic, write_json_atomic, write_text_atomic
    from .model_selection import evaluate_protocol

    by_name, rois, y, groups = _evaluation_inputs(
        args, ("report.json", "table.txt", "metrics.csv", "report.html", "roc.png",
               "predictions.csv", "model.skops"),
        n_folds=max(args.cv, args.n_outer if args.nested else 0, 2))
    grid = _grid_from_args(args)
    _say(
        f"exam-level split (test size {args.test_size:g}), {args.cv}-fold grouped grid search "
        f"over {grid}" + (f", {args.n_outer}-fold nested CV" if args.nested else "")
    )
    with _step(f"evaluating on {len(rois)} ROIs"), _naming_the_roi(rois):
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
    name = "bag of clusters" if args.aggregation == "bag" else "mean/std baseline"
    table = format_comparison({name: res.report})
    if res.nested:
        from .model_selection import NESTED_METRICS

        table += (f"\n\nNested CV ({args.n_outer} outer grouped folds x {args.cv}-fold grid "
                  "search), mean +- std over the outer test folds:\n" + "\n".join(
                      f"  {m:<12} {res.nested[m]['mean']:.2f} +- {res.nested[m]['std']:.2f}"
                      for m in NESTED_METRICS))
    _say(table)
    test_ids = [rois[i].roi_id for i in res.test_index]
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
        "test_roi_ids": test_ids,
        **res.to_dict(),
    }
    write_json_atomic(by_name["report.json"], report)
    write_text_atomic(by_name["table.txt"], table + "\n")
    write_text_atomic(by_name["metrics.csv"], res.to_frame().to_csv(index=False))
    _write_predictions(by_name["predictions.csv"], test_ids, res.y_test, res.y_score,
                       res.threshold)
    with _step("writing the figures and the HTML report"):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from .plotting import plot_roc
        from .reporting import write_protocol_report

        fig, ax = plt.subplots(figsize=(7, 6.5), layout="constrained")
        plot_roc(res.y_test, res.y_score, ax=ax, label=args.aggregation,
                 threshold=res.threshold)
        ax.set_title(f"ROC, held-out ROIs (n = {len(res.y_test)})")
        save_figure_atomic(fig, by_name["roc.png"])
        plt.close(fig)
        write_protocol_report(by_name["report.html"], res, groups=groups, rois=rois,
                              title=f"skcalc evaluate: {Path(args.manifest).name}",
                              overwrite=True)
    _write_model_and_finish(by_name, res, manifest=report["manifest"],
                            refit_on="the training exams of the split")
    return EXIT_OK


def _cmd_evaluate_paper(args: argparse.Namespace) -> int:
    """``evaluate --paper``: every result of the paper on a manifest (images as the unit)."""
    from ._paper import paper_text, run_paper_analysis, write_paper_outputs

    by_name, rois, y, groups = _evaluation_inputs(
        args, ("report.json", "table.txt", "report.html", "roc.png", "figure6_roc.png",
               "predictions.csv", "model.skops"),
        n_folds=max(args.cv, args.n_outer, 2))
    out = by_name["report.json"].parent

    deep = () if args.no_deep else ("resnet50", "vgg16")
    grid, nested_grid = ("quick", "quick") if args.small_grid else ("paper", "small")
    _say(f"the paper's protocol on images: {args.n_outer} outer folds (fold 0 = the held-out "
         f"split), {args.cv}-fold grid search ({grid!r}; folds 1-{args.n_outer - 1}: "
         f"{nested_grid!r}), deep baselines: {', '.join(deep) or 'skipped'}")

    def progress(msg: str) -> None:
        if _progress_enabled():
            print(msg, file=sys.stderr, flush=True)

    with _step(f"the paper's analysis of {len(rois)} ROIs"), _naming_the_roi(rois):
        analysis = run_paper_analysis(
            rois, y, groups, make_pipeline=lambda agg: _pipeline_from_args(args, agg),
            grid=grid, nested_grid=nested_grid,
            cv=args.cv, n_outer=args.n_outer, deep=deep, n_jobs=args.n_jobs,
            n_bootstrap=args.n_bootstrap, random_state=args.random_state, say=progress)
    _say(paper_text(analysis))
    settings = {"manifest": str(Path(args.manifest).resolve()), "cv": args.cv,
                "n_outer": args.n_outer, "grid": grid, "nested_grid": nested_grid,
                "deep": list(deep), "n_bootstrap": args.n_bootstrap,
                "random_state": args.random_state}
    with _step("writing the tables, figures and the HTML report"):
        write_paper_outputs(out, analysis, title=f"skcalc evaluate --paper: "
                            f"{Path(args.manifest).name}", settings=settings)
    res = analysis["results"]["bag of clusters"]
    images = analysis["images"]
    _write_predictions(by_name["predictions.csv"], [images[i].roi_id for i in res.test_index],
                       res.y_test, res.y_score, res.threshold)
    _write_model_and_finish(by_name, res, manifest=settings["manifest"], unit="image",
                            refit_on="the training exams of fold 0")
    return EXIT_OK


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def _operating_point(text: str) -> str | float:
    """A preset name or a positive number of false positives per cm^2."""
    presets = ("sensitive", "balanced", "specific")
    if text in presets:
        return text
    try:
        return _positive_float(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected one of {', '.join(presets)} or a positive number of false positives "
            f"per cm2, got {text!r}") from None


def _n_jobs(text: str) -> int:
    """scikit-learn's n_jobs: a positive count, or -1 (all cores), -2 (all but one), ..."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value == 0:
        raise argparse.ArgumentTypeError("0 jobs has no meaning; use 1, or -1 for all cores")
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

    common = argparse.ArgumentParser(add_help=False)
    talk = common.add_mutually_exclusive_group()
    talk.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="more detail: step durations on stdout, every warning (not only the first)",
    )
    talk.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="no progress and no result lines; errors only",
    )
    writes = argparse.ArgumentParser(add_help=False)
    writes.add_argument(
        "--overwrite",
        action="store_true",
        help="replace existing output files (never an input file)",
    )
    spacing = argparse.ArgumentParser(add_help=False)
    spacing.add_argument(
        "--spacing",
        type=float,
        default=None,
        metavar="MM",
        help="pixel spacing in mm for images whose spacing is neither in the manifest nor "
        "in a DICOM header",
    )

    def add_parser(name, *, parents=(common, writes), **kwargs):
        return sub.add_parser(name, parents=list(parents), **kwargs)

    p = add_parser("demo", help="the paper's protocol on the synthetic cohort")
    p.add_argument("--out", default="skcalc-out", help="output folder (default: skcalc-out)")
    p.add_argument("--quick", action="store_true", help="small cohort and grid (< 2 min)")
    p.add_argument(
        "--nested",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the 4x5 nested CV with every comparison of the paper (default: on)",
    )
    p.add_argument(
        "--deep",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the deep baselines (ResNet-50, VGG-16) in the nested CV (default: on)",
    )
    p.add_argument("--n-jobs", type=_n_jobs, default=-1, help="parallel jobs; -1 = all cores")
    p.add_argument("--random-state", type=int, default=0)
    p.set_defaults(func=_cmd_demo)

    def add_model_args(p):
        p.add_argument("--n-clusters", type=_positive_int, default=15, help="K (default 15)")
        add_binning_args(p)
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

    def add_binning_args(p):
        g = p.add_mutually_exclusive_group()
        g.add_argument(
            "--bin-width",
            type=_positive_float,
            default=None,
            help="pyradiomics gray-level bin width in stored units (default 5, for 12-bit "
            "data; real processed images whose calcification bands span thousands of units "
            "need more: the error says how much)",
        )
        g.add_argument(
            "--bin-count",
            type=_positive_int,
            default=None,
            help="a fixed number of gray-level bins per object instead of --bin-width",
        )

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

    p = add_parser(
        "train",
        parents=(common, writes, spacing),
        help="fit the method on a manifest CSV, save a model file",
    )
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

    p = add_parser(
        "predict",
        parents=(common, writes, spacing),
        help="score the ROIs of a manifest with a model file",
    )
    p.add_argument("model", help="model file written by 'skcalc train'")
    p.add_argument(
        "manifest", help="CSV manifest (a label column is copied, as benign/actionable, if present)"
    )
    p.add_argument("--out", required=True, help="CSV to write")
    p.set_defaults(func=_cmd_predict)

    p = add_parser(
        "evaluate",
        parents=(common, writes, spacing),
        help="the paper's protocol on a manifest",
        description="Run the paper's protocol on a labelled manifest and write its report, "
        "figures, refitted model (model.skops) and predictions.csv: one row per held-out ROI "
        "(per image with --paper) in the columns of 'skcalc predict': roi_id, probability, "
        "decision, threshold, label (decision and label as benign/actionable).",
    )
    p.add_argument("manifest", help="CSV manifest with label and exam_id/patient_id columns")
    p.add_argument("--out", default="skcalc-evaluate", help="output folder")
    p.add_argument("--nested", action="store_true", help="also run the nested CV")
    p.add_argument(
        "--paper",
        action="store_true",
        help="every result of the paper: images as the unit, exclusions, nested CV with the "
        "mean/std and deep baselines, Figure 6, threshold table, feature importances, "
        "biopsies avoided (--test-size is then 1 / --n-outer: the split is outer fold 0)",
    )
    p.add_argument(
        "--no-deep", action="store_true", help="with --paper: skip the deep baselines"
    )
    p.add_argument(
        "--n-outer", type=_positive_int, default=4, help="outer folds of the nested CV (default 4)"
    )
    p.add_argument(
        "--test-size",
        type=_fraction,
        default=0.25,
        help="fraction of exams held out: 1/k, one fold of a k-fold exam split (0.5, 0.33, "
        "0.25, 0.2, ...; default 0.25)",
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

    p = add_parser(
        "features",
        parents=(common, writes, spacing),
        help="one CSV row per segmented calcification of a manifest (pyradiomics batch style)",
        description="Segment the ROIs of a manifest as the model does and write one row per "
        "calcification: roi_id, image, exam_id and roi_label (when in the manifest), object "
        "label, centroid and bounding box in the image's pixels and in mm (half-open boxes, "
        "pixel centres at integer coordinates), area in pixels and mm2, then every feature "
        "with its pyradiomics name (fg_original_*, rp_*, bg_original_*; NaN where undefined).",
    )
    p.add_argument("manifest", help="CSV manifest (see docs/data.rst); labels are optional")
    p.add_argument("--out", required=True, help="CSV to write")
    p.add_argument(
        "--feature-sets",
        default="fg_radiomics,fg_regionprops,bg_radiomics",
        help="comma-separated feature sets (default: all three, 208 features; "
        "'fg_regionprops' alone is fast)",
    )
    add_binning_args(p)
    p.add_argument(
        "--n-jobs", type=_n_jobs, default=None, help="parallel ROIs (default 1; -1 all cores)"
    )
    p.set_defaults(func=_cmd_features)

    p = add_parser("segment", help="segment the calcifications of one image file")
    p.add_argument("image", help="DICOM, PNG, JPEG, TIFF, PGM or NPY file")
    p.add_argument("--out", default="skcalc-segment",
                   help="output folder (default: ./skcalc-segment)")
    p.add_argument("--spacing", type=float, default=None, metavar="MM", help="pixel spacing in mm")
    p.add_argument("--bit-depth", type=int, default=None, help="bits of the stored values")
    p.add_argument(
        "--threshold",
        default="auto",
        metavar="{auto,authors,FLOAT}",
        help="candidate rule: 'auto' (calibrated by the image's own noise, default), 'authors' "
        "(HDoGReg's DoG threshold 0.006) or a number (the authors' rule at that threshold)",
    )
    p.add_argument(
        "--operating-point",
        default="balanced",
        type=_operating_point,
        metavar="{sensitive,balanced,specific,FP_PER_CM2}",
        help="expected false positives per cm2 of breast tissue (presets 2.0, 0.5, 0.15)",
    )
    p.add_argument(
        "--fp-calibration",
        default="image",
        choices=["image", "filter"],
        help="'image' (default): the operating point's score threshold corrected for this "
        "image's density of candidates; 'filter': the filter's calibration table as it is",
    )
    p.add_argument(
        "--candidate-filter",
        default="default",
        help="'default' (packaged), 'none' or a model file of the candidate filter",
    )
    p.add_argument(
        "--regressor",
        default="auto",
        help="'auto' (the CNN with the authors' rule only), 'default', 'none' or a weights file",
    )
    p.add_argument("--combine", default="overlap", choices=["overlap", "multiply", "cnn", "hdog"])
    p.add_argument(
        "--polarity",
        default="auto",
        choices=["auto", "bright", "dark"],
        help="'auto' (default): an image whose breast is darker than the air (raw data, "
        "MONOCHROME1 read without inversion) is inverted; 'bright': as given; 'dark': inverted",
    )
    p.add_argument("--format", default="png", choices=["png", "npy"], help="label image format")
    p.set_defaults(func=_cmd_segment)

    p = add_parser("segment-demo", help="segment one synthetic ROI, write an overlay PNG")
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
    previous = dict(_STATE)
    previous_env = os.environ.get("PYTHONWARNINGS")
    _STATE["verbosity"] = -1 if args.quiet else int(args.verbose)
    try:
        with warnings.catch_warnings():
            if args.quiet:
                # errors only: no library's warnings either, here or in worker processes
                warnings.simplefilter("ignore")
                os.environ["PYTHONWARNINGS"] = "ignore"
            elif args.verbose:
                warnings.simplefilter("always", SkcalcWarning)
            else:
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
        if "use bin_width >=" in text and args.command in ("features", "train", "evaluate"):
            text += " (options --bin-width W or --bin-count N)"
        print(f"skcalc {args.command}: error: {text}", file=sys.stderr)
        if not expected:
            print("(set SKCALC_DEBUG=1 to see the traceback)", file=sys.stderr)
        return EXIT_ERROR
    finally:
        _STATE.update(previous)
        if previous_env is None:
            os.environ.pop("PYTHONWARNINGS", None)
        else:
            os.environ["PYTHONWARNINGS"] = previous_env


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
