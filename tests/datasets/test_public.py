"""CBIS-DDSM and INbreast loaders on tiny fixtures written in the documented layouts."""

import csv
import pickle
import plistlib

import numpy as np
import pytest

from skcalc import ROI
from skcalc.datasets import load_cbis_ddsm, load_inbreast
from skcalc.exceptions import SkcalcWarning
from skcalc.testing import write_dicom as _write_dicom

SHAPE = (60, 50)


def write_dicom(path, arr, bits=16, **attrs):
    # secondary capture, as the TCIA/INbreast conversions often are
    _write_dicom(path, arr, "MONOCHROME2", bits, sop_class="1.2.840.10008.5.1.4.1.1.7", **attrs)


def image_for(seed):
    return np.random.default_rng(seed).integers(0, 65535, size=SHAPE).astype(np.uint16)


CBIS_COLUMNS = [
    "patient_id", "breast density", "left or right breast", "image view", "abnormality id",
    "abnormality type", "calc type", "calc distribution", "assessment", "pathology",
    "subtlety", "image file path", "cropped image file path", "ROI mask file path",
]  # fmt: skip


def cbis_case(base, top, abn, seed, box, series_mask="1.000000-ROI mask images-77"):
    """Write a full mammogram and one abnormality's mask + crop in the TCIA layout."""
    full = base / top / "08-07-2016-DDSM-123" / "1.000000-full mammogram images-456" / "1-1.dcm"
    if not full.exists():
        write_dicom(full, image_for(seed))
    mask = np.zeros(SHAPE, np.uint8)
    r0, r1, c0, c1 = box
    mask[r0:r1, c0:c1] = 255
    roi_dir = base / f"{top}_{abn}" / "08-07-2016-DDSM-789"
    # Cropped image (small) first, then the mask, in the names TCIA uses.
    write_dicom(roi_dir / "1.000000-cropped images-12" / "1-1.dcm", image_for(seed)[:10, :10])
    write_dicom(roi_dir / series_mask / "1-2.dcm", mask, bits=8)
    uid = "1.3.6.1.4.1.9590.100.1.2.1"
    return [
        f"{top}/{uid}/{uid}/000000.dcm",
        f"{top}_{abn}/{uid}/{uid}/000000.dcm\n",
        f"{top}_{abn}/{uid}/{uid}/000001.dcm",
    ]


