"""Segmentation under display transforms of the same real mammograms: false alarms and recall.

Run: ``python benchmarks/bench_display.py [--spacings 0.07,0.1] [--filter PATH]
[--fp-calibration image|filter]``.

A mammogram reaches skcalc after a tone curve nobody told it about: the vendor's processing,
a window/level, a gamma or log display mapping, 8-bit export, JPEG. The calcifications and
the noise near them are both scaled by the local slope of that curve, so a detector whose
decisions depend only on contrast-to-noise should not care. This benchmark measures how
much the default ``HDoGRegSegmenter()`` does care.

Data: the real L-CC and L-MLO views of ``../shared/realdata/nyu-gmic-sample`` (no finding;
12-bit processed PNGs, spacing assumed). Clusters of calcifications are inserted as in
``bench_real_background.py`` (one round: sizes 0.1-0.8 mm, contrast 2-8 times the image's
noise at calcification scale, in the original image's units), then every image (with and
without the clusters) goes through each transform of the [0, 1]-scaled intensities ``x``:

- ``none``; ``gamma0.5`` (``x**0.5``: brightens fat), ``gamma2`` (``x**2``: darkens it);
- ``log`` (``log(1 + 50 x) / log(51)``);
- ``window``: a window/level that clips the darkest 2 % and brightest 0.2 % of the breast
  (clipped tissue at the bottom becomes 0, like the air);
- ``8bit`` (12 -> 8 bit), ``jpeg75`` (8 bit, JPEG quality 75);
- ``inverted`` (``4095 - a``: ``MONOCHROME1`` pixels read without their inversion) and
  ``raw`` (``16383 exp(-3 x)``, 14 bit: linear exposure, as raw "for processing" data, the
  breast darker than the air, which saturates): the segmenter's ``polarity="auto"`` must
  find them inverted;
- ``padded``: 30 mm of the maximum (4095) added on the right, the air's side of both left
  views, as padding to a larger frame, a shutter or unexposed film leave it (labels
  compared on the original pixels);
- ``hot_pixels``: 1 in 10,000 pixels stuck at 4095, anywhere (uncorrected detector
  defects; the same pixels in the images with and without the clusters).

Printed per spacing and transform: objects per cm^2 of breast on the views without the
clusters, recall of the inserted calcifications >= 0.2 mm (all contrasts, and contrast
>= 3), and the share of the images the segmenter inverted (``inverted_share``). Writes
``benchmarks/results/display.json``.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import warnings

import numpy as np
from _common import print_results, write_results  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_real_background as B  # noqa: E402

TRANSFORMS = ("none", "gamma0.5", "gamma2", "log", "window", "8bit", "jpeg75", "inverted",
              "raw", "padded", "hot_pixels")
PAD_MM = 30.0


def display(name: str, a: np.ndarray, breast_values: np.ndarray) -> np.ndarray:
    """The 12-bit image ``a`` through display transform ``name`` (uint8 or uint16)."""
    x = a.astype(np.float64) / 4095
    if name == "none":
        return a
    if name == "gamma0.5":
        return np.rint(4095 * x**0.5).astype(np.uint16)
    if name == "gamma2":
        return np.rint(4095 * x**2).astype(np.uint16)
    if name == "log":
        return np.rint(4095 * np.log1p(50 * x) / np.log1p(50)).astype(np.uint16)
    if name == "window":
        lo, hi = np.percentile(breast_values, [2, 99.8])
        return np.rint(4095 * np.clip((a - lo) / (hi - lo), 0, 1)).astype(np.uint16)
    if name == "padded":
        return np.pad(a, ((0, 0), (0, int(round(PAD_MM / 0.1)))), constant_values=4095)
    if name == "hot_pixels":
        from skcalc.testing import add_hot_pixels

        return add_hot_pixels(a, 1e-4, value=4095, random_state=0)[0]
    if name == "inverted":
        return (4095 - a).astype(np.uint16)
    if name == "raw":
        return np.rint(16383 * np.exp(-3.0 * x)).astype(np.uint16)
    if name == "8bit":
        return np.rint(255 * x).astype(np.uint8)
    if name == "jpeg75":
        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(np.rint(255 * x).astype(np.uint8)).save(buf, "JPEG", quality=75)
        return np.asarray(Image.open(buf))
    raise ValueError(name)


def original_pixels(lab: np.ndarray, shape: tuple) -> np.ndarray:
    """Labels of the original image's pixels (without a ``padded`` transform's pad)."""
    if lab.shape == shape:
        return lab
    from scipy import ndimage as ndi

    return ndi.label(lab[: shape[0], : shape[1]] > 0)[0]


def run(spacings, kw) -> dict:
    from skcalc.segmentation import delineate_breast

    combos = [(s, c) for s in B.SIZES for c in B.CONTRASTS]
    results: dict = {}
    for sp in spacings:
        acc = {t: {"fp": 0, "area": 0.0, "all": [], "c3": [], "inv": []} for t in TRANSFORMS}
        for view in ("L-CC", "L-MLO"):
            a = B.read(view)
            area = (a > 0).sum() * sp**2 / 100
            breast = delineate_breast(a, spacing=sp)
            # the contrast unit: the original image's noise (measured before any filter)
            plain, summ = B.segment(a, sp, **kw)
            noise = summ["pixel_noise_sd"] * 4095
            rng = np.random.default_rng([0, int(sp * 1000), len(view)])
            order = [combos[i] for i in rng.permutation(len(combos))]
            img, ref, keys = B.insert(a, sp, noise, rng, order, breast)
            vals = a[breast]
            for t in TRANSFORMS:
                lab, s = (plain, summ) if t == "none" else B.segment(display(t, a, vals), sp,
                                                                    **kw)
                lab = original_pixels(lab, a.shape)
                acc[t]["fp"] += int(lab.max())
                acc[t]["area"] += area
                lab, s2 = B.segment(display(t, img, vals), sp, **kw)
                lab = original_pixels(lab, a.shape)
                acc[t]["inv"] += [bool(s.get("inverted")), bool(s2.get("inverted"))]
                found = B.found_inserted(lab, ref, len(keys))
                acc[t]["all"] += [f for k, f in zip(keys, found) if k[0] >= 0.2]
                acc[t]["c3"] += [f for k, f in zip(keys, found) if k[0] >= 0.2 and k[1] >= 3]
        for t, v in acc.items():
            results[f"objects_per_cm2_{sp}mm_{t}"] = v["fp"] / v["area"]
            results[f"recall_{sp}mm_{t}_ge0.2mm"] = float(np.mean(v["all"]))
            results[f"recall_{sp}mm_{t}_ge0.2mm_c>=3"] = float(np.mean(v["c3"]))
            results[f"inverted_share_{sp}mm_{t}"] = float(np.mean(v["inv"]))
    return results


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--spacings", default="0.07,0.1")
    ap.add_argument("--filter", default=None,
                    help="a candidate-filter file instead of the packaged one")
    ap.add_argument("--fp-calibration", choices=("image", "filter"), default=None,
                    help="the segmenter's fp_calibration (default: the segmenter's)")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    kw = B.filter_kw(args.filter) if args.filter else {}
    if args.fp_calibration:
        kw["fp_calibration"] = args.fp_calibration
    results = run([float(s) for s in args.spacings.split(",")], kw)
    print_results(results)
    write_results(results, "display" if not args.fp_calibration
                  else f"display_{args.fp_calibration}")


if __name__ == "__main__":
    main()
