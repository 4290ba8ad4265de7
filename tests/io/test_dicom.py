"""DICOM mammograms: grey-level conventions, spacing, metadata, compression, errors."""

import warnings

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import UID, JPEG2000Lossless, RLELossless

from skcalc.exceptions import SkcalcWarning, UnreadableImageError
from skcalc.io import display_image, read_dicom_header, read_mammogram, read_spacing
from skcalc.testing import make_dicom_dataset

MG_SOP = "1.2.840.10008.5.1.4.1.1.1.2"


def make_ds(arr, photometric="MONOCHROME2", bits=12, **attrs):
    return make_dicom_dataset(arr, photometric, bits, sop_class=MG_SOP, Modality="MG", **attrs)


def save(ds, path, **kw):
    ds.save_as(path, enforce_file_format=True, **kw)
    return str(path)


def phantom(shape=(40, 30)):
    """Tissue background with a brighter (higher attenuation) calcification-like spot."""
    rng = np.random.default_rng(0)
    arr = rng.integers(800, 1200, size=shape).astype(np.uint16)
    arr[20:23, 10:13] = 3000
    return arr


def test_monochrome2_raw_values_and_meta(tmp_path):
    arr = phantom()
    ds = make_ds(
        arr,
        ImagerPixelSpacing=[0.1, 0.1],
        ImageLaterality="L",
        ViewPosition="MLO",
        PatientID="P1",
        Manufacturer="ACME",
        PresentationIntentType="FOR PROCESSING",
        StudyInstanceUID="1.2.3",
    )
    image, spacing, meta = read_mammogram(save(ds, tmp_path / "a.dcm"))
    assert image.dtype == np.uint16
    np.testing.assert_array_equal(image, arr)
    assert spacing == (0.1, 0.1)
    assert meta["laterality"] == "L" and meta["view"] == "MLO"
    assert meta["patient_id"] == "P1" and meta["manufacturer"] == "ACME"
    assert meta["presentation_intent"] == "FOR PROCESSING"
    assert meta["study_instance_uid"] == "1.2.3"
    assert meta["bits_stored"] == 12 and meta["photometric"] == "MONOCHROME2"
    assert meta["inverted"] is False and meta["format"] == "dicom"


@pytest.mark.parametrize("lut_shape", [None, "INVERSE", "IDENTITY"])
def test_monochrome1_calcification_stays_bright(tmp_path, lut_shape):
    bright = phantom()  # MONOCHROME2 view: the spot is the maximum
    stored = (4095 - bright).astype(np.uint16)  # how a MONOCHROME1 file stores it
    attrs = {"ImagerPixelSpacing": [0.07, 0.07]}
    if lut_shape:
        attrs["PresentationLUTShape"] = lut_shape
    ds = make_ds(stored, "MONOCHROME1", **attrs)
    image, _, meta = read_mammogram(save(ds, tmp_path / "m1.dcm"))
    np.testing.assert_array_equal(image, bright)
    assert image.dtype == np.uint16
    assert np.unravel_index(np.argmax(image), image.shape) == (20, 10)
    assert meta["inverted"] is True and "MONOCHROME1" in meta["inversion"]


def test_monochrome2_with_inverse_is_inverted_with_warning(tmp_path):
    bright = phantom()
    ds = make_ds((4095 - bright).astype(np.uint16), PresentationLUTShape="INVERSE",
                 ImagerPixelSpacing=[0.07, 0.07])  # fmt: skip
    with pytest.warns(SkcalcWarning, match="INVERSE"):
        image, _, _ = read_mammogram(save(ds, tmp_path / "m2inv.dcm"))
    np.testing.assert_array_equal(image, bright)


def test_monochrome1_uses_bits_stored_not_allocated(tmp_path):
    stored = np.array([[0, 100], [1023, 5]], np.uint16)
    ds = make_ds(stored, "MONOCHROME1", bits=10, PixelSpacing=[0.1, 0.1])
    image, _, _ = read_mammogram(save(ds, tmp_path / "b10.dcm"))
    np.testing.assert_array_equal(image, 1023 - stored)


def test_rescale_applied_as_float32(tmp_path):
    arr = phantom()
    ds = make_ds(arr, RescaleSlope=2.0, RescaleIntercept=-100.0, PixelSpacing=[0.1, 0.1])
    image, _, meta = read_mammogram(save(ds, tmp_path / "r.dcm"))
    assert image.dtype == np.float32
    np.testing.assert_allclose(image, arr * 2.0 - 100.0)
    assert meta["modality_lut_applied"] == "RescaleSlope/RescaleIntercept"


