"""Train the packaged HDoGReg regression weights on synthetic mammograms.

Writes ``skcalc/segmentation/weights/hdogreg_default.pt`` (a plain state dict, loadable with
``torch.load(weights_only=True)``) and a JSON training log next to it.

Training data (all synthetic, seeds disjoint from the evaluation seeds 0-99 used by
``benchmarks/bench_segmentation.py``):

- ``--n-full`` full-field mammograms (``make_full_field_mammogram``, 2048 x 1664 px at
  0.07 mm, alternating MLO/CC and L/R, ``random_state`` 1000, 1001, ...);
- a ``make_calcification_cohort`` of ``--n-cohort`` ROI crops (``random_state=2000``).

Usage (about 20 min on 2 CPU cores)::

    python scripts/train_default_weights.py --threads 2 --max-minutes 20
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch

from skcalc.datasets import make_calcification_cohort, make_full_field_mammogram
from skcalc.segmentation._regression import DEFAULT_WEIGHTS, save_weights, train_regressor


def build_training_set(n_full: int, n_cohort: int, shape=(2048, 1664)):
    rois = []
    for k in range(n_full):
        rois.append(
            make_full_field_mammogram(
                shape,
                view=("MLO", "CC")[k % 2],
                laterality=("L", "R")[(k // 2) % 2],
                random_state=1000 + k,
            )
        )
    if n_cohort:
        cohort, _, _ = make_calcification_cohort(n_cohort, random_state=2000)
        rois.extend(r for r in cohort if r.reference is not None and r.reference.any())
    return rois


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-full", type=int, default=24)
    ap.add_argument("--n-cohort", type=int, default=80)
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--patch-size", type=int, default=256)
    ap.add_argument("--crop-size", type=int, default=160)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--patience", type=int, default=6)
    ap.add_argument("--max-patches-per-epoch", type=int, default=None)
    ap.add_argument("--max-minutes", type=float, default=20.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=DEFAULT_WEIGHTS)
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    rois = build_training_set(args.n_full, args.n_cohort)
    t_data = time.perf_counter() - t0
    print(f"data: {len(rois)} images in {t_data:.1f}s", flush=True)
    model, history = train_regressor(
        rois,
        epochs=args.epochs,
        patch_size=args.patch_size,
        crop_size=args.crop_size,
        batch_size=args.batch_size,
        lr=args.lr,
        patience=args.patience,
        bit_depth=12,
        max_patches_per_epoch=args.max_patches_per_epoch,
        max_seconds=args.max_minutes * 60,
        n_threads=args.threads,
        random_state=args.seed,
        verbose=True,
    )
    total = time.perf_counter() - t0
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    save_weights(model, args.out, trained_on="skcalc synthetic", spacing_mm=0.07, bit_depth=12)
    log = {
        "args": vars(args),
        "n_images": len(rois),
        "data_seconds": t_data,
        "total_seconds": total,
        "n_parameters": int(sum(p.numel() for p in model.parameters())),
        "history": history,
        "best_val_iou": float(np.nanmax([h["val_iou"] for h in history])),
    }
    with open(os.path.splitext(args.out)[0] + "_training.json", "w") as f:
        json.dump(log, f, indent=1)
    print(f"total_training_seconds: {total:.1f}")
    print(f"weights: {args.out} ({os.path.getsize(args.out)} bytes)")


if __name__ == "__main__":
    main()
