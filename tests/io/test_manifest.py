"""CSV manifests -> lazy ROI records."""

import numpy as np
import pytest

from skcalc.io import load_manifest, parse_label, write_image_atomic
from skcalc.testing import write_dicom as _write_dicom

RNG = np.random.default_rng(3)
IMAGE = RNG.integers(0, 4096, size=(60, 80)).astype(np.uint16)


def write_dicom(path, arr, **attrs):
    _write_dicom(path, arr, "MONOCHROME2", 12, **attrs)


@pytest.fixture
def dataset(tmp_path):
    (tmp_path / "img").mkdir()
    write_image_atomic(tmp_path / "img" / "a.png", IMAGE)
    np.save(tmp_path / "img" / "b.npy", IMAGE)
    write_dicom(tmp_path / "img" / "c.dcm", IMAGE, ImagerPixelSpacing=[0.1, 0.1],
                ImageLaterality="R", ViewPosition="CC")  # fmt: skip
    mask = np.zeros(IMAGE.shape, bool)
    mask[30:34, 40:45] = True
    mask[35, 46] = True
    write_image_atomic(tmp_path / "img" / "a_mask.png", mask)
    return tmp_path


def write_csv(path, header, rows):
    path.write_text("\n".join([",".join(header)] + [",".join(map(str, r)) for r in rows]) + "\n")
    return path


HEADER = ["image", "row0", "col0", "row1", "col1", "cx", "cy", "radius", "mask", "label",
          "patient_id", "exam_id", "spacing", "margin_mm", "site"]  # fmt: skip


def test_manifest_all_region_kinds(dataset):
    rows = [
        ["img/a.png", 10, 20, 15, 30, "", "", "", "", "benign", "P1", "E1", 0.1, 1.0, "x"],
        ["img/b.npy", "", "", "", "", 40, 30, 3, "", "MALIGNANT", "P1", "E1", "0.1 0.2", 0, ""],
        ["img/c.dcm", "", "", "", "", "", "", "", "img/a_mask.png", "High-risk", "P2", "E2",
         "", 0.2, ""],
    ]  # fmt: skip
    csv_path = write_csv(dataset / "m.csv", HEADER, rows)
    rois, y, groups = load_manifest(csv_path)
    assert y.tolist() == [0, 1, 1]
    assert groups.tolist() == ["E1", "E1", "E2"]
    assert all(r.is_lazy for r in rois)

    bbox = rois[0]
    assert bbox.box == (0, 25, 10, 40)  # 1 mm at 0.1 mm = 10 px, clipped at the top
    assert bbox.spacing == (0.1, 0.1)
    expected = np.zeros((25, 30), bool)
    expected[10:15, 10:20] = True
    np.testing.assert_array_equal(bbox.region, expected)
    np.testing.assert_array_equal(bbox.image, IMAGE[0:25, 10:40])
    assert bbox.meta["site"] == "x" and bbox.meta["patient_id"] == "P1"
    assert bbox.roi_id == "a:2"

    disk = rois[1]
    assert disk.spacing == (0.1, 0.2) and disk.box == (27, 34, 37, 44)
    rr, cc = np.mgrid[27:34, 37:44]
    np.testing.assert_array_equal(disk.region, (rr - 30) ** 2 + (cc - 40) ** 2 <= 9)
    np.testing.assert_array_equal(disk.image, IMAGE[27:34, 37:44])

    masked = rois[2]
    assert masked.spacing == (0.1, 0.1)  # from the DICOM header
    assert masked.meta["spacing_source"].startswith("DICOM")
    assert masked.meta["laterality"] == "R" and masked.meta["view"] == "CC"
    assert masked.box == (28, 38, 38, 49)  # mask bbox rows 30:36, cols 40:47, margin 2 px
    full = np.zeros(IMAGE.shape, bool)
    full[30:34, 40:45] = True
    full[35, 46] = True
    np.testing.assert_array_equal(masked.region, full[28:38, 38:49])
    np.testing.assert_array_equal(masked.image, IMAGE[28:38, 38:49])


def test_xy_bbox_and_default_spacing(dataset):
    csv_path = write_csv(
        dataset / "m.csv",
        ["image", "x0", "y0", "x1", "y1", "label", "patient_id", "roi_id"],
        [["img/a.png", 20, 10, 30, 15, 0, "P9", "r1"]],
    )
    with pytest.raises(ValueError, match="line 2: no pixel spacing"):
        load_manifest(csv_path)
    rois, y, groups = load_manifest(csv_path, spacing=0.5, margin_mm=0)
    assert rois[0].box == (10, 15, 20, 30) and rois[0].roi_id == "r1"
    assert rois[0].region.all() and groups.tolist() == ["P9"]


