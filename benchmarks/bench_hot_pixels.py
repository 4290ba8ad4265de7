"""Hot pixels on real breast tissue: objects per cm^2 with and without the repair.

Run: ``python benchmarks/bench_hot_pixels.py [--spacing 0.1]``.

Data: the real L-CC and L-MLO views of ``../shared/realdata/nyu-gmic-sample`` (no finding;
12-bit processed PNGs, spacing assumed). Defects are added anywhere on the image (air and
breast), seeded:

- ``stuck_1e-5``, ``stuck_1e-4``, ``stuck_1e-3``: that fraction of the pixels stuck at 4095;
- ``offset_1e-4``: 1 in 10,000 pixels reading 1500 more than they should (clipped at 4095);
- ``dead_inverted_1e-4``: the view stored inverted (``4095 - a``, as ``MONOCHROME1`` read
  without its flag) with 1 in 10,000 pixels dead at 0, which the segmenter's inversion
  turns into pixels stuck at the top.

Printed per view and case: objects per cm^2 of breast (``(image > 0)`` pixels, as
``real_tissue_check.py``) of the default ``HDoGRegSegmenter()``, the pixels it repaired
(``n_impulse_pixels``), and the objects per cm^2 without the repair (``_no_repair``).
Recall of inserted calcifications with hot pixels is in ``bench_display.py``
(``hot_pixels``). Writes ``benchmarks/results/hot_pixels.json``.
"""

from __future__ import annotations

import os
import sys

import numpy as np
from _common import spacing_main  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_real_background as B  # noqa: E402


def cases(a: np.ndarray) -> dict:
    from skcalc.testing import add_hot_pixels

    def stuck(f):
        return add_hot_pixels(a, f, value=4095, random_state=0)[0]

    hot = np.random.default_rng(0).random(a.shape) < 1e-4
    offset = a.copy()
    offset[hot] = np.minimum(a[hot].astype(int) + 1500, 4095)
    dead = (4095 - a).astype(a.dtype)
    dead[hot] = 0
    return {"none": a, "stuck_1e-5": stuck(1e-5), "stuck_1e-4": stuck(1e-4),
            "stuck_1e-3": stuck(1e-3), "offset_1e-4": offset, "dead_inverted_1e-4": dead}


def run(sp: float) -> dict:
    import skcalc.segmentation._defects as defects

    results: dict = {}
    real = defects.impulse_defects
    for view in ("L-CC", "L-MLO"):
        a = B.read(view)
        area = (a > 0).sum() * sp**2 / 100
        for name, img in cases(a).items():
            lab, summ = B.segment(img, sp)
            key = f"{view}_{sp}mm_{name}"
            results[f"objects_per_cm2_{key}"] = int(lab.max()) / area
            results[f"repaired_pixels_{key}"] = summ["n_impulse_pixels"]
            defects.impulse_defects = lambda *a, **k: None
            try:
                lab = B.segment(img, sp)[0]
                results[f"objects_per_cm2_{key}_no_repair"] = int(lab.max()) / area
            finally:
                defects.impulse_defects = real
    return results


if __name__ == "__main__":
    spacing_main(run, "hot_pixels")
