"""
Reading DICOMs from different vendors
=====================================

Mammography vendors store the same physics differently: GE, Fuji and film digitisers often
write ``MONOCHROME1`` (low values bright), others ``MONOCHROME2``; the detector depth
(``BitsStored``) is 10 to 16 bits; the spacing is in ``ImagerPixelSpacing`` (the detector
pitch, to divide by the magnification factor) or ``PixelSpacing``; the display window is a
VOI LUT or window centre/width. :func:`skcalc.io.read_mammogram` hides all of it: it returns
the stored values, never rescaled for display, with calcifications bright, and the spacing
in mm at the breast. The display transform is kept in the metadata, for
:func:`skcalc.io.display_image` only; the analysis never sees it.

This example writes the same image as three "vendors" would and reads them back.
"""

import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from skcalc.datasets import make_calcification_cohort
from skcalc.io import display_image, read_mammogram
from skcalc.testing import write_dicom

(roi,), _, _ = make_calcification_cohort(n_rois=1, random_state=0)
stored = roi.image.astype(np.uint16)  # 12-bit values, calcifications bright
folder = Path(tempfile.mkdtemp())

# Vendor A: MONOCHROME2, detector pitch 0.084 mm with a magnification factor of 1.2,
# a window centre/width for display.
write_dicom(folder / "a.dcm", stored, "MONOCHROME2", 12,
            ImagerPixelSpacing=[0.084, 0.084], EstimatedRadiographicMagnificationFactor=1.2,
            WindowCenter=float(np.median(stored)), WindowWidth=400.0)  # fmt: skip
# Vendor B: MONOCHROME1 (stored inverted within 12 bits), PixelSpacing only.
write_dicom(folder / "b.dcm", (4095 - stored).astype(np.uint16), "MONOCHROME1", 12,
            PixelSpacing=[0.07, 0.07])  # fmt: skip
# Vendor C: 14-bit detector, values 4 times larger, a sigmoid VOI function.
write_dicom(folder / "c.dcm", stored * 4, "MONOCHROME2", 14,
            ImagerPixelSpacing=[0.07, 0.07], WindowCenter=float(np.median(stored) * 4),
            WindowWidth=1600.0, VOILUTFunction="SIGMOID")  # fmt: skip

read = {name: read_mammogram(folder / f"{name}.dcm") for name in "abc"}
for name, (image, spacing, meta) in read.items():
    print(
        f"{name}: {meta['photometric']:<11} BitsStored {meta['bits_stored']}, "
        f"spacing {spacing[0]:.3f} mm from {meta['spacing_source']}, "
        f"values {int(image.min())}-{int(image.max())}"
    )
# A and B hold the same pixels: MONOCHROME1 is reflected within its 12 bits, once.
np.testing.assert_array_equal(read["a"][0], read["b"][0])
# The magnification factor brings the detector pitch back to the breast: 0.084 / 1.2.
assert np.allclose(read["a"][1], 0.07)

# What is analysed (stored values) and what a viewer shows (the file's VOI transform).
fig, axes = plt.subplots(1, 4, figsize=(13, 3.6), layout="constrained")
axes[0].imshow(read["a"][0], cmap="gray")
axes[0].set_title("analysed: stored values (A = B)")
for ax, name in zip(axes[1:], "abc"):
    image, _, meta = read[name]
    ax.imshow(display_image(image, meta), cmap="gray", vmin=0, vmax=1)
    how = (
        f"{meta['voi_lut_function'].lower()} window"
        if meta.get("window_centers")
        else "no window in the file: min-max"
    )
    ax.set_title(f"{name}: display ({how})")
for ax in axes:
    ax.set_axis_off()
plt.show()
