"""The batched path's texture matrices equal pyradiomics' C extension exactly."""

from __future__ import annotations

import numpy as np
import pytest

from skcalc.features import _radiomics_batched as batched
from skcalc.features._radiomics import radiomics_settings

pytest.importorskip("radiomics")


def objects(seed, n=20, shape=(30, 34)):
    """Random-walk blobs (1-80 px, some 1-px lines and diagonals) on a noisy 12-bit image."""
    rng = np.random.default_rng(seed)
    img = 1200 + 40 * rng.standard_normal(shape) + 200 * rng.random(shape)
    out = []
    settings = radiomics_settings()
    for _ in range(n):
        m = np.zeros(shape, bool)
        r, c = rng.integers(5, shape[0] - 5, 2)
        for _ in range(int(rng.integers(2, 80))):
            m[r, c] = True
            r = int(np.clip(r + rng.integers(-1, 2), 0, shape[0] - 1))
            c = int(np.clip(c + rng.integers(-1, 2), 0, shape[1] - 1))
        o = batched.prepare(img, m, settings, 4)
        if o is not None:
            out.append(o)
    return out


def reference(cls_name, o):
    from radiomics import cMatrices

    if cls_name == "glcm":
        p, angles = cMatrices.calculate_glcm(o.binned, o.mask, np.array([1]), o.ng, False, 0)
    else:
        p = cMatrices.calculate_gldm(o.binned, o.mask, np.array([1]), o.ng, 0, False, 0)
        angles = None
    return p[0], angles


@pytest.mark.parametrize("seed", [0, 1])
def test_glcm_matrices_bit_identical_to_c_extension(seed):
    objs = [o for o in objects(seed) if o.texture_ok]
    assert len(objs) >= 5
    P, values = batched.glcm_matrices(objs)
    for k, o in enumerate(objs):
        raw, angles = reference("glcm", o)
        assert [tuple(a) for a in angles] == list(batched.GLCM_OFFSETS)
        idx = o.gray_levels - 1
        raw = raw[idx[:, None], idx[None, :]]
        raw = raw + raw.transpose((1, 0, 2))  # symmetricalGLCM
        ref = raw / raw.sum((0, 1))
        n = o.gray_levels.size
        np.testing.assert_array_equal(P[k, :, :n, :n], ref.transpose((2, 0, 1)))
        assert not P[k, :, n:].any() and not P[k, :, :, n:].any()
        np.testing.assert_array_equal(values[k, :n], o.gray_levels)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_gldm_counts_bit_identical_to_c_extension(seed):
    objs = [o for o in objects(seed, n=40) if o.texture_ok]
    assert len(objs) >= 15
    gldm = batched.gldm_matrices(objs)
    for k, o in enumerate(objs):
        ref, _ = reference("gldm", o)
        np.testing.assert_array_equal(gldm[k, : o.ng], ref[:, :9])
        assert not ref[:, 9:].any() and not gldm[k, o.ng :].any()


def test_n_gray_levels_matches_discretisation():
    settings = radiomics_settings(bin_width=5)
    rng = np.random.default_rng(0)
    for scale in (1.0, 37.0, 1e3):
        v = rng.random(50) * scale + rng.random() * 1e4
        assert (
            batched.n_gray_levels(v.min(), v.max(), settings)
            == batched.discretise(v, settings).max()
        )


