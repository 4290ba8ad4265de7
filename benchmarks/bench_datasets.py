"""Speed and memory of the synthetic generators (default cohort and default full field).

Run: ``python benchmarks/bench_datasets.py``. Prints ``name: value`` lines and writes
``benchmarks/results/datasets.json``. Each generator runs in a fresh child process so that
its peak resident memory (``ru_maxrss``) is its own.
"""

import multiprocessing as mp
import resource
import sys
import time

from _common import write_results  # noqa: E402


def _run(which, queue):
    import numpy as np

    from skcalc.datasets import make_calcification_cohort, make_full_field_mammogram

    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0, c0 = time.perf_counter(), time.process_time()
    if which == "cohort":
        rois, y, groups = make_calcification_cohort(random_state=0)
        extra = {
            "n_rois": len(rois),
            "n_exams": int(len(np.unique(groups))),
            "prevalence": float(y.mean()),
            "n_calcifications": int(sum(r.meta["n_calcifications"] for r in rois)),
        }
    else:
        roi = make_full_field_mammogram(random_state=0)
        extra = {
            "shape": list(roi.image.shape),
            "n_calcifications": int(roi.meta["n_calcifications"]),
            "breast_fraction": float(roi.meta["breast_mask"].mean()),
        }
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    queue.put({"wall_s": wall, "cpu_s": cpu, "peak_rss_mb": peak / 1024,
               "import_rss_mb": base / 1024, **extra})  # fmt: skip


def main():
    ctx = mp.get_context("spawn")
    results = {}
    for which in ("cohort", "full_field"):
        q = ctx.Queue()
        p = ctx.Process(target=_run, args=(which, q))
        p.start()
        results[which] = q.get()
        p.join()
    for which, res in results.items():
        for k, v in res.items():
            print(f"{which}_{k}: {v:.3f}" if isinstance(v, float) else f"{which}_{k}: {v}")
    write_results({"python": sys.version.split()[0], **results}, "datasets")


if __name__ == "__main__":
    main()
