"""Detector and display artefacts: plateaus at the image's maximum (burned-in text, markers,
clipped tissue) make no objects, and dead lines do not cut the breast."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

import skcalc.segmentation._breast as breast_module
from skcalc import ROI
from skcalc.datasets import make_full_field_mammogram
from skcalc.segmentation import HDoGRegSegmenter
from skcalc.segmentation._breast import clipped_plateaus
from skcalc.testing import burn_in_text

SP = 0.1


@pytest.fixture(scope="module")
def field():
    """A synthetic 77 x 64 mm field at 0.1 mm and the same with burned-in text at 4095 (its
    maximum is about 3000) straddling the skin line on three rows."""
    image = np.asarray(make_full_field_mammogram((768, 640), spacing=SP, n_clusters=2,
                                                 random_state=2).image)
    return image, burn_in_text(image, (300, 400, 500))


def _segment(image):
    roi = ROI(image, spacing=SP, meta={"roi_id": "view", "bits_stored": 12})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return HDoGRegSegmenter().fit_transform([roi])[0]


def test_burned_in_text_makes_no_objects(field, monkeypatch):
    image, text = field
    near_text = ndimage.binary_dilation(text != image, iterations=3)
    plain, marked = _segment(image), _segment(text)
    lab = marked.calcifications
    assert not lab[near_text].any()
    assert marked.meta["segmentation"]["n_on_clipped_plateaus"] > 0
    assert plain.meta["segmentation"]["n_on_clipped_plateaus"] == 0
    assert lab.max() == plain.calcifications.max()
    # without the rule the letters' strokes are objects
    monkeypatch.setattr(breast_module, "clipped_plateaus", lambda *a, **k: None)
    assert _segment(text).calcifications[near_text].any()


@pytest.mark.parametrize("value", [3000, 2000])
def test_text_below_the_maximum_makes_no_objects(field, value):
    """5 mm letters burned in below the image's maximum (about 3000) and below the
    tissue's brightest: none of their strokes is an object, and the objects elsewhere are
    the plain image's. (4 mm letters of this font are flat over 0.5 mm^2 each, less than
    the rule's 1 mm^2, and are still found.)"""
    image, _ = field
    text = burn_in_text(image, (300, 400, 500), value=value, size_px=50)
    near_text = ndimage.binary_dilation(text != image, iterations=3)
    plain, marked = _segment(image), _segment(text)
    assert not marked.calcifications[near_text].any()
    assert marked.meta["segmentation"]["n_on_clipped_plateaus"] > 0
    far = ~ndimage.binary_dilation(near_text, iterations=50)
    a, b = plain.calcifications[far] > 0, marked.calcifications[far] > 0
    assert a.sum() > 100 and (a != b).sum() < 0.1 * a.sum()


def test_own_images_candidates_leave_out_the_plateaus_too(field, monkeypatch):
    """fit_candidate_filter's candidates are the segmenter's: none on the letters."""
    from skcalc.segmentation._filter import roi_candidates

    _, text = field
    roi = ROI(text, spacing=SP, meta={"roi_id": "view", "bits_stored": 12})
    n_found = _segment(text).meta["segmentation"]["n_candidates"]
    n_on = roi_candidates(roi, labelled=False)[0].shape[0]
    monkeypatch.setattr(breast_module, "clipped_plateaus", lambda *a, **k: None)
    assert roi_candidates(roi, labelled=False)[0].shape[0] == n_found > n_on


def test_dead_lines_keep_the_breast_whole(field):
    """A dead row and column at 0 across the breast: the breast keeps its area (less the
    lines), and the objects more than 4 mm from the lines are nearly the same."""
    image, _ = field
    cut = image.copy()
    cut[384, :] = 0
    cut[:, 213] = 0
    plain, lined = _segment(image), _segment(cut)
    area = plain.meta["segmentation"]["breast_area_cm2"]
    assert lined.meta["segmentation"]["breast_area_cm2"] > 0.97 * area
    far = np.ones(image.shape, bool)
    far[384 - 40:384 + 41] = far[:, 213 - 40:213 + 41] = False
    a, b = plain.calcifications[far] > 0, lined.calcifications[far] > 0
    assert a.sum() > 100 and (a != b).sum() < 0.1 * a.sum()
    assert lined.calcifications.max() >= 0.8 * plain.calcifications.max()


