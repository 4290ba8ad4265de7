"""PNG, JPEG, TIFF, PGM and NPY reading, and the atomic writers."""

import json
import os

import numpy as np
import pytest
import tifffile
from PIL import Image

from skcalc.exceptions import UnreadableImageError
from skcalc.io import (
    read_image_shape,
    read_mammogram,
    save_figure_atomic,
    write_image_atomic,
    write_json_atomic,
    write_text_atomic,
)

RNG = np.random.default_rng(1)
IMG8 = RNG.integers(0, 256, size=(13, 17)).astype(np.uint8)
IMG16 = RNG.integers(0, 65536, size=(13, 17)).astype(np.uint16)


@pytest.mark.parametrize("arr", [IMG8, IMG16], ids=["8bit", "16bit"])
@pytest.mark.parametrize("ext", [".png", ".npy", ".tif"])
def test_round_trip(tmp_path, arr, ext):
    path = tmp_path / f"img{ext}"
    write_image_atomic(path, arr)
    image, spacing, meta = read_mammogram(path)
    assert image.dtype == arr.dtype
    np.testing.assert_array_equal(image, arr)
    assert spacing is None
    assert meta["bits_stored"] == arr.dtype.itemsize * 8
    assert meta["source"] == str(path) and meta["shape"] == arr.shape
    assert read_image_shape(path) == arr.shape


@pytest.mark.parametrize("ext", [".png", ".npy", ".tif", ".pgm"])
def test_depth_is_the_one_the_values_use_not_the_container(tmp_path, ext):
    arr12 = (IMG16 >> 4).astype(np.uint16)  # 12-bit detector data in 16 bits
    path = tmp_path / f"img{ext}"
    if ext == ".pgm":
        write_pgm(path, arr12, 65535)  # what converters write for any 16-bit data
    else:
        write_image_atomic(path, arr12)
    image, _, meta = read_mammogram(path)
    np.testing.assert_array_equal(image, arr12)
    assert (meta["bits_allocated"], meta["bits_stored"]) == (16, 12)
    if ext == ".pgm":  # a maxval below the values' depth is the file's own declaration
        write_pgm(path, (arr12 >> 2).astype(np.uint16), 1023)
        assert read_mammogram(path)[2]["bits_stored"] == 10


def test_png_written_by_pillow_is_read(tmp_path):
    Image.fromarray(IMG16).save(tmp_path / "p.png")
    np.testing.assert_array_equal(read_mammogram(tmp_path / "p.png")[0], IMG16)


def write_pgm(path, arr, maxval, ascii_=False):
    magic = "P2" if ascii_ else "P5"
    header = f"{magic}\n# made by a test\n{arr.shape[1]} {arr.shape[0]}\n{maxval}\n"
    if ascii_:
        body = "\n".join(" ".join(map(str, r)) for r in arr).encode()
    else:
        body = arr.astype(">u2" if maxval > 255 else np.uint8).tobytes()
    path.write_bytes(header.encode() + body)


@pytest.mark.parametrize("ascii_", [False, True])
def test_pgm_8_and_16_bit(tmp_path, ascii_):
    write_pgm(tmp_path / "a.pgm", IMG8, 255, ascii_)
    image, _, meta = read_mammogram(tmp_path / "a.pgm")
    assert image.dtype == np.uint8 and meta["bits_stored"] == 8
    np.testing.assert_array_equal(image, IMG8)
    arr12 = (IMG16 >> 4).astype(np.uint16)
    write_pgm(tmp_path / "b.pgm", arr12, 4095, ascii_)
    image, _, meta = read_mammogram(tmp_path / "b.pgm")
    assert image.dtype == np.uint16 and meta["bits_stored"] == 12
    np.testing.assert_array_equal(image, arr12)
    assert read_image_shape(tmp_path / "b.pgm") == arr12.shape


def test_pgm_matches_pillow(tmp_path):
    Image.fromarray(IMG8).save(tmp_path / "p.pgm")
    np.testing.assert_array_equal(read_mammogram(tmp_path / "p.pgm")[0], IMG8)


