"""ResNet-50 and VGG-16 in plain torch, with torchvision's module and parameter names.

torchvision cannot be installed beside the CPU build of torch that skcalc uses, so the two
architectures of the paper's deep baselines are written out here. Every module and
parameter carries the name and shape it has in ``torchvision.models.resnet50`` and
``torchvision.models.vgg16`` (VGG-16 without batch normalisation), so the state_dict files
that torchvision saves (``resnet50-0676ba61.pth``, ``vgg16-397923af.pth``) load with
``load_state_dict(strict=True)``. The random initialisation follows torchvision's too.

Weights are data: files are read with ``torch.load(weights_only=True)`` and nothing is ever
downloaded.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = [
    "ARCHITECTURES",
    "IMAGENET_FILES",
    "N_FEATURES",
    "build_network",
    "imagenet_weights_path",
    "load_state_dict_file",
    "resnet50",
    "vgg16",
]

#: Names of the supported architectures.
ARCHITECTURES = ("resnet50", "vgg16")

#: torchvision's file names of the ImageNet weights, in order of preference
#: (``IMAGENET1K_V1`` first: the weights the paper's baselines started from).
IMAGENET_FILES: dict[str, tuple[str, ...]] = {
    "resnet50": ("resnet50-0676ba61.pth", "resnet50-11ad3fa6.pth"),
    "vgg16": ("vgg16-397923af.pth",),
}

_IMAGENET_URLS = {
    "resnet50-0676ba61.pth": "https://download.pytorch.org/models/resnet50-0676ba61.pth",
    "resnet50-11ad3fa6.pth": "https://download.pytorch.org/models/resnet50-11ad3fa6.pth",
    "vgg16-397923af.pth": "https://download.pytorch.org/models/vgg16-397923af.pth",
}

#: Width of the deep features: ResNet-50's pooled output, VGG-16's penultimate fc layer.
N_FEATURES = {"resnet50": 2048, "vgg16": 4096}

# Parameter names of the classification head, replaced when fine-tuning.
_HEAD = {"resnet50": "fc", "vgg16": "classifier.6"}


# --------------------------------------------------------------------------- ResNet-50
def _conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, 3, stride=stride, padding=1, bias=False)


def _conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, 1, stride=stride, bias=False)


class Bottleneck(nn.Module):
    """torchvision's ResNet v1.5 bottleneck block (stride on the 3x3 convolution)."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = _conv1x1(inplanes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = _conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """torchvision's ResNet with bottleneck blocks (``layers=(3, 4, 6, 3)``: ResNet-50)."""

    def __init__(self, layers: tuple[int, ...] = (3, 4, 6, 3), num_classes: int = 1000) -> None:
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(64, layers[0])
        self.layer2 = self._make_layer(128, layers[1], stride=2)
        self.layer3 = self._make_layer(256, layers[2], stride=2)
        self.layer4 = self._make_layer(512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * Bottleneck.expansion, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def _make_layer(self, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * Bottleneck.expansion:
            downsample = nn.Sequential(
                _conv1x1(self.inplanes, planes * Bottleneck.expansion, stride),
                nn.BatchNorm2d(planes * Bottleneck.expansion),
            )
        layers = [Bottleneck(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * Bottleneck.expansion
        layers += [Bottleneck(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The 2048 globally average-pooled features (the input of ``fc``)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


# --------------------------------------------------------------------------- VGG-16
_VGG16_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
              512, 512, 512, "M")


class VGG(nn.Module):
    """torchvision's VGG (configuration "D", no batch normalisation: VGG-16)."""

    def __init__(self, num_classes: int = 1000, dropout: float = 0.5) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_channels = 3
        for v in _VGG16_CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(in_channels, v, kernel_size=3, padding=1),
                           nn.ReLU(inplace=True)]
                in_channels = v
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096),
            nn.ReLU(True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, num_classes),
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.constant_(m.bias, 0)

    def penultimate(self, x: torch.Tensor) -> torch.Tensor:
        """The 4096 features of the second fully connected layer, after its ReLU."""
        x = torch.flatten(self.avgpool(self.features(x)), 1)
        return self.classifier[:5](x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier[5:](self.penultimate(x))


def resnet50(num_classes: int = 1000) -> ResNet:
    """ResNet-50 with torchvision's layout (25,557,032 parameters at 1000 classes).

    Examples
    --------
    >>> net = resnet50()
    >>> sum(p.numel() for p in net.parameters())
    25557032
    >>> tuple(net.state_dict()["layer1.0.downsample.0.weight"].shape)
    (256, 64, 1, 1)
    """
    return ResNet((3, 4, 6, 3), num_classes=num_classes)


def vgg16(num_classes: int = 1000) -> VGG:
    """VGG-16 (no batch norm) with torchvision's layout (138,357,544 parameters).

    Examples
    --------
    >>> with torch.device("meta"):  # the layout only, no memory
    ...     net = vgg16()
    >>> sum(p.numel() for p in net.parameters())
    138357544
    >>> tuple(net.state_dict()["classifier.0.weight"].shape)
    (4096, 25088)
    """
    return VGG(num_classes=num_classes)


_BUILDERS = {"resnet50": resnet50, "vgg16": vgg16}


# --------------------------------------------------------------------------- weights
def _checkpoint_dir() -> Path:
    # torch.hub's own rule: $TORCH_HOME/hub, else $XDG_CACHE_HOME/torch/hub, else
    # ~/.cache/torch/hub; torchvision stores its weights in <hub>/checkpoints.
    return Path(torch.hub.get_dir()) / "checkpoints"


def imagenet_weights_path(arch: str) -> Path:
    """The local file of torchvision's ImageNet weights of ``arch``; never downloads.

    Looks in ``<torch hub dir>/checkpoints`` (``$TORCH_HOME/hub/checkpoints``, by default
    ``~/.cache/torch/hub/checkpoints``), where torchvision caches them.

    Raises
    ------
    FileNotFoundError
        Naming the expected file, its folder and how to obtain it.
    """
    _check_arch(arch)
    folder = _checkpoint_dir()
    for name in IMAGENET_FILES[arch]:
        if (folder / name).is_file():
            return folder / name
    name = IMAGENET_FILES[arch][0]
    raise FileNotFoundError(
        f"ImageNet weights for {arch} not found: expected {folder / name} "
        f"(torchvision's cache; the folder follows $TORCH_HOME). skcalc never downloads. "
        f"On a machine with internet access, download {_IMAGENET_URLS[name]} (or run "
        f"`torchvision.models.{arch}(weights='IMAGENET1K_V1')`, which caches it) and copy "
        f"the file to that folder, or pass weights=<path to the .pth file>."
    )


def imagenet_or_random(arch: str) -> tuple[str | None, str]:
    """``(weights, label)``: ``("imagenet", "ImageNet")`` when torchvision's file is in the
    torch hub cache, else ``(None, "random-init, ImageNet weights not found at <path>")``.

    For reports that must say plainly when a "pretrained" network is not.

    Examples
    --------
    >>> weights, label = imagenet_or_random("resnet50")
    >>> weights == "imagenet" or label.startswith("random-init, ImageNet weights not found")
    True
    """
    try:
        imagenet_weights_path(arch)
    except FileNotFoundError:
        return None, ("random-init, ImageNet weights not found at "
                      f"{_checkpoint_dir() / IMAGENET_FILES[arch][0]}")
    return "imagenet", "ImageNet"


def _check_arch(arch: Any) -> None:
    if arch not in ARCHITECTURES:
        raise ValueError(f"arch must be one of {ARCHITECTURES}, got {arch!r}")


def load_state_dict_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a state_dict with ``torch.load(weights_only=True)`` (tensors only, no code).

    Accepts a plain ``{name: tensor}`` mapping or a checkpoint holding one under
    ``"state_dict"``.

    Raises
    ------
    FileNotFoundError, ValueError
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"weights file {path!r} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle of arbitrary objects, corrupt file, not a torch file
        raise ValueError(
            f"cannot read weights file {path!r} as a tensor-only state_dict "
            f"(torch.load(weights_only=True)): {exc}"
        ) from exc
    if isinstance(state, Mapping) and "state_dict" in state and isinstance(
        state["state_dict"], Mapping
    ):
        state = state["state_dict"]
    if not isinstance(state, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise ValueError(f"weights file {path!r} does not hold a state_dict of named tensors")
    return dict(state)


def _check_state_dict(arch: str, state: Mapping[str, torch.Tensor], source: str) -> int:
    """Validate keys and shapes against ``arch``; return the number of classes of its head."""
    head = _HEAD[arch]
    if f"{head}.weight" not in state:
        raise ValueError(
            f"weights {source} do not match torchvision's {arch}: no {head}.weight "
            f"(first keys: {list(state)[:5]})"
        )
    n_out = int(state[f"{head}.weight"].shape[0])
    with torch.device("meta"):
        expected = _BUILDERS[arch](num_classes=n_out).state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        raise ValueError(
            f"weights {source} do not match torchvision's {arch}: "
            f"{len(missing)} missing key(s) {missing[:5]}, "
            f"{len(unexpected)} unexpected key(s) {unexpected[:5]}"
        )
    bad = [f"{k}: {tuple(state[k].shape)} != {tuple(v.shape)}"
           for k, v in expected.items() if tuple(state[k].shape) != tuple(v.shape)]
    if bad:
        raise ValueError(f"weights {source} do not match torchvision's {arch}: "
                         f"shape mismatch {bad[:5]}")
    return n_out


def build_network(
    arch: str,
    weights: str | os.PathLike | None = None,
    *,
    num_classes: int | None = None,
    seed: int = 0,
) -> nn.Module:
    """Build ``arch`` with ``weights`` and, optionally, a new ``num_classes`` head.

    Parameters
    ----------
    arch : {"resnet50", "vgg16"}
    weights : None, "imagenet" or path, default=None
        ``None``: torchvision's random initialisation, seeded by ``seed``; ``"imagenet"``:
        torchvision's cached ImageNet file (:func:`imagenet_weights_path`); a path: a
        state_dict of the torchvision layout (the head may have any number of outputs).
    num_classes : int, optional
        Replace the classification head (``fc`` / ``classifier.6``) by a fresh, seeded
        linear layer with this many outputs. ``None`` keeps the head of ``weights``.
    seed : int, default=0
        Seed of every random initialisation; the global torch RNG is left untouched.

    Returns
    -------
    torch.nn.Module
        In eval mode.

    Examples
    --------
    >>> net = build_network("resnet50", None, num_classes=2, seed=0)
    >>> net.fc.out_features
    2
    """
    _check_arch(arch)
    state = None
    if weights is not None:
        if isinstance(weights, str) and weights == "imagenet":
            path = imagenet_weights_path(arch)
        else:
            path = weights
        state = load_state_dict_file(path)
        n_out = _check_state_dict(arch, state, repr(os.fspath(path)))
    else:
        n_out = 1000
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if state is None:
            net = _BUILDERS[arch](num_classes=n_out)
        else:  # skip the random initialisation of layers the file overwrites
            with torch.device("meta"):
                net = _BUILDERS[arch](num_classes=n_out)
            net.load_state_dict(state, strict=True, assign=True)
        if num_classes is not None and (state is not None or num_classes != n_out):
            torch.manual_seed(seed + 1)
            _replace_head(net, arch, num_classes)
    return net.eval()


def _replace_head(net: nn.Module, arch: str, num_classes: int) -> None:
    if arch == "resnet50":
        net.fc = nn.Linear(net.fc.in_features, num_classes)
    else:
        layer = nn.Linear(net.classifier[6].in_features, num_classes)
        nn.init.normal_(layer.weight, 0, 0.01)
        nn.init.constant_(layer.bias, 0)
        net.classifier[6] = layer


def network_to_arrays(net: nn.Module) -> dict[str, Any]:
    """A network as plain data: ``{"arch", "num_classes", "state": {name: ndarray}}``.

    What fitted estimators pickle (and skops stores) instead of a torch module, so that a
    model file holds arrays only.
    """
    arch = "resnet50" if isinstance(net, ResNet) else "vgg16"
    head = net.fc if arch == "resnet50" else net.classifier[6]
    return {
        "arch": arch,
        "num_classes": int(head.out_features),
        "state": {k: v.detach().cpu().numpy().copy() for k, v in net.state_dict().items()},
    }


def network_from_arrays(data: Mapping[str, Any]) -> nn.Module:
    """Inverse of :func:`network_to_arrays` (strict key and shape check), in eval mode."""
    arch = data["arch"]
    _check_arch(arch)
    state = {k: torch.from_numpy(np.array(v)) for k, v in data["state"].items()}
    _check_state_dict(arch, state, "of the fitted estimator")
    with torch.device("meta"):
        net = _BUILDERS[arch](num_classes=int(data["num_classes"]))
    net.load_state_dict(state, strict=True, assign=True)
    return net.eval()


def network_features(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The deep features: ResNet's 2048 pooled, VGG's 4096 penultimate-layer features."""
    if isinstance(net, ResNet):
        return net.features(x)
    if isinstance(net, VGG):
        return net.penultimate(x)
    raise TypeError(f"unsupported network {type(net).__name__}")
