"""Tests of the HDoG candidate detector against a slow, literal implementation."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import ndimage as ndi
from skimage.feature import peak_local_max

from skcalc.segmentation import _hdog, hdog_candidates
from skcalc.segmentation._hdog import hdog_sigmas, scale_to_unit


def literal_hdog(img01, spacing, min_sigma=0.0826, max_sigma=0.217, ratio=1.6, thr=0.006, h=1.4):
    """The description of hdogreg.md section 2, step by step, with no optimisation.

    The Gaussian stage uses float32 like ``hdog_candidates`` (the authors used float64), so
    that both see bit-identical DoG values; the peak search then runs on the float64 cube with
    ``peak_local_max`` and the Hessian uses ``np.gradient`` on the whole plane. Thresholds are
    compared in float64 against the exact parameter values, as ``hdog_candidates`` documents.
    """
    img = np.asarray(img01, dtype=np.float32)
    sp = np.broadcast_to(np.asarray(spacing, float), (2,))
    k = int(math.log(max_sigma / min_sigma, ratio)) + 1
    sig = [min_sigma * ratio**i for i in range(k + 1)]
    gs = [
        ndi.gaussian_filter(
            img, sigma=(s / sp[0], s / sp[1]), output=np.float32, mode="reflect", truncate=4.0
        )
        for s in sig
    ]
    dogs = [(gs[i] - gs[i + 1]) * np.float32(1.0 / (ratio - 1.0)) for i in range(k)]
    cube = np.stack(dogs, axis=-1).astype(np.float64)
    peaks = peak_local_max(
        cube,
        threshold_abs=thr,
        threshold_rel=0.0,
        footprint=np.ones((3, 3, 3)),
        exclude_border=False,
    )
    out = np.zeros(img.shape, bool)
    for i, d in enumerate(dogs):
        grads = np.gradient(d)
        hess = [np.gradient(g) for g in grads]
        det = hess[0][0] * hess[1][1] - hess[0][1] * hess[1][0]
        tr = hess[0][0] + hess[1][1]
        if h is None:
            crit = (det > 0) & (tr < 0)
        else:
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                ratio_ = np.abs(det) / (tr + 1e-20) ** 2
            crit = ((det > 0) & (tr < 0)) | ((ratio_ < np.float64(h)) & (tr < 0))
        lbl, _ = ndi.label(crit)
        for r, c, s in peaks:
            if s != i or lbl[r, c] == 0:
                continue
            out |= lbl == lbl[r, c]
    return out


def blob_image(shape, n_blobs, noise, seed, background=0.3):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    img = background + 0.05 * yy / shape[0] + rng.normal(0, noise, shape)
    for _ in range(n_blobs):
        cy, cx = rng.uniform(0, shape[0]), rng.uniform(0, shape[1])
        ry, rx = rng.uniform(0.7, 4.0, 2)
        amp = rng.uniform(0.02, 0.12)
        img += amp * np.exp(-((yy - cy) ** 2) / (2 * ry**2) - (xx - cx) ** 2 / (2 * rx**2))
    return np.clip(img, 0, 1)


CASES = [
    # shape, n_blobs, noise, seed, spacing, kwargs
    ((64, 64), 5, 0.003, 0, 0.07, {}),
    ((100, 150), 15, 0.004, 1, 0.07, {}),
    ((270, 90), 20, 0.004, 2, 0.07, {}),  # crosses a Hessian strip boundary
    ((120, 110), 12, 0.004, 3, (0.07, 0.1), {}),  # anisotropic spacing
    ((90, 90), 10, 0.006, 4, 0.05, {}),  # finer pixels: larger px sigmas
    ((80, 96), 10, 0.004, 5, 0.07, {"hessian_thr": None}),
    ((80, 96), 10, 0.004, 6, 0.07, {"hessian_thr": 0.1, "threshold": 0.004}),
    ((96, 80), 8, 0.004, 7, 0.07, {"min_sigma": 0.1, "max_sigma": 0.12}),  # a single DoG
    ((96, 80), 8, 0.01, 8, 0.07, {}),  # noisier: many peaks
]


@pytest.mark.parametrize("shape, n_blobs, noise, seed, spacing, kw", CASES)
def test_matches_literal_implementation(shape, n_blobs, noise, seed, spacing, kw):
    img = blob_image(shape, n_blobs, noise, seed)
    labels = hdog_candidates(img, spacing, **kw)
    ref_kw = {
        "min_sigma": kw.get("min_sigma", 0.0826),
        "max_sigma": kw.get("max_sigma", 0.217),
        "thr": kw.get("threshold", 0.006),
        "h": kw.get("hessian_thr", 1.4),
    }
    expected = literal_hdog(img, spacing, **ref_kw)
    assert expected.any()
    np.testing.assert_array_equal(labels > 0, expected)
    assert labels.dtype == np.int32
    np.testing.assert_array_equal(labels, ndi.label(expected)[0])


def test_small_strips_give_the_same_answer(monkeypatch):
    img = blob_image((60, 70), 8, 0.004, 11)
    expected = literal_hdog(img, 0.07)
    for rows in (1, 2, 3, 7):
        monkeypatch.setattr(_hdog, "_STRIP_ROWS", rows)
        np.testing.assert_array_equal(hdog_candidates(img) > 0, expected)


def test_float64_reference_agrees_on_blob_images():
    # The authors computed in float64; float32 only matters at exact ties/thresholds.
    img = blob_image((128, 128), 15, 0.004, 21)
    sig = hdog_sigmas(1.18, 3.1, 1.6)
    gs = [ndi.gaussian_filter(img, s) for s in sig]
    dogs = [(gs[i] - gs[i + 1]) / 0.6 for i in range(3)]
    cube = np.stack(dogs, -1)
    peaks = peak_local_max(
        cube, threshold_abs=0.006, threshold_rel=0.0, footprint=np.ones((3, 3, 3)),
        exclude_border=False,
    )
    out = np.zeros(img.shape, bool)
    for i, d in enumerate(dogs):
        hs = [np.gradient(g) for g in np.gradient(d)]
        det = hs[0][0] * hs[1][1] - hs[0][1] * hs[1][0]
        tr = hs[0][0] + hs[1][1]
        lbl, _ = ndi.label((tr < 0) & (np.abs(det) < 1.4 * tr**2))
        for r, c, s in peaks:
            if s == i and lbl[r, c]:
                out |= lbl == lbl[r, c]
    np.testing.assert_array_equal(hdog_candidates(img) > 0, out)


def test_integer_input_scaled_by_bit_depth():
    img = blob_image((64, 64), 6, 0.003, 5)
    raw12 = np.round(img * 4095).astype(np.uint16)
    expected = literal_hdog(raw12 / 4095.0, 0.07)
    np.testing.assert_array_equal(hdog_candidates(raw12) > 0, expected)
    np.testing.assert_array_equal(hdog_candidates(raw12, bit_depth=12) > 0, expected)
    raw16 = raw12.astype(np.uint16) * 16  # 12-bit data in the top of a 16-bit range
    np.testing.assert_array_equal(
        hdog_candidates(raw16) > 0, literal_hdog(raw16 / 65535.0, 0.07)
    )
    # Same data declared 16-bit is 16x fainter: fewer (here no) candidates pass 0.006.
    assert (hdog_candidates(raw12, bit_depth=16) > 0).sum() < expected.sum()


def test_scale_to_unit_inference():
    assert scale_to_unit(np.array([[0, 4095]], np.uint16)).max() == 1
    assert scale_to_unit(np.array([[0, 4096]], np.uint16)).max() == pytest.approx(4096 / 65535)
    assert scale_to_unit(np.array([[0, 255]], np.uint8)).max() == 1
    assert scale_to_unit(np.array([[0.0, 0.7]])).max() == pytest.approx(0.7)
    assert scale_to_unit(np.array([[0.0, 2000.0]])).max() == pytest.approx(2000 / 4095)
    assert scale_to_unit(np.array([[0.0, 5000.0]])).max() == pytest.approx(5000 / 65535)
    assert scale_to_unit(np.array([[0, 1023]], np.uint16), 10).max() == 1
    assert scale_to_unit(np.array([[0.0, 0.5]])).dtype == np.float32
    with pytest.raises(ValueError, match="bit_depth"):
        scale_to_unit(np.ones((2, 2)), bit_depth=0)
    with pytest.raises(ValueError, match="bit_depth"):
        scale_to_unit(np.ones((2, 2)), bit_depth=2.5)


def test_single_blob_found_with_its_extent():
    yy, xx = np.mgrid[:64, :64]
    sigma_b = 3.0
    r2 = (yy - 30.0) ** 2 + (xx - 34.0) ** 2
    img = 0.3 + 0.1 * np.exp(-r2 / (2 * sigma_b**2))
    labels = hdog_candidates(img)
    assert labels.max() == 1
    obj = labels == 1
    # The candidate is the blob's core: the disk of radius sigma, nothing beyond 1.5 sigma.
    assert obj[r2 <= sigma_b**2].all()
    assert not obj[r2 > (1.5 * sigma_b) ** 2].any()
    cy, cx = ndi.center_of_mass(obj)
    assert (cy, cx) == pytest.approx((30.0, 34.0), abs=1e-9)
    area_mm2 = obj.sum() * 0.07**2
    # The same physical blob at twice the pixel size, isotropic and along columns only.
    half = 0.3 + 0.1 * np.exp(-r2 / (2 * (sigma_b / 2) ** 2))
    area_coarse = (hdog_candidates(half, spacing=0.14) > 0).sum() * 0.14**2
    assert area_coarse == pytest.approx(area_mm2, rel=0.3)
    aniso = 0.3 + 0.1 * np.exp(
        -((yy - 30.0) ** 2) / (2 * sigma_b**2) - (xx - 34.0) ** 2 / (2 * (sigma_b / 2) ** 2)
    )
    area_aniso = (hdog_candidates(aniso, spacing=(0.07, 0.14)) > 0).sum() * 0.07 * 0.14
    assert area_aniso == pytest.approx(area_mm2, rel=0.3)


def test_dark_blob_is_not_a_candidate():
    yy, xx = np.mgrid[:48, :48]
    img = 0.5 - 0.1 * np.exp(-((yy - 24.0) ** 2 + (xx - 24.0) ** 2) / 8)
    assert not hdog_candidates(img).any()


@pytest.mark.parametrize(
    "img",
    [
        np.zeros((40, 50)),
        np.full((40, 50), 0.4),
        np.full((40, 50), 3000, np.uint16),
        np.linspace(0.2, 0.25, 40 * 50).reshape(40, 50),  # gentle ramp
    ],
)
def test_no_peaks_gives_empty_labels(img):
    labels = hdog_candidates(img)
    assert labels.shape == img.shape and labels.dtype == np.int32
    assert not labels.any()


def test_constant_image_with_zero_threshold():
    assert not hdog_candidates(np.zeros((20, 20)), threshold=0.0).any()


def test_input_not_modified():
    img = blob_image((40, 40), 3, 0.003, 9)
    copy = img.copy()
    hdog_candidates(img)
    np.testing.assert_array_equal(img, copy)


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"image": np.zeros((4, 4, 4))}, ValueError, "2-D"),
        ({"image": np.zeros((1, 10))}, ValueError, "2 x 2"),
        ({"image": np.array([[0.0, np.nan], [0, 0]])}, ValueError, "NaN"),
        ({"image": np.array([["a", "b"], ["c", "d"]])}, TypeError, "numeric"),
        ({"spacing": -0.07}, ValueError, "spacing"),
        ({"spacing": (0.07, 0.0)}, ValueError, "spacing"),
        ({"min_sigma": 0.0}, ValueError, "min_sigma"),
        ({"max_sigma": 0.05}, ValueError, "max_sigma"),
        ({"sigma_ratio": 1.0}, ValueError, "sigma_ratio"),
        ({"threshold": -0.1}, ValueError, "threshold"),
        ({"hessian_thr": -1.0}, ValueError, "hessian_thr"),
        ({"overlap": -0.5}, ValueError, "overlap"),
        ({"overlap": 0.5}, NotImplementedError, "pruning"),
        ({"bit_depth": 40}, ValueError, "bit_depth"),
    ],
)
def test_input_validation(kwargs, exc, match):
    args = {"image": np.zeros((10, 10))}
    args.update(kwargs)
    image = args.pop("image")
    with pytest.raises(exc, match=match):
        hdog_candidates(image, **args)


def test_sigma_list():
    np.testing.assert_allclose(hdog_sigmas(1.18, 3.1, 1.6), [1.18, 1.888, 3.0208, 4.83328])
    np.testing.assert_allclose(hdog_sigmas(4.0, 6.0, 1.6), [4.0, 6.4])
    np.testing.assert_allclose(hdog_sigmas(1.6, 2.0, 1.6), [1.6, 2.56])
    # mm defaults give the same number of scales as the authors' pixel values
    assert len(hdog_sigmas(0.0826, 0.217, 1.6)) == 4


def test_detection_rate_on_synthetic_full_field_image():
    from skcalc.datasets import make_full_field_mammogram
    from skcalc.metrics import match_objects

    tp = n_gt = 0
    for seed in (0, 1):
        roi = make_full_field_mammogram(shape=(1024, 832), spacing=0.07, random_state=seed)
        labels = hdog_candidates(roi.image, roi.spacing, bit_depth=roi.meta.get("bits_stored"))
        res = match_objects(labels > 0, roi.reference)
        tp, n_gt = tp + res["tp"], n_gt + res["n_gt"]
    assert n_gt >= 20
    assert tp / n_gt >= 0.95


def test_both_branches_resolve_the_same_bit_depth():
    # Issue 10, bug 2: a uint16 crop with maximum 900 was divided by 4095 for HDoG and by 1023
    # for the CNN. One resolver now gives both the same number, and a declared depth wins.
    from skcalc.segmentation._regression import _bit_depth

    crop = np.array([[0, 900]], np.uint16)
    assert scale_to_unit(crop).max() == pytest.approx(900 / 4095)
    assert _bit_depth(crop, None) == 12
    assert _bit_depth(crop, 14) == 14
    assert scale_to_unit(crop, 14).max() == pytest.approx(900 / (2**14 - 1))


def previous_hdog_candidates(image, spacing=0.07, min_sigma=0.0826, max_sigma=0.217,
                             sigma_ratio=1.6, threshold=0.006, hessian_thr=1.4):
    """The implementation before the tiled Hessian stage (commit dadc722), kept as a reference.

    Whole-plane ``gaussian_filter``, whole-plane Hessian mask and int32 labels per scale.
    """
    sp = np.broadcast_to(np.asarray(spacing, dtype=float), (2,))
    sigmas_mm = hdog_sigmas(min_sigma, max_sigma, sigma_ratio)
    img = scale_to_unit(image)
    factor = np.float32(1.0 / (sigma_ratio - 1.0))
    thr = np.float64(threshold)

    def gauss(s_mm):
        return ndi.gaussian_filter(
            img, sigma=tuple(s_mm / sp), output=np.float32, mode="reflect", truncate=4.0
        )

    out = np.zeros(img.shape, dtype=bool)
    lo, hi = np.inf, -np.inf
    g_prev = gauss(sigmas_mm[0])
    prev = None
    for i in range(len(sigmas_mm) - 1):
        g_next = gauss(sigmas_mm[i + 1])
        dog = (g_prev - g_next) * factor
        g_prev = g_next
        lo, hi = min(lo, float(dog.min())), max(hi, float(dog.max()))
        idx = np.flatnonzero(dog > thr)
        vals = dog.ravel()[idx]
        keep = vals >= _hdog._neighbourhood_max(dog, idx)
        idx, vals = idx[keep], vals[keep]
        lbl = ndi.label(_hdog._hessian_mask(dog, hessian_thr), structure=_hdog._FOUR)[0]
        if prev is not None:
            p_dog, p_idx, p_vals, p_lbl = prev
            keep = vals >= _hdog._neighbourhood_max(p_dog, idx)
            idx, vals = idx[keep], vals[keep]
            _hdog._grow(out, p_lbl, p_idx[p_vals >= _hdog._neighbourhood_max(dog, p_idx)])
        prev = (dog, idx, vals, lbl)
    _hdog._grow(out, prev[3], prev[1])
    labels = np.zeros(out.shape, dtype=np.int32)
    if lo < hi:
        ndi.label(out, structure=_hdog._FOUR, output=labels)
    return labels


def _n_peaks(img, spacing=0.07):
    """Number of DoG peaks of the authors' rule (before the Hessian test)."""
    sp = np.broadcast_to(np.asarray(spacing, float), (2,))
    img = scale_to_unit(img)
    sig = hdog_sigmas(0.0826, 0.217, 1.6)
    gs = [ndi.gaussian_filter(img, tuple(s / sp), output=np.float32) for s in sig]
    cube = np.stack([(gs[i] - gs[i + 1]) * np.float32(1 / 0.6) for i in range(3)], -1)
    return len(peak_local_max(cube.astype(np.float64), threshold_abs=0.006, threshold_rel=0.0,
                              footprint=np.ones((3, 3, 3)), exclude_border=False))


