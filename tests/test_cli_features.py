"""``skcalc features MANIFEST --out CSV``: one row per segmented calcification."""

import csv
import sys

import numpy as np
import pandas as pd
import pydicom
import pytest
from PIL import Image
from scipy import ndimage as ndi

from skcalc.cli import main
from skcalc.datasets import make_calcification_cohort
from skcalc.features import LocalFeatureExtractor, local_feature_names, local_features_table
from skcalc.features._local import FRAME_PREFIXES, GEOMETRY_COLUMNS
from skcalc.io import load_manifest
from skcalc.masks import MaskBuilder
from skcalc.segmentation import HDoGRegSegmenter
from skcalc.testing import write_dicom

pytestmark = pytest.mark.filterwarnings("ignore:.*calcification")

MG_SOP = "1.2.840.10008.5.1.4.1.1.1.2"
OFFSET = (20, 30)  # each ROI sits this far (rows, cols) inside a larger image


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    """4 ROIs as 12-bit DICOMs, each inside a larger flat image; boxes as row0,col0,row1,col1."""
    root = tmp_path_factory.mktemp("features")
    rois, y, groups = make_calcification_cohort(n_rois=4, random_state=1)
    rows = []
    for i, roi in enumerate(rois):
        h, w = roi.image.shape
        full = np.full((h + OFFSET[0], w + OFFSET[1]), np.median(roi.image), dtype=np.uint16)
        full[OFFSET[0] :, OFFSET[1] :] = roi.image
        path = root / f"{roi.roi_id}.dcm"
        write_dicom(path, full, sop_class=MG_SOP, Modality="MG", ImagerPixelSpacing=[0.07, 0.07])
        rr, cc = np.nonzero(roi.region_mask)
        rows.append([path.name, rr.min() + OFFSET[0], cc.min() + OFFSET[1],
                     rr.max() + 1 + OFFSET[0], cc.max() + 1 + OFFSET[1],
                     "malignant" if y[i] else "benign", groups[i], roi.roi_id])  # fmt: skip
    path = root / "manifest.csv"
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["image", "row0", "col0", "row1", "col1", "label", "exam_id", "roi_id"])
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def in_memory(manifest):
    """The objects the model sees: the manifest through the pipeline's first two stages."""
    rois, y, _ = load_manifest(manifest)
    return rois, y, MaskBuilder().fit_transform(HDoGRegSegmenter().fit_transform(rois))


@pytest.fixture(scope="module")
def table(manifest, in_memory, tmp_path_factory):
    out = tmp_path_factory.mktemp("out") / "features.csv"
    assert main(["features", str(manifest), "--out", str(out)]) == 0
    return out


def test_one_row_per_calcification_with_pyradiomics_names(table, in_memory):
    rois, y, masked = in_memory
    with open(table, newline="") as fh:
        header = next(csv.reader(fh))
    frame = pd.read_csv(table)
    n_objects = [int(r.masks.foreground.max()) for r in masked]
    assert sum(n_objects) > 10 and len(frame) == sum(n_objects)
    assert frame.groupby("roi_id").size().reindex([r.roi_id for r in rois]).tolist() == n_objects
    # ids first (the manifest's image, exam and ROI label beside the object label) ...
    assert header[:4] == ["roi_id", "image", "exam_id", "roi_label"]
    assert header[4 : 4 + len(GEOMETRY_COLUMNS) - 1] == list(GEOMETRY_COLUMNS[1:])
    words = {r.roi_id: "actionable" if v else "benign" for r, v in zip(rois, y)}
    assert (frame["roi_label"] == frame["roi_id"].map(words)).all()
    # ... then every feature under its pyradiomics batch-mode name
    names = local_feature_names()
    features = [FRAME_PREFIXES[s] + n for s in names for n in names[s]]
    assert header[4 + len(GEOMETRY_COLUMNS) - 1 :] == features
    assert "fg_original_firstorder_Mean" in header and "bg_original_glcm_Contrast" in header
    assert np.isfinite(frame["fg_original_firstorder_Mean"]).all()
    # the values are the extractor's, exactly (the CSV's floats read back bit for bit)
    want = local_features_table(LocalFeatureExtractor().fit_transform(masked))
    np.testing.assert_array_equal(frame[features].to_numpy(), want[features].to_numpy())


