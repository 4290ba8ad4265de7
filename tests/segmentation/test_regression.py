import os

import numpy as np
import pytest
import torch
from scipy import ndimage

from skcalc.roi import ROI
from skcalc.segmentation._regression import (
    RECEPTIVE_MARGIN,
    ProximityUNet,
    _augment,
    extract_positive_patches,
    load_weights,
    predict_proximity,
    proximity_function,
    proximity_target,
    save_weights,
    soft_dice_loss,
    train_regressor,
)


def _net(seed=0, **kw):
    torch.manual_seed(seed)
    return ProximityUNet(**kw).eval()


def _synthetic_roi(seed, shape=(96, 96), n=6, roi_id=None):
    rng = np.random.default_rng(seed)
    rr, cc = np.mgrid[: shape[0], : shape[1]]
    img = 1500 + 600 * np.sin(rr / 17.0) * np.cos(cc / 23.0) + rng.normal(0, 40, shape)
    ref = np.zeros(shape, bool)
    for _ in range(n):
        r, c = rng.integers(8, shape[0] - 8), rng.integers(8, shape[1] - 8)
        rad = rng.uniform(1.0, 2.5)
        blob = (rr - r) ** 2 + (cc - c) ** 2 <= rad**2
        ref |= blob
        img += 900 * np.exp(-((rr - r) ** 2 + (cc - c) ** 2) / (2 * rad**2))
    img = np.clip(img, 0, 4095).astype(np.uint16)
    return ROI(img, spacing=0.07, reference=ref, meta={"roi_id": roi_id or f"s{seed}"})


# ----------------------------------------------------------------------------- target / loss
def test_proximity_known_values():
    y = proximity_function(np.array([0.0, 1, 2, 3, 5, 8, 10, 11]), xi=10, alpha=1)
    np.testing.assert_allclose(
        y, [1.0, 0.849, 0.713, 0.590, 0.378, 0.129, 0.0, 0.0], atol=6e-4
    )


def test_proximity_target_matches_closed_form_in_mm():
    rng = np.random.default_rng(1)
    mask = rng.random((40, 50)) < 0.01
    mask[3, 4] = True
    spacing = (0.07, 0.07)
    got = proximity_target(mask, spacing)
    # slow reference: brute-force nearest mask pixel
    pts = np.argwhere(mask) * 0.07
    rr, cc = np.mgrid[:40, :50] * 0.07
    d = np.sqrt((rr[..., None] - pts[:, 0]) ** 2 + (cc[..., None] - pts[:, 1]) ** 2).min(-1)
    ref = np.where(d <= 0.7, (np.exp(1 - d / 0.7) - 1) / (np.e - 1), 0)
    np.testing.assert_allclose(got, ref, atol=1e-6)
    assert got[mask].min() == 1.0
    # anisotropic spacing: distance measured in mm
    m = np.zeros((1, 30), bool)
    m[0, 0] = True
    y = proximity_target(m, (0.07, 0.14))
    np.testing.assert_allclose(y[0, 2], proximity_function(np.array(0.28), 0.7), rtol=1e-6)
    assert not proximity_target(np.zeros((5, 5), bool)).any()


def test_soft_dice_loss_formula():
    p = torch.tensor([[0.2, 0.9], [0.4, 0.0]])
    y = torch.tensor([[0.0, 1.0], [0.5, 0.3]])
    expected = 1 - (2 * (0.9 + 0.2) + 1) / (1.5 + 1.8 + 1)
    assert float(soft_dice_loss(p, y)) == pytest.approx(expected)
    assert float(soft_dice_loss(y, y)) < float(soft_dice_loss(p, y))


# ----------------------------------------------------------------------------- network
def test_network_size_and_range():
    net = _net()
    n = sum(p.numel() for p in net.parameters())
    assert 50_000 < n < 500_000
    with torch.no_grad():
        out = net(torch.randn(2, 1, 48, 40))
    assert out.shape == (2, 1, 48, 40)
    assert float(out.min()) >= 0 and float(out.max()) <= 1


def test_receptive_field_within_margin():
    net = _net()
    x = torch.randn(1, 1, 200, 200, requires_grad=True)
    net(x)[0, 0, 100, 100].backward()
    r, c = np.nonzero(x.grad[0, 0].numpy())
    assert max(100 - r.min(), r.max() - 100, 100 - c.min(), c.max() - 100) <= RECEPTIVE_MARGIN


# ----------------------------------------------------------------------------- inference
def test_crop_with_margin_equals_whole_image():
    net = _net(3)
    rng = np.random.default_rng(0)
    img = rng.integers(0, 4096, (210, 260)).astype(np.uint16)
    full = predict_proximity(img, 0.07, net, tile=256, overlap=64, bit_depth=12)
    # another tiling of the whole image gives the same map
    other = predict_proximity(img, 0.07, net, tile=160, overlap=72, bit_depth=12)
    np.testing.assert_allclose(other, full, atol=1e-5)
    m = RECEPTIVE_MARGIN
    for r0, c0, h, w in [(71, 93, 40, 50), (0, 0, 30, 30), (170, 217, 40, 43)]:
        top, left = max(0, r0 - m), max(0, c0 - m)
        crop = img[top : r0 + h + m, left : c0 + w + m]
        pc = predict_proximity(crop, 0.07, net, tile=256, overlap=64, bit_depth=12,
                               origin=(top, left))
        got = pc[r0 - top : r0 - top + h, c0 - left : c0 - left + w]
        np.testing.assert_allclose(got, full[r0 : r0 + h, c0 : c0 + w], atol=1e-5)