@pytest.mark.parametrize(
    "shape, n_blobs, noise, seed, spacing",
    [
        ((700, 600), 60, 0.004, 31, 0.07),
        ((640, 512), 40, 0.012, 32, 0.07),  # noisy
        ((600, 700), 30, 0.03, 33, 0.07),  # very noisy: tens of thousands of peaks
        ((513, 450), 30, 0.02, 34, (0.07, 0.1)),
    ],
)
@pytest.mark.parametrize(
    "tile, dense, sparse_above",
    [(None, None, None), (5, 1.0, 1.0), (16, 1.0, 0.0), (64, 0.0, 1.0), (64, 0.0, 0.0)],
)
def test_matches_previous_implementation(shape, n_blobs, noise, seed, spacing, tile, dense,
                                         sparse_above, monkeypatch):
    # The tiled Hessian stage (forced here with dense=1.0) and the whole-plane one (dense=0),
    # with the previous DoG plane kept (sparse_above=0) or only its maxima near the
    # above-threshold pixels (sparse_above=1), give exactly the previous labels.
    if tile is not None:
        monkeypatch.setattr(_hdog, "_TILE", tile)
        monkeypatch.setattr(_hdog, "_DENSE_TILES", dense)
        monkeypatch.setattr(_hdog, "_SPARSE_ABOVE", sparse_above)
    img = blob_image(shape, n_blobs, noise, seed)
    if noise >= 0.03 and tile is None:
        assert _n_peaks(img, spacing) > 10_000
    expected = previous_hdog_candidates(img, spacing)
    assert expected.any()
    np.testing.assert_array_equal(hdog_candidates(img, spacing), expected)


