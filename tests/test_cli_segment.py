"""``skcalc segment IMAGE``: reads any supported file, writes labels, overlay and counts."""

import json

import numpy as np
import pytest
from PIL import Image

from skcalc import ROI
from skcalc.cli import main
from skcalc.datasets import make_full_field_mammogram
from skcalc.io import read_mammogram
from skcalc.segmentation import HDoGRegSegmenter


@pytest.fixture(scope="module")
def mammogram():
    return make_full_field_mammogram(shape=(512, 416), random_state=2)


def test_segment_png_writes_labels_equal_to_the_estimator(mammogram, tmp_path, capsys):
    src = tmp_path / "in" / "mammo.png"
    src.parent.mkdir()
    Image.fromarray(mammogram.image.astype(np.uint16)).save(src)
    out = tmp_path / "out"
    code = main(["segment", str(src), "--out", str(out), "--spacing", "0.07", "--bit-depth", "12"])
    assert code == 0
    printed = capsys.readouterr().out
    labels = read_mammogram(out / "mammo_labels.png")[0]
    want = HDoGRegSegmenter().fit_transform(
        [ROI(mammogram.image, spacing=0.07, meta={"bits_stored": 12})]
    )[0].calcifications
    np.testing.assert_array_equal(labels, want)
    assert f"{int(want.max())} calcifications" in printed
    assert (out / "mammo_overlay.png").stat().st_size > 10_000
    summary = json.loads((out / "mammo_segmentation.json").read_text())
    assert summary["n_calcifications"] == int(want.max())
    # nothing written next to the input
    assert sorted(p.name for p in src.parent.iterdir()) == ["mammo.png"]


def test_segment_npy_hdog_only_and_npy_labels(mammogram, tmp_path):
    src = tmp_path / "mammo.npy"
    np.save(src, mammogram.image)
    out = tmp_path / "out"
    args = ["segment", str(src), "--out", str(out), "--spacing", "0.07", "--regressor", "none"]
    assert main([*args, "--format", "npy"]) == 0
    labels = np.load(out / "mammo_labels.npy")
    want = HDoGRegSegmenter(regressor=None).fit_transform(
        [ROI(mammogram.image, spacing=0.07)]
    )[0].calcifications
    np.testing.assert_array_equal(labels, want)


def test_segment_without_spacing_is_a_clear_error(mammogram, tmp_path, capsys):
    src = tmp_path / "mammo.npy"
    np.save(src, mammogram.image)
    assert main(["segment", str(src), "--out", str(tmp_path / "o")]) == 1
    assert "--spacing" in capsys.readouterr().err
    assert main(["segment", str(tmp_path / "missing.png"), "--out", str(tmp_path / "o")]) == 1