def test_glcm_with_many_gray_levels_equals_pyradiomics_classes():
    """Objects with 64+ gray levels take MCC's symmetric path: same values as pyradiomics."""
    from skcalc.features import _radiomics

    rng = np.random.default_rng(0)
    img = 1000.0 + rng.integers(0, 600, (40, 40))
    masks = []
    for r0, c0, h, w in [(2, 2, 20, 20), (10, 15, 25, 22), (20, 3, 15, 30)]:
        m = np.zeros(img.shape, bool)
        m[r0 : r0 + h, c0 : c0 + w] = True
        masks.append(m)
    kw = {"classes": ["glcm"]}
    objs = [batched.prepare(img, m, radiomics_settings(), 4) for m in masks]
    assert min(o.gray_levels.size for o in objs) >= batched.MCC_SYMMETRIC_FROM
    fast = _radiomics.radiomics_features_batch([img] * 3, masks, (0.07, 0.07), **kw)
    ref = _radiomics.radiomics_features_batch([img] * 3, masks, (0.07, 0.07), batched=False, **kw)
    np.testing.assert_allclose(fast, ref, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("spacing", [(0.07, 0.07), (0.1, 0.05)])
def test_regionprops_equal_skimage_regionprops_bit_for_bit(spacing):
    import warnings

    from skimage.measure import perimeter, regionprops

    from skcalc.features._regionprops import regionprops_features_batch

    rng = np.random.default_rng(1)
    img = (1000 + 300 * rng.random((30, 34))).astype(np.uint16)
    objs = objects(2, n=30)
    masks = [np.zeros(img.shape, bool) for _ in objs]
    for m, o in zip(masks, objects(2, n=30)):
        m[: o.mask.shape[0], : o.mask.shape[1]] = o.mask
    masks += [np.eye(30, 34, dtype=bool), np.pad(np.ones((1, 1), bool), ((3, 26), (4, 29)))]
    got = regionprops_features_batch(masks, [img] * len(masks), spacing)
    sr, sc = spacing
    for row, m in zip(got, masks):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            p = regionprops(m.astype(np.uint8), intensity_image=img, spacing=spacing)[0]
            ref = [
                p.area,
                perimeter(m) * np.sqrt(sr * sc),
                p.area_convex,
                p.equivalent_diameter_area,
                p.axis_major_length,
                p.axis_minor_length,
                p.eccentricity,
                p.orientation,
                p.solidity,
                p.extent,
                p.intensity_mean,
                p.intensity_max,
                p.intensity_min,
            ]
        np.testing.assert_array_equal(row, ref)


def test_nanmean_bit_identical_to_numpy():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((50, 4)) * 10.0 ** rng.integers(-5, 5, (50, 1))
    np.testing.assert_array_equal(batched._nanmean(x), np.nanmean(x, 1))
    x[3, 1] = x[7, 0] = x[7, 2] = np.nan
    x[9] = np.nan  # all NaN: NaN, as nanmean (without its warning)
    with pytest.warns(RuntimeWarning):
        ref = np.nanmean(x, 1)
    np.testing.assert_array_equal(batched._nanmean(x), ref)
    assert np.isnan(batched._nanmean(x)[9])


def test_mcc_symmetric_path_with_few_gray_levels_equals_eigvals():
    """Objects with 8-40 gray levels take the symmetric path (MCC_SYMMETRIC_FROM): the same
    MCC as the general eigensolver, and the whole GLCM class as pyradiomics' own class."""
    from skcalc.features import _radiomics

    rng = np.random.default_rng(0)
    objs = []
    for span in (40, 60, 100, 150, 200):  # 9 to 41 gray levels at bin width 5
        img = 1000.0 + rng.integers(0, span, (30, 30))
        for r0, c0, h, w in [(0, 0, 12, 14), (5, 8, 20, 15), (10, 3, 9, 25)]:
            m = np.zeros(img.shape, bool)
            m[r0 : r0 + h, c0 : c0 + w] = True
            m[r0 + 2, c0 + 3] = False  # not a rectangle
            objs.append(batched.prepare(img, m, radiomics_settings(), 4))
    assert min(o.gray_levels.size for o in objs) >= batched.MCC_SYMMETRIC_FROM
    stack = batched._GLCMStack(objs)
    P, px = stack.P, stack.px
    Q = (P / (px * stack.py + stack.eps)) @ P.transpose((0, 1, 3, 2))
    general, n_fast = [], 0
    for k, o in enumerate(objs):
        g = (slice(k, k + 1), slice(None), slice(0, o.gray_levels.size))
        general.append(batched._mcc_eigvals(Q[g][..., : o.gray_levels.size])[0])
        ok, _ = batched._mcc_symmetric(
            P[g][..., : o.gray_levels.size], px[g][..., 0], Q[g][..., : o.gray_levels.size],
            stack.eps,
        )
        n_fast += int(ok[0])
    # most of these objects take the symmetric path (else this test checks nothing)
    assert n_fast >= len(objs) // 2
    np.testing.assert_allclose(stack.getMCCFeatureValue(), general, rtol=1e-12, atol=0)
    images, masks = [o.image for o in objs], [o.mask for o in objs]
    kw = {"classes": ["glcm"]}
    got = _radiomics.radiomics_features_batch(images, masks, (0.07, 0.07), **kw)
    ref = _radiomics.radiomics_features_batch(images, masks, (0.07, 0.07), batched=False, **kw)
    np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-12)
