"""The calibrated detector's candidate-local shortcuts equal the whole-image computations."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import ndimage as ndi

from skcalc.datasets import make_full_field_mammogram
from skcalc.segmentation import _hdog
from skcalc.segmentation._calibrated import (
    _block_mean,
    _gradient_at,
    _ring,
    _smooth_background,
    calibrated_candidates,
)


def _image():
    ff = make_full_field_mammogram((700, 560), spacing=0.07, random_state=3)
    rng = np.random.default_rng(0)
    img = ff.image.astype(np.float64) + rng.normal(0, 30, ff.image.shape)  # many candidates
    return np.clip(img, 0, 4095).astype(np.uint16)


def test_tiled_hessian_components_equal_the_whole_plane(monkeypatch):
    img = _image()
    whole = []
    real = _hdog._ScaleCandidates._whole_plane

    def counted(self, *args, **kwargs):
        whole.append(1)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(_hdog._ScaleCandidates, "_whole_plane", counted)
    # small tiles, never dense enough to fall back: the tiled path on every scale
    monkeypatch.setattr(_hdog, "_TILE", 16)
    monkeypatch.setattr(_hdog, "_DENSE_TILES", 1.0)
    lab, info = calibrated_candidates(img, 0.07, cnr_threshold=3.0, bit_depth=12)
    assert lab.max() > 20 and not whole
    monkeypatch.setattr(_hdog, "_DENSE_TILES", -1.0)  # always label the whole plane
    ref, rinfo = calibrated_candidates(img, 0.07, cnr_threshold=3.0, bit_depth=12)
    assert whole  # the reference did take the whole-plane path
    np.testing.assert_array_equal(lab, ref)
    np.testing.assert_array_equal(info["cnr"], rinfo["cnr"])


def test_ring_and_edge_gradient_equal_their_full_image_forms():
    img = _image().astype(np.float32)
    lab, _ = calibrated_candidates(img, 0.07, cnr_threshold=3.0, bit_depth=12)
    pix = np.flatnonzero(lab.ravel() > 0)
    q, ql = _ring(lab, pix, lab.ravel()[pix])
    grown = ndi.grey_dilation(lab, size=(5, 5), mode="constant", cval=0)
    ring = (lab == 0) & (grown > 0)
    np.testing.assert_array_equal(np.sort(q), np.flatnonzero(ring.ravel()))
    np.testing.assert_array_equal(ql[np.argsort(q)], grown.ravel()[np.flatnonzero(ring.ravel())])
    for sp in ((0.07, 0.07), (0.05, 0.05), (0.1, 0.1)):
        rows = np.array([0, 5, 100, img.shape[0] - 1])
        cols = np.array([0, img.shape[1] - 1, 200, 300])
        sm = _smooth_background(img, sp, 0.5)
        by, bx = -(-img.shape[0] // sm.shape[0]), -(-img.shape[1] // sm.shape[1])
        gy, gx = np.gradient(sm.astype(np.float64), by * sp[0], bx * sp[1])
        ref = np.hypot(gy, gx)[rows // by, cols // bx]
        np.testing.assert_allclose(_gradient_at(img, sp, 0.5, rows, cols), ref, rtol=2e-3,
                                   atol=1e-3 * float(np.abs(ref).max()))


@settings(max_examples=300, deadline=None)
@given(
    img=hnp.arrays(np.float32, hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=40),
                   elements=st.floats(-1e4, 1e4, width=32)),
    f=st.tuples(st.integers(1, 9), st.integers(1, 9)),
)
def test_block_mean_is_numpys_4d_mean_bit_for_bit(img, f):
    # the strided additions replace NumPy's reduction without changing one bit of a feature
    H, W = img.shape
    Hp, Wp = -(-H // f[0]) * f[0], -(-W // f[1]) * f[1]
    pad = np.pad(img, ((0, Hp - H), (0, Wp - W)), mode="edge")
    ref = pad.reshape(Hp // f[0], f[0], Wp // f[1], f[1]).mean(axis=(1, 3), dtype=np.float32)
    got = _block_mean(img, f)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, ref)
