"""Fuzzing the readers: corrupted or truncated bytes give a clear skcalc error or an image.

For each format a small valid file is damaged by hypothesis (truncated, bytes overwritten,
bytes inserted); :func:`skcalc.io.read_mammogram` and :func:`skcalc.io.read_image_shape`
must then either return a 2-D image (shape) or raise
:class:`~skcalc.exceptions.UnreadableImageError` naming the file, never anything else.
"""

import io
import os
import tempfile
import warnings

import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from skcalc.exceptions import UnreadableImageError
from skcalc.io import read_image_shape, read_mammogram
from skcalc.testing import make_dicom_dataset

IMAGE = (np.arange(8 * 9, dtype=np.uint16).reshape(8, 9) * 50) % 4096


def _png() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(IMAGE).save(buf, format="PNG")
    return buf.getvalue()


def _tiff() -> bytes:
    buf = io.BytesIO()
    tifffile.imwrite(buf, IMAGE, photometric="minisblack")
    return buf.getvalue()


def _pgm() -> bytes:
    return b"P5\n9 8\n4095\n" + IMAGE.astype(">u2").tobytes()


def _npy() -> bytes:
    buf = io.BytesIO()
    np.save(buf, IMAGE)
    return buf.getvalue()


def _dicom() -> bytes:
    buf = io.BytesIO()
    ds = make_dicom_dataset(IMAGE, "MONOCHROME2", 12, ImagerPixelSpacing=[0.07, 0.07])
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def _jpeg() -> bytes:
    buf = io.BytesIO()
    Image.fromarray((IMAGE >> 4).astype(np.uint8)).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


VALID = {".png": _png(), ".tif": _tiff(), ".pgm": _pgm(), ".npy": _npy(), ".dcm": _dicom()}
# Lossy: read back close to, not equal to, what was written.
DAMAGEABLE = {**VALID, ".jpg": _jpeg()}

# One damage: truncate at a position, overwrite bytes at a position, or insert bytes.
damage = st.one_of(
    st.tuples(st.just("truncate"), st.floats(0, 1), st.just(b"")),
    st.tuples(st.just("overwrite"), st.floats(0, 1), st.binary(min_size=1, max_size=8)),
    st.tuples(st.just("insert"), st.floats(0, 1), st.binary(min_size=1, max_size=8)),
)


def damaged(data: bytes, damages) -> bytes:
    for kind, where, chunk in damages:
        pos = int(where * len(data))
        if kind == "truncate":
            data = data[:pos]
        elif kind == "overwrite":
            data = data[:pos] + chunk + data[pos + len(chunk) :]
        else:
            data = data[:pos] + chunk + data[pos:]
    return data


def check_reader(ext: str, data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, f"fuzzed{ext}")
        with open(path, "wb") as fh:
            fh.write(data)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # damaged headers are warned about by pydicom
            try:
                image, _, _ = read_mammogram(path)
            except UnreadableImageError as exc:
                assert "fuzzed" in str(exc)
            else:
                assert isinstance(image, np.ndarray) and image.ndim == 2
            try:
                shape = read_image_shape(path)
            except UnreadableImageError as exc:
                assert "fuzzed" in str(exc)
            else:
                assert len(shape) == 2


@pytest.mark.parametrize("ext", sorted(VALID))
def test_valid_files_are_read(ext):
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, f"ok{ext}")
        with open(path, "wb") as fh:
            fh.write(VALID[ext])
        np.testing.assert_array_equal(read_mammogram(path)[0], IMAGE)


@pytest.mark.parametrize("ext", sorted(DAMAGEABLE))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(damages=st.lists(damage, min_size=1, max_size=3))
def test_damaged_files_give_a_clear_error_or_an_image(ext, damages):
    check_reader(ext, damaged(DAMAGEABLE[ext], damages))


@pytest.mark.parametrize("ext", sorted(DAMAGEABLE))
def test_every_truncation(ext):
    data = DAMAGEABLE[ext]
    step = max(1, len(data) // 150)
    for end in range(0, len(data), step):
        check_reader(ext, data[:end])
