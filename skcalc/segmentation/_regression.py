"""The HDoGReg regression CNN (hdogreg.md section 3) in plain torch.

Contents: the proximity target, the soft-Dice loss, a compact U-Net, patch sampling and
augmentation, training with early stopping, weight I/O restricted to tensors
(``torch.load(weights_only=True)``) and translation-consistent tiled whole-image inference.

Design (deviations from the authors, who used an ImageNet Inception-v4 FPN of about 45 M
parameters on a GPU):

- **Network**: :class:`ProximityUNet`, a 3-level U-Net (max-pool x3, bilinear up-sampling,
  additive skips, BatchNorm + ReLU) with ``base_channels=8`` channels doubling per level:
  about 0.10 M parameters, fast enough to train on 2 CPU cores. The input side must be a
  multiple of 8 (:func:`predict_proximity` pads).
- **Input normalisation**: ``x = image / (2**bit_depth - 1)`` then ``(x - 0.5) / 0.5``, at full
  precision (the notebook's 16-bit path, not the 8-bit ``cv2`` quantisation of the training
  script).
- **Intensity augmentation**: CLAHE is replaced by a contrast jitter about the patch mean
  (factor in [0.7, 1.3]); brightness +-0.2 and gamma 0.8-1.2 as the authors.
- **Tiling**: the network is fully convolutional; tiles start on a global grid of multiples of
  8 (the pooling period) and only pixels at least ``overlap`` px from a tile edge are kept.
  With ``overlap >= RECEPTIVE_MARGIN`` the output at a pixel depends only on the image within
  that distance (the image is extended with air, value 0, beyond its frame), so an ROI crop
  processed with ``origin`` set and at least ``overlap`` px of margin gives, inside the
  region, the values of the whole-image pass (up to float rounding).
"""

from __future__ import annotations

import copy
import math
import os
import pickle
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from scipy import ndimage
from torch import nn
from torch.nn import functional as F

from .._units import check_spacing, resolve_bit_depth
from ._breast import _check_image

__all__ = [
    "ProximityUNet",
    "extract_positive_patches",
    "load_default_weights",
    "load_weights",
    "predict_proximity",
    "proximity_function",
    "proximity_target",
    "save_weights",
    "soft_dice_loss",
    "train_regressor",
]

#: Pooling period of :class:`ProximityUNet` (tiles start on multiples of it).
POOL_PERIOD = 8
#: Distance (px) beyond which the image does not influence an output pixel, measured with a
#: gradient probe on the default architecture (rounded up to a multiple of 8).
RECEPTIVE_MARGIN = 64
#: Pixel spacing (mm) of the training data of the shipped weights.
MODEL_SPACING = 0.07
DEFAULT_WEIGHTS = os.path.join(os.path.dirname(__file__), "weights", "hdogreg_default.pt")


# --------------------------------------------------------------------------- target and loss
def proximity_function(distance: np.ndarray, xi: float = 0.7, alpha: float = 1.0) -> np.ndarray:
    """Exponential proximity ``(exp(alpha*(1 - d/xi)) - 1) / (exp(alpha) - 1)`` for ``d <= xi``.

    Zero beyond ``xi``; ``distance`` and ``xi`` in the same unit (mm by default: 0.7 mm is the
    authors' 10 px at 0.07 mm).

    Examples
    --------
    >>> import numpy as np
    >>> proximity_function(np.array([0.0, 1, 2, 5, 10]), xi=10).round(3)
    array([1.   , 0.849, 0.713, 0.378, 0.   ])
    """
    d = np.asarray(distance, dtype=np.float64)
    if xi <= 0:
        return (d <= 0).astype(np.float64)
    if alpha == 0:
        y = 1.0 - d / xi
    else:
        y = np.expm1(alpha * (1.0 - d / xi)) / math.expm1(alpha)
    return np.where(d <= xi, y, 0.0)


def proximity_target(
    mask: np.ndarray,
    spacing: float | Sequence[float] = (0.07, 0.07),
    *,
    xi_mm: float = 0.7,
    alpha: float = 1.0,
) -> np.ndarray:
    """Regression target: the proximity function of the distance (mm) to the nearest MC pixel.

    Returns float32 zeros for an empty mask.

    Examples
    --------
    >>> import numpy as np
    >>> m = np.zeros((1, 12), bool); m[0, 0] = True
    >>> proximity_target(m, 0.07)[0, [0, 1, 5, 10]].round(3)
    array([1.   , 0.849, 0.378, 0.   ], dtype=float32)
    """
    mask = np.asarray(mask, bool)
    if not mask.any():
        return np.zeros(mask.shape, np.float32)
    d = ndimage.distance_transform_edt(~mask, sampling=check_spacing(spacing, plausible=False))
    return proximity_function(d, xi_mm, alpha).astype(np.float32)


