"""Image stages with one worker vs two: speed-up of the per-ROI loops (``map_rois``).

The four image stages (HDoGReg segmentation, masks, local features, topology features) run
on ``--n-rois`` ROIs of the synthetic cohort with ``n_jobs=1`` (the baseline), then with
``n_jobs=2`` (loky processes), without cache (``memory=None``), in the same run. The loky
pool is started and its workers import the stages' modules before the timed run (a one-off
cost, reported separately as ``loky_pool_startup_s`` and ``worker_warmup_s``). Results
must be identical. The machine's load average is recorded: on a shared machine the
speed-up is bounded by the idle cores, not by the code, so the CPU seconds spent and the
cores actually obtained (CPU seconds / wall seconds) are reported as well.

**Boxes of real mammograms** (``--boxes-per-file K``, default 4; 0 skips): K lazy 30 mm
boxes of each of the four real views of ``../shared/realdata/nyu-gmic-sample`` (0.1 mm
assumed) segmented by the default detector, which segments each box's whole file once per
process. Timed with ``n_jobs=1``, with ``n_jobs=2`` (a file's boxes in one task) and with
``n_jobs=2`` with every box its own task (as before: a file is then segmented by every
worker that gets one of its boxes). Each variant reads its own copies of the files, so no
worker reuses an earlier variant's segmentation.

Prints ``name: value`` lines and writes ``benchmarks/results/parallel.json``.
Run: ``python benchmarks/bench_parallel.py [--n-rois 60] [--n-jobs 2] [--boxes-per-file 4]``.
"""

import argparse
import os
import shutil
import tempfile
import time
import warnings

import bench_real_background as real_background  # noqa: E402
import numpy as np
from _common import write_results  # noqa: E402
from joblib import Parallel, delayed

from skcalc import ROI
from skcalc.datasets import make_calcification_cohort
from skcalc.exceptions import SkcalcWarning
from skcalc.features import LocalFeatureExtractor, TopologyFeatures
from skcalc.masks import MaskBuilder
from skcalc.segmentation import HDoGRegSegmenter


