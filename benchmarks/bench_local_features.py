"""Speed of LocalFeatureExtractor against the naive per-object pyradiomics loop.

Baseline (what a user would write first): for every calcification, pyradiomics'
``RadiomicsFeatureExtractor.execute`` on the whole ROI image with the object's mask, again with
its background-band mask, plus ``regionprops`` on the whole-image object mask.
skcalc crops each object with its band, discretises it once, builds the texture matrices of all
objects of a chunk at once and runs every feature function once per chunk on the stacked
matrices (``radiomics_features_batch``; see ``skcalc/features/_radiomics_batched.py``).

Reported: wall-clock and CPU milliseconds per object for both sides and their ratios, both
sides measured in the same run (the machine is shared: the CPU-time ratio is the steadier
one), the same on ROIs embedded in a 1024 x 1024 canvas, where skcalc's CPU time goes (per
feature class, regionprops, preparation), and the largest relative difference between the
two sides' values.

Checks that both give the same values (max relative difference over the entries skcalc
computes; skcalc's NaN policy for tiny objects is reported separately).

Run: ``python benchmarks/bench_local_features.py [n_rois]``; writes
``benchmarks/results/local_features.json``.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import time
import warnings

import numpy as np
import SimpleITK as sitk
from _common import write_results  # noqa: E402
from scipy import ndimage as ndi

from skcalc import ROI
from skcalc.features import LocalFeatureExtractor
from skcalc.features._radiomics import (
    ALL_RADIOMICS_CLASSES,
    TEXTURE_CLASSES,
    radiomics_feature_names,
    radiomics_settings,
)
from skcalc.features._regionprops import regionprops_features
from skcalc.masks import CalcificationMasks, object_band

SPACING = (0.07, 0.07)
BAND_WIDTH = 1.75


def make_rois(n_rois: int) -> tuple[list[ROI], str]:
    try:
        from skcalc.datasets import make_calcification_cohort

        rois, _, _ = make_calcification_cohort(n_rois, random_state=0)
        source = "make_calcification_cohort (reference masks, 4-connected components)"
    except NotImplementedError:  # pragma: no cover - generator not there yet
        rois, source = [], "own"
        rng = np.random.default_rng(0)
        for i in range(n_rois):
            img = 1500 + 30 * rng.standard_normal((300, 300))
            ref = np.zeros((300, 300), bool)
            for _ in range(rng.integers(20, 41)):
                r, c = rng.integers(20, 280, 2)
                ref[r : r + rng.integers(1, 5), c : c + rng.integers(1, 5)] = True
            img[ref] += 150
            rois.append(ROI(img.astype(np.uint16), reference=ref, meta={"roi_id": f"r{i}"}))
    out = []
    for roi in rois:
        fg, n = ndi.label(roi.reference)
        masks = CalcificationMasks(
            foreground=fg.astype(np.int32),
            spacing=roi.spacing,
            band_width=BAND_WIDTH,
            scales=np.zeros(1),
            merge_index=np.zeros((n, n), int),
        )
        out.append(roi.replace(masks=masks))
    return out, source


def naive(rois: list[ROI], bin_width: float) -> list[dict[str, np.ndarray]]:
    from radiomics import featureextractor

    logging.getLogger("radiomics").setLevel(logging.ERROR)

    def extractor(classes):
        ex = featureextractor.RadiomicsFeatureExtractor(
            additionalInfo=False, **radiomics_settings(bin_width)
        )
        ex.disableAllFeatures()
        for c in classes:
            ex.enableFeatureClassByName(c)
        return ex

    fg_classes, bg_classes = ALL_RADIOMICS_CLASSES, ALL_RADIOMICS_CLASSES[1:]
    ex_fg, ex_bg = extractor(fg_classes), extractor(bg_classes)
    names_fg, names_bg = radiomics_feature_names(fg_classes), radiomics_feature_names(bg_classes)

    def run(ex, img, mask, names):
        m = sitk.GetImageFromArray(mask.astype(np.uint8))
        m.CopyInformation(img)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                r = ex.execute(img, m)
        except ValueError:  # single-pixel objects
            return np.full(len(names), np.nan)
        return np.array([float(r["original_" + n]) for n in names])

    results = []
    for roi in rois:
        fg = roi.masks.foreground
        image = roi.image
        img = sitk.GetImageFromArray(image)
        img.SetSpacing((roi.spacing[1], roi.spacing[0]))
        rows = {"fg_radiomics": [], "fg_regionprops": [], "bg_radiomics": []}
        for lab in range(1, int(fg.max()) + 1):
            obj = fg == lab
            band = object_band(obj, fg > 0, BAND_WIDTH, roi.spacing)
            rows["fg_radiomics"].append(run(ex_fg, img, obj, names_fg))
            rows["fg_regionprops"].append(regionprops_features(obj, image, roi.spacing))
            rows["bg_radiomics"].append(run(ex_bg, img, band, names_bg))
        results.append({k: np.array(v) for k, v in rows.items()})
    return results


def on_canvas(roi: ROI, size: int) -> ROI:
    """The same ROI embedded in a larger image (a bigger annotated region or a full field)."""
    ph, pw = size - roi.shape[0], size - roi.shape[1]
    pads = ((ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2))
    m = roi.masks
    masks = CalcificationMasks(
        np.pad(m.foreground, pads), m.spacing, m.band_width, m.scales, m.merge_index
    )
    return ROI(np.pad(roi.image, pads, mode="reflect"), spacing=roi.spacing, masks=masks)


def timed(est: LocalFeatureExtractor, rois: list[ROI]):
    """Both sides on the same ROIs, with wall-clock and CPU (this process) seconds.

    CPU time is also reported because the machine is shared: wall-clock ratios move with the
    load of other processes, CPU-time ratios much less (both sides are single-threaded).
    """
    w0, c0 = time.perf_counter(), time.process_time()
    ours = est.transform(rois)
    w1, c1 = time.perf_counter(), time.process_time()
    ref = naive(rois, est.bin_width)
    w2, c2 = time.perf_counter(), time.process_time()
    return ours, ref, (w1 - w0, c1 - c0), (w2 - w1, c2 - c1)


def profile_parts(est: LocalFeatureExtractor, rois: list[ROI], n_objects: int) -> dict:
    """Where skcalc's CPU time goes: per feature class, regionprops and preparation.

    A separate run with each part wrapped in a CPU-time counter (the wrappers add a little).
    """
    from skcalc.features import _local
    from skcalc.features import _radiomics_batched as batched

    spent: dict[str, float] = {}
    parts = [
        (batched, "class_batch", lambda a: a[0]),
        (batched, "shape2d_one", lambda a: "shape2D"),
        (batched, "prepare", lambda a: "crop+discretise"),
        (batched, "chunk_rows", lambda a: "chunking"),
        (_local, "regionprops_features_batch", lambda a: "regionprops"),
        (_local, "_check_budget", lambda a: "budget check"),
    ]
    originals = [(mod, name, getattr(mod, name)) for mod, name, _ in parts]

    def counting(f, key):
        def g(*a, **k):
            c = time.process_time()
            try:
                return f(*a, **k)
            finally:
                spent[key(a)] = spent.get(key(a), 0.0) + time.process_time() - c

        return g

    for (mod, name, key), (_, _, f) in zip(parts, originals):
        setattr(mod, name, counting(f, key))
    try:
        c0 = time.process_time()
        est.transform(rois)
        total = time.process_time() - c0
    finally:
        for mod, name, f in originals:
            setattr(mod, name, f)
    spent["rest (windows, bands, tables)"] = total - sum(spent.values())
    ranked = sorted(spent.items(), key=lambda kv: -kv[1])
    return {k: round(1000 * v / n_objects, 3) for k, v in ranked}


def main(n_rois: int = 12, canvas: int = 1024, n_canvas: int = 2) -> dict:
    rois, source = make_rois(n_rois)
    n_objects = sum(int(r.masks.foreground.max()) for r in rois)
    est = LocalFeatureExtractor()
    est.transform(rois[:1])  # warm-up: imports

    ours, ref, (t_ours, cpu_ours), (t_naive, cpu_naive) = timed(est, rois)
    big = [on_canvas(r, canvas) for r in rois[:n_canvas]]
    n_big = sum(int(r.masks.foreground.max()) for r in big)
    ours_big, ref_big, (t_ours_big, cpu_ours_big), (t_naive_big, cpu_naive_big) = timed(est, big)

    max_rel, n_compared, n_policy_nan = 0.0, 0, 0
    for a, b in zip(ours + ours_big, ref + ref_big):
        for k in a:
            x, y = a[k], b[k]
            both = np.isfinite(x) & np.isfinite(y)
            rel = np.abs(x[both] - y[both]) / np.maximum(np.abs(y[both]), 1e-12)
            max_rel = max(max_rel, float(rel.max(initial=0.0)))
            n_compared += int(both.sum())
            n_policy_nan += int((np.isnan(x) & np.isfinite(y)).sum())
            assert not (np.isfinite(x) & np.isnan(y)).any()

    names = est.fit(rois).feature_names_["fg_radiomics"]
    tex = [i for i, n in enumerate(names) if n.split("_")[0] in TEXTURE_CLASSES]
    fg_all = np.vstack([t["fg_radiomics"] for t in ours])
    sizes = np.concatenate([np.bincount(r.masks.foreground.ravel())[1:] for r in rois])

    with tempfile.TemporaryDirectory() as tmp:
        cached = LocalFeatureExtractor(memory=tmp)
        cached.transform(rois)
        t0 = time.perf_counter()
        cached.transform(rois)
        t_cached = time.perf_counter() - t0

    res = {
        "data": source,
        "n_rois": len(rois),
        "roi_shape": list(rois[0].shape),
        "n_objects": n_objects,
        "object_size_px_median": float(np.median(sizes)),
        "object_size_px_min": int(sizes.min()),
        "object_size_px_max": int(sizes.max()),
        "skcalc_seconds": round(t_ours, 3),
        "naive_seconds": round(t_naive, 3),
        "speedup": round(t_naive / t_ours, 2),
        "skcalc_ms_per_object": round(1000 * t_ours / n_objects, 2),
        "naive_ms_per_object": round(1000 * t_naive / n_objects, 2),
        "skcalc_cpu_ms_per_object": round(1000 * cpu_ours / n_objects, 2),
        "naive_cpu_ms_per_object": round(1000 * cpu_naive / n_objects, 2),
        "speedup_cpu": round(cpu_naive / cpu_ours, 2),
        f"canvas{canvas}_n_objects": n_big,
        f"canvas{canvas}_skcalc_ms_per_object": round(1000 * t_ours_big / n_big, 2),
        f"canvas{canvas}_naive_ms_per_object": round(1000 * t_naive_big / n_big, 2),
        f"canvas{canvas}_speedup": round(t_naive_big / t_ours_big, 2),
        f"canvas{canvas}_skcalc_cpu_ms_per_object": round(1000 * cpu_ours_big / n_big, 2),
        f"canvas{canvas}_naive_cpu_ms_per_object": round(1000 * cpu_naive_big / n_big, 2),
        f"canvas{canvas}_speedup_cpu": round(cpu_naive_big / cpu_ours_big, 2),
        "skcalc_cpu_ms_per_object_by_part": profile_parts(est, rois, n_objects),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "cached_rerun_seconds": round(t_cached, 3),
        "max_relative_difference": max_rel,
        "n_values_compared": n_compared,
        "n_values_nan_by_size_policy": n_policy_nan,
        "fraction_objects_texture_nan": round(float(np.isnan(fg_all[:, tex]).all(1).mean()), 3),
        "min_texture_size": est.min_texture_size,
        "bin_width": est.bin_width,
        "cpu_count": os.cpu_count(),
    }
    for k, v in res.items():
        print(f"{k}: {v}")
    write_results(res, "local_features")
    return res


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 12)
