"""Where the image starts: the objects of a real view and of the same view a few pixels in.

Run: ``python benchmarks/bench_shift.py [--spacing 0.1]``.

Data: the four real views of ``../shared/realdata/nyu-gmic-sample`` (12-bit processed PNGs,
spacing assumed). Each is segmented with the default ``HDoGRegSegmenter()`` as given and
without its first rows and columns (``(1, 0)``, ``(0, 1)``, ``(3, 2)``): the same tissue,
on a pixel grid that starts elsewhere (another crop, another export). An object of one is
common when an object of the other has its centroid within 2 pixels.

Printed per view and shift: the objects of both (those of the view as given more than 5
pixels from the removed rows and columns), the common ones and the turnover
``1 - 2 common / (n_given + n_shifted)``; pooled over views and shifts, ``turnover_pooled``.
Writes ``benchmarks/results/shift.json``.
"""

from __future__ import annotations

import os
import sys

import numpy as np
from _common import centroids, spacing_main  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_real_background as B  # noqa: E402

SHIFTS = ((1, 0), (0, 1), (3, 2))
VIEWS = ("L-CC", "L-MLO", "R-CC", "R-MLO")


def n_common(a: np.ndarray, b: np.ndarray, tol: float = 2.0) -> int:
    """Objects of ``a`` with a centroid of ``b`` within ``tol`` pixels."""
    if len(a) == 0 or len(b) == 0:
        return 0
    d = np.hypot(a[:, None, 0] - b[None, :, 0], a[:, None, 1] - b[None, :, 1])
    return int(np.count_nonzero(d.min(axis=1) <= tol))


def run(sp: float) -> dict:
    results: dict = {}
    pooled = [0, 0]
    for view in VIEWS:
        a = B.read(view)
        given = centroids(B.segment(a, sp)[0])
        for dr, dc in SHIFTS:
            shifted = centroids(B.segment(a[dr:, dc:], sp)[0]) + (dr, dc)
            inside = given[(given[:, 0] >= dr + 5) & (given[:, 1] >= dc + 5)]
            common = n_common(inside, shifted)
            key = f"{view}_{sp}mm_{dr}_{dc}"
            results[f"objects_given_{key}"] = len(inside)
            results[f"objects_shifted_{key}"] = len(shifted)
            results[f"common_{key}"] = common
            results[f"turnover_{key}"] = 1 - 2 * common / max(len(inside) + len(shifted), 1)
            pooled[0] += common
            pooled[1] += len(inside) + len(shifted)
    results[f"turnover_pooled_{sp}mm"] = 1 - 2 * pooled[0] / max(pooled[1], 1)
    return results


if __name__ == "__main__":
    spacing_main(run, "shift")
