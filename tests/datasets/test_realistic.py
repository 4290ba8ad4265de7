"""The varied training patches and the digitised-film simulation."""

import numpy as np
import pytest

from skcalc.datasets import digitised_film, make_training_patch


@pytest.mark.parametrize("bits", [8, 10, 12])
def test_film_is_monotone_in_attenuation_and_stored_in_its_bits(bits):
    # a ramp of attenuation: the reader's (inverted) film values rise with it; the least
    # attenuated tissue (fat, skin) falls in the film's shoulder, where contrast is compressed
    x = np.tile(np.linspace(0, 1, 400), (200, 1))
    img, b = digitised_film(x, np.random.default_rng(bits), bits=bits)
    assert b == bits and img.max() <= 2**bits - 1
    assert img.dtype == (np.uint8 if bits == 8 else np.uint16)
    prof = img.astype(float).mean(axis=0)
    smooth = np.convolve(prof, np.ones(20) / 20, mode="valid")
    assert np.all(np.diff(smooth[::20]) > 0)
    slope = np.diff(smooth)
    mid = slope[len(slope) // 3: 2 * len(slope) // 3].mean()
    assert mid > 2 * slope[:20].mean()  # H&D shoulder


def test_film_grain_grows_with_density_and_block_sampling():
    rng = np.random.default_rng(0)
    x = np.zeros((256, 256))
    x[:, 128:] = 1.0  # left: little attenuation (dark film, high density); right: bright
    params = {}
    img, _ = digitised_film(x, rng, bits=12, params=params)
    assert {"film_gamma", "film_grain", "film_latitude"} <= set(params)
    dark, bright = img[20:-20, 20:100].astype(float), img[20:-20, 156:236].astype(float)
    assert dark.mean() < bright.mean()
    assert dark.std() > bright.std()  # grain sd ~ sqrt(density)
    small, _ = digitised_film(x, np.random.default_rng(0), block=2, bits=12)
    assert small.shape == (128, 128)


def test_training_patches_include_film_and_are_deterministic():
    modes = [make_training_patch(np.random.default_rng([5, k]), size_mm=8.0,
                                 film_fraction=0.2)["params"]["mode"] for k in range(40)]
    assert "film" in modes and len(set(modes)) >= 4
    a = make_training_patch(np.random.default_rng(3), size_mm=8.0)
    b = make_training_patch(np.random.default_rng(3), size_mm=8.0)
    np.testing.assert_array_equal(a["image"], b["image"])
    # a seed is the same stream as a generator made from it; None draws a fresh patch
    c = make_training_patch(3, size_mm=8.0)
    np.testing.assert_array_equal(a["image"], c["image"])
    np.testing.assert_array_equal(a["reference"], c["reference"])
    assert make_training_patch(None, size_mm=8.0, spacing=0.1)["image"].shape == (80, 80)
    x = np.random.default_rng(0).random((32, 32))
    np.testing.assert_array_equal(digitised_film(x, 4, bits=8)[0],
                                  digitised_film(x, np.random.default_rng(4), bits=8)[0])


def test_detector_contrast_sets_the_blurred_peak_in_noise_units():
    from skcalc.datasets._realistic import _noise_at_calcification_scale

    for k in range(3):
        p = make_training_patch(np.random.default_rng([8, k]), size_mm=16.0, spacing=0.1,
                                calcifications=True, contrast="detector")
        q = make_training_patch(np.random.default_rng([8, k]), size_mm=16.0, spacing=0.1,
                                calcifications=True, contrast="pixel")
        assert p["reference"].any() and q["image"].shape == p["image"].shape
    with pytest.raises(ValueError, match="contrast"):
        make_training_patch(np.random.default_rng(0), size_mm=8.0, contrast="counts")
    # the noise measure recovers white noise
    rng = np.random.default_rng(1)
    est = _noise_at_calcification_scale(rng.normal(0, 7.0, (300, 300)), 0.1,
                                        np.ones((300, 300), bool))
    assert abs(est - 7.0) < 0.5


def test_faint_calcifications_reach_faint_max_mm():
    from scipy import ndimage

    def largest_faint_mm(faint_max_mm):
        out = []
        for k in range(40):
            p = make_training_patch(np.random.default_rng([21, k]), size_mm=16.0, spacing=0.05,
                                    calcifications=True, contrast="detector",
                                    faint_max_mm=faint_max_mm)
            if not p["params"].get("faint"):
                continue
            lab, n = ndimage.label(p["reference"])
            if n:
                # equivalent diameter of the largest footprint
                out.append(2 * np.sqrt(np.bincount(lab.ravel())[1:].max() / np.pi) * 0.05)
        return max(out)

    # faint patches stay below 0.5 mm by default (elongation up to 2.5 keeps the area of a
    # 0.5 mm disc); with faint_max_mm=1.0 some faint calcifications are larger than that
    assert largest_faint_mm(0.5) <= 0.5 + 0.05
    assert largest_faint_mm(1.0) > 0.6
    with pytest.raises(ValueError, match="faint_max_mm"):
        make_training_patch(np.random.default_rng(0), size_mm=8.0, faint_max_mm=2.0)


def test_clumps_are_merging_specks_and_zero_draws_nothing():
    from scipy import ndimage

    from skcalc.datasets._realistic import _clump

    rng = np.random.default_rng(0)
    for _ in range(20):
        radius = rng.uniform(0.2, 0.8)
        prof, foot, R, iy, ix = _clump(rng, 40.3, 40.6, 0.05, radius)
        assert prof.max() == 1.0 and prof.shape == foot.shape == (2 * R + 1,) * 2
        np.testing.assert_array_equal(foot, prof > 0)
        yy, xx = np.nonzero(foot)
        # every speck centre lies within the radius (per axis), its edge 0.2 mm further
        reach = np.hypot(yy - R - 0.3, xx - R - 0.6).max() * 0.05
        assert reach <= np.sqrt(2) * radius + 0.2 + 0.1
        assert 1 <= ndimage.label(foot)[1] <= 8
    # 0: the stream of the filters trained without clumps
    a = make_training_patch(np.random.default_rng([0, 4]), contrast="detector",
                            faint_max_mm=1.0)
    b = make_training_patch(np.random.default_rng([0, 4]), contrast="detector",
                            faint_max_mm=1.0, clump_fraction=0.0)
    np.testing.assert_array_equal(a["image"], b["image"])
    # with a clump in every cluster the patches hold more calcified area
    def footprint(clump_fraction):
        return sum(int(make_training_patch(np.random.default_rng([6, k]), size_mm=16.0,
                                           spacing=0.07, calcifications=True,
                                           contrast="detector",
                                           clump_fraction=clump_fraction)["reference"].sum())
                   for k in range(12))

    assert footprint(1.0) > 1.2 * footprint(0.0)
    with pytest.raises(ValueError, match="clump_fraction"):
        make_training_patch(np.random.default_rng(0), size_mm=8.0, clump_fraction=1.5)