def image_stages(rois, n_jobs):
    """Run the four stages; return (per-stage wall times, outputs)."""
    times = {}
    t0 = time.perf_counter()
    seg = HDoGRegSegmenter(n_jobs=n_jobs).fit_transform(rois)
    times["segment"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    masked = MaskBuilder(n_jobs=n_jobs).fit_transform(seg)
    times["masks"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    local = LocalFeatureExtractor(n_jobs=n_jobs).fit_transform(masked)
    times["local_features"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    topo = TopologyFeatures(n_jobs=n_jobs).fit_transform(masked)
    times["topology"] = time.perf_counter() - t0
    times["total"] = sum(times.values())
    return times, (seg, local, topo)


def cpu_seconds():
    """CPU time of this process and of its live children (the loky workers)."""
    import psutil

    me = psutil.Process()
    total = sum(me.cpu_times()[:2])
    for child in me.children(recursive=True):
        try:
            total += sum(child.cpu_times()[:2])
        except psutil.Error:
            pass
    return total


def same_outputs(a, b):
    seg1, local1, topo1 = a
    seg2, local2, topo2 = b
    ok = all(np.array_equal(x.calcifications, y.calcifications) for x, y in zip(seg1, seg2))
    for x, y in zip(local1, local2):
        ok &= list(x) == list(y) and all(np.array_equal(x[k], y[k]) for k in x)
    return bool(ok and np.array_equal(topo1, topo2))


def real_boxes(per_file, n_jobs):
    """Seconds to segment ``per_file`` boxes of each real view: serial, grouped, per box."""
    views = ("L-CC", "L-MLO", "R-CC", "R-MLO")
    rng = np.random.default_rng(0)
    boxes = {}
    for v in views:
        h, w = real_background.read(v).shape
        boxes[v] = [(r, r + 300, c, c + 300) for r, c in
                    zip(rng.integers(0, h - 300, per_file), rng.integers(0, w - 300, per_file))]
    out, labels = {}, {}
    grouped = HDoGRegSegmenter._together
    for name, jobs, together in (("serial", 1, True), ("grouped", n_jobs, True),
                                 ("per_box", n_jobs, False)):
        with tempfile.TemporaryDirectory() as tmp:
            rois = []
            for v in views:
                path = shutil.copy(os.path.join(real_background.REAL, f"0_{v}.png"), tmp)
                rois += [ROI(path=path, box=b, spacing=0.1, meta={"roi_id": f"{v}{i}"})
                         for i, b in enumerate(boxes[v])]
            # a box per task: the segmenter's grouping switched off (the parent decides it)
            HDoGRegSegmenter._together = grouped if together else (lambda self, r, p: None)
            try:
                seg = HDoGRegSegmenter(n_jobs=jobs).fit(rois)
                t0 = time.perf_counter()
                res = seg.transform(rois)
                out[f"real_boxes_{name}_s"] = round(time.perf_counter() - t0, 3)
            finally:
                HDoGRegSegmenter._together = grouped
            labels[name] = [r.calcifications for r in res]
    out["real_boxes_n_rois"] = len(views) * per_file
    out["real_boxes_identical"] = all(
        np.array_equal(a, b) for k in ("grouped", "per_box")
        for a, b in zip(labels["serial"], labels[k]))
    out["real_boxes_speedup_grouped"] = round(
        out["real_boxes_serial_s"] / out["real_boxes_grouped_s"], 3)
    out["real_boxes_speedup_per_box"] = round(
        out["real_boxes_serial_s"] / out["real_boxes_per_box_s"], 3)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-rois", type=int, default=60)
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--random-state", type=int, default=0)
    parser.add_argument("--boxes-per-file", type=int, default=4)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore", SkcalcWarning)

    rois, _, _ = make_calcification_cohort(args.n_rois, random_state=args.random_state)
    load_before = os.getloadavg()[0]

    # Start the workers and let them import the stages' modules (pyradiomics, skimage): a
    # one-off cost per worker process, reused by every later call (loky keeps its pool).
    t0 = time.perf_counter()
    Parallel(n_jobs=args.n_jobs)(delayed(os.getpid)() for _ in range(2 * args.n_jobs))
    t_pool = time.perf_counter() - t0
    t0 = time.perf_counter()
    image_stages(rois[: 2 * args.n_jobs], n_jobs=args.n_jobs)
    t_warm = time.perf_counter() - t0

    c0 = cpu_seconds()
    serial, out1 = image_stages(rois, n_jobs=1)
    c1 = cpu_seconds()
    parallel, out2 = image_stages(rois, n_jobs=args.n_jobs)
    c2 = cpu_seconds()
    cpu_serial, cpu_parallel = c1 - c0, c2 - c1
    n_objects = sum(t.n_objects for t in out1[1])

    res = {
        "n_rois": len(rois),
        "roi_shape": list(rois[0].shape),
        "n_calcifications": int(n_objects),
        "n_jobs": args.n_jobs,
        "cpu_count": os.cpu_count(),
        "load_average_1min_before": round(load_before, 2),
        "load_average_1min_after": round(os.getloadavg()[0], 2),
        "loky_pool_startup_s": round(t_pool, 3),
        "worker_warmup_s": round(t_warm, 3),
        "serial_s": round(serial["total"], 3),
        "parallel_s": round(parallel["total"], 3),
        "speedup": round(serial["total"] / parallel["total"], 3),
        "serial_ms_per_roi": round(1000 * serial["total"] / len(rois), 1),
        "parallel_ms_per_roi": round(1000 * parallel["total"] / len(rois), 1),
        "identical_outputs": same_outputs(out1, out2),
        # CPU seconds spent (parent + workers) and the cores actually obtained: on a shared
        # machine a speed-up below n_jobs with cpu_overhead near 1 means missing idle cores,
        # not parallel overhead.
        "serial_cpu_s": round(cpu_serial, 3),
        "parallel_cpu_s": round(cpu_parallel, 3),
        "parallel_cpu_overhead": round(cpu_parallel / cpu_serial, 3),
        "serial_cores_obtained": round(cpu_serial / serial["total"], 2),
        "parallel_cores_obtained": round(cpu_parallel / parallel["total"], 2),
    }
    for stage in ("segment", "masks", "local_features", "topology"):
        res[f"{stage}_serial_s"] = round(serial[stage], 3)
        res[f"{stage}_parallel_s"] = round(parallel[stage], 3)
        res[f"{stage}_speedup"] = round(serial[stage] / parallel[stage], 3)
    if args.boxes_per_file > 0:
        res.update(real_boxes(args.boxes_per_file, args.n_jobs))
    for k, v in res.items():
        print(f"{k}: {v}")
    write_results(res, "parallel")
    return res


if __name__ == "__main__":
    main()
