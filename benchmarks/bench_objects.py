"""Cost of each image stage, run alone, on ROIs with many objects (100 to 3000).

For each number of objects ``n`` one ROI is built on a canvas of
``max(256, 8 * ceil(sqrt(n)))`` pixels square at 0.07 mm (256 px up to 1024 objects, 440 px
for 3000, i.e. about one object per 64 px²):

* ``masks``: :class:`~skcalc.masks.MaskBuilder` on ``n`` non-touching random objects of
  1-3 x 1-3 px given as ``calcifications`` (one per random 4x4 cell, so exactly ``n``
  4-connected objects);
* ``topology``: :class:`~skcalc.features.TopologyFeatures` (65 scales + handcrafted) on
  those masks;
* ``topology_networkx``: the slow reference of the graph features (networkx on the graph of
  each of the 65 scales, :func:`skcalc.testing.networkx_graph_features`), for the
  speed-up; the features are checked equal to ``topology``'s;
* ``local``: :class:`~skcalc.features.LocalFeatureExtractor` (three feature sets) on those
  masks, on a noisy image;
* ``segment``: ``HDoGRegSegmenter(regressor=None)`` on an image with ``n`` bright Gaussian
  blobs (one per random 8x8 cell).

Each stage gets its input prepared beforehand and is timed alone (wall clock,
``time.perf_counter``) with the process CPU time next to it (more robust on a shared
machine). Memory: the peak increase of the resident set size (RSS) over its value when the
stage starts, sampled every 2 ms from ``/proc/self/statm`` (Linux; it counts C/C++
allocations such as SimpleITK's, may miss spikes shorter than the period and can read 0 when
the stage reuses memory the process already holds); ``--tracemalloc`` adds a second run
with the tracemalloc peak (Python and numpy allocations only). Once a stage takes longer than
``--cap`` seconds it is skipped (printed ``skipped``) at the larger sizes; it is skipped as
well when its time extrapolated from the previous size (``GROWTH``: linear for ``local`` and
``segment``, quadratic for ``masks`` and ``topology``, cubic for the networkx reference)
exceeds three times the cap.

Prints ``name: value`` lines and writes ``benchmarks/results/objects.json``.
Run: ``python benchmarks/bench_objects.py [--sizes 100,300,1000,3000]
[--stages masks,topology,topology_networkx,local,segment] [--cap 20] [--tracemalloc]``.
"""

from __future__ import annotations

import argparse
import math
import os
import threading
import time
import tracemalloc
import warnings
from functools import partial

import numpy as np
from _common import write_results  # noqa: E402

from skcalc import ROI
from skcalc.features import LocalFeatureExtractor, TopologyFeatures
from skcalc.masks import MaskBuilder
from skcalc.segmentation import HDoGRegSegmenter

SPACING = 0.07
STAGES = ("masks", "topology", "topology_networkx", "local", "segment")
# How each stage's time is extrapolated to the next size (exponent of the size ratio):
# a guess on the safe side, only used to skip runs far beyond the cap.
GROWTH = {"masks": 2, "topology": 2, "topology_networkx": 3, "local": 1, "segment": 1}


def canvas_side(n: int) -> int:
    return max(256, 8 * math.ceil(math.sqrt(n)))


