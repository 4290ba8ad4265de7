import numpy as np
import pytest
from scipy import ndimage

from skcalc.segmentation._combine import combine

T = 10**-3.5


def _object_with_fraction(k, n=100):
    """A 10x10 candidate whose first k pixels (raster order) are above the CNN threshold."""
    cand = np.zeros((40, 40), np.int32)
    cand[15:25, 15:25] = 7
    prox = np.zeros((40, 40))
    rr, cc = np.nonzero(cand)
    prox[rr[:k], cc[:k]] = 0.5
    return cand, prox


@pytest.mark.parametrize("k,kept", [(29, False), (30, False), (31, True), (100, True)])
def test_overlap_fraction_strict(k, kept):
    cand, prox = _object_with_fraction(k)
    lab = combine(cand, prox, None)
    assert lab.dtype == np.int32
    assert (lab.max() == 1) == kept
    if kept:
        np.testing.assert_array_equal(lab > 0, cand > 0)  # the whole HDoG shape


def test_threshold_is_inclusive():
    cand, prox = _object_with_fraction(40)
    prox[prox > 0] = T
    assert combine(cand, prox, None).max() == 1
    prox[prox > 0] = np.nextafter(T, 0)
    assert combine(cand, prox, None).max() == 0


def test_objects_are_4_connected():
    cand = np.zeros((10, 10), bool)
    cand[2, 2] = cand[3, 3] = True  # diagonal: two objects
    prox = np.zeros((10, 10))
    prox[2, 2] = 1
    lab = combine(cand, prox, None)
    assert lab[2, 2] == 1 and lab[3, 3] == 0


def test_holes_filled_in_overlap_mode_only():
    cand = np.zeros((20, 20), bool)
    cand[5:10, 5:10] = True
    cand[7, 7] = False
    prox = np.ones((20, 20))
    assert combine(cand, prox, None)[7, 7] == 1
    assert combine(cand, prox, None, mode="hdog")[7, 7] == 0
    assert combine(cand, prox, None, mode="multiply")[7, 7] == 0


def test_breast_erosion_masks_both_branches():
    cand = np.zeros((100, 100), bool)
    cand[50, 30] = cand[50, 55] = cand[2, 10] = True
    prox = np.ones((100, 100))
    breast = np.zeros((100, 100), bool)
    breast[:, :60] = True  # air edge at column 60: 22 px eroded there, frame edges kept
    for mode in ("overlap", "hdog", "multiply"):
        lab = combine(cand, prox, breast, mode=mode)
        assert lab[50, 30] > 0 and lab[50, 55] == 0
        assert lab[2, 10] > 0  # near the image frame, not eroded
    lab = combine(cand, prox, breast, mode="cnn")
    assert (lab > 0).sum() == 100 * (60 - 22)
    lab = combine(cand, prox, breast, erosion_mm=0)
    assert lab[50, 55] > 0


def test_modes_against_reference():
    rng = np.random.default_rng(0)
    cand = ndimage.binary_opening(rng.random((60, 60)) < 0.35)
    prox = rng.random((60, 60)) * 1e-3
    for mode, ref in [("hdog", cand), ("cnn", prox >= T), ("multiply", cand & (prox >= T))]:
        lab = combine(cand, prox, None, mode=mode)
        np.testing.assert_array_equal(lab > 0, ref)
        np.testing.assert_array_equal(lab, ndimage.label(ref)[0])
    # overlap mode equals a slow per-object reference
    lab_c, n = ndimage.label(cand)
    keep = np.zeros_like(cand)
    for i in range(1, n + 1):
        obj = lab_c == i
        if (prox[obj] >= T).sum() / obj.sum() > 0.3:
            keep |= obj
    np.testing.assert_array_equal(combine(cand, prox, None) > 0, ndimage.binary_fill_holes(keep))


def test_empty_and_errors():
    z = np.zeros((8, 8))
    assert combine(z, z, None).max() == 0
    assert combine(z, None, None, mode="hdog").max() == 0
    with pytest.raises(ValueError, match="mode"):
        combine(z, z, None, mode="bogus")
    with pytest.raises(ValueError, match="proximity is required"):
        combine(z, None, None)
    with pytest.raises(ValueError, match="shape"):
        combine(z, np.zeros((8, 9)), None)


def _blob_image(shape=(320, 320), seed=0):
    rng = np.random.default_rng(seed)
    rr, cc = np.mgrid[: shape[0], : shape[1]]
    img = 1500.0 + 200 * np.sin(rr / 40.0) + rng.normal(0, 3, shape)
    for r, c in rng.integers(20, shape[0] - 20, size=(25, 2)):
        img += 300 * np.exp(-((rr - r) ** 2 + (cc - c) ** 2) / (2 * 1.5**2))
    return img.astype(np.uint16)


def test_segment_hdogreg_crop_equals_whole_image():
    import torch

    from skcalc.segmentation._combine import segment_hdogreg
    from skcalc.segmentation._regression import ProximityUNet

    torch.manual_seed(0)
    net = ProximityUNet().eval()
    with torch.no_grad():  # a random net whose output straddles the threshold
        net.head.bias.fill_(-4.0)
    img = _blob_image()
    kw = dict(model=net, bit_depth=12, tile=256, tile_overlap=64)
    full = segment_hdogreg(img, 0.07, **kw)
    assert full.dtype == np.int32 and full.max() > 0
    hdog_only = segment_hdogreg(img, 0.07, mode="hdog", **kw)
    assert ((full > 0) & ~(hdog_only > 0)).sum() == 0  # overlap mode keeps HDoG shapes only
    top, left = 40, 56
    crop = img[top : top + 230, left : left + 210]
    part = segment_hdogreg(crop, 0.07, origin=(top, left), **kw)
    m = 64
    np.testing.assert_array_equal(
        part[m:-m, m:-m] > 0, full[top + m : top + 230 - m, left + m : left + 210 - m] > 0
    )