def test_tiff_miniswhite_is_inverted(tmp_path):
    tifffile.imwrite(tmp_path / "w.tif", IMG16, photometric="miniswhite")
    image, _, meta = read_mammogram(tmp_path / "w.tif")
    np.testing.assert_array_equal(image, 65535 - IMG16)
    assert meta["inverted"] is True


def test_grey_rgb_png_reduced_colour_refused(tmp_path):
    rgb = np.stack([IMG8] * 3, axis=-1)
    Image.fromarray(rgb).save(tmp_path / "g.png")
    image, _, meta = read_mammogram(tmp_path / "g.png")
    np.testing.assert_array_equal(image, IMG8)
    assert "converted" in meta
    rgb[0, 0, 1] ^= 1
    Image.fromarray(rgb).save(tmp_path / "c.png")
    with pytest.raises(UnreadableImageError, match="colour image"):
        read_mammogram(tmp_path / "c.png")


@pytest.mark.parametrize(
    "name, content, match",
    [
        ("missing.png", None, "does not exist"),
        ("x.gif", b"GIF89a", "unsupported file type"),
        ("trunc.jpg", b"\xff\xd8\xff", "could not read as JPEG"),
        ("trunc.png", "png-half", "truncated"),
        ("trunc.pgm", "pgm-half", "truncated PGM"),
        ("bad.pgm", b"P6\n2 2\n255\n" + bytes(12), "not a greyscale PGM"),
        ("trunc.npy", "npy-half", "truncated"),
        ("obj.npy", "npy-object", "not a plain numeric"),
        ("3d.npy", "npy-3d", "2-D"),
        ("trunc.tif", "tif-half", "truncated"),
    ],
)
def test_errors_name_file_and_problem(tmp_path, name, content, match):
    path = tmp_path / name
    if content == "png-half":
        write_image_atomic(tmp_path / "full.png", IMG16)
        data = (tmp_path / "full.png").read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif content == "pgm-half":
        write_pgm(tmp_path / "f.pgm", IMG8, 255)
        path.write_bytes((tmp_path / "f.pgm").read_bytes()[:-20])
    elif content == "npy-half":
        np.save(tmp_path / "f.npy", IMG16)
        path.write_bytes((tmp_path / "f.npy").read_bytes()[:200])
    elif content == "npy-object":
        np.save(path, np.array([[1, None]], dtype=object), allow_pickle=True)
    elif content == "npy-3d":
        np.save(path, np.zeros((2, 3, 4)))
    elif content == "tif-half":
        tifffile.imwrite(tmp_path / "f.tif", IMG16)
        data = (tmp_path / "f.tif").read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(UnreadableImageError, match=match) as info:
        read_mammogram(path)
    assert name in str(info.value)


@pytest.fixture
def jpeg_warning_unsaid(monkeypatch):
    from skcalc.io import _readers

    monkeypatch.setattr(_readers, "_JPEG_WARNED", [])


def _smooth8():
    r, c = np.mgrid[0:64, 0:80]
    return np.rint(128 + 100 * np.sin(r / 9.0) * np.cos(c / 13.0)).astype(np.uint8)


def test_jpeg_greyscale_and_grey_colour_are_read(tmp_path, jpeg_warning_unsaid):
    from skcalc.exceptions import SkcalcWarning

    img = _smooth8()
    Image.fromarray(img).save(tmp_path / "g.jpg", quality=95)
    Image.fromarray(np.stack([img] * 3, -1)).save(tmp_path / "rgb.jpeg", quality=95)
    with pytest.warns(SkcalcWarning, match="g.jpg: JPEG is lossy") as said:
        grey, spacing, meta = read_mammogram(tmp_path / "g.jpg")
        colour, _, meta_c = read_mammogram(tmp_path / "rgb.jpeg")
    assert len([w for w in said if "lossy" in str(w.message)]) == 1  # once per process
    assert grey.dtype == np.uint8 and grey.shape == img.shape and spacing is None
    assert np.abs(grey.astype(int) - img).mean() < 1.5  # lossy, but close
    # a grey colour JPEG gives the decoder's luma: the greyscale file's pixels
    np.testing.assert_array_equal(colour, grey)
    assert (meta["lossy"], meta["bits_stored"], meta["photometric"]) == ("JPEG", 8, "MONOCHROME2")
    assert "converted" in meta_c and "converted" not in meta
    assert read_image_shape(tmp_path / "rgb.jpeg") == img.shape