@pytest.mark.parametrize("tile", [1, 2, 3, 7])
def test_small_tiles_give_the_same_answer(tile, monkeypatch):
    # Components that cross many tiles, including an elongated ridge, grown tile by tile.
    img = blob_image((70, 90), 8, 0.004, 12)
    yy, xx = np.mgrid[:70, :90]
    img = img + 0.05 * np.exp(-((yy - 0.5 * xx - 10.0) ** 2) / 4.0)
    monkeypatch.setattr(_hdog, "_TILE", tile)
    monkeypatch.setattr(_hdog, "_DENSE_TILES", 1.0)
    monkeypatch.setattr(_hdog, "_SPARSE_ABOVE", 1.0)
    np.testing.assert_array_equal(hdog_candidates(img) > 0, literal_hdog(img, 0.07))
    # growth cut short: the whole-plane fallback
    monkeypatch.setattr(_hdog, "_MAX_GROWTH_STEPS", 2)
    np.testing.assert_array_equal(hdog_candidates(img) > 0, literal_hdog(img, 0.07))
    monkeypatch.setattr(_hdog, "_MAX_GROWTH_STEPS", 64)
    for kw in ({"hessian_thr": None}, {"threshold": 0.002}):
        ref = literal_hdog(img, 0.07, h=kw.get("hessian_thr", 1.4), thr=kw.get("threshold", 0.006))
        np.testing.assert_array_equal(hdog_candidates(img, **kw) > 0, ref)