def test_predict_small_image_mask_and_dtype():
    net = _net()
    img = np.full((20, 13), 0.4)
    out = predict_proximity(img, 0.07, net)
    assert out.shape == (20, 13) and out.dtype == np.float32
    assert np.all((out >= 0) & (out <= 1))
    mask = np.zeros((300, 300), bool)
    mask[:10, :10] = True
    out = predict_proximity(np.full((300, 300), 0.4), 0.07, net, tile=128, overlap=32, mask=mask)
    assert out[:10, :10].min() > 0 and out[200:, 200:].max() == 0
    with pytest.raises(ValueError, match="NaN"):
        predict_proximity(np.full((8, 8), np.nan), 0.07, net)
    with pytest.raises(ValueError, match="core"):
        predict_proximity(img, 0.07, net, tile=128, overlap=64)


def test_predict_other_spacing_keeps_shape():
    net = _net()
    out = predict_proximity(np.full((50, 40), 0.3), 0.14, net)
    assert out.shape == (50, 40)


# ----------------------------------------------------------------------------- patches / aug
def test_positive_patches_windows():
    img = np.arange(100 * 130).reshape(100, 130)
    m = np.zeros((100, 130), bool)
    m[99, 129] = True  # only the flush last window sees it
    p = extract_positive_patches(img, m, patch_size=64, stride=48)
    assert len(p) == 1
    np.testing.assert_array_equal(p[0][0], img[36:, 66:])
    assert not extract_positive_patches(img, np.zeros_like(m), patch_size=64)


def test_augment_shapes_and_mask_follows_image():
    rng = np.random.default_rng(0)
    img = np.zeros((64, 64), np.float32)
    m = np.zeros((64, 64), bool)
    m[20:30, 30:40] = True
    img[m] = 1.0
    for _ in range(20):
        im, mk = _augment(img, m, 48, rng)
        assert im.shape == (48, 48) and mk.shape == (48, 48) and mk.dtype == bool
        assert im.min() >= 0 and im.max() <= 1
        if mk.any():  # bright pixels sit on the mask (intensity jitter keeps the order)
            assert im[mk].mean() > im[~mk].mean()


# ----------------------------------------------------------------------------- training
def test_training_reduces_loss_and_is_deterministic():
    rois = [_synthetic_roi(s, (64, 64), n=5) for s in range(4)]
    kw = dict(epochs=6, patch_size=64, crop_size=48, batch_size=4, lr=3e-3,
              validation_fraction=0.25, patience=10, random_state=0, verbose=False,
              n_threads=1)
    rois = rois * 2
    model, hist = train_regressor(rois, **kw)
    assert hist[-1]["train_loss"] < hist[0]["train_loss"]
    assert {"epoch", "train_loss", "val_loss", "val_iou", "seconds"} <= set(hist[0])
    model2, hist2 = train_regressor(rois, **kw)
    assert [h["train_loss"] for h in hist2] == [h["train_loss"] for h in hist]
    for a, b in zip(model.state_dict().values(), model2.state_dict().values()):
        assert torch.equal(a, b)


def test_training_rejects_missing_reference():
    roi = ROI(np.zeros((32, 32)), meta={"roi_id": "noref"})
    with pytest.raises(ValueError, match="noref"):
        train_regressor([roi], epochs=1, verbose=False)


# ----------------------------------------------------------------------------- weights
def test_save_load_roundtrip(tmp_path):
    net = _net(5, base_channels=4, depth=2)
    path = tmp_path / "w.pt"
    save_weights(net, path, note="x")
    loaded = load_weights(path)
    assert loaded.depth == 2 and loaded.base_channels == 4 and not loaded.training
    x = torch.randn(1, 1, 32, 32)
    with torch.no_grad():
        assert torch.equal(net(x), loaded(x))


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (_touch, (self.marker,))


def _touch(path):
    with open(path, "w") as f:
        f.write("pwned")
    return {}


def test_load_refuses_code_execution(tmp_path):
    marker = str(tmp_path / "side_effect")
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": _Evil(marker), "config": {}}, path)
    assert not os.path.exists(marker)
    with pytest.raises(ValueError, match="refused"):
        load_weights(path)
    assert not os.path.exists(marker)


def test_default_weights_load_if_shipped():
    from skcalc.segmentation._regression import DEFAULT_WEIGHTS, load_default_weights

    if not os.path.exists(DEFAULT_WEIGHTS):
        pytest.skip("packaged weights not trained yet")
    net = load_default_weights()
    assert os.path.getsize(DEFAULT_WEIGHTS) < 5e6
    # a bright dot on a flat background gets a higher proximity than far away
    img = np.full((128, 128), 1500, np.uint16)
    img[60:63, 60:63] = 2600
    img = ndimage.gaussian_filter(img.astype(float), 0.7).astype(np.uint16)
    out = predict_proximity(img, 0.07, net, bit_depth=12)
    assert out[61, 61] > out[10, 10]


def test_training_resamples_other_spacing():
    roi = _synthetic_roi(7, (48, 48), n=4)
    coarse = ROI(roi.image[::2, ::2], spacing=0.14, reference=roi.reference[::2, ::2],
                 meta={"roi_id": "coarse"})
    model, hist = train_regressor([coarse, coarse], epochs=1, patch_size=48, crop_size=40,
                                  batch_size=2, validation_fraction=0, verbose=False,
                                  n_threads=1)
    assert len(hist) == 1 and np.isfinite(hist[0]["train_loss"])
