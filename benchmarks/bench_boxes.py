"""Boxes drawn over real breast tissue: what they do to the objects away from them.

Run: ``python benchmarks/bench_boxes.py [--spacing 0.1]``.

Data: the real L-CC and L-MLO views of ``../shared/realdata/nyu-gmic-sample`` (no finding;
12-bit processed PNGs, spacing assumed). A 30 x 30 mm box is drawn inside the breast (rows
centred, columns from a quarter of the width) or over its edge (a third of the height, the
right half of the image), at 4095 (``white``: an anonymisation box, clipped dense tissue),
2000 (``grey``) or 0 (``black``).

Printed per view and case, for the default ``HDoGRegSegmenter()``: the objects whose
centroid lies more than 3 mm from the box (``away``) and how many of them the view without
the box also has (``common``; the view without the box has ``away_plain``), and the objects
touching the 3 mm band around the box (``near``; ``near_plain`` without it). Each box is
also run with it left in the detector's statistics (``_counted``), as before December
2026. Writes ``benchmarks/results/boxes.json``.
"""

from __future__ import annotations

import os
import sys

import numpy as np
from _common import centroids, spacing_main  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_real_background as B  # noqa: E402

BOX_MM, BAND_MM = 30.0, 3.0
VALUES = {"white": 4095, "grey": 2000, "black": 0}


def boxes(shape, sp):
    """Row and column slices of the box inside the breast and over its edge."""
    H, W = shape
    n = int(round(BOX_MM / sp))
    return {"inside": (slice(H // 2 - n // 2, H // 2 + n // 2), slice(W // 4, W // 4 + n)),
            "edge": (slice(H // 3 - n // 2, H // 3 + n // 2), slice(W // 2, W))}


def points(lab) -> set:
    """The objects' centroids as whole pixels."""
    return {(int(r), int(c)) for r, c in centroids(lab)}


def run(sp: float) -> dict:
    import skcalc.segmentation._combine as combine

    results: dict = {}
    for view in ("L-CC", "L-MLO"):
        a = B.read(view)
        plain = B.segment(a, sp)[0]
        for where, (rs, cs) in boxes(a.shape, sp).items():
            b = int(round(BAND_MM / sp))
            away = np.ones(a.shape, bool)
            away[max(rs.start - b, 0):rs.stop + b, max(cs.start - b, 0):cs.stop + b] = False
            near = ~away
            near[rs, cs] = False
            p_away = {p for p in points(plain) if away[p]}
            variants = [(name, v, counted) for name, v in VALUES.items()
                        for counted in (False, True)]
            for name, value, counted in variants:
                img = a.copy()
                img[rs, cs] = value
                real = combine.not_tissue
                if counted:  # the box in the statistics, as before December 2026
                    combine.not_tissue = lambda *a, **k: None
                try:
                    lab = B.segment(img, sp)[0]
                finally:
                    combine.not_tissue = real
                got = {p for p in points(lab) if away[p]}
                key = f"{view}_{sp}mm_{name}_{where}" + ("_counted" if counted else "")
                results[f"away_{key}"] = len(got)
                results[f"common_{key}"] = len(got & p_away)
                results[f"near_{key}"] = int(np.unique(lab[near & (lab > 0)]).size)
            results[f"away_plain_{view}_{sp}mm_{where}"] = len(p_away)
            results[f"near_plain_{view}_{sp}mm_{where}"] = int(
                np.unique(plain[near & (plain > 0)]).size)
    return results


if __name__ == "__main__":
    spacing_main(run, "boxes")
