"""Wall and CPU time of the default ``skcalc demo`` (target: at most 10 minutes on the
project's 2-core machine), in a fresh process.

The demo runs every result of the paper: image stages, the held-out grid searches of the
method (384 candidates) and the mean/std baseline, the nested CV's outer folds 1-3 (the
48-candidate grid) and the deep baselines (2 networks x 4 folds, 32 px, at most 3 epochs,
run side by side in ``--n-jobs`` processes). Wall time depends on the machine's load: the
script prints the 1-minute load average before and after, and the CPU time of the demo
process and of its reaped children (joblib's worker processes are not always reaped by
the time the demo returns; their CPU time is then missing).

Measured with ``/usr/bin/time -v python -m skcalc demo --out DIR`` (not this script) on the
shared 2-core machine: 7 min 0 s wall, 404 s user + 58 s system CPU, peak RSS 4.3 GB, with
the 1-minute load falling from 6.1 to 0.2 during the run; the same run under a load of
10-14 (other jobs and a test suite) took 33 min 37 s wall, 443 s user + 71 s system CPU.

Run: ``python benchmarks/bench_demo.py [--quick] [--no-deep] [--out DIR]``. Prints
``name: value`` lines and writes ``benchmarks/results/demo.json``.
"""

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from _common import print_results, write_results  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-deep", action="store_true")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    out = args.out or tempfile.mkdtemp(prefix="skcalc-bench-demo-")
    cmd = [sys.executable, "-m", "skcalc", "demo", "--out", out, "--overwrite"]
    cmd += ["--quick"] * args.quick + ["--no-deep"] * args.no_deep
    load0 = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(os.path.abspath(
        __file__)))}
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    res = {"wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "load_before": load0,
           "load_after": os.getloadavg()[0], "quick": args.quick, "deep": not args.no_deep,
           "within_10_min": wall <= 600}
    print_results(res)
    print(f"results: {write_results(res, 'demo')}")


if __name__ == "__main__":
    main()