def test_plateaus_known_answers():
    img = np.zeros((80, 80), np.uint16)
    img[10:30, 10:40] = 4095  # 6 mm^2 at 0.1 mm
    img[50:53, 50:53] = 4095  # 0.09 mm^2: a calcification clipped on its own
    m = clipped_plateaus(img, SP)
    assert m[10:30, 10:40].all() and m[8, 20] and m[31, 20] and not m[7, 20]
    assert not m[45:60, 45:60].any()
    assert clipped_plateaus(img, SP, min_area_mm2=10.0) is None
    assert clipped_plateaus(img[40:, 40:], SP) is None
    # at 0.05 mm the same pixels cover a quarter of the area, the margin is 4 px
    m = clipped_plateaus(img, 0.05, min_area_mm2=1.0)
    assert m[10:30, 10:40].all() and m[6, 20] and not m[5, 20]
    f = img.astype(np.float32) / 7
    np.testing.assert_array_equal(clipped_plateaus(f, SP), clipped_plateaus(img, SP))


@settings(max_examples=40, deadline=None)
@given(h=st.integers(1, 30), w=st.integers(1, 30), r=st.integers(0, 40), c=st.integers(0, 40),
       value=st.integers(4085, 4095), seed=st.integers(0, 2**16))
def test_plateaus_are_exactly_the_large_components_at_the_top(h, w, r, c, value, seed):
    """Equal to a per-component reference: components (4-connected) of the pixels within
    0.1 % of the range below the maximum, of at least 1 mm^2 (100 px at 0.1 mm), grown by
    2 px (0.2 mm) with the cross. The box reads 4085-4095 over noise reaching 4095."""
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 4096, (80, 80)).astype(np.uint16)
    img[r:r + h, c:c + w] = value
    top = int(img.max())
    lab, n = ndimage.label(img >= top - 0.001 * (top - int(img.min())))
    ref = np.zeros(img.shape, bool)
    for k in range(1, n + 1):
        comp = lab == k
        if comp.sum() >= 100:
            ref |= ndimage.binary_dilation(comp, iterations=2)
    got = clipped_plateaus(img, SP)
    if not ref.any():
        assert got is None
    else:
        np.testing.assert_array_equal(got, ref)


def test_a_marker_a_few_levels_below_the_maximum_is_a_plateau():
    """A 2 mm bead at 4093 with a few pixels at 4095 (the real R-CC view's nipple marker):
    one plateau; 20 levels below the maximum it is not."""
    yy, xx = np.mgrid[:80, :80]
    img = np.random.default_rng(1).integers(1000, 3000, (80, 80)).astype(np.uint16)
    bead = (yy - 40) ** 2 + (xx - 40) ** 2 <= 100
    img[bead] = 4093
    img[40, 38:41] = 4095
    m = clipped_plateaus(img, SP)
    assert m is not None and m[bead].all() and m[40, 28] and not m[40, 27]
    img[bead] = 4075
    img[10, 10:13] = 4095
    assert clipped_plateaus(img, SP) is None


def _field_with_box(seed, value):
    """A synthetic field at 0.1 mm, its breast, and the field with a 20 x 15 mm box of
    ``value`` (``"median"``: the breast's median intensity) inside the breast at ``(r0,
    c0)``."""
    from skcalc.segmentation._combine import _coarse_breast

    image = np.asarray(make_full_field_mammogram((768, 640), spacing=SP, n_clusters=2,
                                                 random_state=seed).image)
    breast = _coarse_breast(image, (SP, SP))
    rows, cols = np.nonzero(breast)
    r0, c0 = int(np.median(rows)) - 100, int(np.median(cols)) - 100
    boxed = image.copy()
    boxed[r0:r0 + 200, c0:c0 + 150] = (int(np.median(image[breast])) if value == "median"
                                       else value)
    return image, breast, boxed, (r0, c0)


@pytest.mark.parametrize("seed", [2, 3])
@pytest.mark.parametrize("value", [4095, 2000, 0])
def test_a_large_flat_box_in_the_breast_leaves_the_statistics_elsewhere(seed, value):
    """A 20 x 15 mm box of one value inside the breast (an anonymisation box, clipped
    tissue; at the maximum, in the middle of the range or at 0): the candidates away from
    it are those of the image without it, because the box is left out of the noise scales
    and the stabilisation; counted in them, it moves candidates far from it."""
    from skcalc.segmentation._breast import not_tissue
    from skcalc.segmentation._calibrated import calibrated_candidates

    image, breast, boxed, (r0, c0) = _field_with_box(seed, value)
    away = np.ones(image.shape, bool)
    away[r0 - 30:r0 + 230, c0 - 30:c0 + 180] = False

    def peaks(img, exclude):
        _, info = calibrated_candidates(img, SP, breast_mask=breast, bit_depth=12,
                                        exclude=exclude)
        return {(r, c) for r, c in zip(info["peak_row"], info["peak_col"]) if away[r, c]}

    plain = peaks(image, None)
    exclude = not_tissue(boxed, SP)
    assert exclude[r0:r0 + 200, c0:c0 + 150].all() and not exclude[away].mean() > 0.01
    assert not_tissue(image, SP) is None
    left_out, counted = peaks(boxed, exclude), peaks(boxed, None)
    assert len(plain) > 25
    assert len(plain & left_out) >= 0.95 * len(plain)
    assert len(plain & counted) < len(plain & left_out)