def object_labels(n: int, side: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` non-touching objects of 1-3 x 1-3 px, one per random 4x4 cell."""
    g = side // 4
    if n > g * g:
        raise ValueError(f"{n} objects do not fit in {g * g} cells of a {side} px canvas")
    cells = rng.choice(g * g, n, replace=False)
    hw = rng.integers(1, 4, (n, 2))
    lab = np.zeros((side, side), np.int32)
    for i, (c, (h, w)) in enumerate(zip(cells, hw), start=1):
        r0, c0 = (c // g) * 4, (c % g) * 4
        lab[r0 : r0 + h, c0 : c0 + w] = i
    return lab


def blob_image(n: int, side: int, rng: np.random.Generator) -> np.ndarray:
    """12-bit image: noisy background and ``n`` Gaussian blobs, one per random 8x8 cell."""
    g = side // 8
    if n > g * g:
        raise ValueError(f"{n} blobs do not fit in {g * g} cells of a {side} px canvas")
    cells = rng.choice(g * g, n, replace=False)
    img = 1200.0 + 8.0 * rng.standard_normal((side, side))
    yy, xx = np.mgrid[-3:4, -3:4]
    for c in cells:
        cy, cx = (c // g) * 8 + 4, (c % g) * 8 + 4
        sigma = rng.uniform(1.0, 1.6)
        img[cy - 3 : cy + 4, cx - 3 : cx + 4] += 600.0 * np.exp(-(yy**2 + xx**2) / (2 * sigma**2))
    return np.clip(img, 0, 4095).astype(np.uint16)


class PeakRSS:
    """Peak RSS increase (MB) while the block runs, sampled by a thread."""

    PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096

    def __init__(self, period: float = 0.002):
        self.period = period
        self.peak_mb: float | None = None

    @staticmethod
    def _rss() -> int | None:
        try:
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * PeakRSS.PAGE
        except OSError:
            return None

    def _sample(self):
        while not self._stop.is_set():
            rss = self._rss()
            self._peak = max(self._peak, rss)
            self._stop.wait(self.period)

    def __enter__(self):
        self._start = self._rss()
        if self._start is not None:
            self._peak = self._start
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc):
        if self._start is not None:
            self._stop.set()
            self._thread.join()
            self._peak = max(self._peak, self._rss())
            self.peak_mb = round((self._peak - self._start) / 2**20, 1)
        return False


def run_stage(fn, tracemalloc_too: bool) -> tuple[object, dict]:
    with PeakRSS() as mem:
        c0, t0 = time.process_time(), time.perf_counter()
        out = fn()
        t1, c1 = time.perf_counter(), time.process_time()
    res = {
        "time_s": round(t1 - t0, 4),
        "cpu_s": round(c1 - c0, 4),
        "peak_rss_delta_mb": mem.peak_mb,
    }
    if tracemalloc_too:
        tracemalloc.start()
        fn()
        res["tracemalloc_peak_mb"] = round(tracemalloc.get_traced_memory()[1] / 2**20, 1)
        tracemalloc.stop()
    return out, res


def networkx_topology(merge_index: np.ndarray, n_scales: int) -> np.ndarray:
    import networkx as nx

    from skcalc.testing import networkx_graph_features

    n = merge_index.shape[0]
    iu, ju = np.nonzero(np.triu(merge_index < n_scales, 1))
    k = merge_index[iu, ju]
    rows = []
    for s in range(n_scales):
        g = nx.Graph()
        g.add_nodes_from(range(n))
        sel = k <= s
        g.add_edges_from(zip(iu[sel].tolist(), ju[sel].tolist()))
        rows.append(networkx_graph_features(g))
    return np.concatenate(rows)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="100,300,1000,3000", help="numbers of objects")
    p.add_argument("--stages", default=",".join(STAGES), help=f"subset of {','.join(STAGES)}")
    p.add_argument("--cap", type=float, default=20.0, help="skip a stage at larger sizes once "
                   "it took longer than this many seconds")  # fmt: skip
    p.add_argument("--canvas", type=int, default=None, help="force the canvas side (px)")
    p.add_argument("--tracemalloc", action="store_true", help="second run for tracemalloc peak")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = set(stages) - set(STAGES)
    if unknown:
        p.error(f"unknown stages {sorted(unknown)}; choose from {STAGES}")

    warnings.simplefilter("ignore")  # SkcalcWarning for tiny objects etc.: not measured here
    results: dict = {"cap_s": args.cap, "spacing_mm": SPACING, "sizes": sizes, "stages": {}}
    over_cap: set[str] = set()
    last: dict[str, tuple[int, float]] = {}  # stage -> (size, seconds) of its last run
    for n in sizes:
        rng = np.random.default_rng(args.seed + n)
        side = args.canvas or canvas_side(n)
        lab = object_labels(n, side, rng)
        image = (1500 + 30 * rng.standard_normal(lab.shape)).astype(np.uint16)
        roi = ROI(image, SPACING, calcifications=lab, meta={"roi_id": f"objects{n}"})
        masked = None
        topo = None
        print(f"n{n}.canvas_px: {side}")
        for stage in stages:
            key = f"{stage}.n{n}"
            predicted = None
            if stage in last:
                m, secs = last[stage]
                predicted = secs * (n / m) ** GROWTH[stage]
            if stage in over_cap or (predicted is not None and predicted > 3 * args.cap):
                why = f"skipped (took {last[stage][1]:.1f} s at n={last[stage][0]})"
                print(f"{key}: {why}")
                results["stages"].setdefault(stage, {})[f"n{n}"] = why
                continue
            if stage in ("topology", "topology_networkx", "local") and masked is None:
                masked = MaskBuilder().transform([roi])
            if stage == "masks":
                out, res = run_stage(partial(MaskBuilder().transform, [roi]), args.tracemalloc)
                res["n_objects"] = out[0].masks.n_objects
            elif stage == "topology":
                topo, res = run_stage(
                    partial(TopologyFeatures().fit_transform, masked), args.tracemalloc
                )
            elif stage == "topology_networkx":
                mi = masked[0].masks.merge_index
                ref, res = run_stage(partial(networkx_topology, mi, 65), args.tracemalloc)
                if topo is not None:
                    res["equal_to_topology"] = bool(
                        np.allclose(topo[0, : ref.size], ref, rtol=0, atol=1e-12)
                    )
            elif stage == "local":
                _, res = run_stage(
                    partial(LocalFeatureExtractor().fit_transform, masked), args.tracemalloc
                )
            else:  # segment
                bside = max(side, 8 * math.ceil(math.sqrt(n)))
                broi = ROI(blob_image(n, bside, rng), SPACING, meta={"roi_id": f"blobs{n}",
                           "bits_stored": 12})  # fmt: skip
                seg = HDoGRegSegmenter(regressor=None).fit([broi])
                out, res = run_stage(partial(seg.transform, [broi]), args.tracemalloc)
                res["n_detected"] = int(out[0].calcifications.max())
            res["per_object_ms"] = round(1000 * res["time_s"] / n, 3)
            results["stages"].setdefault(stage, {})[f"n{n}"] = res
            for k, v in res.items():
                print(f"{key}.{k}: {v}", flush=True)
            last[stage] = (n, res["time_s"])
            if res["time_s"] > args.cap:
                over_cap.add(stage)
    topo_t = results["stages"].get("topology", {})
    ref_t = results["stages"].get("topology_networkx", {})
    for n in sizes:
        a, b = topo_t.get(f"n{n}"), ref_t.get(f"n{n}")
        if isinstance(a, dict) and isinstance(b, dict):
            name = f"topology_speedup_vs_networkx.n{n}"
            results[name] = round(b["time_s"] / a["time_s"], 1)
            print(f"{name}: {results[name]}")
    print(f"results: {write_results(results, 'objects')}")


if __name__ == "__main__":
    main()
