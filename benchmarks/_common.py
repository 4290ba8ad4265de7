"""Helpers shared by the benchmark scripts (run them as ``python benchmarks/bench_*.py``)."""

from __future__ import annotations

import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS_DIR = os.path.join(HERE, "results")
REFERENCE_DIR = os.path.join(HERE, "reference")


def provenance() -> dict:
    """Where and on what a figure was measured: commit, versions, machine and its load.

    Timings depend on the machine and on what else runs on it, so every results file
    carries the 1-minute load average at the end of the run next to the core count.
    """
    def git(*cmd):
        try:
            return subprocess.run(["git", *cmd], cwd=HERE, capture_output=True, text=True,
                                  timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    versions = {}
    for mod in ("numpy", "scipy", "skimage", "sklearn", "lightgbm", "skcalc"):
        try:
            versions[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001 - a missing package is recorded, not fatal
            versions[mod] = None
    return {
        "commit": git("rev-parse", "--short", "HEAD"),
        "uncommitted_changes": bool(git("status", "--porcelain", "--untracked-files=no")),
        "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "command": " ".join([os.path.basename(sys.argv[0]), *sys.argv[1:]]),
        "python": platform.python_version(),
        "versions": versions,
        "machine": f"{platform.machine()} {platform.system()}, {os.cpu_count()} cores",
        "load_1min": round(os.getloadavg()[0], 2),
    }


def write_results(res: dict, name: str) -> str:
    """Write ``benchmarks/results/<name>.json`` atomically, with its :func:`provenance`."""
    os.makedirs(RESULTS_DIR, exist_ok=True)
    path = os.path.join(RESULTS_DIR, f"{name}.json")
    res = {**res, "provenance": provenance()}
    with tempfile.NamedTemporaryFile("w", dir=RESULTS_DIR, delete=False, suffix=".tmp") as f:
        json.dump(res, f, indent=2, default=float)
    os.chmod(f.name, 0o644)  # NamedTemporaryFile creates it private
    os.replace(f.name, path)
    return path


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MB (``ru_maxrss``)."""
    scale = 1 / 1024 if sys.platform != "darwin" else 1 / 1024**2
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale, 1)


def print_results(res: dict, *, lists: bool = True) -> None:
    """Print ``name: value`` lines, floats to 4 significant digits (lists only if ``lists``)."""
    for k, v in res.items():
        if lists or not isinstance(v, list):
            print(f"{k}: {v:.4g}" if isinstance(v, float) else f"{k}: {v}")


def plot_detections(image, labels, title: str, path: str, *, height_in: float = 8.0,
                    vmin=None, vmax=None) -> None:
    """PNG of ``image`` with a red circle on each labelled object's centroid."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from scipy import ndimage as ndi

    os.makedirs(os.path.dirname(path), exist_ok=True)
    n = int(labels.max())
    cen = np.array(ndi.center_of_mass(labels > 0, labels, range(1, n + 1))) if n else None
    h, w = image.shape
    fig, ax = plt.subplots(figsize=(height_in * w / h + 0.2, height_in), dpi=80)
    ax.imshow(image, cmap="gray", vmin=vmin, vmax=vmax, interpolation="lanczos")
    if n:
        ax.scatter(cen[:, 1], cen[:, 0], s=40, facecolors="none", edgecolors="red", lw=0.8)
    ax.set_title(title, fontsize=8)
    ax.axis("off")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    print("wrote", path)


def plot_detection_crops(image, labels, title: str, path: str, *, half: int = 32,
                         ncols: int = 10) -> None:
    """PNG gallery of a ``2 half`` px crop around every labelled object, contour in red.

    Each crop is stretched to its own 1-99.5 percentiles, so that what a detection sits on
    (a dot, a vessel, an edge, noise) can be judged by eye.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from scipy import ndimage as ndi

    n = int(labels.max())
    if n == 0:
        return
    cen = sorted(ndi.center_of_mass(labels > 0, labels, range(1, n + 1)))
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.5 * ncols, 1.55 * nrows + 0.3),
                             dpi=70, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (y, x) in zip(axes.flat, cen):
        sl = (slice(max(0, int(y) - half), int(y) + half),
              slice(max(0, int(x) - half), int(x) + half))
        crop = image[sl].astype(float)
        lo, hi = np.percentile(crop, [1, 99.5])
        ax.imshow(crop, cmap="gray", vmin=lo, vmax=hi)
        ax.contour(labels[sl] > 0, [0.5], colors="red", linewidths=0.6)
        ax.set_title(f"{int(y)}, {int(x)}", fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    print("wrote", path)


def spacing_main(run, name: str, default: float = 0.1) -> None:
    """Command line of a benchmark that takes only ``--spacing``: ``run(spacing)`` with
    warnings silenced, its figures printed and written as ``results/<name>.json``."""
    import argparse
    import warnings

    ap = argparse.ArgumentParser()
    ap.add_argument("--spacing", type=float, default=default)
    args = ap.parse_args()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = run(args.spacing)
    print_results(results)
    print("wrote", write_results(results, name))


def centroids(lab):
    """(n, 2) array of the centroids (row, col) of labels 1..max of ``lab``."""
    import numpy as np
    from scipy import ndimage as ndi

    n = int(lab.max())
    if n == 0:
        return np.zeros((0, 2))
    return np.array(ndi.center_of_mass(lab > 0, lab, range(1, n + 1)))
