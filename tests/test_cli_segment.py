"""``skcalc segment IMAGE``: reads any supported file, writes labels, overlay and counts."""

import json
import warnings

import numpy as np
import pytest
from PIL import Image

from skcalc import ROI
from skcalc.cli import main
from skcalc.datasets import make_full_field_mammogram
from skcalc.exceptions import SkcalcWarning
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
    want = (
        HDoGRegSegmenter()
        .fit_transform([ROI(mammogram.image, spacing=0.07, meta={"bits_stored": 12})])[0]
        .calcifications
    )
    np.testing.assert_array_equal(labels, want)
    assert f"{int(want.max())} calcifications" in printed
    assert (out / "mammo_overlay.png").stat().st_size > 10_000
    summary = json.loads((out / "mammo_segmentation.json").read_text())
    assert summary["n_calcifications"] == int(want.max())
    # nothing written next to the input
    assert sorted(p.name for p in src.parent.iterdir()) == ["mammo.png"]
    # the operating point, as applied to this image, is reported
    seg = summary["segmentation"]
    assert seg["fp_calibration"] == "image" and seg["fp_per_cm2"] == 0.5
    assert "operating point balanced: 0.5 FP/cm2 expected (threshold for " in printed
    assert f"{seg['fp_scale']:.2g} x that rate" in printed


def test_segment_fp_calibration_filter_uses_the_table_as_it_is(mammogram, tmp_path, capsys):
    src = tmp_path / "mammo.npy"
    np.save(src, mammogram.image)
    out = tmp_path / "out"
    args = ["segment", str(src), "--out", str(out), "--spacing", "0.07", "--bit-depth", "12",
            "--fp-calibration", "filter", "--operating-point", "specific"]
    assert main(args) == 0
    assert "threshold from the filter's table" in capsys.readouterr().out
    seg = json.loads((out / "mammo_segmentation.json").read_text())["segmentation"]
    want = HDoGRegSegmenter(fp_calibration="filter", operating_point="specific")
    assert seg["score_threshold"] == want.fit([ROI(mammogram.image, spacing=0.07)]
                                              ).operating_point_["score_threshold"]
    assert seg["fp_calibration"] == "filter" and seg["fp_scale"] == 1.0


def test_segment_npy_hdog_only_and_npy_labels(mammogram, tmp_path):
    src = tmp_path / "mammo.npy"
    np.save(src, mammogram.image)
    out = tmp_path / "out"
    args = ["segment", str(src), "--out", str(out), "--spacing", "0.07", "--regressor", "none"]
    assert main([*args, "--format", "npy"]) == 0
    labels = np.load(out / "mammo_labels.npy")
    want = (
        HDoGRegSegmenter(regressor=None)
        .fit_transform([ROI(mammogram.image, spacing=0.07)])[0]
        .calcifications
    )
    np.testing.assert_array_equal(labels, want)


def test_api_and_cli_scale_a_12_bit_png_alike(mammogram, tmp_path):
    # 12-bit data in a 16-bit PNG: the reader reports the depth the values use, so the
    # authors' threshold (a fraction of the full range) means the same in both routes
    src = tmp_path / "mammo.png"
    Image.fromarray(mammogram.image.astype(np.uint16)).save(src)
    out = tmp_path / "out"
    args = ["segment", str(src), "--out", str(out), "--spacing", "0.07",
            "--threshold", "authors", "--regressor", "none", "--format", "npy"]
    assert main(args) == 0
    cli = np.load(out / "mammo_labels.npy")
    image, _, meta = read_mammogram(src)
    assert (meta["bits_allocated"], meta["bits_stored"]) == (16, 12)
    api = (HDoGRegSegmenter(threshold="authors", regressor=None)
           .fit_transform([ROI(image, spacing=0.07, meta=meta)])[0].calcifications)
    np.testing.assert_array_equal(cli, api)
    as16 = (HDoGRegSegmenter(threshold="authors", regressor=None)
            .fit_transform([ROI(image, spacing=0.07, meta={**meta, "bits_stored": 16})])[0]
            .calcifications)
    assert as16.max() < api.max()  # the container's depth would have been 16x stricter


def test_segment_without_spacing_is_a_clear_error(mammogram, tmp_path, capsys):
    src = tmp_path / "mammo.npy"
    np.save(src, mammogram.image)
    assert main(["segment", str(src), "--out", str(tmp_path / "o")]) == 1
    assert "--spacing" in capsys.readouterr().err
    assert main(["segment", str(tmp_path / "missing.png"), "--out", str(tmp_path / "o")]) == 1


def test_segment_implausible_spacing_is_refused_before_reading(tmp_path, capsys, monkeypatch):
    """issue 11.3: ``--spacing 70`` (um for mm) asked for a 12.4 TiB allocation."""
    import skcalc.io

    def no_read(*args, **kwargs):
        raise AssertionError("the image was read before the spacing was checked")

    monkeypatch.setattr(skcalc.io, "read_mammogram", no_read)
    src = tmp_path / "mammo.npy"
    np.save(src, np.zeros((8, 8), np.uint16))
    assert main(["segment", str(src), "--out", str(tmp_path / "o"), "--spacing", "70"]) == 1
    err = capsys.readouterr().err
    assert "--spacing (70.0, 70.0) mm is outside the plausible range" in err
    assert not (tmp_path / "o").exists()


