"""Candidate filters compared at the same false-positive budget on real tissue.

Run: ``python benchmarks/bench_filter_budget.py [NAME=PATH ...] [--rounds 2]``.

For each candidate-filter file (and the packaged one), on the real NYU GMIC views at 0.07
and 0.1 mm assumed: the candidates of its own detection threshold are scored once; the
score threshold giving a false-positive **budget** of ``b`` objects per cm^2 on the left
views (no finding: L-CC and L-MLO pooled, ``(image > 0)`` area) is found, and at that
threshold the recall of the calcifications inserted as ``bench_real_background.py``
inserts them (same seeds; >= 0.2 mm, by contrast). This separates the ranking quality of a
filter from its synthetic calibration. Also prints each filter's score threshold for its
"balanced" point and the real FP/cm^2 there, and where each filter's misses are: per size and
contrast, the share of the inserted calcifications that became candidates at all (touched by
a candidate of the detection threshold) and the share kept at "balanced". At every budget
it also prints the false objects **near the inserted clusters** (candidates above the
threshold that touch no inserted calcification and have a pixel within 5 mm of a cluster
centre, per cm^2 of those discs, as ``bench_real_background.py`` counts them after
segmentation): a filter that trusts the cluster context lets tissue next to calcifications
through, which the budget on calcification-free views cannot show. Writes
``benchmarks/results/filter_budget.json``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import numpy as np
from _common import print_results, write_results  # noqa: E402
from scipy import ndimage as ndi

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_real_background as B  # noqa: E402

BUDGETS = (0.25, 0.5, 1.0)


def scored(img, sp, filt):
    from skcalc.segmentation._calibrated import (
        calibrated_candidates,
        candidate_features,
        filter_cnr_threshold,
    )
    from skcalc.segmentation._combine import _coarse_breast

    k = filter_cnr_threshold(filt)
    br = _coarse_breast(img, (sp, sp))
    lab, info = calibrated_candidates(img, sp, breast_mask=br, cnr_threshold=k, bit_depth=12)
    return lab, filt.score(candidate_features(lab, info))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("filters", nargs="*", help="NAME=PATH candidate-filter files")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out", default="filter_budget")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    from skcalc.segmentation import CandidateFilter, delineate_breast, load_default_filter

    filters = {"packaged": load_default_filter()}
    for item in args.filters:
        name, path = item.split("=", 1)
        filters[name] = CandidateFilter.load(path)
    res: dict = {}
    t0, c0 = time.perf_counter(), time.process_time()
    for sp in (0.07, 0.1):
        neg = {n: [] for n in filters}
        area = 0.0
        best = {n: [] for n in filters}  # (size, contrast, best score touching it)
        near = {n: [] for n in filters}  # scores of false candidates near the clusters
        disc_area = 0.0
        for view in ("L-CC", "L-MLO"):
            a = B.read(view)
            area += (a > 0).sum() * sp**2 / 100
            for n, f in filters.items():
                neg[n].append(scored(a, sp, f)[1])
            breast = delineate_breast(a, spacing=sp)
            _, summ = B.segment(a, sp)
            noise = summ["pixel_noise_sd"] * 4095
            for img, ref, keys, centres in B.insertion_rounds(a, sp, noise, breast, view,
                                                                args.rounds):
                disc = B.cluster_discs(img.shape, centres, sp)
                disc_area += disc.sum() * sp**2 / 100
                # the footprints dilated by one pixel: labelled (square) and as a cross
                dil = ndi.grey_dilation(ref, size=(3, 3))
                cross = ndi.binary_dilation(ref > 0)
                for n, f in filters.items():
                    lab, s = scored(img, sp, f)
                    s1 = np.concatenate([[-1.0], s])
                    m = np.full(len(keys) + 1, -1.0)
                    # best candidate score touching each inserted footprint
                    sel = cross & (lab > 0) & (dil > 0)
                    np.maximum.at(m, dil[sel], s1[lab[sel]])
                    best[n].extend((key[0], key[1], m[i + 1]) for i, key in enumerate(keys))
                    near[n].append(s[B.false_objects(lab, dil > 0, disc, len(s))])
        for n, f in filters.items():
            sc = np.sort(np.concatenate(neg[n]))[::-1]
            near_sc = np.concatenate(near[n])
            b = np.array(best[n])
            big = b[:, 0] >= 0.2
            for budget in BUDGETS:
                k = int(np.floor(budget * area))  # at most this many objects
                thr = sc[k] if k < sc.size else -0.5  # keep scores strictly above sc[k]
                hit = b[:, 2] > thr
                res[f"{n}_{sp}mm_budget{budget}_false_near_clusters_per_cm2"] = float(
                    (near_sc > thr).sum() / disc_area)
                res[f"{n}_{sp}mm_budget{budget}_recall_ge0.2mm_c>=3"] = float(
                    hit[big & (b[:, 1] >= 3)].mean())
                for c in B.CONTRASTS:
                    res[f"{n}_{sp}mm_budget{budget}_recall_ge0.2mm_c{c:g}"] = float(
                        hit[big & (b[:, 1] == c)].mean())
            _, thr_b = f.resolve("balanced")
            res[f"{n}_{sp}mm_balanced_real_fp_per_cm2"] = float((sc >= thr_b).sum() / area)
            res[f"{n}_{sp}mm_balanced_false_near_clusters_per_cm2"] = float(
                (near_sc >= thr_b).sum() / disc_area)
            res[f"{n}_{sp}mm_balanced_recall_ge0.2mm_c>=3"] = float(
                (b[:, 2] >= thr_b)[big & (b[:, 1] >= 3)].mean())
            for c in B.CONTRASTS:
                for d in B.SIZES:
                    cell = (b[:, 0] == d) & (b[:, 1] == c)
                    res[f"{n}_{sp}mm_d{d}_c{c:g}_candidate"] = float((b[cell, 2] > -1).mean())
                    res[f"{n}_{sp}mm_d{d}_c{c:g}_kept_balanced"] = float(
                        (b[cell, 2] >= thr_b).mean())
    res["wall_seconds"] = time.perf_counter() - t0
    res["cpu_seconds"] = time.process_time() - c0
    print_results(res)
    write_results(res, args.out)


if __name__ == "__main__":
    main()