def test_positions_are_in_the_image_files_pixels_and_mm(table, in_memory):
    rois, _, masked = in_memory
    frame = pd.read_csv(table)
    for roi, m in zip(rois, masked):
        rows = frame[frame["roi_id"] == roi.roi_id].sort_values("label")
        fg = m.masks.foreground
        full = pydicom.dcmread(roi.path).pixel_array
        for _, row in rows.iterrows():
            rr, cc = np.nonzero(fg == row["label"])
            # crop coordinates + the crop's origin in the file
            assert row["bbox_row_min_px"] == rr.min() + roi.box[0]
            assert row["bbox_col_max_px"] == cc.max() + 1 + roi.box[2]
            assert row["centroid_row_px"] == pytest.approx(rr.mean() + roi.box[0])
            assert row["area_px"] == rr.size
            # the file's own pixels there are the object's: brighter than the ring of file
            # pixels around it (a bright spot, not necessarily brighter than the crop)
            ring = ndi.binary_dilation(fg == row["label"], iterations=2) & (fg != row["label"])
            r2, c2 = np.nonzero(ring)
            obj = full[rr + roi.box[0], cc + roi.box[2]].astype(float)
            assert obj.mean() > full[r2 + roi.box[0], c2 + roi.box[2]].mean()
        for col in ("centroid_row", "bbox_col_min", "bbox_row_max"):
            np.testing.assert_allclose(rows[f"{col}_mm"], rows[f"{col}_px"] * 0.07)
        np.testing.assert_allclose(rows["area_mm2"], rows["area_px"] * 0.07**2)


