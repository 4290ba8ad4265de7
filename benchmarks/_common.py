"""Helpers shared by the benchmark scripts (run them as ``python benchmarks/bench_*.py``)."""

from __future__ import annotations

import json
import os
import resource
import sys
import tempfile

RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def write_results(res: dict, name: str) -> str:
    """Write ``benchmarks/results/<name>.json`` atomically and return its path."""
    os.makedirs(RESULTS_DIR, exist_ok=True)
    path = os.path.join(RESULTS_DIR, f"{name}.json")
    with tempfile.NamedTemporaryFile("w", dir=RESULTS_DIR, delete=False, suffix=".tmp") as f:
        json.dump(res, f, indent=2, default=float)
    os.chmod(f.name, 0o644)  # NamedTemporaryFile creates it private
    os.replace(f.name, path)
    return path


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MB (``ru_maxrss``)."""
    scale = 1 / 1024 if sys.platform != "darwin" else 1 / 1024**2
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale, 1)