@pytest.mark.parametrize("value", [0.006, 0.004, 0.002, 0.0, 1e-30, 0.1, 1 / 3, 2.5, 1e300])
def test_float32_threshold_is_exact(value):
    t = _hdog._float32_at_or_below(value)
    assert t.dtype == np.float32 and float(t) <= value
    x = np.float32(min(value, 1e30))
    near = [np.nextafter(x, np.float32(np.inf)), x, np.nextafter(x, np.float32(-np.inf))]
    x = np.array(near + [0.0, -1.0, np.inf, 1e-45], dtype=np.float32)
    np.testing.assert_array_equal(x > t, x.astype(np.float64) > np.float64(value))


@settings(max_examples=200, deadline=None)
@given(
    f=hnp.arrays(
        st.sampled_from([np.float32, np.float64]),
        hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=9),
        elements=st.floats(-1e6, 1e6, width=32),
    ),
    axis=st.sampled_from([0, 1]),
    flip=st.booleans(),
)
def test_fast_gradient_is_numpy_gradient_bit_for_bit(f, axis, flip):
    # the sparse Hessian stage's gradient must be np.gradient's arithmetic exactly (the
    # authors' rule is tested for identity on top of it), also on strided views
    f = f[:, ::-1] if flip else f
    if f.shape[axis] < 2:
        with pytest.raises(ValueError):
            _hdog._gradient(f, axis)
        return
    fast, ref = _hdog._gradient(f, axis), np.gradient(f, axis=axis)
    assert fast.dtype == ref.dtype
    np.testing.assert_array_equal(fast, ref)


@pytest.mark.parametrize("tile, batch", [(8, 256), (8, 3), (5, 1), (13, 4)])
@pytest.mark.parametrize("h", [1.4, None])
def test_stacked_tiles_equal_the_whole_plane_hessian(tile, batch, h, monkeypatch):
    # every tile of a 50 x 70 plane (inner ones stacked in batches, border and partial
    # ones alone) against the whole plane's Hessian criterion, cropped and zero-padded
    monkeypatch.setattr(_hdog, "_TILE_BATCH", batch)
    dog = np.random.default_rng(tile).normal(size=(50, 70)).astype(np.float32)
    n_ty, n_tx = -(-50 // tile), -(-70 // tile)
    got = _hdog._hessian_tiles(dog, np.arange(n_ty * n_tx), n_tx, tile,
                               None if h is None else np.float64(h))
    whole = np.zeros((n_ty * tile, n_tx * tile), bool)
    whole[:50, :70] = _hdog._hessian_mask(dog, h)
    ref = whole.reshape(n_ty, tile, n_tx, tile).swapaxes(1, 2).reshape(-1, tile, tile)
    np.testing.assert_array_equal(got, ref)