def test_segment_implausible_header_spacing_names_the_option(tmp_path, capsys):
    from skcalc.testing import write_dicom

    src = write_dicom(tmp_path / "a.dcm", np.zeros((40, 40), np.uint16), "MONOCHROME2", 12,
                      ImagerPixelSpacing=[5.0, 5.0])  # fmt: skip
    assert main(["segment", src, "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "a.dcm" in err and "plausible" in err and "--spacing" in err


def test_segment_never_replaces_outputs_or_inputs_unasked(mammogram, tmp_path, capsys):
    src = tmp_path / "mammo.npy"
    np.save(src, mammogram.image[:128, :128])
    out = tmp_path / "o"
    out.mkdir()
    (out / "mammo_overlay.png").write_bytes(b"keep")
    args = ["segment", str(src), "--out", str(out), "--spacing", "0.07", "--regressor", "none"]
    assert main(args) == 1
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    assert (out / "mammo_overlay.png").read_bytes() == b"keep"
    assert main([*args, "--overwrite"]) == 0
    assert (out / "mammo_overlay.png").read_bytes() != b"keep"
    # a weights file given as --regressor is an input: never an output
    weights = out / "mammo_labels.png"
    weights.write_bytes(b"weights")
    code = main(["segment", str(src), "--out", str(out), "--spacing", "0.07", "--regressor",
                 str(weights), "--overwrite"])  # fmt: skip
    assert code == 1 and "refusing to write over an input" in capsys.readouterr().err
    assert weights.read_bytes() == b"weights"


@pytest.mark.parametrize("value", ["medium", "-1", "0", "nan"])
def test_a_bad_operating_point_is_a_usage_error(mammogram, tmp_path, capsys, value):
    src = tmp_path / "mammo.npy"
    np.save(src, mammogram.image)
    args = ["segment", str(src), "--out", str(tmp_path / "o"), "--spacing", "0.07"]
    assert main([*args, "--operating-point", value]) == 2
    err = capsys.readouterr().err
    assert "sensitive, balanced, specific or a positive number" in err and repr(value) in err
    assert not (tmp_path / "o").exists()


def test_a_numeric_operating_point_is_the_promise(mammogram, tmp_path):
    src = tmp_path / "mammo.npy"
    np.save(src, mammogram.image)
    out = tmp_path / "o"
    assert main(["segment", str(src), "--out", str(out), "--spacing", "0.07",
                 "--operating-point", "0.3", "-q"]) == 0
    seg = json.loads((out / "mammo_segmentation.json").read_text())["segmentation"]
    assert seg["operating_point"] == 0.3 and seg["fp_per_cm2"] == 0.3


def test_segment_objects_csv_is_the_pipelines_table_without_the_merge_index(
    mammogram, tmp_path, monkeypatch
):
    from skcalc import masks as masks_module
    from skcalc.features import LocalFeatureExtractor, local_features_table

    src = tmp_path / "mammo.npy"
    np.save(src, mammogram.image)
    out = tmp_path / "out"
    args = ["segment", str(src), "--out", str(out), "--spacing", "0.07", "--bit-depth", "12",
            "--threshold", "authors", "--format", "npy"]  # fmt: skip

    def refuse(*_args, **_kwargs):
        raise AssertionError("the per-object table computed the merge index")

    # The table needs each object, not the pairwise connectivity (quadratic in objects:
    # most of the time and memory of a whole mammogram's table).
    with monkeypatch.context() as mp:
        mp.setattr(masks_module, "multiscale_merge_index", refuse)
        assert main(args) == 0
    labels = np.load(out / "mammo_labels.npy")
    # The reference: the pipeline's stages on masks that hold their merge index, with every
    # object's band built (a background feature set asks for it), as the table was made when
    # the masks were built whole.
    built = masks_module.build_masks(labels, (0.07, 0.07))
    whole = masks_module.CalcificationMasks(
        built.foreground, built.spacing, built.band_width, built.scales,
        masks_module.multiscale_merge_index(built.foreground, built.spacing, built.scales),
    )  # fmt: skip
    image = read_mammogram(src)[0]
    roi = ROI(image, spacing=0.07, masks=whole, meta={"roi_id": "mammo"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # texture of one-pixel bands: not the subject here
        tables = LocalFeatureExtractor(feature_sets=("fg_regionprops", "bg_radiomics"),
                                       max_objects=None, max_gray_levels=None).transform([roi])
    want = local_features_table(tables)
    want = want[[c for c in want.columns if not c.startswith("bg_")]]
    text = (out / "mammo_objects.csv").read_text()
    assert text == want.to_csv(index=False)  # every column name and value, to the digit
    header = text.splitlines()[0].split(",")
    assert header == [
        "roi_id", "label", "centroid_row_px", "centroid_col_px", "centroid_row_mm",
        "centroid_col_mm", "bbox_row_min_px", "bbox_col_min_px", "bbox_row_max_px",
        "bbox_col_max_px", "bbox_row_min_mm", "bbox_col_min_mm", "bbox_row_max_mm",
        "bbox_col_max_mm", "area_px", "area_mm2", "rp_area_mm2", "rp_perimeter_mm",
        "rp_convex_area_mm2", "rp_equivalent_diameter_mm", "rp_major_axis_length_mm",
        "rp_minor_axis_length_mm", "rp_eccentricity", "rp_orientation_rad", "rp_solidity",
        "rp_extent", "rp_intensity_mean", "rp_intensity_max", "rp_intensity_min",
    ]  # fmt: skip
    n = whole.n_objects
    assert n >= 5 and len(text.splitlines()) == n + 1
    assert want["label"].tolist() == list(range(1, n + 1))
    assert want["area_px"].tolist() == np.bincount(whole.foreground.ravel())[1:].tolist()


def test_segment_an_inverted_png_finds_what_the_original_has(tmp_path):
    """A PNG of MONOCHROME1 pixels saved without inversion (breast dark): ``--polarity auto``
    segments it as the original and says so; ``--polarity bright`` keeps it as given."""
    image = make_full_field_mammogram((768, 640), spacing=0.1, n_clusters=2,
                                      random_state=2).image.astype(np.uint16)
    src = tmp_path / "inverted.png"
    Image.fromarray((4095 - image).astype(np.uint16)).save(src)
    want = HDoGRegSegmenter().fit_transform(
        [ROI(image, spacing=0.1, meta={"bits_stored": 12})])[0].calcifications
    args = ["segment", str(src), "--spacing", "0.1", "--bit-depth", "12"]
    with pytest.warns(UserWarning, match="darker than the air"):
        assert main(args + ["--out", str(tmp_path / "auto")]) == 0
    labels = read_mammogram(tmp_path / "auto" / "inverted_labels.png")[0]
    np.testing.assert_array_equal(labels, want)
    seg = json.loads((tmp_path / "auto" / "inverted_segmentation.json").read_text())
    assert seg["segmentation"]["polarity"] == "dark" and seg["segmentation"]["inverted"]
    assert main(args + ["--out", str(tmp_path / "given"), "--polarity", "bright"]) == 0
    seg = json.loads((tmp_path / "given" / "inverted_segmentation.json").read_text())
    assert seg["segmentation"]["inverted"] is False


def test_segment_reads_a_jpeg_as_its_8_bit_greyscale(mammogram, tmp_path, monkeypatch):
    """A JPEG export is segmented as the image the reader gives (its luma), with the lossy
    warning; the labels equal the estimator's on those pixels."""
    from skcalc.io import _readers

    monkeypatch.setattr(_readers, "_JPEG_WARNED", [])
    eight = np.rint(mammogram.image / 4095 * 255).astype(np.uint8)
    src = tmp_path / "mammo.jpg"
    Image.fromarray(np.stack([eight] * 3, -1)).save(src, quality=90)
    out = tmp_path / "out"
    with pytest.warns(SkcalcWarning, match="JPEG is lossy"):
        assert main(["segment", str(src), "--out", str(out), "--spacing", "0.07"]) == 0
    pixels, _, meta = read_mammogram(src)
    assert meta["lossy"] == "JPEG" and pixels.dtype == np.uint8
    want = (HDoGRegSegmenter()
            .fit_transform([ROI(pixels, spacing=0.07, meta={"bits_stored": 8})])[0]
            .calcifications)
    assert want.max() > 0
    np.testing.assert_array_equal(read_mammogram(out / "mammo_labels.png")[0], want)


@pytest.mark.parametrize("artefact, key, message", [
    ("text", "n_on_clipped_plateaus", "detection(s) on or next to plateaus"),
    ("hot", "n_impulse_pixels", "hot pixel(s) repaired"),
])
def test_segment_says_what_it_did_about_artefacts(tmp_path, capsys, artefact, key, message):
    """Burned-in text (detections on it left out) and hot pixels (repaired)."""
    from skcalc.testing import add_hot_pixels, burn_in_text

    field = np.asarray(make_full_field_mammogram((768, 640), spacing=0.1, n_clusters=2,
                                                 random_state=2).image)
    marked = (burn_in_text(field, (300, 400, 500)) if artefact == "text"
              else add_hot_pixels(field, 5e-4)[0])
    src = tmp_path / "marked.png"
    Image.fromarray(marked).save(src)
    assert main(["segment", str(src), "--out", str(tmp_path / "o"), "--spacing", "0.1",
                 "--bit-depth", "12"]) == 0
    summary = json.loads((tmp_path / "o" / "marked_segmentation.json").read_text())
    n = summary["segmentation"][key]
    assert n > 0
    assert f"{n} {message}" in capsys.readouterr().out