def test_identity_rescale_keeps_integers(tmp_path):
    ds = make_ds(phantom(), RescaleSlope=1.0, RescaleIntercept=0.0, PixelSpacing=[0.1, 0.1])
    image, _, _ = read_mammogram(save(ds, tmp_path / "r.dcm"))
    assert image.dtype == np.uint16


def test_rescale_with_monochrome1_is_reflection_of_modality_values(tmp_path):
    bright = phantom()
    stored = (4095 - bright).astype(np.uint16)
    ds = make_ds(stored, "MONOCHROME1", RescaleSlope=0.5, RescaleIntercept=10.0,
                 PixelSpacing=[0.1, 0.1])  # fmt: skip
    image, _, _ = read_mammogram(save(ds, tmp_path / "r1.dcm"))
    modality = stored * 0.5 + 10.0
    lo, hi = 0 * 0.5 + 10.0, 4095 * 0.5 + 10.0
    np.testing.assert_allclose(image, lo + hi - modality, rtol=1e-6)
    np.testing.assert_allclose(image, bright * 0.5 + 10.0, rtol=1e-6)


def test_voi_window_not_applied_by_default(tmp_path):
    arr = phantom()
    ds = make_ds(arr, WindowCenter=1000, WindowWidth=400, PixelSpacing=[0.1, 0.1])
    path = save(ds, tmp_path / "w.dcm")
    image, _, meta = read_mammogram(path)
    np.testing.assert_array_equal(image, arr)
    assert meta["window_centers"] == [1000.0] and meta["window_widths"] == [400.0]
    assert meta["voi_applied"] is False
    shown, _, meta2 = read_mammogram(path, apply_voi_lut=True)
    assert shown.dtype == np.float32 and meta2["voi_applied"] is True
    # DICOM LINEAR: ((x - (c - 0.5)) / (w - 1) + 0.5), clipped to [0, 1]
    expected = np.clip((arr - 999.5) / 399.0 + 0.5, 0, 1)
    np.testing.assert_allclose(shown, expected, atol=1e-6)
    assert shown[21, 11] == 1.0


@pytest.mark.parametrize("function", ["LINEAR_EXACT", "SIGMOID"])
def test_window_functions(function):
    x = np.array([[800.0, 1000.0, 1200.0]])
    meta = {"window_centers": [1000.0], "window_widths": [400.0], "voi_lut_function": function}
    out = display_image(x, meta)
    if function == "LINEAR_EXACT":
        np.testing.assert_allclose(out, [[0.0, 0.5, 1.0]])
    else:
        np.testing.assert_allclose(out, 1 / (1 + np.exp(-4 * (x - 1000) / 400)))


def test_voi_lut_sequence_and_monochrome1_display(tmp_path):
    bright = np.array([[0, 1000], [2000, 4095]], np.uint16)
    stored = (4095 - bright).astype(np.uint16)
    item = Dataset()
    item.LUTDescriptor = [4096, 0, 12]
    item.add_new(0x00283006, "US", list(range(4096)))  # identity LUT, 12-bit output
    ds = make_ds(stored, "MONOCHROME1", PresentationLUTShape="INVERSE", PixelSpacing=[0.1, 0.1])
    ds.VOILUTSequence = [item]
    shown, _, meta = read_mammogram(save(ds, tmp_path / "lut.dcm"), apply_voi_lut=True)
    # Identity VOI on MONOCHROME1 data: displayed brightness = 1 - stored / 4095 = bright / 4095
    np.testing.assert_allclose(shown, bright / 4095.0, atol=1e-6)
    assert len(meta["voi_luts"]) == 1


def test_spacing_precedence_and_magnification(tmp_path):
    arr = phantom()
    both = make_ds(arr, ImagerPixelSpacing=[0.1, 0.1], PixelSpacing=[0.3, 0.3])
    assert read_spacing(save(both, tmp_path / "a.dcm")) == (0.1, 0.1)
    mag = make_ds(
        arr, ImagerPixelSpacing=[0.1, 0.12], EstimatedRadiographicMagnificationFactor=1.25
    )
    _, spacing, meta = read_mammogram(save(mag, tmp_path / "b.dcm"))
    np.testing.assert_allclose(spacing, (0.08, 0.096))
    assert "Magnification" in meta["spacing_source"]
    only_ps = make_ds(arr, PixelSpacing=[0.05, 0.05])
    assert read_spacing(save(only_ps, tmp_path / "c.dcm")) == (0.05, 0.05)
    header = read_dicom_header(tmp_path / "c.dcm")
    assert header["spacing_source"] == "PixelSpacing" and header["rows"] == 40


