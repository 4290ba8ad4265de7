"""ROI crops become ImageNet-normalised network inputs."""

import numpy as np
import pytest
import torch

from skcalc import ROI
from skcalc.deep import preprocess_rois, roi_to_array
from skcalc.deep._preprocess import IMAGENET_MEAN, IMAGENET_STD, to_network_input
from skcalc.exceptions import ROIValidationError


def _roi(image, region=None, spacing=0.1, **meta):
    return ROI(image, spacing=spacing, region=region, meta={"roi_id": "r", **meta})


def test_output_is_scaled_to_unit_range_robustly():
    rng = np.random.default_rng(0)
    image = rng.integers(1000, 1100, (60, 60)).astype(np.uint16)
    image[5, 5] = 4095  # one saturated pixel does not squash the rest
    out = roi_to_array(_roi(image), 20, margin_mm=0.0)
    assert out.shape == (20, 20) and out.dtype == np.float32
    assert out.min() == 0.0 and out.max() == 1.0
    assert 0.3 < np.median(out) < 0.7
    # raw values are never rescaled in the input
    assert image.max() == 4095


def test_crop_follows_the_region_and_margin():
    image = np.zeros((100, 100))
    image[60:80, 10:30] = 1000.0  # a bright square inside the region
    image[5:15, 80:95] = 500.0  # outside it
    region = np.zeros((100, 100), bool)
    region[60:80, 10:30] = True
    tight = roi_to_array(_roi(image, region), 16, margin_mm=0.0)
    assert tight.min() == tight.max() == 0.0  # constant crop -> zeros, no division by zero
    wide = roi_to_array(_roi(image, region), 16, margin_mm=1.0)  # 10 px each side at 0.1 mm
    assert wide[8, 8] == 1.0 and wide[0, 0] == 0.0
    # a fixed 6 mm field of view centred on the region: rows 40-100, columns -10-50 at
    # 2 px per output pixel; the 20 px square maps to output pixels 10-20
    fov = roi_to_array(_roi(image, region), 30, field_of_view_mm=6.0)
    assert fov[11:19, 11:19].min() == 1.0
    assert fov[:, :8].max() == 0.0 and fov[:8].max() == 0.0 and fov[22:, 22:].max() == 0.0


def test_crop_beyond_the_image_repeats_the_edge():
    image = np.tile(np.arange(20, dtype=float), (20, 1))  # ramp along columns
    region = np.zeros((20, 20), bool)
    region[8:12, 16:20] = True  # at the right edge
    out = roi_to_array(_roi(image, region), 12, margin_mm=0.5)
    assert np.isfinite(out).all() and out.shape == (12, 12)
    assert np.all(np.diff(out[6]) >= -1e-6)  # still a ramp, then flat (edge repeated)
    assert out[6, -1] == out[6, -2] == 1.0


def test_anisotropic_spacing_gives_a_square_in_mm():
    image = np.zeros((40, 20))
    image[16:24, 8:12] = 100.0  # 0.4 x 0.4 mm
    # rows at 0.05 mm, columns at 0.1 mm: 40 x 20 px is a 2 x 2 mm square
    out = roi_to_array(ROI(image, spacing=(0.05, 0.1)), 20, margin_mm=0.0)
    blob = out > 0.5
    rows, cols = np.flatnonzero(blob.any(1)), np.flatnonzero(blob.any(0))
    assert abs(len(rows) - len(cols)) <= 1  # a square blob stays square


def test_integer_and_float_images_agree_and_bad_input_is_named():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 4096, (30, 30)).astype(np.uint16)
    a = preprocess_rois([_roi(image), _roi(image.astype(np.float32))], 16)
    assert a.shape == (2, 16, 16)
    np.testing.assert_array_equal(a[0], a[1])
    bad = image.astype(float)
    bad[0, 0] = np.nan
    with pytest.raises(ROIValidationError, match="'r'.*NaN"):
        roi_to_array(_roi(bad), 16)


def test_network_input_has_three_normalised_channels():
    x = np.stack([np.zeros((4, 4), np.float32), np.ones((4, 4), np.float32)])
    t = to_network_input(x)
    assert t.shape == (2, 3, 4, 4) and t.dtype == torch.float32
    mean, std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
    torch.testing.assert_close(t[0, :, 0, 0], -mean / std)
    torch.testing.assert_close(t[1, :, 0, 0], (1 - mean) / std)
