"""Cost of LocalFeatureExtractor on the inputs of issues 11.3 and 11.5, against its budget.

Each case runs in a fresh process so that its peak memory is its own:

* ``objectsN``: an ROI with N calcifications (half single salt pixels at 4095, half 2x2
  clusters, 2 % of the pixels) on 12-bit tissue, the paper's 1.75 mm bands (issue 11.3:
  243 objects took 64 s and 1.8 GB, 963 objects 327 s and +2.6 GB);
* ``refuse6000``: 6000 objects, more than ``max_objects`` (default 5000): refused before the work;
* ``noise256``: 100 objects on uniform noise spanning 255 gray levels in every band, the
  most a band may have (``max_gray_levels=256``): the worst cost per object the budget allows;
* ``float_x1e6`` / ``int64_huge``: the cohort ROI scaled by 1e6 (float) or 1e12 (int64):
  refused with the bin width that fits, then run with that bin width (``_hint``);
* ``unit_range``: the cohort ROI divided by 4095 (float in [0, 1]): a DiscretisationWarning,
  then run with ``bin_width=5/4095`` (``_hint``).

Run: ``python benchmarks/bench_local_budget.py``; writes
``benchmarks/results/local_budget.json``. Peak memory is the process's ``ru_maxrss`` minus
its value once the ROI is built (``peak_rss_growth_mb``).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
import warnings

import numpy as np
from _common import write_results  # noqa: E402

SPACING = (0.07, 0.07)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _masks(fg):
    from skcalc.masks import CalcificationMasks

    n = int(fg.max())
    return CalcificationMasks(fg, SPACING, 1.75, np.zeros(1), np.zeros((n, n), np.int32))


def salt_roi(n_objects: int, seed: int = 0, noise_levels: int | None = None):
    """N non-touching objects (single pixels and 2x2 clusters) at 2 % pixel density."""
    from scipy import ndimage as ndi

    from skcalc import ROI

    rng = np.random.default_rng(seed)
    side = int(np.ceil(np.sqrt(n_objects * 2.5 / 0.02)))
    fg = np.zeros((side, side), np.int32)
    taken = np.zeros((side, side), bool)
    k = 0
    while k < n_objects:
        r, c = rng.integers(1, side - 3, 2)
        size = 1 if k % 2 == 0 else 2
        if taken[r - 1 : r + size + 1, c - 1 : c + size + 1].any():
            continue
        taken[r : r + size, c : c + size] = True
        k += 1
        fg[r : r + size, c : c + size] = k
    if noise_levels is None:
        img = 1200 + 60 * ndi.gaussian_filter(rng.standard_normal((side, side)), 4) * 10
        img += 25 * rng.standard_normal((side, side))
    else:  # uniform noise: every band holds about noise_levels gray levels of width 5
        img = 1000 + rng.integers(0, 5 * noise_levels, (side, side))
    img = np.clip(img, 0, 4000)
    img[fg > 0] = 4095
    return ROI(img.astype(np.uint16), spacing=SPACING, masks=_masks(fg), meta={"roi_id": "salt"})


def cohort_roi():
    from scipy import ndimage as ndi

    from skcalc.datasets import make_calcification_cohort

    rois, _, _ = make_calcification_cohort(1, random_state=0)
    fg, _ = ndi.label(rois[0].reference)
    return rois[0].replace(masks=_masks(fg.astype(np.int32)), meta={"roi_id": "cohort0"})


def run_case(name: str) -> dict:
    """One case, in this process."""
    from skcalc.features import LocalFeatureExtractor

    params: dict = {}
    if name.startswith("objects"):
        roi = salt_roi(int(name[len("objects") :]))
    elif name == "refuse6000":
        roi = salt_roi(6000)
    elif name == "noise256":
        roi = salt_roi(100, noise_levels=255)
    else:
        roi = cohort_roi()
        img = roi.image.astype(np.float64)
        if name.startswith("float_x1e6"):
            img = img * 1e6
        elif name.startswith("int64_huge"):
            img = roi.image.astype(np.int64) * 10**12
        elif name.startswith("unit_range"):
            img = img / 4095.0
        roi = roi.replace(image=img)
        if name.endswith("_hint"):
            params["bin_width"] = {"f": 5e6, "i": 5e12, "u": 5 / 4095}[name[0]]
    n_objects = int(roi.masks.n_objects)
    est = LocalFeatureExtractor(**params)
    LocalFeatureExtractor().transform([cohort_roi()])  # imports, caches
    base = _rss_mb()
    w0, c0 = time.perf_counter(), time.process_time()
    outcome, caught = "ok", []
    try:
        with warnings.catch_warnings(record=True) as rec:
            warnings.simplefilter("always")
            out = est.transform([roi])[0]
        caught = sorted({f"{type(w.message).__name__}: {str(w.message)[:160]}" for w in rec})
        finite = float(np.mean([np.isfinite(v).mean() for v in out.values()]))
    except ValueError as exc:
        outcome, finite = f"{type(exc).__name__}: {str(exc)[:200]}", None
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    return {
        "case": name,
        "roi_shape": list(roi.shape),
        "n_objects": n_objects,
        "params": params,
        "outcome": outcome,
        "warnings": caught,
        "fraction_finite": finite,
        "seconds": round(wall, 3),
        "cpu_seconds": round(cpu, 3),
        "ms_per_object": round(1000 * wall / max(n_objects, 1), 2),
        "cpu_ms_per_object": round(1000 * cpu / max(n_objects, 1), 2),
        "peak_rss_mb": round(_rss_mb(), 1),
        "peak_rss_growth_mb": round(_rss_mb() - base, 1),
    }


CASES = (
    "objects100",
    "objects1000",
    "objects3000",
    "refuse6000",
    "noise256",
    "float_x1e6",
    "float_x1e6_hint",
    "int64_huge",
    "int64_huge_hint",
    "unit_range",
    "unit_range_hint",
)


def main(cases=CASES) -> dict:
    results = []
    for name in cases:
        proc = subprocess.run(
            [sys.executable, os.path.abspath(__file__), "--case", name],
            capture_output=True,
            text=True,
            timeout=3600,
        )
        if proc.returncode != 0:
            results.append({"case": name, "outcome": f"crashed: {proc.stderr[-500:]}"})
        else:
            results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        r = results[-1]
        print(
            f"{name:18s} objects={r.get('n_objects')!s:>5} {r.get('seconds')!s:>8} s "
            f"{r.get('ms_per_object')!s:>7} ms/obj  peak +{r.get('peak_rss_growth_mb')!s} MB  "
            f"{r['outcome'][:90]}  {'; '.join(r.get('warnings', []))[:120]}"
        )
    res = {"cases": results, "cpu_count": os.cpu_count()}
    write_results(res, "local_budget")
    return res


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--case":
        print(json.dumps(run_case(sys.argv[2])))
    else:
        main(tuple(sys.argv[1:]) or CASES)
