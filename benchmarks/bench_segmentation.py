"""HDoGReg segmentation: speed, peak memory and accuracy (FROC, IoU) on synthetic mammograms.

Run: ``python benchmarks/bench_segmentation.py [--n-eval 8] [--skip-accuracy]``.

1. **Speed / memory** (fresh process per measurement, so ``ru_maxrss`` is that run's peak):
   the 4096 x 3328 image: breast + HDoG + CNN + combining (target <= 30 s, <= 2 GB); a
   512 x 512 ROI crop with a 64 px margin (target <= 1 s). The CNN is run on the tiles that
   hold candidates inside the eroded breast (the only pixels the "overlap" combining reads).
2. **Accuracy** on held-out synthetic full-field mammograms (``random_state`` 0..n-1,
   2048 x 1664 px, not used for training, which uses 1000+ and 2000): FROC of HDoG only and of
   HDoG + CNN, partial AUC up to 1 FP/cm^2 (bootstrap over images), TPR at 0.4 FP/cm^2,
   mean IoU per image and IoU per object at the operating threshold 10^-3.5.
3. **The default segmenter** (``threshold="auto"``: calibrated candidates + candidate
   filter; the filter is trained on other synthetic data, ``scripts/train_candidate_filter.py``)
   on the same held-out images: FROC over the filter's score threshold (``default_*``), TPR
   at 0.4 FP/cm^2, and at the default operating point ("balanced") TPR, FP/cm^2, IoU per
   object and mIoU per image; and its whole-image speed and peak memory on 4096 x 3328.

Prints ``name: value`` lines and writes ``benchmarks/results/segmentation.json``.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from _common import print_results, write_results  # noqa: E402

SHAPE = (4096, 3328)
HERE = os.path.dirname(os.path.abspath(__file__))

_MAKE = r"""
import json
import numpy as np
from skcalc.datasets import make_full_field_mammogram
roi = make_full_field_mammogram(shape={shape}, spacing=0.07, random_state={seed})
np.save({path!r}, np.ascontiguousarray(roi.image))
print(json.dumps([int(v) for v in roi.meta["clusters"][0]["centre"]]))
"""

_RUN = r"""
import json, resource, time
import numpy as np, torch
torch.set_num_threads({threads})
from skcalc.segmentation import hdog_candidates
from skcalc.segmentation._breast import delineate_breast, erode_breast
from skcalc.segmentation._combine import combine
from skcalc.segmentation._regression import load_default_weights, predict_proximity

model = load_default_weights()
img = np.load({path!r})
box = {box}
t = {{}}
t0 = time.perf_counter()
if box is not None:
    r0, r1, c0, c1 = box
    img = img[r0:r1, c0:c1]
    origin = (r0, c0)
else:
    origin = (0, 0)