def test_no_label_column_gives_none(dataset):
    csv_path = write_csv(dataset / "m.csv", ["image", "cx", "cy", "radius"],
                         [["img/c.dcm", 5, 5, 2]])  # fmt: skip
    rois, y, groups = load_manifest(csv_path)
    assert y is None and groups is None and rois[0].spacing == (0.1, 0.1)


@pytest.mark.parametrize(
    "row, match",
    [
        (["img/zzz.png", 1, 1, 5, 5, "benign"], "line 3: image file .*zzz.png.* does not exist"),
        (["img/a.png", 5, 1, 5, 5, "benign"], "line 3: bad bounding box"),
        (["img/a.png", 1, 1, 500, 5, "benign"], "line 3: bad bounding box"),
        (["img/a.png", 1, 1, 5, 5, "probably"], "line 3: unknown label 'probably'"),
        (["img/a.png", "a", 1, 5, 5, "benign"], "line 3: column 'row0' must be a number"),
        (["img/a.png", "", "", "", "", "benign"], "line 3: no region"),
    ],
)
def test_row_errors_name_the_line(dataset, row, match):
    header = ["image", "row0", "col0", "row1", "col1", "label"]
    good = ["img/a.png", 1, 1, 5, 5, "benign"]
    csv_path = write_csv(dataset / "m.csv", header, [good, row])
    with pytest.raises(ValueError, match=match) as info:
        load_manifest(csv_path, spacing=0.1)
    assert "m.csv" in str(info.value)


def test_mask_and_duplicate_errors(dataset):
    write_image_atomic(dataset / "img" / "empty.png", np.zeros(IMAGE.shape, np.uint8))
    write_image_atomic(dataset / "img" / "small.png", np.ones((5, 5), np.uint8))
    for mask, match in (("img/empty.png", "is empty"), ("img/small.png", "differs")):
        csv_path = write_csv(dataset / "m.csv", ["image", "mask"], [["img/a.png", mask]])
        with pytest.raises(ValueError, match=f"line 2: .*{match}"):
            load_manifest(csv_path, spacing=0.1)
    csv_path = write_csv(
        dataset / "m.csv",
        ["image", "cx", "cy", "radius", "roi_id"],
        [["img/a.png", 5, 5, 2, "same"], ["img/b.npy", 5, 5, 2, "same"]],
    )
    with pytest.raises(ValueError, match="line 3: roi_id 'same' already used on line 2"):
        load_manifest(csv_path, spacing=0.1)


def test_parse_label():
    assert parse_label("Benign") == 0 and parse_label("1") == 1 and parse_label(0) == 0
    assert parse_label("benign without callback") == 0 and parse_label("actionable") == 1
    with pytest.raises(ValueError, match="unknown label"):
        parse_label("2")


def test_box_fields_by_name_whatever_the_column_order(dataset):
    """The manifest's row0,col0,row1,col1 (corners) and ROI.box (per-axis slices) differ in
    tuple order; both are Boxes read by field name, and the column order does not matter."""
    header = ["col1", "row1", "image", "col0", "row0", "spacing", "margin_mm"]
    csv_path = write_csv(dataset / "m.csv", header, [[30, 15, "img/a.png", 20, 10, 0.1, 0]])
    (roi,), _, _ = load_manifest(csv_path)
    box = roi.meta["bbox"]
    assert (box.row0, box.col0, box.row1, box.col1) == (10, 20, 15, 30)
    assert (roi.box.row0, roi.box.row1, roi.box.col0, roi.box.col1) == (10, 15, 20, 30)
    assert roi.box == (10, 15, 20, 30)  # still the old tuple for code that unpacks it
    assert roi.box.shape == roi.shape == (5, 10)
    np.testing.assert_array_equal(roi.image, IMAGE[roi.box.slices])
    assert roi.replace(meta={"roi_id": "r"}).box == roi.box  # survives replace


def test_a_spacing_column_that_contradicts_the_dicom_header_is_warned_about(dataset):
    import warnings

    from skcalc.exceptions import SkcalcWarning

    row = ["img/c.dcm", 10, 20, 15, 30, "", "", "", "", "benign", "P1", "E1", 0.07, 0, ""]
    csv_path = write_csv(dataset / "m.csv", HEADER, [row])
    with pytest.warns(SkcalcWarning, match=r"line 2: the 'spacing' column \(0.07 x 0.07 mm\) "
                                            r"overrides .*c.dcm's DICOM .*\(0.1 x 0.1 mm\)"):
        [roi], _, _ = load_manifest(csv_path)
    assert roi.spacing == (0.07, 0.07)  # the column still wins, as documented
    row[12] = 0.1  # agreeing: nothing to say
    write_csv(csv_path, HEADER, [row])
    with warnings.catch_warnings():
        warnings.simplefilter("error", SkcalcWarning)
        load_manifest(csv_path)
