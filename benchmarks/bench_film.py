"""Segmentation on digitised film: cluster-vs-normal-tissue detection density, recall, FP/cm^2.

Run: ``python benchmarks/bench_film.py [--seeds 2] [--filter PATH] [--plots DIR]``.

Issue #9 reports that on real digitised film (0.2 mm) the density of detections inside
annotated calcification clusters was no higher than in normal tissue of the other breast
(ROC AUC 0.44) while a naive two-Gaussian DoG threshold detector reached 0.90. This benchmark
builds the same measurement from real tissue printed on simulated film:

1. **Tissue**: the four real FFDM views of ``../shared/realdata/nyu-gmic-sample`` (12-bit,
   processed, 0.1 mm assumed). **Clusters** (8 calcifications each, within +-3 mm, disc
   profiles blurred by 0.05 mm, as ``bench_real_background.py``) are inserted into the right
   views (R-CC, R-MLO), one cluster per (diameter, contrast) in {0.2, 0.3, 0.5} mm x {3, 5, 8}
   times the image's noise at calcification scale; the left views (L-CC, L-MLO, no finding)
   stay as they are: they are the "normal tissue of the other breast".
2. **Film**: each image is then printed on film and digitised
   (:func:`skcalc.datasets.digitised_film`: H&D curve, grain ~ sqrt(density),
   aperture blur, optical density stored as MONOCHROME1 and inverted by the reader) under
   three conditions: 0.1 mm / 12 bit, 0.2 mm / 12 bit, 0.2 mm / 8 bit (0.2 mm: the
   digitiser averages 2 x 2 pixels). Film settings are drawn per image from the seed.
3. **Regions**: a 10 x 10 mm square centred on every inserted cluster (positives) and the
   10 x 10 mm tiles of the left views lying inside the breast eroded by 5 mm (negatives).
   The score of a region is the number of detected objects whose centroid lies in it; the
   ROC AUC of that score separates cluster regions from normal tissue (ties count 1/2).
4. **Detectors**: the default ``HDoGRegSegmenter()``, its "sensitive" point, the authors'
   HDoG rule (``threshold="authors"``, no CNN), and a **naive DoG detector**: ``G(1 px) -
   G(2 px)`` of the image, objects = 8-connected components above its median + 3 robust
   sd over the breast (one global threshold per image). On request
   (``--detectors``), ``default_filter_calibration``: the default with the candidate
   filter's table as it is (``fp_calibration="filter"``).

Also printed: recall of the inserted calcifications (an object touching the footprint,
dilated by one pixel) and objects per cm^2 of breast on the left views, per detector and
condition. Writes ``benchmarks/results/film.json``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import numpy as np
from _common import centroids, plot_detections, print_results, write_results  # noqa: E402
from scipy import ndimage as ndi

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_real_background as B  # noqa: E402

CONDITIONS = (("0.1mm_12bit", 1, 12), ("0.2mm_12bit", 2, 12), ("0.2mm_8bit", 2, 8))
CLUSTERS = [(s, c) for s in (0.2, 0.3, 0.5) for c in (3.0, 5.0, 8.0)]
REGION_MM = 10.0


def naive_dog(img: np.ndarray, sp: float, breast: np.ndarray, k: float = 3.0) -> np.ndarray:
    """Two-Gaussian DoG (1 and 2 px), one global robust threshold over the breast,
    8-connected objects."""
    x = img.astype(np.float32)
    d = ndi.gaussian_filter(x, 1.0) - ndi.gaussian_filter(x, 2.0)
    v = d[breast]
    med = float(np.median(v))
    sd = 1.4826 * float(np.median(np.abs(v - med)))
    lab, _ = ndi.label((d > med + k * sd) & breast, structure=np.ones((3, 3)))
    return lab


def detect(name, img, sp, bits, breast, filter_kw):
    import skcalc

    if name == "naive_dog":
        return naive_dog(img, sp, breast)
    kw = {"default": {}, "sensitive": {"operating_point": "sensitive"},
          "default_filter_calibration": {"fp_calibration": "filter"},
          "authors_hdog": {"threshold": "authors", "regressor": None}}[name]
    if name != "authors_hdog":
        kw.update(filter_kw)
    roi = skcalc.ROI(img, spacing=sp, meta={"roi_id": "film", "bits_stored": bits})
    out = skcalc.HDoGRegSegmenter(**kw).fit([roi]).transform([roi])[0]
    return np.asarray(out.calcifications)


def count_in(cen, r0, c0, side):
    if cen.size == 0:
        return 0
    return int(np.sum((cen[:, 0] >= r0) & (cen[:, 0] < r0 + side)
                      & (cen[:, 1] >= c0) & (cen[:, 1] < c0 + side)))


def auc(pos, neg):
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score([1] * len(pos) + [0] * len(neg), [*pos, *neg]))


def run(seeds, filter_kw, detectors, plots):
    from skcalc.datasets import digitised_film
    from skcalc.segmentation import delineate_breast, erode_breast

    res: dict = {}
    for cond, block, bits in CONDITIONS:
        sp = 0.1 * block
        side = int(round(REGION_MM / sp))
        pos = {d: [] for d in detectors}
        neg = {d: [] for d in detectors}
        hits = {d: [0, 0] for d in detectors}
        fp = {d: [0.0, 0.0] for d in detectors}
        secs = {d: 0.0 for d in detectors}
        for seed in range(seeds):
            for view in ("R-CC", "R-MLO", "L-CC", "L-MLO"):
                a = B.read(view)
                rng = np.random.default_rng([seed, block, bits, len(view), ord(view[0])])
                ref = None
                centres = []
                if view.startswith("R"):
                    br = delineate_breast(a, spacing=0.1)
                    _, summ = B.segment(a, 0.1)
                    noise = summ["pixel_noise_sd"] * 4095
                    order = [CLUSTERS[i] for i in rng.permutation(len(CLUSTERS))]
                    sites: list = []
                    a, ref, _ = B.insert(a, 0.1, noise, rng, order, br, centres=sites)
                    centres = [(cy / block, cx / block) for cy, cx in sites]
                film, b = digitised_film(a, rng, block=block, bits=bits)
                breast = delineate_breast(film, spacing=sp)
                if ref is not None and block > 1:
                    H, W = film.shape
                    ref = ref[:H * block, :W * block].reshape(H, block, W, block).max(axis=(1, 3))
                for d in detectors:
                    t = time.process_time()
                    lab = detect(d, film, sp, b, breast, filter_kw)
                    secs[d] += time.process_time() - t
                    cen = centroids(lab)
                    if view.startswith("R"):
                        for cy, cx in centres:
                            pos[d].append(count_in(cen, int(cy) - side // 2, int(cx) - side // 2,
                                                   side))
                        det = ndi.binary_dilation(lab > 0)
                        n_ins = int(ref.max())
                        found = np.bincount(ref[det], minlength=n_ins + 1)[1:] > 0
                        present = np.bincount(ref.ravel(), minlength=n_ins + 1)[1:] > 0
                        hits[d][0] += int(found[present].sum())
                        hits[d][1] += int(present.sum())
                    else:
                        inner = erode_breast(breast, spacing=sp, size_mm=10.0)
                        for r0 in range(0, film.shape[0] - side + 1, side):
                            for c0 in range(0, film.shape[1] - side + 1, side):
                                if inner[r0:r0 + side, c0:c0 + side].all():
                                    neg[d].append(count_in(cen, r0, c0, side))
                        fp[d][0] += int(lab.max())
                        fp[d][1] += float(breast.sum()) * sp * sp / 100
                        if plots and seed == 0 and d == "default" and cond != "0.2mm_12bit":
                            name = f"film_{cond}_{view}"
                            plot_detections(film, lab, f"{name}: {int(lab.max())} objects",
                                            os.path.join(plots, f"{name}.png"))
        for d in detectors:
            res[f"auc_{cond}_{d}"] = auc(pos[d], neg[d])
            res[f"mean_per_region_clusters_{cond}_{d}"] = float(np.mean(pos[d]))
            res[f"mean_per_region_normal_{cond}_{d}"] = float(np.mean(neg[d]))
            res[f"recall_{cond}_{d}"] = hits[d][0] / max(hits[d][1], 1)
            res[f"objects_per_cm2_normal_{cond}_{d}"] = fp[d][0] / max(fp[d][1], 1e-9)
            res[f"cpu_seconds_{cond}_{d}"] = secs[d]
        res[f"n_regions_{cond}"] = f"{len(pos[detectors[0]])} cluster, " \
            f"{len(neg[detectors[0]])} normal"
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--filter", default=None, help="candidate filter JSON (default: packaged)")
    ap.add_argument("--detectors", default="default,sensitive,authors_hdog,naive_dog",
                    help="comma-separated; also default_filter_calibration (the default "
                         "with the filter's table as it is)")
    ap.add_argument("--plots", default=None)
    ap.add_argument("--out", default="film")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    filter_kw = B.filter_kw(args.filter) if args.filter else {}
    t = time.perf_counter()
    c = time.process_time()
    res = run(args.seeds, filter_kw, args.detectors.split(","), args.plots)
    res["wall_seconds"] = time.perf_counter() - t
    res["cpu_seconds"] = time.process_time() - c
    print_results(res)
    write_results(res, args.out)


if __name__ == "__main__":
    main()