@pytest.fixture
def cbis_root(tmp_path):
    base = tmp_path / "manifest-123" / "CBIS-DDSM"
    rows = []
    specs = [
        ("P_00005", "RIGHT", "CC", 1, "AMORPHOUS", "MALIGNANT", (20, 30, 10, 20)),
        ("P_00005", "RIGHT", "MLO", 1, "AMORPHOUS-PLEOMORPHIC", "BENIGN", (5, 9, 40, 48)),
        ("P_00005", "RIGHT", "MLO", 2, "PLEOMORPHIC", "MALIGNANT", (30, 35, 30, 35)),
        ("P_00007", "LEFT", "CC", 1, "AMORPHOUS", "BENIGN_WITHOUT_CALLBACK", (50, 60, 0, 4)),
    ]
    for k, (pid, side, view, abn, ctype, path, box) in enumerate(specs):
        top = f"Calc-Training_{pid}_{side}_{view}"
        full, crop, mask = cbis_case(base, top, abn, seed=k if abn == 1 else k - 1, box=box)
        rows.append([pid, 3, side, view, abn, "calcification", ctype, "CLUSTERED", 4, path, 3,
                     full, crop, mask])  # fmt: skip
    csv_path = tmp_path / "manifest-123" / "calc_case_description_train_set.csv"
    with open(csv_path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(CBIS_COLUMNS)
        writer.writerows(rows)
    return tmp_path / "manifest-123"


# ROI.image re-reads the spacing-less DICOM on access; the loader already warned once.
@pytest.mark.filterwarnings("ignore:.*no pixel spacing in the DICOM header:UserWarning")
def test_cbis_ddsm_amorphous(cbis_root):
    with pytest.warns(SkcalcWarning, match="3 of 3 ROIs have no pixel spacing"):
        rois, y, groups = load_cbis_ddsm(cbis_root, "AMORPHOUS", "train")
    assert [r.roi_id for r in rois] == [
        "Calc-Training_P_00005_RIGHT_CC_1",
        "Calc-Training_P_00005_RIGHT_MLO_1",
        "Calc-Training_P_00007_LEFT_CC_1",
    ]
    assert y.tolist() == [1, 0, 0]
    assert groups.tolist() == ["P_00005", "P_00005", "P_00007"]  # patients: one visit, both breasts
    first = rois[0]
    assert first.is_lazy and first.spacing == (0.05, 0.05)
    assert first.box == (0, 60, 0, 50)  # mask 20:30, 10:20 grown by 2 mm = 40 px, clipped
    expected = np.zeros(SHAPE, bool)
    expected[20:30, 10:20] = True
    np.testing.assert_array_equal(first.region, expected)
    np.testing.assert_array_equal(first.image, image_for(0))
    assert rois[1].box == (0, 49, 0, 50)  # mask rows 5:9 + 40 px
    assert first.meta["laterality"] == "R" and first.meta["view"] == "CC"
    assert first.meta["mask_path"].endswith("1-2.dcm")
    assert rois[1].meta["calc_type"] == "AMORPHOUS-PLEOMORPHIC"


def test_cbis_calc_type_filter_margin_and_spacing(cbis_root):
    rois, y, _ = load_cbis_ddsm(cbis_root, ["pleomorphic"], spacing=0.1, margin_mm=0.2)
    assert [r.meta["abnormality_id"] for r in rois] == ["1", "2"]
    assert y.tolist() == [0, 1]
    assert rois[1].box == (28, 37, 28, 37) and rois[1].spacing == (0.1, 0.1)
    assert rois[1].region[2:7, 2:7].all() and rois[1].region.sum() == 25
    rois_all, _, _ = load_cbis_ddsm(cbis_root, None, spacing=0.05)
    assert len(rois_all) == 4


def test_cbis_missing_files(cbis_root):
    import shutil

    shutil.rmtree(cbis_root / "CBIS-DDSM" / "Calc-Training_P_00007_LEFT_CC_1")
    match = r"row 4 \(line \d+\): ROI folder 'Calc-Training_P_00007_LEFT_CC_1'"
    with pytest.raises(ValueError, match=match):
        load_cbis_ddsm(cbis_root, spacing=0.05)
    with pytest.warns(SkcalcWarning, match="skipped"):
        rois, y, _ = load_cbis_ddsm(cbis_root, spacing=0.05, skip_missing=True)
    assert len(rois) == 2
    with pytest.raises(FileNotFoundError, match="test_set"):
        load_cbis_ddsm(cbis_root, subset="test")
    with pytest.raises(ValueError, match="subset"):
        load_cbis_ddsm(cbis_root, subset="val")


def plist_xml(rois):
    items = [
        {
            "Name": name,
            "NumberOfPoints": len(points),
            "Point_px": [f"({x:.2f}, {y:.2f})" for x, y in points],
            "Point_mm": [f"({x * 0.07:.3f}, {y * 0.07:.3f}, 0)" for x, y in points],
            "Area": 0.0,
        }
        for name, points in rois
    ]
    doc = {"Images": [{"ImageIndex": 0, "NumberOfROIs": len(items), "ROIs": items}]}
    return plistlib.dumps(doc, fmt=plistlib.FMT_XML)


@pytest.fixture
def inbreast_root(tmp_path):
    root = tmp_path / "INbreast"
    dicoms = root / "AllDICOMs"
    write_dicom(dicoms / "20586908_6c613a14b80a8591_MG_R_CC_ANON.dcm", image_for(1),
                PixelSpacing=[0.07, 0.07])  # fmt: skip
    write_dicom(dicoms / "20586934_6c613a14b80a8591_MG_L_ML_ANON.dcm", image_for(2),
                PixelSpacing=[0.07, 0.07])  # fmt: skip
    (root / "AllXML").mkdir()
    (root / "AllXML" / "20586908.xml").write_bytes(
        plist_xml(
            [
                ("Calcification", [(10.4, 5.6)]),  # x=col, y=row -> dot at row 6, col 10
                ("Calcification", [(20, 20), (26, 20), (26, 24), (20, 24)]),
                ("Mass", [(0, 0), (40, 0), (40, 40)]),
                ("Cluster", [(5, 5), (30, 5), (30, 30)]),
            ]
        )
    )
    (root / "INbreast.csv").write_text(
        "Patient ID;Patient age;Laterality;View;Acquisition date;File Name;ACR;Bi-Rads\n"
        "removed;removed;R;CC;201001;20586908;2;4a\n"
        "removed;removed;L;MLO;201001;20586934;2;1\n"
    )
    return root


def test_inbreast(inbreast_root):
    rois = load_inbreast(inbreast_root)
    assert [r.roi_id for r in rois] == ["20586908", "20586934"]
    first, second = rois
    expected = np.zeros(SHAPE, bool)
    expected[6, 10] = True
    expected[20:25, 20:27] = True
    np.testing.assert_array_equal(first.reference, expected)
    assert first.spacing == (0.07, 0.07) and first.box is None and first.is_lazy
    np.testing.assert_array_equal(first.image, image_for(1))
    assert first.meta["n_calcifications"] == 2 and len(first.meta["clusters"]) == 1
    assert first.meta["patient_id"] == "6c613a14b80a8591"
    assert first.meta["exam_id"] == "6c613a14b80a8591" and first.meta["birads"] == "4a"
    assert second.meta["view"] == "MLO" and second.meta["annotated"] is False
    assert not second.reference.any() and second.reference.shape == SHAPE
    assert [r.roi_id for r in load_inbreast(inbreast_root, only_annotated=True)] == ["20586908"]
    assert len(load_inbreast(inbreast_root, image_ids=["20586934"])) == 1


def test_inbreast_references_are_rasterised_on_access(inbreast_root, monkeypatch):
    from skcalc.datasets import _public
    from skcalc.datasets._public import inbreast_rois, rasterise_calcifications
    from skcalc.roi import check_roi

    (inbreast_root / "AllXML" / "20586908.xml").write_bytes(
        plist_xml(
            [
                ("Calcification", [(10.4, 5.6)]),
                ("Calcification", [(3, 40), (12, 47)]),  # a line
                ("Calcification", [(20.2, 20.7), (31.6, 22.1), (26.4, 33.9)]),  # a polygon
                ("Calcification", [(48, 58), (60, 70), (55, 75)]),  # runs off the image
                ("Cluster", [(5, 5), (30, 5), (30, 30)]),
            ]
        )
    )
    annotations = inbreast_rois(inbreast_root / "AllXML" / "20586908.xml")
    expected = [rasterise_calcifications(annotations, SHAPE), np.zeros(SHAPE, bool)]

    def no_rasterising(*args, **kwargs):
        raise AssertionError("rasterised before roi.reference was read")

    monkeypatch.setattr(_public, "rasterise_calcifications", no_rasterising)
    rois = load_inbreast(inbreast_root)
    for roi in rois:
        # the record holds the points, not a full-size mask, and knows its shape
        assert not isinstance(roi._reference, np.ndarray) and roi.shape == SHAPE
        check_roi(roi, require=("reference",), load_image=False)
        assert not isinstance(roi.replace(meta={}).__getstate__()["reference"], np.ndarray)
    pickled = [pickle.loads(pickle.dumps(r)) for r in rois]
    assert not isinstance(pickled[0]._reference, np.ndarray)
    monkeypatch.undo()
    for roi, back, mask in zip(rois, pickled, expected):
        for r in (roi, back, roi.replace(meta={})):
            assert r.reference.dtype == bool
            np.testing.assert_array_equal(r.reference, mask)
    # the cache keys of a lazy record are those of one holding the mask
    fields = ("image", "region", "calcifications", "reference", "masks")
    eager = rois[0].replace(reference=rois[0].reference)
    assert rois[0].content_hash(fields) == eager.content_hash(fields)
    assert rois[0].content_hash(fields) != rois[0].replace(reference=None).content_hash(fields)


def test_inbreast_reference_pickles_small_for_a_full_size_image(tmp_path):
    # 3328 x 4084 is a full INbreast image: its mask is 13.6 MB, its points a few hundred bytes
    from skcalc.datasets._public import _LazyCalcificationMask

    dot = {"name": "Calcification", "points": np.array([[3000.2, 4000.7]])}
    roi = ROI(path=tmp_path / "x.dcm", reference=_LazyCalcificationMask([dot], (3328, 4084)))
    assert roi.shape == (3328, 4084) and len(pickle.dumps(roi)) < 2000
    dot["points"][0, 0] = 10  # the record does not follow the caller's arrays
    assert np.argwhere(roi.reference).tolist() == [[3000, 4001]]


def test_inbreast_errors(inbreast_root, tmp_path):
    with pytest.raises(FileNotFoundError, match="AllDICOMs"):
        load_inbreast(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="999"):
        load_inbreast(inbreast_root, image_ids=["999"])
    (inbreast_root / "AllXML" / "20586908.xml").write_text("<plist><dict><key>")
    with pytest.raises(ValueError, match="20586908.xml"):
        load_inbreast(inbreast_root)


def test_malformed_csvs_are_named(cbis_root, inbreast_root):
    csv_path = cbis_root / "calc_case_description_train_set.csv"
    good = csv_path.read_text()
    with open(csv_path, newline="") as fh:
        records = list(csv.reader(fh))

    def write(rows):
        with open(csv_path, "w", newline="") as fh:
            csv.writer(fh).writerows(rows)

    # a stray comma in the second record, then a cut one
    write([*records[:2], records[2] + ["extra"], *records[3:]])
    with pytest.raises(ValueError, match=r"row 2 \(line \d+\): 1 field\(s\) more than the header"):
        load_cbis_ddsm(cbis_root, "AMORPHOUS", "train")
    write([*records[:2], records[2][:5], *records[3:]])
    with pytest.raises(ValueError, match=r"row 2 \(line \d+\): 5 field\(s\), the header has 14"):
        load_cbis_ddsm(cbis_root, "AMORPHOUS", "train")
    # underscored column names: nothing would match; say which columns are missing
    csv_path.write_text(good.replace("calc type", "calc_type", 1))
    with pytest.raises(ValueError, match=r"no column\(s\) \['calc type'\]"):
        load_cbis_ddsm(cbis_root, "AMORPHOUS", "train")
    csv_path.write_text(good)
    with pytest.raises(ValueError, match=r"no row has calc type \['AMORPHUS'\]; the file has "
                                         r"\[.*'AMORPHOUS'"):
        load_cbis_ddsm(cbis_root, "AMORPHUS", "train")
    table = inbreast_root / "INbreast.csv"
    table.write_text(table.read_text() + "removed;removed;L;CC;201001;1;2;3;extra\n;;;;;;;\n")
    with pytest.raises(ValueError, match=r"INbreast.csv, row 3 \(line 4\): 1 field"):
        load_inbreast(inbreast_root)


def test_polygon_fill_matches_reference():
    """Filled polygon equals a point-in-polygon test of pixel centres (plus the outline)."""
    from matplotlib.path import Path as MplPath

    from skcalc.datasets._public import rasterise_calcifications

    pts = np.array([[3.0, 2.0], [12.0, 4.0], [9.0, 15.0], [2.0, 10.0]])  # (row, col)
    mask = rasterise_calcifications([{"name": "Calcification", "points": pts}], (16, 18))
    rr, cc = np.mgrid[:16, :18]
    inside = MplPath(pts).contains_points(np.c_[rr.ravel(), cc.ravel()]).reshape(16, 18)
    assert mask[inside].all()
    assert (mask & ~inside).sum() <= 2 * len(pts) + 30  # outline pixels only