def test_progress_quiet_and_overwrite(manifest, table, tmp_path, monkeypatch, capsys):
    out = tmp_path / "f.csv"
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    argv = ["features", str(manifest), "--out", str(out), "--feature-sets", "fg_regionprops"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "segmenting 4 ROIs ..." in captured.err and "calcifications: done in" in captured.err
    assert f"written to {out}" in captured.out and "segmenting" not in captured.out
    frame = pd.read_csv(out)
    assert len(frame) == len(pd.read_csv(table))  # same objects, fewer features
    assert frame.columns[-1] == "rp_intensity_min"
    assert not any(c.startswith(("fg_orig", "bg_orig")) for c in frame)
    # an existing output needs --overwrite; -q prints nothing, errors still
    assert main(argv + ["-q"]) == 1
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    assert main(argv + ["-q", "--overwrite"]) == 0
    assert capsys.readouterr() == ("", "")
    # never over an input
    assert main(["features", str(manifest), "--out", str(manifest), "--overwrite"]) == 1
    assert "refusing to write over an input" in capsys.readouterr().err


def test_errors_name_the_problem(manifest, tmp_path, capsys):
    out = tmp_path / "f.csv"
    code = main(["features", str(manifest), "--out", str(out), "--feature-sets", "fg_radiomix"])
    assert code == 1 and "fg_radiomix" in capsys.readouterr().err
    # a file whose pixels are damaged: the message names it
    text = manifest.read_text().splitlines()
    bad_image = manifest.parent / text[1].split(",")[0]
    broken = tmp_path / "broken.dcm"
    broken.write_bytes(bad_image.read_bytes()[:-5000])
    bad = tmp_path / "bad.csv"
    bad.write_text(f"{text[0]}\n{str(broken)},{','.join(text[1].split(',')[1:])}\n")
    assert main(["features", str(bad), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("skcalc features: error:") and "broken.dcm" in err
    roi_id = text[1].split(",")[-1]
    assert f"ROI {roi_id!r} (line 2)" in err  # the manifest row, not only the file
    assert not out.exists()
    # no spacing anywhere: the error names the line and the option to use
    npy = tmp_path / "roi.npy"
    np.save(npy, pydicom.dcmread(bad_image).pixel_array)
    bad.write_text(f"{text[0]}\n{npy},{','.join(text[1].split(',')[1:])}\n")
    assert main(["features", str(bad), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "line 2" in err and "--spacing" in err
    assert main(["features", str(bad), "--out", str(out), "--spacing", "0.07", "-q"]) == 0


def test_segment_writes_one_row_per_object(manifest, tmp_path, capsys):
    """``skcalc segment`` writes the per-object table beside the label image (point 4)."""
    image = sorted(manifest.parent.glob("*.dcm"))[0]
    out = tmp_path / "seg"
    assert main(["segment", str(image), "--out", str(out), "-q"]) == 0
    labels = np.asarray(Image.open(out / f"{image.stem}_labels.png"))
    frame = pd.read_csv(out / f"{image.stem}_objects.csv")
    assert len(frame) == labels.max() > 0
    assert frame["label"].tolist() == list(range(1, labels.max() + 1))
    np.testing.assert_array_equal(frame["area_px"], np.bincount(labels.ravel())[1:])
    rr, cc = np.nonzero(labels == 1)
    assert frame.loc[0, "centroid_row_px"] == pytest.approx(rr.mean())
    assert frame.loc[0, "bbox_col_max_px"] == cc.max() + 1


def test_roi_without_calcification_adds_no_row_and_is_named(tmp_path, capsys, recwarn):
    rng = np.random.default_rng(0)
    flat = (1500 + rng.integers(0, 20, (200, 200))).astype(np.uint16)
    write_dicom(tmp_path / "flat.dcm", flat, ImagerPixelSpacing=[0.07, 0.07])
    manifest = tmp_path / "m.csv"
    manifest.write_text("image,row0,col0,row1,col1,label,roi_id\nflat.dcm,50,50,150,150,0,F1\n")
    out = tmp_path / "f.csv"
    assert main(["features", str(manifest), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "0 calcifications" in printed and "1 ROI(s) without calcification" in printed
    assert "['F1']" in printed
    frame = pd.read_csv(out)
    assert len(frame) == 0 and list(frame.columns[:4]) == ["roi_id", "image", "roi_label", "label"]
    # the result line says it: no notice about the model's features of empty ROIs
    assert not [w for w in recwarn if "no calcification" in str(w.message)]
    assert main(["features", str(manifest), "--out", str(out), "--n-jobs", "0"]) == 2
    assert "0 jobs has no meaning" in capsys.readouterr().err


def test_discretisation_options_reach_the_extractor(manifest, in_memory, table, tmp_path,
                                                    capsys):
    import argparse

    from skcalc.cli import _pipeline_from_args

    out = tmp_path / "bw.csv"
    assert main(["features", str(manifest), "--out", str(out), "--bin-width", "2", "-q"]) == 0
    got = pd.read_csv(out)
    _, _, masked = in_memory
    want = local_features_table(LocalFeatureExtractor(bin_width=2.0).fit_transform(masked))
    col = "fg_original_glcm_JointEntropy"
    np.testing.assert_allclose(got[col], want[col], rtol=1e-6)
    assert not np.allclose(got[col], pd.read_csv(table)[col], equal_nan=True)
    # too fine a width for the objects' range: the error names the CLI's options
    assert main(["features", str(manifest), "--out", str(out), "--overwrite",
                 "--bin-width", "0.05"]) == 1
    assert "(options --bin-width W or --bin-count N)" in capsys.readouterr().err
    assert main(["features", str(manifest), "--out", str(out), "--bin-width", "2",
                 "--bin-count", "8"]) == 2  # one or the other: a usage error
    # train / evaluate build the model with them
    args = argparse.Namespace(n_clusters=15, threshold=0.4, aggregation="bag", n_jobs=None,
                              random_state=0, bin_width=None, bin_count=16)
    params = _pipeline_from_args(args).get_params()
    assert params["features__local__extract__bin_count"] == 16
    assert params["features__local__extract__bin_width"] == 5.0