def test_colour_jpeg_is_refused(tmp_path, jpeg_warning_unsaid):
    rgb = np.stack([_smooth8()] * 3, -1)
    rgb[10:20, 10:30] = (255, 0, 0)  # an annotation in red
    Image.fromarray(rgb).save(tmp_path / "marked.jpg", quality=95)
    with pytest.raises(UnreadableImageError, match=r"marked.jpg: colour JPEG \(\d+ pixels"):
        read_mammogram(tmp_path / "marked.jpg")
    Image.fromarray(_smooth8()).convert("CMYK").save(tmp_path / "cmyk.jpg")
    with pytest.raises(UnreadableImageError, match="cmyk.jpg: JPEG in mode 'CMYK'"):
        read_mammogram(tmp_path / "cmyk.jpg")


def test_png_writer_conversions(tmp_path):
    mask = np.zeros((4, 5), bool)
    mask[1, 2] = True
    write_image_atomic(tmp_path / "m.png", mask)
    img = read_mammogram(tmp_path / "m.png")[0]
    assert img.dtype == np.uint8 and img[1, 2] == 255 and img.sum() == 255
    write_image_atomic(tmp_path / "i.png", np.array([[0, 4095]], np.int32))
    assert read_mammogram(tmp_path / "i.png")[0].dtype == np.uint16
    with pytest.raises(ValueError, match="use .npy"):
        write_image_atomic(tmp_path / "f.png", np.zeros((2, 2), np.float32))
    with pytest.raises(ValueError, match="0..65535"):
        write_image_atomic(tmp_path / "n.png", np.array([[-1, 2]]))
    with pytest.raises(ValueError, match="2-D"):
        write_image_atomic(tmp_path / "x.npy", np.zeros(3))
    with pytest.raises(ValueError, match="unsupported"):
        write_image_atomic(tmp_path / "x.bmp", np.zeros((2, 2), np.uint8))


def test_writers_are_atomic_and_leave_no_temp_files(tmp_path, monkeypatch):
    target = tmp_path / "out" / "r.json"
    write_json_atomic(target, {"a": np.int64(3), "b": np.array([1.5]), "p": tmp_path})
    assert json.loads(target.read_text()) == {"a": 3, "b": [1.5], "p": str(tmp_path)}
    assert oct(os.stat(target).st_mode & 0o077) != "0o0"  # not left at mkstemp's 0600

    # A failure half-way leaves the previous version in place and no temp file.
    with pytest.raises(TypeError, match="not JSON serialisable"):
        write_json_atomic(target, {"x": object()})
    assert json.loads(target.read_text())["a"] == 3

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "save", boom)
    with pytest.raises(OSError, match="disk full"):
        write_image_atomic(tmp_path / "out" / "a.npy", IMG8)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["r.json"]

    write_text_atomic(tmp_path / "out" / "t.txt", "héllo\n")
    assert (tmp_path / "out" / "t.txt").read_text(encoding="utf-8") == "héllo\n"
    with pytest.raises(TypeError):
        write_text_atomic(tmp_path / "out" / "t.txt", b"bytes")


def test_save_figure_atomic(tmp_path):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [0, 1])
    save_figure_atomic(fig, tmp_path / "f.png", dpi=50)
    save_figure_atomic(fig, tmp_path / "f.svg")
    plt.close(fig)
    assert (tmp_path / "f.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in (tmp_path / "f.svg").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.png", "f.svg"]
