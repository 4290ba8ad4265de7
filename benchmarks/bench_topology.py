"""Multi-scale connectivity + topology features: exact geometry vs the naive per-scale way.

Fast path: ``MaskBuilder`` (merge index from boundary-pixel offsets and a cached lookup table)
followed by ``TopologyFeatures`` (numpy/scipy graph features), 65 scales.

Naive baseline (same definition): at every scale, dilate every object separately by the disk
footprint on a padded canvas (exact, with a fast row-decomposed dilation: plain
``scipy.ndimage.binary_dilation`` with the 129x129 disk takes ~5 s per object at the largest
scale, so the baseline is already generous), test every pair of dilated objects for
overlap, and compute the eight graph features with networkx; handcrafted features are shared.

The features must be identical (``allclose`` at 1e-12). Prints ``name: value`` lines and writes
``benchmarks/results/topology.json``. Run: ``python benchmarks/bench_topology.py [n_rois]``.
"""

import itertools
import sys
import time

import networkx as nx
import numpy as np
from _common import write_results  # noqa: E402
from scipy import ndimage as ndi

from skcalc import ROI
from skcalc.features import TopologyFeatures, handcrafted_features
from skcalc.masks import DEFAULT_SCALES, MaskBuilder, dilate_disk, disk_footprint
from skcalc.testing import networkx_graph_features


def cohort_rois(n_rois, seed=0):
    """ROIs of the synthetic cohort, ground-truth calcifications used as the segmentation."""
    try:
        from skcalc.datasets import make_calcification_cohort

        rois, _, _ = make_calcification_cohort(n_rois, random_state=seed)
        out = []
        for r in rois:
            lab, _ = ndi.label(r.reference)
            out.append(r.replace(calcifications=lab.astype(np.int32)))
        return out, "make_calcification_cohort"
    except NotImplementedError:
        return blob_rois(n_rois, seed), "random blobs"


def blob_rois(n_rois, seed=0):
    """20-60 small random blobs in a 300x300 image."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n_rois):
        lab = np.zeros((300, 300), np.int32)
        n = int(rng.integers(20, 61))
        centre = rng.uniform(60, 240, 2)
        for i in range(1, n + 1):
            r, c = np.clip(rng.normal(centre, 45), 2, 295).astype(int)
            h, w = rng.integers(1, 5, 2)
            lab[r : r + h, c : c + w] = i
        out.append(ROI(np.zeros(lab.shape, np.uint16), 0.07, calcifications=lab,
                       meta={"roi_id": f"blob{k}"}))  # fmt: skip
    return out


def naive_features(fg, spacing, scales):
    n = int(fg.max())
    pad = max(disk_footprint(scales[-1], spacing).shape) // 2 + 1
    canvas = np.pad(fg, pad)
    boxes = ndi.find_objects(canvas)
    feats = []
    for r in scales:
        hy, hx = np.array(disk_footprint(r, spacing).shape) // 2
        dil = []
        for i, sl in enumerate(boxes):
            win = (
                slice(sl[0].start - hy, sl[0].stop + hy),
                slice(sl[1].start - hx, sl[1].stop + hx),
            )
            dil.append((win, dilate_disk(canvas[win] == i + 1, r, spacing)))
        g = nx.Graph()
        g.add_nodes_from(range(n))
        for i, j in itertools.combinations(range(n), 2):
            (wi, di), (wj, dj) = dil[i], dil[j]
            r0, r1 = max(wi[0].start, wj[0].start), min(wi[0].stop, wj[0].stop)
            c0, c1 = max(wi[1].start, wj[1].start), min(wi[1].stop, wj[1].stop)
            if r0 >= r1 or c0 >= c1:
                continue
            a = di[r0 - wi[0].start : r1 - wi[0].start, c0 - wi[1].start : c1 - wi[1].start]
            b = dj[r0 - wj[0].start : r1 - wj[0].start, c0 - wj[1].start : c1 - wj[1].start]
            if (a & b).any():
                g.add_edge(i, j)
        feats.extend(networkx_graph_features(g))
    return np.concatenate((feats, handcrafted_features(fg, spacing)))


def compare(rois, source, scales):
    t0 = time.perf_counter()
    masked = MaskBuilder(scales=scales).transform(rois)
    t1 = time.perf_counter()
    fast = TopologyFeatures().fit(masked).transform(masked)
    t2 = time.perf_counter()
    # Same foreground (region filter, relabelling) as the fast path.
    naive = np.vstack([naive_features(r.masks.foreground, r.spacing, scales) for r in masked])
    t3 = time.perf_counter()
    n_obj = [r.masks.n_objects for r in masked]
    return {
        "source": source,
        "n_rois": len(rois),
        "image_shape": list(rois[0].shape),
        "objects_per_roi_mean": float(np.mean(n_obj)),
        "objects_per_roi_max": int(np.max(n_obj)),
        "fast_masks_s_per_roi": (t1 - t0) / len(rois),
        "fast_topology_s_per_roi": (t2 - t1) / len(rois),
        "fast_total_s_per_roi": (t2 - t0) / len(rois),
        "naive_s_per_roi": (t3 - t2) / len(rois),
        "speedup": (t3 - t2) / (t2 - t0),
        "features_identical": bool(np.allclose(fast, naive, rtol=0, atol=1e-12)),
        "max_abs_diff": float(np.abs(fast - naive).max()),
    }


def large_roi(n_objects=300, size=1000, seed=1):
    """One large ROI with a few hundred objects: fast path only (the naive one takes minutes)."""
    rng = np.random.default_rng(seed)
    lab = np.zeros((size, size), np.int32)
    for i in range(1, n_objects + 1):
        r, c = rng.integers(0, size - 5, 2)
        h, w = rng.integers(1, 6, 2)
        lab[r : r + h, c : c + w] = i
    roi = ROI(np.zeros(lab.shape, np.uint16), 0.07, calcifications=lab, meta={"roi_id": "large"})
    t0 = time.perf_counter()
    masked = MaskBuilder().transform([roi])
    t1 = time.perf_counter()
    TopologyFeatures().fit(masked).transform(masked)
    t2 = time.perf_counter()
    return {
        "image_shape": [size, size],
        "n_objects": masked[0].masks.n_objects,
        "masks_s": t1 - t0,
        "topology_s": t2 - t1,
    }


def main():
    n_rois = int(sys.argv[1]) if len(sys.argv) > 1 else 4
    scales = DEFAULT_SCALES
    rois, source = cohort_rois(n_rois)
    res = {"n_scales": len(scales), "cohort": compare(rois, source, scales)}
    res["blobs"] = compare(blob_rois(max(1, n_rois // 2), seed=1), "random blobs 20-60", scales)
    res["large_fast_only"] = large_roi()
    for part in ("cohort", "blobs", "large_fast_only"):
        for k, v in res[part].items():
            print(f"{part}.{k}: {v}")
    res["speedup_min"] = min(res["cohort"]["speedup"], res["blobs"]["speedup"])
    print(f"speedup_min: {res['speedup_min']}")
    write_results(res, "topology")
    if not (res["cohort"]["features_identical"] and res["blobs"]["features_identical"]):
        raise SystemExit("features differ between fast and naive paths")


if __name__ == "__main__":
    main()
