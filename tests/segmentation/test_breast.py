import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from skcalc.segmentation._breast import breast_area_cm2, delineate_breast, erode_breast


def _phantom(shape=(300, 240), side="left", seed=0, mono1=False):
    """Half-ellipse breast against the chest wall, bright on dark air, with an inner hole."""
    rng = np.random.default_rng(seed)
    rr, cc = np.mgrid[: shape[0], : shape[1]].astype(float)
    cy, a, b = shape[0] / 2, shape[0] * 0.42, shape[1] * 0.7
    inside = ((rr - cy) / a) ** 2 + (cc / b) ** 2 <= 1
    img = np.where(inside, 1800 + 400 * np.cos(rr / 30), 60.0) + rng.normal(0, 15, shape)
    img[140:150, 50:60] = 80.0  # a dark inner hole (e.g. a fat lobule): must be filled
    truth = inside.copy()
    if side == "right":
        img, truth = img[:, ::-1], truth[:, ::-1]
    return np.clip(img, 0, 4095).astype(np.uint16), truth


@pytest.mark.parametrize("side", ["left", "right"])
def test_breast_phantom(side):
    img, truth = _phantom(side=side)
    mask = delineate_breast(img)
    assert mask.dtype == bool and mask.shape == img.shape
    assert (mask != truth).mean() < 0.005
    assert mask[145, 55 if side == "left" else 240 - 56]  # hole filled


def test_breast_with_offset_and_float_input():
    img, truth = _phantom()
    mask = delineate_breast(img.astype(np.float64) / 4095 + 0.3)  # detector offset, float
    assert (mask != truth).mean() < 0.005


def test_largest_bright_label_wins_over_larger_dark_background():
    img = np.zeros((100, 100))
    img[10:40, 10:40] = 1000.0  # breast, 900 px
    img[70:75, 70:75] = 1000.0  # 25 px speck, removed as small object
    mask = delineate_breast(img)
    assert mask.sum() == 900 and not mask[72, 72]


def test_breast_larger_than_background_is_chosen_by_median():
    img = np.zeros((100, 100))
    img[:, :80] = 1000.0
    mask = delineate_breast(img)
    assert mask[:, :80].all() and not mask[:, 80:].any()


def test_crop_without_air_is_all_breast():
    rng = np.random.default_rng(0)
    img = 2000 + 500 * rng.random((128, 128))  # dense tissue crop, no air
    assert delineate_breast(img).all()
    assert delineate_breast(np.full((5, 5), 7)).all()


def test_breast_rejects_bad_input():
    with pytest.raises(ValueError, match="2-D"):
        delineate_breast(np.zeros((3, 3, 3)))
    with pytest.raises(ValueError, match="NaN"):
        delineate_breast(np.array([[np.nan, 1.0]]))


def test_erode_matches_cv2_style_reference():
    rng = np.random.default_rng(3)
    mask = ndimage.binary_opening(rng.random((80, 90)) < 0.7, iterations=2)
    got = erode_breast(mask, size_mm=45 * 0.07)
    # reference: square erosion where outside-the-image counts as breast
    pad = np.pad(mask, 22, constant_values=True)
    ref = ndimage.binary_erosion(pad, np.ones((45, 45), bool))[22:-22, 22:-22]
    np.testing.assert_array_equal(got, ref)


def test_erode_spacing_in_mm():
    m = np.zeros((50, 200), bool)
    m[:, :100] = True
    e = erode_breast(m, spacing=0.14)  # 3.15 mm = 22.5 px -> 11 px per side at 0.14 mm
    assert e[0].sum() == 100 - 11
    assert erode_breast(m, size_mm=0).sum() == m.sum()


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 40), st.integers(1, 40), st.integers(0, 12), st.integers(0, 12))
def test_erode_full_mask_stays_full_and_is_subset(h, w, r, c):
    full = np.ones((h, w), bool)
    assert erode_breast(full).all()
    m = full.copy()
    m[r % h, c % w] = False
    e = erode_breast(m, size_mm=5 * 0.07)
    assert not (e & ~m).any()
    # a single air pixel removes a 5x5 square (clipped to the image)
    rr, cc = r % h, c % w
    expected = (min(h, rr + 3) - max(0, rr - 2)) * (min(w, cc + 3) - max(0, cc - 2))
    assert (~e).sum() == expected


def test_area():
    m = np.zeros((200, 300), bool)
    m[:100] = True
    assert breast_area_cm2(m, 0.07) == pytest.approx(100 * 300 * 0.0049 / 100)


