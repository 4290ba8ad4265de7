"""
Your own images: a manifest, and one row per calcification
==========================================================

A manifest is a CSV file with one row per annotated region: the image file, the region (a
box, a mask file or a disk), and optionally the label, the exam, an ROI id and the pixel
spacing (see :doc:`/data` for every column). :func:`skcalc.io.load_manifest` turns it into
lazy :class:`skcalc.ROI` records; ``skcalc train``, ``predict``, ``evaluate`` and
``features`` read it on the command line.

This example writes four DICOM files and their manifest, reads it, and runs
``skcalc features``: one CSV row per segmented calcification, as pyradiomics' batch mode
writes (ROI id, object label, centroid and bounding box in the image's pixels and in mm,
area, and every feature under its pyradiomics name).
"""

import csv
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from skcalc.cli import main
from skcalc.datasets import make_calcification_cohort
from skcalc.io import load_manifest
from skcalc.masks import MaskBuilder
from skcalc.plotting import plot_roi
from skcalc.segmentation import HDoGRegSegmenter
from skcalc.testing import write_dicom

folder = Path(tempfile.mkdtemp())
rois, y, groups = make_calcification_cohort(n_rois=4, random_state=1)
with open(folder / "manifest.csv", "w", newline="") as fh:
    writer = csv.writer(fh)
    # A box is given by its corners: row0,col0 (inclusive) and row1,col1 (exclusive).
    writer.writerow(["image", "row0", "col0", "row1", "col1", "label", "exam_id", "roi_id"])
    for roi, label, exam in zip(rois, y, groups):
        # Each ROI sits 120 rows down and 80 columns right in a larger image; the DICOM
        # header carries the spacing (ImagerPixelSpacing) and the bit depth.
        image = np.pad(roi.image, ((120, 0), (80, 0)), mode="reflect").astype(np.uint16)
        write_dicom(folder / f"{roi.roi_id}.dcm", image, "MONOCHROME2", 12,
                    ImagerPixelSpacing=list(roi.spacing))  # fmt: skip
        rr, cc = np.nonzero(roi.region_mask)
        writer.writerow([f"{roi.roi_id}.dcm", rr.min() + 120, cc.min() + 80, rr.max() + 121,
                         cc.max() + 81, "malignant" if label else "benign", exam,
                         roi.roi_id])  # fmt: skip
print((folder / "manifest.csv").read_text())

# %%
# Lazy records: the pixels are read when a stage needs them. ``roi.box`` is the crop of
# the file (the region's box grown by ``margin_mm``, 2 mm by default); its fields have
# names, because its tuple order (row0, row1, col0, col1) is not the manifest's.
mrois, my, mgroups = load_manifest(folder / "manifest.csv")
first = mrois[0]
print(first, first.meta["bbox"], first.box, first.box.slices, sep="\n")

# %%
# ``skcalc features`` segments every ROI as the model does and measures each calcification.
# (From a shell: ``skcalc features manifest.csv --out features.csv``.)
assert main(["features", str(folder / "manifest.csv"), "--out", str(folder / "f.csv")]) == 0
table = pd.read_csv(folder / "f.csv")
print(table.shape)
print(table.iloc[:5, :9].to_string())
print(table.groupby(["roi_id", "roi_label"])["area_mm2"].describe()[["count", "mean", "max"]])

# %%
# The same ROI, segmented, with its background bands (the pixels the background features
# describe), its region and the ground truth of the synthetic image.
seen = MaskBuilder().fit_transform(HDoGRegSegmenter().fit_transform([mrois[0]]))[0]
seen = seen.replace(reference=rois[0].reference[first.box.row0 - 120 :, first.box.col0 - 80 :])
big = table[table["roi_id"] == first.roi_id].nlargest(3, "area_px")
title = f"{first.roi_id}: circles = the 3 largest objects of the table"
ax = plot_roi(seen, show_background=True, title=title)
# the table's positions are in the file's pixels: subtract the crop's origin to draw them
ax.plot(big["centroid_col_px"] - first.box.col0, big["centroid_row_px"] - first.box.row0,
        "o", mfc="none", mec="white", ms=16, mew=1.5)  # fmt: skip
plt.show()
