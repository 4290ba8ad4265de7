"""Hot pixels: single-pixel spikes are repaired only when the air shows the detector makes
them, and then they make no objects."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

import skcalc.segmentation._defects as defects_module
from skcalc import ROI
from skcalc.datasets import make_full_field_mammogram
from skcalc.segmentation import HDoGRegSegmenter, impulse_defects, repair_impulse_defects
from skcalc.segmentation._defects import _spikes, _stuck_clusters
from skcalc.testing import add_hot_pixels

SP = 0.1
_RING = np.ones((3, 3), bool)
_RING[1, 1] = False


def _reference_spikes(img, tau):
    """Brute force: pixels off the frame above every one of their 8 neighbours by > tau."""
    img = np.asarray(img, np.float64)
    H, W = img.shape
    out = np.zeros(img.shape, bool)
    for r in range(1, H - 1):
        for c in range(1, W - 1):
            nb = img[r - 1:r + 2, c - 1:c + 2][_RING]
            out[r, c] = img[r, c] - nb.max() > tau
    return out


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**16), shape=st.tuples(st.integers(3, 40), st.integers(3, 40)),
       tau=st.floats(0, 30), dtype=st.sampled_from([np.uint16, np.int16, np.float32]))
def test_spikes_equal_the_brute_force_reference(seed, shape, tau, dtype):
    rng = np.random.default_rng(seed)
    img = rng.normal(1000, 10, shape)
    img[rng.random(shape) < 0.05] += rng.uniform(0, 200)
    img = img.astype(dtype)
    got = np.zeros(shape, bool)
    got.ravel()[_spikes(img, tau)] = True
    np.testing.assert_array_equal(got, _reference_spikes(img, tau))


def _reference_clusters(img, level, tau, max_cluster):
    """Slow: each 8-connected group at ``level`` or more, its size, its darkest pixel and
    the brightest pixel of its ring (the group dilated by one pixel, less the group)."""
    lab, n = ndimage.label(img >= level, structure=np.ones((3, 3), bool))
    out = np.zeros(img.shape, bool)
    for i in range(1, n + 1):
        g = lab == i
        ring = ndimage.binary_dilation(g, structure=np.ones((3, 3), bool)) & ~g
        if g.sum() <= max_cluster and img[g].min() - img[ring].max() > tau:
            out |= g
    return out


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**16), n=st.integers(0, 30), max_cluster=st.integers(1, 6),
       tau=st.floats(0, 300))
def test_stuck_clusters_equal_the_slow_reference(seed, n, max_cluster, tau):
    """Groups of 1-8 stuck pixels (some touching each other or the frame) on noise."""
    rng = np.random.default_rng(seed)
    img = rng.normal(1000, 30, (48, 40))
    for _ in range(n):
        r, c = rng.integers(0, 47), rng.integers(0, 39)
        h, w = rng.integers(1, 3), rng.integers(1, 4)
        img[r:r + h, c:c + w] = 4000 - rng.integers(0, 2) * rng.uniform(0, 400)
    np.testing.assert_array_equal(_stuck_clusters(img, 3500, tau, max_cluster),
                                  _reference_clusters(img, 3500, tau, max_cluster))


def _scene(rng, n_air=6, n_breast=4, hot=4000.0, breast_noise=20.0, air_noise=2.0):
    """Air on the left (100), breast on the right (1000 + noise), isolated hot pixels on a
    grid of both sides; returns the image, the breast mask and the hot pixels."""
    img = rng.normal(100, air_noise, (240, 240))
    img[:, 120:] = rng.normal(1000, breast_noise, (240, 120))
    breast = np.zeros(img.shape, bool)
    breast[:, 120:] = True
    hot_px = np.zeros(img.shape, bool)
    hot_px[np.linspace(20, 220, n_air).astype(int), 30] = True
    hot_px[np.linspace(20, 220, n_breast).astype(int), 180] = True
    img[hot_px] = hot
    return img, breast, hot_px


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**16), n_air=st.integers(3, 12), n_breast=st.integers(1, 12))
def test_defects_seen_in_the_air_are_found_everywhere(seed, n_air, n_breast):
    img, breast, hot = _scene(np.random.default_rng(seed), n_air, n_breast)
    np.testing.assert_array_equal(impulse_defects(img, breast, SP), hot)


def test_defects_that_add_an_offset_are_found_where_the_tissue_is_brighter():
    """Hot pixels reading 1500 above their pixel: 1600 in the air, about 2500 in the
    breast, whose tissue reads more than the air's defects."""
    img, breast, hot = _scene(np.random.default_rng(6))
    img[hot & ~breast] = 1600
    img[hot & breast] = 2500
    np.testing.assert_array_equal(impulse_defects(img, breast, SP), hot)


def test_a_spike_in_the_breast_alone_is_kept():
    """Without spikes in the air, a one-pixel spike in the breast may be a calcification."""
    img, breast, _ = _scene(np.random.default_rng(0), n_air=2)
    assert impulse_defects(img, breast, SP) is None
    # spikes next to the breast are not "air" (the skin line, a fold)
    img, breast, _ = _scene(np.random.default_rng(0), n_air=0)
    img[20:220:40, 115] = 4000
    assert impulse_defects(img, breast, SP) is None


def test_air_spikes_that_its_own_noise_explains_do_not_count():
    """A grainy air (sd 200 against the breast's 20): its spikes of 1000 are 5 sd of it."""
    img, breast, _ = _scene(np.random.default_rng(1), hot=1000.0 + 100, air_noise=200.0)
    assert impulse_defects(img, breast, SP) is None
    img, breast, hot = _scene(np.random.default_rng(1), hot=4000.0 + 2000, air_noise=200.0)
    np.testing.assert_array_equal(impulse_defects(img, breast, SP), hot)


