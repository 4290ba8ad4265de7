"""The ``skcalc`` command line.

``skcalc demo``          the paper's protocol on the embedded synthetic cohort
``skcalc segment-demo``  segment one synthetic ROI and write an overlay PNG
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = ["main"]

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


def _say(msg: str) -> None:
    print(msg, flush=True)


def _out_dir(path: str) -> Path:
    out = Path(path).expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    return out


def _cmd_segment_demo(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .datasets import make_calcification_cohort
    from .io import save_figure_atomic
    from .metrics import match_objects
    from .plotting import plot_roi
    from .segmentation import HDoGRegSegmenter

    out = _out_dir(args.out)
    rois, y, _ = make_calcification_cohort(n_rois=4, random_state=args.random_state)
    roi = rois[int(y.argmax())]
    t0 = time.perf_counter()
    seg = HDoGRegSegmenter().fit_transform([roi])[0]
    elapsed = time.perf_counter() - t0
    m = match_objects(seg.calcifications, roi.reference)
    fig, ax = plt.subplots(figsize=(7, 7))
    plot_roi(seg, ax=ax)
    path = out / "segment_demo_overlay.png"
    save_figure_atomic(fig, path)
    plt.close(fig)
    _say(
        f"{roi.roi_id}: {m['n_pred']} objects segmented in {elapsed:.2f} s; "
        f"{m['tp']} of {m['n_gt']} reference calcifications found, {m['fp']} false positives"
    )
    _say(f"overlay written to {path}")
    return EXIT_OK


def _cmd_demo(args: argparse.Namespace) -> int:
    from ._demo import run_demo

    return run_demo(
        out=_out_dir(args.out),
        quick=args.quick,
        n_jobs=args.n_jobs,
        random_state=args.random_state,
        nested=args.nested,
    )


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="skcalc",
        description="Benign vs actionable amorphous breast calcifications (Marathe et al.).",
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"skcalc {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="the paper's protocol on the synthetic cohort")
    p.add_argument("--out", default="skcalc-out", help="output folder (default: skcalc-out)")
    p.add_argument("--quick", action="store_true", help="small cohort and grid (< 2 min)")
    p.add_argument("--nested", action="store_true", help="also run the 4x5 nested CV")
    p.add_argument("--n-jobs", type=int, default=None, help="parallel jobs (default: all cores)")
    p.add_argument("--random-state", type=int, default=0)
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("segment-demo", help="segment one synthetic ROI, write an overlay PNG")
    p.add_argument("--out", default="skcalc-out")
    p.add_argument("--random-state", type=int, default=0)
    p.set_defaults(func=_cmd_segment_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``skcalc`` command; returns the exit code."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or EXIT_OK)
    except (ValueError, TypeError, OSError) as exc:
        print(f"skcalc {args.command}: error: {exc}", file=sys.stderr)
        if os.environ.get("SKCALC_DEBUG"):
            raise
        return EXIT_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