def _fatty_phantom(gamma: float):
    """A breast whose outer half is fatty (dark), shown through a gamma display curve."""
    img, truth = _phantom()
    rr, cc = np.mgrid[: img.shape[0], : img.shape[1]].astype(float)
    x = img.astype(float) / 4095
    x = np.where(truth, x * np.clip(1.2 - cc / 120, 0.12, 1.0), 0.0)  # darker toward the skin
    return np.rint(4095 * x ** gamma).astype(np.uint16), truth


@pytest.mark.parametrize("gamma", [1.0, 1.5, 2.0])
def test_robust_rule_keeps_fatty_tissue_that_a_gamma_darkens(gamma):
    img, truth = _fatty_phantom(gamma)
    robust = delineate_breast(img, rule="robust")
    assert (robust != truth).mean() < 0.01
    authors = delineate_breast(img)
    assert not (authors & ~robust).any()  # never less inclusive than the authors' rule
    if gamma >= 2:  # the authors' fraction of Otsu cuts the fatty part off
        assert (truth & ~authors).mean() > 0.05


def test_rule_is_validated():
    img, _ = _phantom()
    with pytest.raises(ValueError, match="rule"):
        delineate_breast(img, rule="otsu")


@pytest.mark.parametrize("where", ["right", "bottom", "frame", "grainy"])
def test_robust_rule_leaves_out_bright_padding(where):
    """Padding, a shutter or unexposed film at the image's maximum is not the breast (the
    authors' rule takes it: it is the brightest large region). "grainy": clear film with
    grain and digitiser noise (sd 20 grey levels) instead of a constant."""
    img, truth = _phantom()
    H, W = img.shape
    if where == "grainy":
        rng = np.random.default_rng(1)
        pad = np.clip(np.rint(4040 + rng.normal(0, 20, (H, W + 120))), 0, 4095)
        pad = pad.astype(np.uint16)
        pad[:, :W] = img
        inner = (slice(0, H), slice(0, W))
    elif where == "right":
        pad = np.full((H, W + 120), 4095, np.uint16)
        pad[:, :W] = img
        inner = (slice(0, H), slice(0, W))
    elif where == "bottom":
        pad = np.full((H + 100, W), 4095, np.uint16)
        pad[:H] = img
        inner = (slice(0, H), slice(0, W))
    else:
        pad = np.full((H + 100, W + 100), 4095, np.uint16)
        pad[50:H + 50, :W] = img
        inner = (slice(50, H + 50), slice(0, W))
    mask = delineate_breast(pad, rule="robust")
    assert (mask[inner] != truth).mean() < 0.005
    outside = np.ones(pad.shape, bool)
    outside[inner] = False
    assert not mask[outside].any()
    if where in ("right", "frame"):  # a pad larger than the breast wins the authors' rule
        assert not delineate_breast(pad, rule="authors")[inner].any()


def test_robust_rule_keeps_tissue_clipped_at_the_maximum():
    """A dense region clipped at the top of the range (a steep window) touching the chest
    wall stays breast: pixels around it are close to the maximum, and it does not run along
    half a side."""
    img, truth = _phantom()
    x = img.astype(float)
    rr, cc = np.mgrid[: img.shape[0], : img.shape[1]]
    dense = 1800 + 1500 * np.exp(-((rr - 150) ** 2 + cc ** 2) / (2 * 40.0**2))
    x = np.where(truth, np.maximum(x, dense), x)
    clipped = np.minimum(x, 2900).astype(np.uint16)
    assert (clipped == 2900).sum() > 1000
    mask = delineate_breast(clipped, rule="robust")
    assert mask[clipped == 2900].all()
    assert (mask != truth).mean() < 0.005


@pytest.mark.parametrize("value", [0, 60])
def test_robust_rule_joins_a_breast_cut_by_dead_lines(value):
    """A dead detector row and column (at 0, or at the air's level) cut the breast into four
    pieces; the robust rule keeps them all (the lines stay out), the authors' keeps one."""
    img, truth = _phantom()
    cut = img.copy()
    cut[150, :] = value
    cut[:, 80] = value
    lines = np.zeros(img.shape, bool)
    lines[150, :] = lines[:, 80] = True
    robust = delineate_breast(cut, rule="robust")
    assert not robust[lines].any()
    assert (robust != (truth & ~lines)).mean() < 0.005
    # without lines the two rules agree on this phantom
    np.testing.assert_array_equal(delineate_breast(img, rule="robust"),
                                  delineate_breast(img, rule="authors"))
    authors = delineate_breast(cut, rule="authors")
    assert authors.sum() < 0.5 * truth.sum()