def test_spacing_missing_or_implausible_warns(tmp_path):
    arr = phantom()
    path = save(make_ds(arr), tmp_path / "none.dcm")
    with pytest.warns(SkcalcWarning, match="no pixel spacing"):
        _, spacing, _ = read_mammogram(path)
    assert spacing is None
    path = save(make_ds(arr, PixelSpacing=[1.5, 1.5]), tmp_path / "big.dcm")
    with pytest.warns(SkcalcWarning, match="implausible"):
        assert read_spacing(path) == (1.5, 1.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_mammogram(save(make_ds(arr, PixelSpacing=[0.07, 0.07]), tmp_path / "ok.dcm"))


def test_laterality_and_view_fallbacks(tmp_path):
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator = "R-10242", "SRT"
    code.CodeMeaning = "cranio-caudal"
    ds = make_ds(phantom(), Laterality="R", PixelSpacing=[0.1, 0.1])
    ds.ViewCodeSequence = [code]
    _, _, meta = read_mammogram(save(ds, tmp_path / "v.dcm"))
    assert meta["laterality"] == "R" and meta["view"] == "CC"
    ds2 = make_ds(phantom(), ImageLaterality="L", Laterality="R", PixelSpacing=[0.1, 0.1])
    assert read_mammogram(save(ds2, tmp_path / "v2.dcm"))[2]["laterality"] == "L"


def test_rle_round_trip(tmp_path):
    arr = phantom()
    ds = make_ds(arr, PixelSpacing=[0.1, 0.1])
    ds.compress(RLELossless)
    path = save(ds, tmp_path / "rle.dcm")
    assert pydicom.dcmread(path).file_meta.TransferSyntaxUID == RLELossless
    image, _, meta = read_mammogram(path)
    np.testing.assert_array_equal(image, arr)
    assert meta["transfer_syntax"] == str(RLELossless)


def test_jpeg2000_round_trip_monochrome1(tmp_path):
    pytest.importorskip("openjpeg")
    bright = phantom((64, 64))  # the encoder's default 6 resolutions need >= 32 px
    ds = make_ds((4095 - bright).astype(np.uint16), "MONOCHROME1", PixelSpacing=[0.1, 0.1])
    ds.compress(JPEG2000Lossless)
    image, _, _ = read_mammogram(save(ds, tmp_path / "j2k.dcm"))
    np.testing.assert_array_equal(image, bright)


def test_unknown_transfer_syntax_error_names_it(tmp_path):
    ds = make_ds(phantom(), PixelSpacing=[0.1, 0.1])
    ds.file_meta.TransferSyntaxUID = UID("1.2.826.0.1.3680043.99.1")
    ds.PixelData = pydicom.encaps.encapsulate([b"garbage" * 10])
    ds["PixelData"].VR = "OB"
    path = save(ds, tmp_path / "unk.dcm", implicit_vr=False, little_endian=True)
    with pytest.raises(UnreadableImageError, match=r"1\.2\.826\.0\.1\.3680043\.99\.1"):
        read_mammogram(path)


def test_corrupt_compressed_data_error_names_syntax(tmp_path):
    ds = make_ds(phantom(), PixelSpacing=[0.1, 0.1])
    ds.file_meta.TransferSyntaxUID = JPEG2000Lossless
    ds.PixelData = pydicom.encaps.encapsulate([b"garbage" * 10])
    ds["PixelData"].VR = "OB"
    path = save(ds, tmp_path / "bad.dcm")
    with pytest.raises(UnreadableImageError, match="JPEG 2000") as info:
        read_mammogram(path)
    assert "bad.dcm" in str(info.value)


@pytest.mark.parametrize("keep", [300, -2000])
def test_truncated_file(tmp_path, keep):
    path = save(make_ds(phantom(), PixelSpacing=[0.1, 0.1]), tmp_path / "full.dcm")
    data = open(path, "rb").read()
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(data[:keep])
    with pytest.raises(UnreadableImageError, match="truncated") as info:
        read_mammogram(cut)
    assert "cut.dcm" in str(info.value)


def test_colour_and_multiframe_refused(tmp_path):
    ds = make_ds(np.zeros((4, 4, 3), np.uint8), "RGB", bits=8)
    with pytest.raises(UnreadableImageError, match="greyscale"):
        read_mammogram(save(ds, tmp_path / "rgb.dcm"))


def test_dicom_without_extension_is_sniffed(tmp_path):
    arr = phantom()
    path = save(make_ds(arr, PixelSpacing=[0.1, 0.1]), tmp_path / "IMG0001")
    np.testing.assert_array_equal(read_mammogram(path)[0], arr)