t1 = time.perf_counter()
breast = delineate_breast(img)
t["breast"] = time.perf_counter() - t1
t1 = time.perf_counter()
cand = hdog_candidates(img, 0.07, bit_depth=12)
t["hdog"] = time.perf_counter() - t1
t1 = time.perf_counter()
need = (cand > 0) & erode_breast(breast)
prox = predict_proximity(img, 0.07, model, bit_depth=12, origin=origin, mask=need)
t["cnn"] = time.perf_counter() - t1
t1 = time.perf_counter()
lab = combine(cand, prox, breast)
t["combine"] = time.perf_counter() - t1
t["total"] = time.perf_counter() - t0
t["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
t["n_candidates"] = int(cand.max())
t["n_final"] = int(lab.max())
print(json.dumps(t))
"""


_RUN_DEFAULT = r"""
import json, resource, time
import numpy as np
from skcalc import ROI
from skcalc.segmentation import HDoGRegSegmenter
img = np.load({path!r})
roi = ROI(img, spacing=0.07, meta={{"roi_id": "ff"}})
t0 = time.perf_counter()
out = HDoGRegSegmenter().fit([roi]).transform([roi])[0]
t = {{"total": time.perf_counter() - t0}}
t["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
t["n_candidates"] = out.meta["segmentation"]["n_candidates"]
t["n_final"] = int(out.calcifications.max())
print(json.dumps(t))
"""


def _python(code):
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""


def speed(results, threads, authors=True):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "ff.npy")
        centre = json.loads(_python(_MAKE.format(shape=SHAPE, seed=0, path=path)))
        default = json.loads(_python(_RUN_DEFAULT.format(path=path)))
        for k, v in default.items():
            results[f"default_full_{k}"] = v
        if not authors:
            return
        full = json.loads(_python(_RUN.format(path=path, box=None, threads=threads)))
        for k, v in full.items():
            results[f"full_{k}"] = v
        # a 512 x 512 region with a 64 px margin, centred on the first cluster
        r = min(max(centre[0] - 256, 64), SHAPE[0] - 512 - 64)
        c = min(max(centre[1] - 256, 64), SHAPE[1] - 512 - 64)
        box = (r - 64, r + 512 + 64, c - 64, c + 512 + 64)
        crop = json.loads(_python(_RUN.format(path=path, box=box, threads=threads)))
        for k, v in crop.items():
            results[f"roi512_{k}"] = v


def _eval_images(n_eval):
    """The FROC evaluation set: 2048 x 1664 full fields, MLO/CC and left/right in turn."""
    from skcalc.datasets import make_full_field_mammogram

    for k in range(n_eval):
        yield make_full_field_mammogram(
            (2048, 1664), view=("MLO", "CC")[k % 2], laterality=("L", "R")[(k // 2) % 2],
            random_state=k,
        )


def accuracy_default(results, n_eval, n_bootstrap=100, filter_path=None):
    """FROC of the default calibrated detector + candidate filter (score-threshold sweep);
    ``filter_path``: another candidate-filter file (with its own detection threshold)."""
    from skcalc.metrics import match_objects
    from skcalc.metrics._froc import froc, iou_per_object, mean_iou_per_image
    from skcalc.segmentation._calibrated import calibrated_candidates, candidate_features
    from skcalc.segmentation._combine import _coarse_breast, segment_calibrated
    from skcalc.segmentation._filter import CandidateFilter, load_default_filter

    filt = CandidateFilter.load(filter_path) if filter_path else load_default_filter()
    k = filt.meta.get("cnr_threshold", 4.0)
    cands, scores, breasts, refs, ious, mious = [], [], [], [], [], []
    tp = fn = fp = 0
    area = 0.0
    t0 = time.perf_counter()
    for roi in _eval_images(n_eval):
        img = roi.image
        breast = _coarse_breast(img, (0.07, 0.07))
        lab, info = calibrated_candidates(img, 0.07, breast_mask=breast, bit_depth=12,
                                          cnr_threshold=k)
        sc = filt.score(candidate_features(lab, info))
        del info
        cands.append(lab)
        # one score per object, painted on its pixels: the "overlap" rule of froc keeps
        # exactly the objects scoring >= t
        scores.append(np.concatenate([[0.0], sc])[lab])
        breasts.append(breast)
        refs.append(roi.reference)
        final, _ = segment_calibrated(img, 0.07, breast_mask=breast, candidate_filter=filt,
                                      bit_depth=12, cnr_threshold=k)
        ious.append(iou_per_object(final, roi.reference))
        mious.append(mean_iou_per_image(final, roi.reference))
        m = match_objects(final, roi.reference)
        tp, fn, fp = tp + m["tp"], fn + m["fn"], fp + m["fp"]
        area += breast.sum() * 0.07**2 / 100
    results["default_eval_seconds_per_image"] = (time.perf_counter() - t0) / n_eval
    thr = sorted({filt.resolve(f)[1] for f in np.geomspace(0.01, 20, 40)} | {0.0, 1.0})
    res = froc(cands, scores, breasts, refs, thresholds=thr, n_bootstrap=n_bootstrap,
               matcher=match_objects)
    ok = res["fp_per_cm2"] <= 0.4
    results["default_tpr_at_0.4fp"] = float(res["tpr"][ok].max()) if ok.any() else 0.0
    results["default_pauc"] = res["pauc"]
    results["default_pauc_boot_mean"] = res["pauc_mean"]
    results["default_pauc_boot_std"] = res["pauc_std"]
    results["default_froc_thresholds"] = [float(t) for t in thr]
    results["default_froc_tpr"] = res["tpr"].tolist()
    results["default_froc_fp_per_cm2"] = res["fp_per_cm2"].tolist()
    ious = np.concatenate(ious)
    results["default_op_tpr"] = tp / max(tp + fn, 1)
    results["default_op_fp_per_cm2"] = fp / area
    results["default_op_iou_per_object_mean"] = float(ious.mean())
    results["default_op_miou_per_image_mean"] = float(np.mean(mious))


def accuracy(results, n_eval, n_bootstrap=100):
    import torch

    torch.set_num_threads(1)
    from skcalc.metrics import match_objects
    from skcalc.metrics._froc import froc, iou_per_object, mean_iou_per_image
    from skcalc.segmentation import hdog_candidates
    from skcalc.segmentation._breast import delineate_breast, erode_breast
    from skcalc.segmentation._combine import combine
    from skcalc.segmentation._regression import load_default_weights, predict_proximity

    model = load_default_weights()
    cands, proxs, breasts, refs = [], [], [], []
    t0 = time.perf_counter()
    for roi in _eval_images(n_eval):
        img = roi.image
        breast = delineate_breast(img)
        cand = hdog_candidates(img, 0.07, bit_depth=12)
        need = (cand > 0) & erode_breast(breast)
        proxs.append(predict_proximity(img, 0.07, model, bit_depth=12, mask=need))
        cands.append(cand)
        breasts.append(breast)
        refs.append(roi.reference)
    results["eval_images"] = n_eval
    results["eval_seconds_per_image"] = (time.perf_counter() - t0) / n_eval
    res = froc(cands, proxs, breasts, refs, n_bootstrap=n_bootstrap, matcher=match_objects)
    only = froc(cands, proxs, breasts, refs, thresholds=[0.0], n_bootstrap=n_bootstrap,
                matcher=match_objects)

    def tpr_at(r, fp):
        ok = r["fp_per_cm2"] <= fp
        return float(r["tpr"][ok].max()) if ok.any() else 0.0

    for name, r in (("hdog_only", only), ("hdogreg", res)):
        results[f"{name}_pauc"] = r["pauc"]
        results[f"{name}_pauc_boot_mean"] = r["pauc_mean"]
        results[f"{name}_pauc_boot_std"] = r["pauc_std"]
        results[f"{name}_tpr_at_0.4fp"] = tpr_at(r, 0.4)
        results[f"{name}_max_tpr"] = float(r["tpr"].max())
        results[f"{name}_fp_per_cm2_at_max_tpr"] = float(r["fp_per_cm2"][np.argmax(r["tpr"])])
    results["froc_thresholds"] = res["thresholds"].tolist()
    results["froc_tpr"] = res["tpr"].tolist()
    results["froc_fp_per_cm2"] = res["fp_per_cm2"].tolist()
    # operating point 10^-3.5
    ious, mious, tp, fn, fp, area = [], [], 0, 0, 0, 0.0
    for cand, prox, breast, ref in zip(cands, proxs, breasts, refs):
        lab = combine(cand, prox, breast)
        ious.append(iou_per_object(lab, ref))
        mious.append(mean_iou_per_image(lab, ref))
        m = match_objects(lab, ref)
        tp, fn, fp = tp + m["tp"], fn + m["fn"], fp + m["fp"]
        area += breast.sum() * 0.07**2 / 100
    ious = np.concatenate(ious)
    results["op_tpr"] = tp / max(tp + fn, 1)
    results["op_fp_per_cm2"] = fp / area
    results["op_iou_per_object_mean"] = float(ious.mean())
    results["op_iou_per_object_std"] = float(ious.std())
    results["op_miou_per_image_mean"] = float(np.mean(mious))
    results["op_miou_per_image_std"] = float(np.std(mious))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n-eval", type=int, default=8)
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads for the CNN (1 is faster on a shared 2-core machine)")
    ap.add_argument("--skip-accuracy", action="store_true")
    ap.add_argument("--filter", default=None,
                    help="candidate-filter file for the default pipeline (default: packaged)")
    ap.add_argument("--out", default="segmentation")
    ap.add_argument("--skip-authors", action="store_true",
                    help="skip the authors' HDoG + CNN accuracy (the default pipeline only)")
    args = ap.parse_args()
    results = {}
    if not args.skip_speed:
        speed(results, args.threads, authors=not args.skip_authors)
        results["torch_threads"] = args.threads
    if not args.skip_accuracy:
        accuracy_default(results, args.n_eval, filter_path=args.filter)
        if not args.skip_authors:
            accuracy(results, args.n_eval)
    print_results(results, lists=False)
    write_results(results, args.out)


if __name__ == "__main__":
    main()