def test_air_spikes_of_many_readings_are_no_stuck_pixels():
    """Spikes in the air at 1000, 1500, ..., 4000 (pin-holes in film, say): no defect
    level, nothing repaired; three of them at one reading are one."""
    img, breast, hot = _scene(np.random.default_rng(4), n_air=7)
    rows = np.nonzero(hot[:, 30])[0]
    img[rows, 30] = np.linspace(1000, 4000, rows.size)
    assert impulse_defects(img, breast, SP) is None
    img[rows[:3], 30] = 4000
    mask = impulse_defects(img, breast, SP)
    assert mask is not None and mask[:, 180].sum() == 4 and mask[:, 30].sum() == 4


def test_small_groups_of_stuck_pixels_are_defects_too():
    """A pair and a 2 x 2 block stuck in the breast are repaired; a row of 5 is not a
    defect by this rule."""
    img, breast, hot = _scene(np.random.default_rng(5))
    img[100, 200:202] = img[150:152, 150:152] = img[200, 140:145] = 4000
    mask = impulse_defects(img, breast, SP)
    assert mask[100, 200:202].all() and mask[150:152, 150:152].all()
    assert not mask[200, 140:145].any()
    out, n = repair_impulse_defects(img, breast, SP)
    assert n == hot.sum() + 6 and out[150:152, 150:152].max() < 1200


def test_a_darker_spike_than_the_stuck_pixels_is_kept():
    """Pixels stuck at 4000 in the air: a one-pixel calcification at 1600 in the breast is
    no defect."""
    img, breast, hot = _scene(np.random.default_rng(2))
    img[60, 200] = 1600
    mask = impulse_defects(img, breast, SP)
    np.testing.assert_array_equal(mask, hot)
    assert _reference_spikes(img, 300)[60, 200]  # it is a spike all the same


def test_repair_sets_the_neighbours_median_and_leaves_the_input():
    rng = np.random.default_rng(3)
    img, breast, hot = _scene(rng)
    img = np.rint(img).astype(np.uint16)
    before = img.copy()
    out, n = repair_impulse_defects(img, breast, SP)
    np.testing.assert_array_equal(img, before)
    assert n == hot.sum() and out.dtype == img.dtype
    np.testing.assert_array_equal(out[~hot], img[~hot])
    for r, c in zip(*np.nonzero(hot)):
        ring = img[r - 1:r + 2, c - 1:c + 2][_RING].astype(float)
        assert out[r, c] == np.rint(np.median(ring))
    sub = before[:, 120:]  # no air: nothing is decided, the image itself comes back
    same, n0 = repair_impulse_defects(sub, np.ones(sub.shape, bool), SP)
    assert n0 == 0 and same is sub


def test_a_group_in_the_corner_is_repaired_from_its_repaired_neighbours():
    """The corner pixel of a 2 x 2 group in the image's corner has only defects around it."""
    img, breast, hot = _scene(np.random.default_rng(7))
    img[:2, -2:] = 4000
    out, n = repair_impulse_defects(img, breast, SP)
    assert n == hot.sum() + 4
    assert np.isfinite(out).all() and 900 < out[:2, -2:].min() <= out[:2, -2:].max() < 1100


@pytest.mark.parametrize("bad", [np.zeros((5, 5)), np.zeros((5, 5, 2))])
def test_shapes_must_agree(bad):
    with pytest.raises(ValueError, match="one shape"):
        impulse_defects(bad, np.zeros((4, 4), bool), SP)


@pytest.fixture(scope="module")
def hot_field():
    """A synthetic 77 x 64 mm field at 0.1 mm, and the same with 5e-4 of its pixels stuck
    at 4095 (none on the calcifications)."""
    field = make_full_field_mammogram((768, 640), spacing=SP, n_clusters=2, random_state=2)
    image = np.asarray(field.image)
    hot, where = add_hot_pixels(image, 5e-4, keep=np.asarray(field.reference) > 0)
    return image, hot, where


def _segment(image):
    roi = ROI(image, spacing=SP, meta={"roi_id": "view", "bits_stored": 12})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return HDoGRegSegmenter().fit_transform([roi])[0]


def test_hot_pixels_make_no_objects(hot_field, monkeypatch):
    image, hot, where = hot_field
    plain, spiked = _segment(image), _segment(hot)
    assert plain.meta["segmentation"]["n_impulse_pixels"] == 0
    assert spiked.meta["segmentation"]["n_impulse_pixels"] >= 0.95 * where.sum()
    lab = spiked.calcifications
    assert not lab[where].any()
    # the same objects (the repaired pixels shift the noise estimates a little)
    a, b = lab > 0, plain.calcifications > 0
    assert lab.max() == plain.calcifications.max() > 10
    assert (a != b).sum() <= 0.01 * a.sum()
    # without the repair they are objects
    monkeypatch.setattr(defects_module, "impulse_defects", lambda *a, **k: None)
    assert (_segment(hot).calcifications[where] > 0).sum() >= 10


def test_own_images_candidates_are_repaired_too(hot_field):
    """fit_candidate_filter's candidates are the segmenter's on an image with hot pixels."""
    from skcalc.segmentation._filter import roi_candidates

    _, hot, _ = hot_field
    roi = ROI(hot, spacing=SP, meta={"roi_id": "view", "bits_stored": 12})
    n_found = _segment(hot).meta["segmentation"]["n_candidates"]
    assert roi_candidates(roi, labelled=False)[0].shape[0] == n_found
