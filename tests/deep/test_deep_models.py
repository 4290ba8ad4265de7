"""The architectures have torchvision's layout; weights load from files, never downloaded."""

import pytest
import torch

from skcalc.deep import (
    IMAGENET_FILES,
    build_network,
    imagenet_weights_path,
    load_state_dict_file,
    resnet50,
    vgg16,
)

# Key -> shape of torchvision.models.resnet50() / vgg16() (torchvision 0.2x layout).
RESNET50_SHAPES = {
    "conv1.weight": (64, 3, 7, 7),
    "bn1.weight": (64,),
    "bn1.running_var": (64,),
    "bn1.num_batches_tracked": (),
    "layer1.0.conv1.weight": (64, 64, 1, 1),
    "layer1.0.conv2.weight": (64, 64, 3, 3),
    "layer1.0.conv3.weight": (256, 64, 1, 1),
    "layer1.0.downsample.0.weight": (256, 64, 1, 1),
    "layer1.0.downsample.1.running_mean": (256,),
    "layer1.2.bn3.bias": (256,),
    "layer2.0.conv1.weight": (128, 256, 1, 1),
    "layer2.0.conv2.weight": (128, 128, 3, 3),
    "layer2.0.downsample.0.weight": (512, 256, 1, 1),
    "layer2.3.conv3.weight": (512, 128, 1, 1),
    "layer3.0.downsample.0.weight": (1024, 512, 1, 1),
    "layer3.5.bn3.running_var": (1024,),
    "layer4.0.conv2.weight": (512, 512, 3, 3),
    "layer4.0.downsample.1.weight": (2048,),
    "layer4.2.conv3.weight": (2048, 512, 1, 1),
    "fc.weight": (1000, 2048),
    "fc.bias": (1000,),
}
VGG16_CONVS = {0: (64, 3), 2: (64, 64), 5: (128, 64), 7: (128, 128), 10: (256, 128),
               12: (256, 256), 14: (256, 256), 17: (512, 256), 19: (512, 512),
               21: (512, 512), 24: (512, 512), 26: (512, 512), 28: (512, 512)}
VGG16_LINEARS = {0: (4096, 25088), 3: (4096, 4096), 6: (1000, 4096)}


def _meta(builder, **kw):
    with torch.device("meta"):  # layout only: no memory, no initialisation cost
        return builder(**kw)


def test_resnet50_matches_torchvision_layout():
    net = _meta(resnet50)
    state = net.state_dict()
    assert sum(p.numel() for p in net.parameters()) == 25_557_032
    # 53 convolutions, 53 batch norms (weight, bias, running mean/var, num_batches_tracked), fc
    assert len(state) == 53 + 53 * 5 + 2 == 320
    for key, shape in RESNET50_SHAPES.items():
        assert tuple(state[key].shape) == shape, key
    assert [len(getattr(net, f"layer{i}")) for i in range(1, 5)] == [3, 4, 6, 3]
    assert not any(k.startswith("layer1.1.downsample") for k in state)
    assert net.layer2[0].conv2.stride == (2, 2)  # ResNet v1.5: stride on the 3x3 conv


def test_vgg16_matches_torchvision_layout():
    net = _meta(vgg16)
    state = net.state_dict()
    assert sum(p.numel() for p in net.parameters()) == 138_357_544
    expected = {}
    for i, (out_c, in_c) in VGG16_CONVS.items():
        expected[f"features.{i}.weight"] = (out_c, in_c, 3, 3)
        expected[f"features.{i}.bias"] = (out_c,)
    for i, (out_f, in_f) in VGG16_LINEARS.items():
        expected[f"classifier.{i}.weight"] = (out_f, in_f)
        expected[f"classifier.{i}.bias"] = (out_f,)
    assert {k: tuple(v.shape) for k, v in state.items()} == expected
    assert len(net.features) == 31


def test_features_and_logits_shapes():
    # VGG-16's 4096 features: tests/deep/test_deep_estimators.py (one VGG build suffices)
    from skcalc.deep._models import network_features

    arch, n_features = "resnet50", 2048
    net = build_network(arch, None, num_classes=3, seed=0)
    x = torch.zeros(2, 3, 32, 32)
    with torch.inference_mode():
        assert tuple(network_features(net, x).shape) == (2, n_features)
        assert tuple(net(x).shape) == (2, 3)


