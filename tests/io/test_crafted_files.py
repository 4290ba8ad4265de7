"""Crafted files: huge declared sizes, wrong encodings, implausible spacings (issue 11.4, 11.3).

Every reader checks the size a header declares before allocating, and every failure is an
:class:`~skcalc.exceptions.UnreadableImageError` naming the file (and the manifest line).
"""

import ast
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

import skcalc.io
from skcalc.exceptions import UnreadableImageError
from skcalc.io import load_manifest, read_image_shape, read_mammogram, write_image_atomic
from skcalc.testing import make_dicom_dataset
from skcalc.testing import write_dicom as _write_dicom

HUGE = 100_000


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def huge_png(path, side=HUGE):
    """A valid PNG header claiming side x side 16-bit pixels, with one tiny IDAT."""
    ihdr = struct.pack(">IIBBBBB", side, side, 16, 0, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
    data += png_chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + png_chunk(b"IEND", b"")
    Path(path).write_bytes(data)
    return path


def huge_npy(path, shape=(2**20, 2**20), dtype="<u2"):
    header = repr({"descr": dtype, "fortran_order": False, "shape": shape}).encode()
    header += b" " * (63 - (len(header) + 10) % 64) + b"\n"
    Path(path).write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header)
    return path


def huge_tiff(path, side=HUGE):
    """A little-endian baseline TIFF whose IFD declares side x side 16-bit pixels."""
    short, long_ = 3, 4
    entries = [
        (256, long_, side), (257, long_, side), (258, short, 16), (259, short, 1),
        (262, short, 1), (273, long_, 8), (277, short, 1), (278, long_, side),
        (279, long_, 4_000_000_000),
    ]  # fmt: skip
    ifd = struct.pack("<H", len(entries))
    for tag, kind, value in entries:
        packed = struct.pack("<HI", value, 0)[:4] if kind == short else struct.pack("<I", value)
        ifd += struct.pack("<HHI", tag, kind, 1) + packed
    ifd += struct.pack("<I", 0)
    Path(path).write_bytes(b"II*\x00" + struct.pack("<I", 8) + ifd)
    return path


def huge_pgm(path, side=HUGE):
    Path(path).write_bytes(f"P5\n{side} {side}\n65535\n".encode() + bytes(64))
    return path


def huge_dicom(path):
    ds = make_dicom_dataset(np.zeros((4, 4), np.uint16), "MONOCHROME2", 12)
    ds.Rows = ds.Columns = 65535
    ds.save_as(path, enforce_file_format=True)
    return path


MAKERS = {
    "huge.png": huge_png,
    "huge.npy": huge_npy,
    "huge.tif": huge_tiff,
    "huge.pgm": huge_pgm,
    "huge.dcm": huge_dicom,
}


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_huge_declared_size_is_refused_before_allocating(tmp_path, name):
    path = MAKERS[name](tmp_path / name)
    assert path.stat().st_size < 2000
    with pytest.raises(UnreadableImageError, match="declares an image of") as info:
        read_mammogram(path)
    assert name in str(info.value) and "MAX_IMAGE_PIXELS" in str(info.value)


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_header_only_reader_refuses_a_huge_size_too(tmp_path, name):
    path = MAKERS[name](tmp_path / name)
    with pytest.raises(UnreadableImageError, match="declares an image of") as info:
        read_image_shape(path)
    assert name in str(info.value)