def soft_dice_loss(pred: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """Batch-global soft Dice loss ``1 - (2 sum(p y) + eps) / (sum(p) + sum(y) + eps)``.

    Examples
    --------
    >>> import torch
    >>> y = torch.tensor([1.0, 0.5, 0.0])
    >>> round(float(soft_dice_loss(y, y)), 4)  # 1 - (2*1.25 + 1) / (1.5 + 1.5 + 1)
    0.125
    """
    inter = (pred * target).sum()
    return 1.0 - (2.0 * inter + eps) / (pred.sum() + target.sum() + eps)


# --------------------------------------------------------------------------- network
class _Block(nn.Sequential):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )


class ProximityUNet(nn.Module):
    """Compact U-Net regressing the proximity map (sigmoid output in [0, 1]).

    ``depth`` max-pool levels with ``base_channels * 2**level`` channels; the decoder
    up-samples bilinearly, projects with a 1x1 conv and adds the skip (FPN-like merge), then
    one 3x3 conv block per level. Input ``(N, 1, H, W)`` with H, W multiples of ``2**depth``.

    Examples
    --------
    >>> import torch
    >>> net = ProximityUNet()
    >>> sum(p.numel() for p in net.parameters())
    100873
    >>> net.eval()(torch.zeros(1, 1, 32, 32)).shape
    torch.Size([1, 1, 32, 32])
    """

    def __init__(self, base_channels: int = 8, depth: int = 3) -> None:
        super().__init__()
        self.base_channels = int(base_channels)
        self.depth = int(depth)
        ch = [self.base_channels * 2**i for i in range(self.depth + 1)]
        self.stem = _Block(1, ch[0])
        self.down = nn.ModuleList(_Block(ch[i], ch[i + 1]) for i in range(self.depth))
        self.lateral = nn.ModuleList(
            nn.Conv2d(ch[i + 1], ch[i], 1) for i in range(self.depth)
        )
        self.up = nn.ModuleList(_Block(ch[i], ch[i]) for i in range(self.depth))
        self.head = nn.Conv2d(ch[0], 1, 1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_uniform_(m.weight, nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        # A negative head bias starts the output near the mostly-zero target.
        nn.init.constant_(self.head.bias, -2.0)

    @property
    def config(self) -> dict[str, Any]:
        return {"arch": "ProximityUNet", "base_channels": self.base_channels, "depth": self.depth}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [self.stem(x)]
        for blk in self.down:
            feats.append(blk(F.max_pool2d(feats[-1], 2)))
        y = feats[-1]
        for i in reversed(range(self.depth)):
            y = F.interpolate(y, size=feats[i].shape[-2:], mode="bilinear", align_corners=False)
            y = self.up[i](self.lateral[i](y) + feats[i])
        return torch.sigmoid(self.head(y))


# --------------------------------------------------------------------------- weights
def save_weights(model: ProximityUNet, path: str | os.PathLike, **extra: Any) -> None:
    """Save the model as tensors plus plain architecture metadata (no pickled code).

    The file holds ``{"format": 1, "config": {...}, "state_dict": {...}, "extra": {...}}``
    with only str/int/float/tensor leaves, so :func:`load_weights` can use
    ``torch.load(weights_only=True)``. Written atomically (temporary file, then rename).

    Examples
    --------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "w.pt")
    >>> save_weights(ProximityUNet(base_channels=4, depth=2), path)
    >>> load_weights(path).config
    {'arch': 'ProximityUNet', 'base_channels': 4, 'depth': 2}
    """
    payload = {
        "format": 1,
        "config": dict(model.config),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "extra": {str(k): v for k, v in extra.items()},
    }
    path = os.fspath(path)
    tmp = f"{path}.tmp{os.getpid()}"
    torch.save(payload, tmp)
    os.replace(tmp, path)


def load_weights(path: str | os.PathLike) -> ProximityUNet:
    """Load a model saved by :func:`save_weights`, in eval mode.

    Uses ``torch.load(weights_only=True)``: a file that would run code when unpickled is
    refused with a ``ValueError`` before anything runs.
    """
    path = os.fspath(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ValueError(f"{path}: refused to load, not a plain weights file ({exc})") from exc
    if not isinstance(payload, dict) or "state_dict" not in payload or "config" not in payload:
        raise ValueError(f"{path}: not a skcalc weights file (missing state_dict/config)")
    cfg = dict(payload["config"])
    if cfg.pop("arch", None) != "ProximityUNet":
        raise ValueError(f"{path}: unknown architecture in {payload['config']!r}")
    model = ProximityUNet(**cfg)
    model.load_state_dict(payload["state_dict"])
    return model.eval()


def load_default_weights() -> ProximityUNet:
    """The packaged model trained on synthetic mammograms (``weights/hdogreg_default.pt``)."""
    if not os.path.exists(DEFAULT_WEIGHTS):
        raise FileNotFoundError(f"packaged weights not found: {DEFAULT_WEIGHTS}")
    return load_weights(DEFAULT_WEIGHTS)


# --------------------------------------------------------------------------- normalisation
def _bit_depth(image: np.ndarray, bit_depth: int | None) -> int | None:
    """Bits of the stored values; None means the image is already in [0, 1]."""
    return resolve_bit_depth(image, bit_depth)


def _normalise(image: np.ndarray, bits: int | None) -> np.ndarray:
    x = image.astype(np.float32)
    if bits is not None:
        x /= np.float32(2**bits - 1)
    return (x - 0.5) / 0.5


# --------------------------------------------------------------------------- inference
def predict_proximity(
    image: np.ndarray,
    spacing: float | Sequence[float] = (0.07, 0.07),
    model: ProximityUNet | None = None,
    *,
    tile: int = 512,
    overlap: int = 64,
    bit_depth: int | None = None,
    origin: tuple[int, int] = (0, 0),
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """Whole-image tiled inference of the proximity map.

    Tiles of ``tile`` px overlap by ``2*overlap``; each writes only its pixels at least
    ``overlap`` px from its edges (the authors' 512/128 gives their stride of 256). Tiles start
    on multiples of 8 in the coordinates of the full image (``origin`` is the crop's top-left
    corner in the full image), and the image is extended with air (0) by ``overlap`` px, so
    with ``overlap >= RECEPTIVE_MARGIN`` (64 px for the packaged model) the result at a pixel
    does not depend on the tiling: an ROI crop with at least ``overlap`` px of margin around the
    region equals the whole-image result inside the region. Images smaller than a tile are
    padded. Images at another spacing than the model's are resampled (bilinear) to it and back,
    which makes the result only approximately translation-consistent.

    Parameters
    ----------
    image : ndarray of shape (H, W)
        Raw mammogram (bright calcifications).
    spacing : float or (float, float), default=(0.07, 0.07)
    model : ProximityUNet, optional
        Defaults to the packaged weights.
    tile, overlap : int, default=512, 64
        Tile side and discarded margin (px), rounded up to multiples of 8. The authors used
        512 and 128 (each pixel computed 4 times); 512/64 computes each pixel about 1.8 times,
        still exceeds the receptive field of the packaged model (54 px), and 512 px tiles run
        about twice as fast per pixel as 1024 px tiles on a CPU (cache). Images smaller than a
        tile get a smaller tile.
    bit_depth : int, optional
        Bits of the stored values (scaling to [0, 1]); inferred from the dtype and the maximum
        when None (pass it explicitly to compare crops with whole images).
    origin : (int, int), default=(0, 0)
        Position of ``image[0, 0]`` in the full mammogram.
    mask : ndarray of bool, optional
        Pixels where the output is needed. Only the mask's bounding box (with ``overlap`` px
        of context) and, inside it, the tiles that meet the mask are computed. The values at
        the mask pixels are those of the unmasked call; other pixels may be 0.

    Returns
    -------
    proximity : ndarray of float32, shape (H, W), values in [0, 1]

    Examples
    --------
    >>> import numpy as np, torch
    >>> _ = torch.manual_seed(0)
    >>> net = ProximityUNet()
    >>> img = np.random.default_rng(0).integers(0, 4096, (200, 240)).astype(np.uint16)
    >>> full = predict_proximity(img, 0.07, net, bit_depth=12)
    >>> crop = predict_proximity(img[20:180, 30:220], 0.07, net, bit_depth=12, origin=(20, 30))
    >>> full.shape, bool(np.allclose(crop[64:-64, 64:-64], full[84:116, 94:156], atol=1e-5))
    ((200, 240), True)
    """
    image = _check_image(image)
    sp = check_spacing(spacing, plausible=False)
    if model is None:
        model = load_default_weights()
    period = 2 ** getattr(model, "depth", 3)
    tile = int(math.ceil(tile / period) * period)
    overlap = int(math.ceil(overlap / period) * period)
    if tile - 2 * overlap < period:
        raise ValueError(f"tile={tile} leaves no kept core with overlap={overlap}")
    bits = _bit_depth(image, bit_depth)
    scale = (sp[0] / MODEL_SPACING, sp[1] / MODEL_SPACING)
    resample = not np.allclose(scale, 1.0, rtol=0.02)
    if mask is not None:
        mask = np.asarray(mask, bool)
        if mask.shape != image.shape:
            raise ValueError(f"mask shape {mask.shape} does not match image shape {image.shape}")
    if resample:
        from skimage.transform import resize

        new_shape = tuple(max(1, int(round(n * s))) for n, s in zip(image.shape, scale))
        work = resize(image.astype(np.float32), new_shape, order=1, preserve_range=True)
        if mask is not None:
            mask = resize(mask, new_shape, order=0) > 0
        origin = (int(round(origin[0] * scale[0])), int(round(origin[1] * scale[1])))
        x = _normalise(work, bits)
    else:
        x = _normalise(image, bits)
    out = _tiled_masked(x, model, tile, overlap, period, origin, mask)
    if resample:
        from skimage.transform import resize

        out = resize(out, image.shape, order=1, preserve_range=True).astype(np.float32)
    return out


def _tiled_masked(x, model, tile, overlap, period, origin, mask):
    """Run the tiling on the mask's bounding box plus ``overlap`` px of context only.

    The values inside the box are those of the whole-image pass (the network sees the same
    context); outside the box the output is 0.
    """
    if mask is None:
        return _tiled(x, model, tile, overlap, period, origin, None)
    out = np.zeros(x.shape, np.float32)
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if rows.size == 0:
        return out
    r0, r1 = max(0, rows[0] - overlap), min(x.shape[0], rows[-1] + 1 + overlap)
    c0, c1 = max(0, cols[0] - overlap), min(x.shape[1], cols[-1] + 1 + overlap)
    sub = _tiled(x[r0:r1, c0:c1], model, tile, overlap, period,
                 (origin[0] + r0, origin[1] + c0), mask[r0:r1, c0:c1])
    br0, br1, bc0, bc1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    out[br0:br1, bc0:bc1] = sub[br0 - r0 : br1 - r0, bc0 - c0 : bc1 - c0]
    return out


def _tiled(x, model, tile, overlap, period, origin, mask):
    h, w = x.shape
    pads, counts, sizes = [], [], []
    for n, o in zip((h, w), origin):
        # padded index 0 sits at crop coordinate -top, with (origin - top) % period == 0
        top = overlap + (int(o) - overlap) % period
        # a small image gets a smaller (possibly rectangular) tile: same values, less work
        size = min(tile, int(math.ceil((n + period - 1) / period) * period) + 2 * overlap)
        core = size - 2 * overlap
        k = max(1, math.ceil((top + n - overlap) / core))
        bottom = k * core + 2 * overlap - top - n
        pads.append((top, bottom))
        counts.append(k)
        sizes.append(size)
    air = np.float32(-1.0)  # raw value 0 after normalisation
    xp = np.pad(x, pads, mode="constant", constant_values=air)
    outp = np.zeros(xp.shape, np.float32)
    if mask is not None:
        mp = np.pad(mask, pads, mode="constant", constant_values=False)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for i in range(counts[0]):
                for j in range(counts[1]):
                    r, c = i * (sizes[0] - 2 * overlap), j * (sizes[1] - 2 * overlap)
                    rs = slice(r + overlap, r + sizes[0] - overlap)
                    cs = slice(c + overlap, c + sizes[1] - overlap)
                    if mask is not None and not mp[rs, cs].any():
                        continue
                    win = xp[r : r + sizes[0], c : c + sizes[1]]
                    t = torch.from_numpy(np.ascontiguousarray(win))
                    y = model(t[None, None])[0, 0].numpy()
                    outp[rs, cs] = y[overlap:-overlap, overlap:-overlap]
    finally:
        model.train(was_training)
    (t0, _), (l0, _) = pads
    return np.ascontiguousarray(outp[t0 : t0 + h, l0 : l0 + w])


# --------------------------------------------------------------------------- patches
def _windows(n: int, size: int, stride: int) -> list[int]:
    if n <= size:
        return [0]
    starts = list(range(0, n - size + 1, stride))
    if starts[-1] != n - size:
        starts.append(n - size)
    return starts


def extract_positive_patches(
    image: np.ndarray, mask: np.ndarray, *, patch_size: int = 512, stride: int = 480
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Sliding windows (plus a window flush with the far edge) that contain an MC pixel.

    Images smaller than ``patch_size`` give one window of their own size.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.zeros((100, 100)); m = np.zeros((100, 100), bool); m[90, 5] = True
    >>> [p[0].shape for p in extract_positive_patches(img, m, patch_size=64, stride=48)]
    [(64, 64)]
    """
    image = np.asarray(image)
    mask = np.asarray(mask, bool)
    out = []
    for r in _windows(image.shape[0], patch_size, stride):
        for c in _windows(image.shape[1], patch_size, stride):
            m = mask[r : r + patch_size, c : c + patch_size]
            if m.any():
                out.append((image[r : r + patch_size, c : c + patch_size], m))
    return out


def _augment(img01, mask, crop, rng):
    """Flip, scale [0.5, 1.5] + shift 10% (zero border), random crop, one-of intensity (p=0.9)."""
    if rng.random() < 0.5:
        img01 = img01[:, ::-1]
        mask = mask[:, ::-1]
    p = np.array(img01.shape, float)
    s = rng.uniform(0.5, 1.5)
    t = rng.uniform(-0.1, 0.1, size=2) * p
    c = (p - 1) / 2
    frame = np.maximum(p, crop)  # PadIfNeeded, then RandomCrop
    pad0 = (frame - p) // 2
    off = np.array([rng.integers(0, int(f - crop) + 1) for f in frame], float) - pad0
    # output o -> transformed-frame y = o + off -> input x = (y - c - t) / s + c
    offset = (off - c - t) / s + c
    mat = np.array([1.0 / s, 1.0 / s])
    im = ndimage.affine_transform(
        np.ascontiguousarray(img01), mat, offset, output_shape=(crop, crop), order=1, cval=0.0
    )
    mk = ndimage.affine_transform(
        np.ascontiguousarray(mask, dtype=np.uint8), mat, offset, output_shape=(crop, crop),
        order=0, cval=0,
    ).astype(bool)
    if rng.random() < 0.9:
        kind = rng.integers(3)
        if kind == 0:  # contrast jitter (stands in for CLAHE)
            mean = im.mean()
            im = (im - mean) * rng.uniform(0.7, 1.3) + mean
        elif kind == 1:
            im = im + rng.uniform(-0.2, 0.2)
        else:
            im = np.clip(im, 0, 1) ** rng.uniform(0.8, 1.2)
        im = np.clip(im, 0.0, 1.0)
    return im.astype(np.float32), mk


def _iou05(pred: torch.Tensor, target: torch.Tensor) -> float:
    b = (pred > 0.5).float()
    inter = (b * target).sum()
    return float((inter + 1e-7) / (target.sum() + b.sum() - inter + 1e-7))


# --------------------------------------------------------------------------- training
def train_regressor(
    rois: Sequence[Any],
    *,
    epochs: int = 40,
    patch_size: int = 512,
    stride: int | None = None,
    crop_size: int = 320,
    batch_size: int = 8,
    lr: float = 1e-4,
    validation_fraction: float = 0.2,
    patience: int = 5,
    base_channels: int = 8,
    xi_mm: float = 0.7,
    alpha: float = 1.0,
    bit_depth: int | None = None,
    max_patches_per_epoch: int | None = None,
    max_seconds: float | None = None,
    n_threads: int | None = None,
    random_state: int | None = 0,
    verbose: bool = True,
    model: ProximityUNet | None = None,
) -> tuple[ProximityUNet, list[dict[str, float]]]:
    """Train the proximity regressor on ROIs carrying ``reference`` masks.

    Each image is cut into ``patch_size`` windows at ``stride`` (default ``patch_size - 32``,
    the authors' 512/480) and only windows with an MC pixel are kept. Images are split into
    training and validation sets **by image** (``validation_fraction``). Every epoch visits all
    training patches in random order with a fresh augmentation (flip, scale 0.5-1.5, shift
    10%, random ``crop_size`` crop, intensity jitter), regresses :func:`proximity_target`
    (computed on the augmented mask) with :func:`soft_dice_loss` and Adam. Validation uses the
    full patches without augmentation and the authors' IoU at 0.5 against the continuous
    target; the best state is kept and training stops after ``patience`` epochs without
    improvement (or after ``max_seconds``). Progress goes to stderr, one line per epoch.

    Images at another spacing than ``MODEL_SPACING`` (0.07 mm) are resampled to it (bilinear
    image, nearest mask), as :func:`predict_proximity` does at inference.

    Deterministic for a given ``random_state`` and thread count (deterministic torch
    algorithms are switched on during training and the previous setting restored).

    Parameters
    ----------
    rois : sequence of ROI
        Records with ``image``, ``spacing`` and ``reference``; ROIs without an MC pixel only
        count for the split.
    epochs, patch_size, stride, crop_size, batch_size, lr : training schedule
        The authors' values are 40, 512, 480, 320, 8, 1e-4; smaller patches and a larger
        ``lr`` (1e-3) suit a small network on a CPU.
    validation_fraction : float, default=0.2
        Fraction of images held out (0 disables validation and early stopping).
    patience : int, default=5
    base_channels : int, default=8
        Width of the new network (ignored when ``model`` is given).
    xi_mm, alpha : float
        Proximity function parameters (0.7 mm = 10 px at 0.07 mm, 1).
    bit_depth : int, optional
        Bits of the stored values; inferred per image when None.
    max_patches_per_epoch : int, optional
        Subsample the training patches each epoch (for quick runs).
    max_seconds : float, optional
        Wall-clock budget; training stops after the epoch that exceeds it.
    n_threads : int, optional
        ``torch.set_num_threads`` during training (restored afterwards).
    random_state : int, default=0
    verbose : bool, default=True
    model : ProximityUNet, optional
        Start from this model (fine-tuning); it is copied, not modified.

    Returns
    -------
    model : ProximityUNet
        The best model (by validation IoU), in eval mode.
    history : list of dict
        Per epoch: ``epoch``, ``train_loss``, ``val_loss``, ``val_iou``, ``seconds``.

    Examples
    --------
    >>> import numpy as np
    >>> from skcalc import ROI
    >>> img = np.full((32, 32), 1000, np.uint16)
    >>> ref = np.zeros((32, 32), bool)
    >>> ref[10:12, 10:12] = True
    >>> img[ref] = 1400
    >>> model, hist = train_regressor([ROI(img, reference=ref)] * 2, epochs=2, patch_size=32,
    ...                               crop_size=24, batch_size=2, validation_fraction=0,
    ...                               verbose=False)
    >>> len(hist), model.training
    (2, False)
    """
    from ..roi import check_roi

    rois = list(rois)
    if not rois:
        raise ValueError("train_regressor needs at least one ROI")
    stride = patch_size - 32 if stride is None else int(stride)
    if crop_size % 8 or crop_size <= 0:
        raise ValueError(f"crop_size must be a positive multiple of 8, got {crop_size}")
    rng = np.random.default_rng(random_state)
    seed = int(rng.integers(2**31))

    per_image = []
    for roi in rois:
        check_roi(roi)
        ref = roi.reference  # a lazy reference is rasterised on each access
        if ref is None:
            raise ValueError(f"ROI {roi.roi_id!r}: training needs a reference mask")
        img = _check_image(roi.image)
        ref = np.asarray(ref, bool)
        if ref.shape != img.shape:
            raise ValueError(f"ROI {roi.roi_id!r}: reference shape does not match the image")
        x01 = (_normalise(img, _bit_depth(img, bit_depth)) + 1.0) / 2.0
        sp = check_spacing(roi.spacing, plausible=False)
        if not np.allclose(sp, MODEL_SPACING, rtol=0.02):
            # the network works at MODEL_SPACING; predict_proximity resamples the same way
            from skimage.transform import resize

            shape = tuple(max(1, int(round(n * s / MODEL_SPACING))) for n, s in zip(img.shape, sp))
            x01 = resize(x01, shape, order=1, preserve_range=True).astype(np.float32)
            ref = resize(ref, shape, order=0) > 0
        per_image.append(extract_positive_patches(x01, ref, patch_size=patch_size, stride=stride))
    order = rng.permutation(len(rois))
    n_val = int(round(validation_fraction * len(rois))) if len(rois) > 1 else 0
    n_val = min(n_val, len(rois) - 1)
    val_idx, train_idx = order[:n_val], order[n_val:]
    train = [p for i in train_idx for p in per_image[i]]
    val = [p for i in val_idx for p in per_image[i]]
    if not train:
        raise ValueError("no training patch contains a calcification pixel")

    def target(m):
        return proximity_target(m, MODEL_SPACING, xi_mm=xi_mm, alpha=alpha)

    val_batches = []
    for k in range(0, len(val), batch_size):
        chunk = val[k : k + batch_size]
        side = max(max(im.shape) for im, _ in chunk)
        side = int(math.ceil(side / 8) * 8)
        xs, ys = [], []
        for im, m in chunk:
            pad = ((0, side - im.shape[0]), (0, side - im.shape[1]))
            xs.append(np.pad(im, pad) * 2 - 1)
            ys.append(target(np.pad(m, pad)))
        val_batches.append((torch.from_numpy(np.stack(xs)[:, None].astype(np.float32)),
                            torch.from_numpy(np.stack(ys)[:, None])))

    old_threads = torch.get_num_threads()
    old_det = torch.are_deterministic_algorithms_enabled()
    if n_threads is not None:
        torch.set_num_threads(int(n_threads))
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        torch.manual_seed(seed)
        net = copy.deepcopy(model) if model is not None else ProximityUNet(base_channels)
        net.train()
        opt = torch.optim.Adam(net.parameters(), lr=lr)
        best_iou, best_state, best_epoch = -1.0, copy.deepcopy(net.state_dict()), 0
        history: list[dict[str, float]] = []
        t_start = time.perf_counter()
        for epoch in range(1, epochs + 1):
            t0 = time.perf_counter()
            net.train()
            perm = rng.permutation(len(train))
            if max_patches_per_epoch is not None:
                perm = perm[:max_patches_per_epoch]
            losses = []
            for k in range(0, len(perm), batch_size):
                xs, ys = [], []
                for idx in perm[k : k + batch_size]:
                    im, m = _augment(*train[idx], crop_size, rng)
                    xs.append(im * 2 - 1)
                    ys.append(target(m))
                if len(xs) < 2:  # BatchNorm needs more than one sample
                    continue
                xb = torch.from_numpy(np.stack(xs)[:, None])
                yb = torch.from_numpy(np.stack(ys)[:, None])
                opt.zero_grad(set_to_none=True)
                loss = soft_dice_loss(net(xb), yb)
                loss.backward()
                opt.step()
                losses.append(float(loss.detach()))
            train_loss = float(np.mean(losses)) if losses else float("nan")
            net.eval()
            vl, vi = [], []
            with torch.inference_mode():
                for xb, yb in val_batches:
                    p = net(xb)
                    vl.append(float(soft_dice_loss(p, yb)))
                    vi.append(_iou05(p, yb))
            val_loss = float(np.mean(vl)) if vl else float("nan")
            val_iou = float(np.mean(vi)) if vi else float("nan")
            rec = {"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss,
                   "val_iou": val_iou, "seconds": time.perf_counter() - t0}
            history.append(rec)
            score = val_iou if val_batches else float(epoch)  # no validation: keep the last
            if score > best_iou:
                best_iou, best_state, best_epoch = score, copy.deepcopy(net.state_dict()), epoch
            if verbose:
                print(
                    f"epoch {epoch:3d}/{epochs}  train_loss {train_loss:.4f}  "
                    f"val_loss {val_loss:.4f}  val_iou {val_iou:.4f}  "
                    f"{rec['seconds']:.1f}s{'  *' if best_epoch == epoch else ''}",
                    file=sys.stderr,
                    flush=True,
                )
            if val_batches and epoch - best_epoch >= patience:
                break
            if max_seconds is not None and time.perf_counter() - t_start > max_seconds:
                break
        net.load_state_dict(best_state)
    finally:
        torch.use_deterministic_algorithms(old_det)
        torch.set_num_threads(old_threads)
    return net.eval(), history