def test_random_init_is_seeded():
    a = build_network("resnet50", None, num_classes=2, seed=3).state_dict()
    b = build_network("resnet50", None, num_classes=2, seed=3).state_dict()
    c = build_network("resnet50", None, num_classes=2, seed=4).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["conv1.weight"], c["conv1.weight"])
    assert not torch.equal(a["fc.weight"], c["fc.weight"])


@pytest.fixture(scope="module")
def resnet_file(tmp_path_factory):
    """A torchvision-layout ResNet-50 state_dict file (random weights, 1000 classes)."""
    net = build_network("resnet50", None, seed=7)
    path = tmp_path_factory.mktemp("weights") / "resnet50-0676ba61.pth"
    torch.save(net.state_dict(), path)
    return path, net.state_dict()


def test_saved_state_dict_loads_strictly(resnet_file):
    path, saved = resnet_file
    net = build_network("resnet50", path, seed=0)  # keeps the file's 1000-class head
    assert all(torch.equal(net.state_dict()[k], v) for k, v in saved.items())
    tuned = build_network("resnet50", path, num_classes=2, seed=0)
    state = tuned.state_dict()
    assert tuple(state["fc.weight"].shape) == (2, 2048)
    assert all(p.requires_grad for p in tuned.parameters())  # ready to fine-tune
    assert all(torch.equal(state[k], v) for k, v in saved.items() if not k.startswith("fc."))
    # a fine-tuned (2-class) state_dict loads back as well
    path2 = path.with_name("tuned.pth")
    torch.save(state, path2)
    again = build_network("resnet50", str(path2), seed=5)
    assert all(torch.equal(again.state_dict()[k], v) for k, v in state.items())


def test_imagenet_weights_come_from_the_torch_hub_cache(resnet_file, tmp_path, monkeypatch):
    path, saved = resnet_file
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    expected = tmp_path / "hub" / "checkpoints" / "resnet50-0676ba61.pth"
    with pytest.raises(FileNotFoundError) as info:
        build_network("resnet50", "imagenet")
    message = str(info.value)
    assert str(expected) in message and "never downloads" in message
    assert "download.pytorch.org/models/resnet50-0676ba61.pth" in message
    assert "weights=<path" in message
    expected.parent.mkdir(parents=True)
    expected.symlink_to(path)
    assert imagenet_weights_path("resnet50") == expected
    net = build_network("resnet50", "imagenet", num_classes=2)
    assert torch.equal(net.state_dict()["conv1.weight"], saved["conv1.weight"])
    assert IMAGENET_FILES["vgg16"][0] == "vgg16-397923af.pth"
    with pytest.raises(FileNotFoundError, match="vgg16-397923af.pth"):
        imagenet_weights_path("vgg16")


def test_wrong_weights_files_fail_clearly(resnet_file, tmp_path):
    _, saved = resnet_file
    renamed = {("backbone." + k if k.startswith("layer4") else k): v for k, v in saved.items()}
    torch.save(renamed, tmp_path / "renamed.pth")
    with pytest.raises(ValueError, match=r"do not match torchvision's resnet50: \d+ missing"):
        build_network("resnet50", tmp_path / "renamed.pth")
    reshaped = dict(saved, **{"conv1.weight": torch.zeros(64, 1, 7, 7)})
    torch.save(reshaped, tmp_path / "reshaped.pth")
    with pytest.raises(ValueError, match=r"shape mismatch \['conv1.weight"):
        build_network("resnet50", tmp_path / "reshaped.pth")
    with pytest.raises(ValueError, match="no classifier.6.weight"):
        build_network("vgg16", tmp_path / "reshaped.pth")
    torch.save({"x": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match="no fc.weight"):
        build_network("resnet50", tmp_path / "other.pth")
    torch.save([1, 2], tmp_path / "list.pth")
    with pytest.raises(ValueError, match="does not hold a state_dict"):
        load_state_dict_file(tmp_path / "list.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="weights_only=True"):
        load_state_dict_file(tmp_path / "junk.pth")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_network("resnet50", tmp_path / "missing.pth")
    with pytest.raises(ValueError, match="arch must be one of"):
        build_network("resnet18")


def test_weights_file_with_code_is_refused(tmp_path):
    import argparse

    # an arbitrary class: unpickling it could run code, weights_only refuses it
    torch.save({"fc.weight": argparse.Namespace(a=1)}, tmp_path / "code.pth")
    with pytest.raises(ValueError, match="weights_only=True"):
        load_state_dict_file(tmp_path / "code.pth")
