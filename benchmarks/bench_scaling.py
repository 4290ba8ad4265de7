"""Feature extraction cost vs cohort size: time and peak memory for 100, 300 and 1000 ROIs.

Each size runs in two fresh subprocesses: one writes the synthetic cohort's images to
``.npy`` files, the other builds lazy ROIs from those paths and extracts the features
(segment -> masks -> local + topology features, ``memory=None``) in chunks of ``--chunk``
ROIs, keeping only the compact outputs (per-calcification tables, topology rows). Its peak
RSS is therefore the extraction's, not the cohort generator's, and should not grow with
the number of ROIs; the time per ROI should stay constant (linear cost). The smallest size
is the baseline of the time-per-ROI ratios.

Without chunking the pipeline's intermediate ROI lists hold each ROI's label images
(``calcifications`` and ``masks.foreground``); their size per ROI is reported as
``label_images_kb_per_roi`` so that the memory of an unchunked run can be extrapolated.

Prints ``name: value`` lines and writes ``benchmarks/results/scaling.json``.
Run: ``python benchmarks/bench_scaling.py [--sizes 100 300 1000] [--n-jobs 1] [--chunk 50]``.
"""

import argparse
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
from _common import peak_rss_mb, write_results  # noqa: E402


def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20




def worker_peak_rss_mb():
    """Highest peak RSS among live child processes (loky workers), from /proc."""
    try:
        import psutil
    except ImportError:
        return None
    peaks = []
    for child in psutil.Process().children(recursive=True):
        try:
            with open(f"/proc/{child.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        peaks.append(int(line.split()[1]) / 1024)
        except OSError:
            pass
    return max(peaks, default=None)


def generate(n_rois, folder, seed):
    from skcalc.datasets import make_calcification_cohort

    rois, _, _ = make_calcification_cohort(n_rois, random_state=seed)
    regions, records = [], []
    for i, r in enumerate(rois):
        path = os.path.join(folder, f"roi{i:05d}.npy")
        np.save(path, np.asarray(r.image))
        # The cohort's regions are few distinct disks: store each once.
        same = [k for k, reg in enumerate(regions) if np.array_equal(reg, r.region)]
        if not same:
            regions.append(np.asarray(r.region))
            same = [len(regions) - 1]
        records.append({"path": path, "spacing": r.spacing, "region": same[0], "meta": r.meta})
    with open(os.path.join(folder, "rois.pkl"), "wb") as f:
        pickle.dump({"regions": regions, "records": records}, f)


def extract(folder, n_jobs, chunk):
    from skcalc import ROI
    from skcalc.exceptions import SkcalcWarning
    from skcalc.features import LocalFeatureExtractor, TopologyFeatures
    from skcalc.masks import MaskBuilder
    from skcalc.segmentation import HDoGRegSegmenter

    warnings.simplefilter("ignore", SkcalcWarning)
    with open(os.path.join(folder, "rois.pkl"), "rb") as f:
        data = pickle.load(f)
    rois = [
        ROI(path=d["path"], spacing=d["spacing"], region=data["regions"][d["region"]],
            meta=d["meta"])
        for d in data["records"]
    ]  # fmt: skip
    seg = HDoGRegSegmenter(n_jobs=n_jobs)
    masks = MaskBuilder(n_jobs=n_jobs)
    local = LocalFeatureExtractor(n_jobs=n_jobs)
    topo = TopologyFeatures(n_jobs=n_jobs)
    if n_jobs != 1:
        # Start the workers and their imports outside the timed loop (one-off cost).
        done = masks.fit_transform(seg.fit_transform(rois[:4]))
        local.fit_transform(done)
        topo.fit_transform(done)
    rss_before = rss_mb()
    tables, rows, label_bytes, n_objects = [], [], 0, 0
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    for start in range(0, len(rois), chunk):
        part = masks.fit_transform(seg.fit_transform(rois[start : start + chunk]))
        tables.extend(local.fit_transform(part))
        rows.append(topo.fit_transform(part))
        label_bytes += sum(r.calcifications.nbytes + r.masks.foreground.nbytes for r in part)
        n_objects += sum(r.masks.n_objects for r in part)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    features = np.vstack(rows)
    out_bytes = features.nbytes + sum(t.labels.nbytes + sum(t[k].nbytes for k in t) for t in tables)
    return {
        "n_rois": len(rois),
        "n_calcifications": int(n_objects),
        "n_jobs": n_jobs,
        "chunk": chunk,
        "extract_s": round(wall, 2),
        "extract_cpu_s_main_process": round(cpu, 2),
        "ms_per_roi": round(1000 * wall / len(rois), 1),
        "ms_per_calcification": round(1000 * wall / max(n_objects, 1), 2),
        "rss_before_extract_mb": round(rss_before, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "peak_rss_workers_mb": worker_peak_rss_mb() if n_jobs != 1 else None,
        "outputs_kept_mb": round(out_bytes / 2**20, 2),
        "label_images_kb_per_roi": round(label_bytes / len(rois) / 1024, 1),
        "topology_shape": list(features.shape),
    }


def run(cmd):
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"failed: {' '.join(cmd)}")
    return proc.stdout




def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 300, 1000])
    parser.add_argument("--n-jobs", type=int, default=1)
    parser.add_argument("--chunk", type=int, default=50)
    parser.add_argument("--random-state", type=int, default=0)
    parser.add_argument("--generate", nargs=2, metavar=("N", "FOLDER"), help=argparse.SUPPRESS)
    parser.add_argument("--extract", metavar="FOLDER", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.generate:
        generate(int(args.generate[0]), args.generate[1], args.random_state)
        return None
    if args.extract:
        print(json.dumps(extract(args.extract, args.n_jobs, args.chunk)))
        return None

    res = {"cpu_count": os.cpu_count(), "load_average_1min_before": os.getloadavg()[0]}
    per_size = []
    me = os.path.abspath(__file__)
    for n in args.sizes:
        with tempfile.TemporaryDirectory() as folder:
            t0 = time.perf_counter()
            run([sys.executable, me, "--generate", str(n), folder,
                 "--random-state", str(args.random_state)])  # fmt: skip
            t_gen = time.perf_counter() - t0
            cmd = [sys.executable, me, "--extract", folder]
            cmd += ["--n-jobs", str(args.n_jobs), "--chunk", str(args.chunk)]
            out = json.loads(run(cmd).strip().splitlines()[-1])
        out["generation_s"] = round(t_gen, 1)
        per_size.append(out)
        print(
            f"n_rois={n}: extract {out['extract_s']} s, {out['ms_per_roi']} ms/ROI, "
            f"peak RSS {out['peak_rss_mb']} MB",
            flush=True,
        )
    base = per_size[0]
    for out in per_size:
        out["ms_per_roi_over_smallest"] = round(out["ms_per_roi"] / base["ms_per_roi"], 3)
        out["ms_per_calcification_over_smallest"] = round(
            out["ms_per_calcification"] / base["ms_per_calcification"], 3
        )
    sizes = np.array([o["n_rois"] for o in per_size], float)
    times = np.array([o["extract_s"] for o in per_size], float)
    if len(sizes) >= 2:
        slope, intercept = np.polyfit(sizes, times, 1)
        fit = slope * sizes + intercept
        r2 = 1 - np.sum((times - fit) ** 2) / max(np.sum((times - times.mean()) ** 2), 1e-12)
        res["linear_fit_ms_per_roi"] = round(1000 * slope, 1)
        res["linear_fit_intercept_s"] = round(intercept, 2)
        res["linear_fit_r2"] = round(float(r2), 4)
    res["load_average_1min_after"] = os.getloadavg()[0]
    res["n_jobs"] = args.n_jobs
    res["sizes"] = per_size
    for out in per_size:
        n = out["n_rois"]
        for k, v in out.items():
            if k != "n_rois":
                print(f"n{n}_{k}: {v}")
    for k, v in res.items():
        if k != "sizes":
            print(f"{k}: {v}")
    write_results(res, "scaling")
    return res


if __name__ == "__main__":
    main()