def test_the_limit_is_a_setting(tmp_path, monkeypatch):
    path = tmp_path / "a.png"
    write_image_atomic(path, np.zeros((40, 50), np.uint16))
    monkeypatch.setattr(skcalc.io, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(UnreadableImageError, match="MAX_IMAGE_PIXELS = 1000"):
        read_mammogram(path)
    monkeypatch.setattr(skcalc.io, "MAX_IMAGE_PIXELS", 2000)
    assert read_mammogram(path)[0].shape == (40, 50)


def write_dicom(path, arr, bits=12, **attrs):
    return _write_dicom(path, arr, "MONOCHROME2", bits, **attrs)


def test_manifest_names_line_and_file_of_a_huge_image(tmp_path):
    huge_png(tmp_path / "huge.png")
    write_image_atomic(tmp_path / "ok.png", np.zeros((20, 20), np.uint16))
    csv = tmp_path / "m.csv"
    csv.write_text("image,cx,cy,radius,spacing\nok.png,5,5,3,0.07\nhuge.png,5,5,3,0.07\n")
    with pytest.raises(UnreadableImageError, match=r"m\.csv, line 3: .*huge\.png"):
        load_manifest(csv)


def test_latin1_manifest_names_the_line(tmp_path):
    write_image_atomic(tmp_path / "ok.png", np.zeros((20, 20), np.uint16))
    csv = tmp_path / "m.csv"
    text = "image,cx,cy,radius,spacing,site\nok.png,5,5,3,0.07,Paris\nok.png,5,5,3,0.07,Créteil\n"
    csv.write_bytes(text.encode("latin-1"))
    with pytest.raises(ValueError, match=r"m\.csv, line 3: not UTF-8 text \(byte 0xe9\)"):
        load_manifest(csv)
    csv.write_bytes(text.encode("utf-8-sig"))  # the same in UTF-8 (with BOM) is fine
    rois, _, _ = load_manifest(csv)
    assert rois[1].meta["site"] == "Créteil"


@pytest.mark.parametrize(
    "spacing_column, header_spacing, argument, match",
    [
        ("5", [0.07, 0.07], None, r"line 2: column 'spacing' \(5.0, 5.0\) mm is outside"),
        ("70 0.07", [0.07, 0.07], None, "outside the plausible range"),
        ("", [5.0, 5.0], None, r"line 2: .*pixel spacing from DICOM ImagerPixelSpacing"),
        ("", None, 70.0, r"^spacing \(70.0, 70.0\) mm is outside"),
    ],
)
def test_implausible_spacing_is_a_clear_error(
    tmp_path, spacing_column, header_spacing, argument, match
):
    attrs = {"ImagerPixelSpacing": header_spacing} if header_spacing else {}
    write_dicom(tmp_path / "a.dcm", np.zeros((40, 40), np.uint16), **attrs)
    csv = tmp_path / "m.csv"
    csv.write_text(f"image,cx,cy,radius,spacing\na.dcm,20,20,5,{spacing_column}\n")
    with pytest.raises(ValueError, match=match):
        load_manifest(csv, spacing=argument)


def test_manifest_carries_dicom_bits_stored(tmp_path):
    """issue 10.2: a 10-bit detector's crops were scaled by a depth guessed per crop."""
    rng = np.random.default_rng(0)
    dark = rng.integers(0, 300, size=(60, 60)).astype(np.uint16)  # crop max far below 1023
    write_dicom(tmp_path / "ten.dcm", dark, bits=10, ImagerPixelSpacing=[0.07, 0.07])
    write_dicom(tmp_path / "twelve.dcm", dark, bits=12, ImagerPixelSpacing=[0.07, 0.07])
    write_image_atomic(tmp_path / "p.png", dark)
    csv = tmp_path / "m.csv"
    csv.write_text(
        "image,cx,cy,radius,spacing\n"
        "ten.dcm,20,20,5,\n"
        "twelve.dcm,20,20,5,0.07\n"  # the header is read even when the spacing is given
        "p.png,20,20,5,0.07\n"
    )
    rois, _, _ = load_manifest(csv)
    assert [r.meta.get("bits_stored") for r in rois] == [10, 12, None]


def test_no_import_cycle_inside_io():
    folder = Path(skcalc.io.__file__).parent
    graph = {}
    for path in folder.glob("*.py"):
        name = path.stem
        deps = set()
        for node in ast.parse(path.read_text()).body:  # module level only
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                if node.module:
                    deps.add(node.module)
                else:
                    deps.update(alias.name for alias in node.names)
        graph[name] = deps - {name}
    graph.pop("__init__")

    def visit(name, stack):
        assert name not in stack, f"import cycle: {' -> '.join([*stack, name])}"
        for dep in graph.get(name, ()):
            visit(dep, [*stack, name])

    for name in graph:
        visit(name, [])


def test_dicom_reading_errors_all_name_the_file(tmp_path):
    path = tmp_path / "x.dcm"
    path.write_bytes(b"\x00" * 128 + b"DICM" + b"\xff" * 40)
    with pytest.raises(UnreadableImageError, match="x.dcm"):
        read_mammogram(path)
    with pytest.raises(UnreadableImageError, match="x.dcm"):
        read_image_shape(path)