@settings(max_examples=40, deadline=None)
@given(h=st.integers(1, 40), w=st.integers(1, 40), r=st.integers(0, 40), c=st.integers(0, 40),
       value=st.sampled_from([0, 1, 2000, 4095]), seed=st.integers(0, 2**16))
def test_flat_regions_are_exactly_the_large_flat_insides_grown(h, w, r, c, value, seed):
    """Equal to a per-pixel reference: pixels equal to their four neighbours (not on the
    frame), their 4-connected components of at least 1 mm^2 (100 px at 0.1 mm), grown by
    one pixel (the region's edge) and 2 px (0.2 mm) with the cross."""
    from skcalc.segmentation._breast import flat_regions

    img = np.random.default_rng(seed).integers(0, 4096, (80, 80)).astype(np.uint16)
    img[r:r + h, c:c + w] = value
    inner = np.zeros(img.shape, bool)
    for i in range(1, 79):
        for j in range(1, 79):
            inner[i, j] = all(img[i, j] == img[i + di, j + dj]
                              for di, dj in ((-1, 0), (1, 0), (0, -1), (0, 1)))
    lab, n = ndimage.label(inner)
    for bottom_mm2 in (None, 2.0):  # regions at the minimum need 200 px in the second
        ref = np.zeros(img.shape, bool)
        for k in range(1, n + 1):
            comp = lab == k
            at_min = img[comp][0] == img.min()
            if comp.sum() >= (200 if bottom_mm2 and at_min else 100):
                ref |= ndimage.binary_dilation(comp, iterations=3)
        got = flat_regions(img, SP, min_area_mm2=1.0, margin_mm=0.2,
                           min_area_at_bottom_mm2=bottom_mm2)
        if not ref.any():
            assert got is None
        else:
            np.testing.assert_array_equal(got, ref)


def test_artificial_outlines_known_answers():
    from skcalc.segmentation._breast import artificial_outlines

    img = np.random.default_rng(0).integers(0, 4000, (120, 120)).astype(np.uint16)
    img[10:50, 10:50] = 2000  # 16 mm^2 of one value below the maximum
    img[70:100, 70:103] = 0  # 9.9 mm^2: smaller than half a 5 mm noise window
    m = artificial_outlines(img, SP)
    assert m[10:50, 10:50].all() and m[8, 20] and m[51, 20] and not m[7, 20]
    assert not m[60:, 60:].any()
    breast = np.zeros(img.shape, bool)
    breast[60:, :] = True  # the box outside the breast is not looked for
    assert artificial_outlines(img, SP, breast) is None
    img[110:120, 0:12] = 4095  # 1.2 mm^2 at the maximum, on the frame
    m = artificial_outlines(img, SP, breast)
    assert m[110:, :12].all() and m[108, 5] and not m[107, 5] and not m[:100].any()
    img[75:90, 20:30] = 3000  # 1.5 mm^2 of one value between the extremes: a letter
    m = artificial_outlines(img, SP, breast)
    assert m[75:90, 20:30].all() and m[73, 25] and not m[72, 25]
    assert not m[60:69, 60:].any()  # the 9.9 mm^2 at the minimum stays (clipped fat)


@pytest.mark.parametrize("seed", [2, 3])
def test_a_box_at_the_tissues_level_leaves_no_objects_on_its_outline(seed, monkeypatch):
    """A 20 x 15 mm box of one value at the breast's median intensity: its outline against
    the tissue's fluctuations makes bright points; no object touches it (within 0.3 mm), and
    without the rule some do."""
    image, _, boxed, (r0, c0) = _field_with_box(seed, "median")
    band = np.zeros(image.shape, bool)
    band[r0 - 3:r0 + 203, c0 - 3:c0 + 153] = True
    out = _segment(boxed)
    assert not out.calcifications[band].any()
    assert out.meta["segmentation"]["n_on_clipped_plateaus"] > 0
    monkeypatch.setattr(breast_module, "artificial_outlines",
                        lambda image, spacing, breast=None: clipped_plateaus(image, spacing))
    assert np.unique(_segment(boxed).calcifications[band]).size - 1 >= 2
