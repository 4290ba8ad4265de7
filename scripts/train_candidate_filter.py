"""Train the packaged candidate filter of HDoGRegSegmenter on synthetic patches only.

Writes ``skcalc/segmentation/weights/candidate_filter.json`` (a LightGBM model string, the
feature names and the held-out FP/cm^2 calibration; JSON, nothing is pickled).

Training data: ``--n-train`` patches of :func:`skcalc.datasets.make_training_patch`
(seeds ``[2*random_state + 11, k]``), calibration of the operating points on ``--n-calib``
other patches (seeds ``[2*random_state + 12, k]``). No real image is used; the simulation
ranges (power-law exponent, noise level) were set from summary statistics measured on the NYU
GMIC sample (``benchmarks/bench_real_background.py`` prints them). The defaults reproduce
the packaged filter (checked for this filter and the one before it: same model string and
calibration, meta equal except the training time, with NumPy 2.4.6, scikit-image 0.26.0,
scikit-learn 1.9.1, SciPy 1.17.1 and LightGBM 4.7.0; in an environment with another NumPy
one calibration candidate differed).
Intensities are stabilised first (``--no-stabilise``: the filter of the unstabilised
detector, the kind packaged before); contrast
in units of each patch's own noise at calcification scale as the detector measures it
(``--contrast detector``), faint calcifications up to 1 mm (``--faint-max-mm 1.0``), and
1000 calibration patches (with 150 the "balanced" threshold of one model moved by a factor 2
between draws). Other variants measured in ``docs/segmentation.rst``: ``--film-fraction 0.2``
(a fifth of digitised-film patches), ``--contrast pixel --faint-max-mm 0.5 --n-calib 150``
(the filter packaged before December 2026), ``--calib-negatives free`` (false positives of the
calibration counted on calcification-free patches only).

To train or recalibrate on your own annotated images instead, see
:func:`skcalc.segmentation.fit_candidate_filter`.

Usage (about 290 s CPU, 2 min 45 s wall, about 205 MB peak RSS on this 2-core machine)::

    python scripts/train_candidate_filter.py
"""

from __future__ import annotations

import argparse
import json
import os
import time

from skcalc.segmentation._calibrated import DEFAULT_CNR_THRESHOLD
from skcalc.segmentation._filter import DEFAULT_FILTER, filter_summary, train_candidate_filter


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-train", type=int, default=600)
    ap.add_argument("--n-calib", type=int, default=1000)
    ap.add_argument("--cnr-threshold", type=float, default=DEFAULT_CNR_THRESHOLD)
    ap.add_argument("--random-state", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=DEFAULT_FILTER)
    ap.add_argument("--film-fraction", type=float, default=0.0,
                    help="share of digitised-film patches (packaged filter: 0)")
    ap.add_argument("--contrast", choices=("pixel", "detector"), default="detector",
                    help="unit of the calcification contrast (packaged filter: detector)")
    ap.add_argument("--faint-max-mm", type=float, default=1.0,
                    help="largest faint (amorphous-like) calcification in mm (packaged: 1.0)")
    ap.add_argument("--calib-negatives", choices=("all", "free"), default="all",
                    help="false positives of the calibration counted on all calibration "
                         "patches or on those without calcifications only (packaged: all)")
    ap.add_argument("--clump-fraction", type=float, default=0.0,
                    help="probability that a training cluster also holds a clump of "
                         "merging specks")
    ap.add_argument("--no-stabilise", action="store_true",
                    help="detect without the intensity stabilisation (filters packaged "
                         "before it; packaged: stabilised)")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    f = train_candidate_filter(args.n_train, args.n_calib, cnr_threshold=args.cnr_threshold,
                               random_state=args.random_state, num_threads=args.threads,
                               verbose=True, film_fraction=args.film_fraction,
                               contrast=args.contrast, faint_max_mm=args.faint_max_mm,
                               calib_negatives=args.calib_negatives,
                               stabilise=not args.no_stabilise,
                               clump_fraction=args.clump_fraction)
    f.save(args.out)
    print(json.dumps({"seconds": round(time.perf_counter() - t0, 1), **f.meta,
                      "presets": filter_summary(f)}, indent=1))
    print("wrote", os.path.abspath(args.out))


if __name__ == "__main__":
    main()
