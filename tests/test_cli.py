"""End to end: DICOM files + manifest CSV -> skcalc train / predict / evaluate."""

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest

from skcalc.cli import main
from skcalc.datasets import make_calcification_cohort
from skcalc.io import load_manifest, parse_label, write_image_atomic
from skcalc.persistence import load_model
from skcalc.pipeline import make_calcification_pipeline
from skcalc.testing import write_dicom as _write_dicom

MG_SOP = "1.2.840.10008.5.1.4.1.1.1.2"
N_CLUSTERS = "5"
COLUMNS = ["roi_id", "probability", "decision", "threshold", "label"]


# Synthetic ROIs with 0-1 calcifications are valid and warned about; not the subject here.
pytestmark = pytest.mark.filterwarnings("ignore:.*fewer than two calcifications")


def write_dicom(path, image, spacing, patient_id):
    _write_dicom(
        path,
        np.asarray(image, dtype=np.uint16),
        sop_class=MG_SOP,
        Modality="MG",
        PatientID=patient_id,
        ImagerPixelSpacing=[float(spacing[0]), float(spacing[1])],
    )


def files_under(folder):
    return sorted(str(p.relative_to(folder)) for p in Path(folder).rglob("*"))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """24 synthetic ROIs as 12-bit DICOMs, half with a circle region, half with a mask PNG."""
    root = tmp_path_factory.mktemp("cohort")
    (root / "images").mkdir()
    rois, y, groups = make_calcification_cohort(n_rois=24, random_state=1)
    rows = []
    for i, roi in enumerate(rois):
        image_rel = f"images/{roi.roi_id}.dcm"
        write_dicom(root / image_rel, roi.image, roi.spacing, roi.meta["patient_id"])
        row = {
            "image": image_rel,
            "label": "malignant" if y[i] else "benign",
            "patient_id": roi.meta["patient_id"],
            "exam_id": groups[i],
            "roi_id": roi.roi_id,
        }
        region = roi.region_mask
        if i % 2:
            mask_rel = f"images/{roi.roi_id}_mask.png"
            write_image_atomic(root / mask_rel, region.astype(np.uint8) * 255)
            row["mask"] = mask_rel
        else:
            rr, cc = np.nonzero(region)
            row.update(
                cx=f"{cc.mean():.2f}",
                cy=f"{rr.mean():.2f}",
                radius=f"{np.sqrt(region.sum() / np.pi):.2f}",
            )
        rows.append(row)
    fields = ["image", "mask", "cx", "cy", "radius", "label", "patient_id", "exam_id", "roi_id"]
    with open(root / "manifest.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return root


@pytest.fixture(scope="module")
def reference(dataset):
    """The same pipeline as `skcalc train`, fitted in memory on the same manifest."""
    rois, y, _ = load_manifest(dataset / "manifest.csv")
    pipe = make_calcification_pipeline(n_clusters=int(N_CLUSTERS), random_state=0)
    pipe.fit(rois, y)
    return rois, y, pipe.predict_proba(rois)[:, 1]


@pytest.fixture(scope="module")
def trained(dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("train")
    before = files_under(dataset)
    model = out / "models" / "model.skops"
    assert main(["train", str(dataset / "manifest.csv"), "--out", str(model),
                 "--n-clusters", N_CLUSTERS, "--n-jobs", "1"]) == 0  # fmt: skip
    assert files_under(dataset) == before
    return model


def read_csv(path):
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        return reader.fieldnames, list(reader)


def test_manifest_reads_dicom_spacing_and_both_region_kinds(dataset):
    rois, y, groups = load_manifest(dataset / "manifest.csv")
    assert len(rois) == 24 and y.sum() == 7 and len(set(groups)) == 15
    assert all(r.spacing == (0.07, 0.07) for r in rois)
    assert {r.meta["spacing_source"] for r in rois} == {"DICOM ImagerPixelSpacing"}
    assert sum("mask" in r.meta for r in rois) == sum("circle" in r.meta for r in rois) == 12


def test_train_writes_model_whose_predictions_equal_in_memory(trained, reference, capsys):
    rois, _, proba = reference
    model, info = load_model(trained, return_metadata=True)
    np.testing.assert_array_equal(model.predict_proba(rois)[:, 1], proba)
    assert info["metadata"]["n_rois"] == 24 and info["metadata"]["n_actionable"] == 7
    assert info["metadata"]["params"]["n_clusters"] == int(N_CLUSTERS)
    assert sorted(os.listdir(trained.parent)) == ["model.skops"]  # no temporary left over


def test_predict_csv_matches_in_memory_model(dataset, trained, reference, tmp_path, capsys):
    rois, y, proba = reference
    out = tmp_path / "preds" / "p.csv"
    before = files_under(dataset)
    assert main(["predict", str(trained), str(dataset / "manifest.csv"), "--out", str(out)]) == 0
    assert files_under(dataset) == before
    assert os.listdir(tmp_path / "preds") == ["p.csv"]
    fields, rows = read_csv(out)
    assert fields == COLUMNS
    assert [r["roi_id"] for r in rows] == [r.roi_id for r in rois]
    got = np.array([float(r["probability"]) for r in rows])
    np.testing.assert_array_equal(got, proba)  # exact: written with repr()
    threshold = float(rows[0]["threshold"])
    assert threshold == 0.4
    expected = np.where(proba >= threshold, "actionable", "benign")
    assert [r["decision"] for r in rows] == expected.tolist()
    # truth in the same words as the decision, read back as 0/1 by the manifest's parser
    assert {r["label"] for r in rows} == {"benign", "actionable"}
    assert [parse_label(r["label"]) for r in rows] == y.tolist()
    assert str(out) in capsys.readouterr().out


def copy_manifest(dataset, dest, *, n_rows=None, label=True):
    """The dataset's manifest elsewhere (absolute paths), maybe shorter or without labels."""
    _, rows = read_csv(dataset / "manifest.csv")
    fields = ["image", "mask", "cx", "cy", "radius", "exam_id", "roi_id"]
    with open(dest, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields + ["label"] * label, extrasaction="ignore")
        writer.writeheader()
        for row in rows[:n_rows]:
            row["image"] = str(dataset / row["image"])
            row["mask"] = str(dataset / row["mask"]) if row["mask"] else ""
            writer.writerow(row)
    return dest


def test_predict_without_label_column(dataset, trained, tmp_path, capsys):
    manifest = copy_manifest(dataset, tmp_path / "nolabel.csv", label=False)
    out = tmp_path / "p.csv"
    assert main(["predict", str(trained), str(manifest), "--out", str(out)]) == 0
    fields, rows = read_csv(out)
    assert fields == COLUMNS[:-1] and len(rows) == 24
    # training needs labels: a clear message and exit code 1
    capsys.readouterr()
    assert main(["train", str(manifest), "--out", str(tmp_path / "m.skops")]) == 1
    assert "no 'label' column" in capsys.readouterr().err
    assert not (tmp_path / "m.skops").exists()


def test_evaluate_writes_report(dataset, tmp_path, capsys):
    out = tmp_path / "eval"
    before = files_under(dataset)
    code = main(["evaluate", str(dataset / "manifest.csv"), "--out", str(out), "--small-grid",
                 "--cv", "2", "--n-bootstrap", "20", "--n-clusters", N_CLUSTERS])  # fmt: skip
    assert code == 0
    assert files_under(dataset) == before
    assert sorted(os.listdir(out)) == ["metrics.csv", "model.skops", "predictions.csv",
                                       "report.html", "report.json", "roc.png", "table.txt"]
    report = json.loads((out / "report.json").read_text())
    assert report["settings"]["cv"] == 2 and report["held_out"]["n_bootstrap"] == 20
    assert set(report["best_params"]) == {"features__local__bag__n_clusters",
                                          "classify__threshold"}  # fmt: skip
    # held-out exams are not among the training exams
    rois, _, groups = load_manifest(dataset / "manifest.csv")
    exam = {r.roi_id: g for r, g in zip(rois, groups)}
    test_exams = {exam[i] for i in report["test_roi_ids"]}
    train_exams = {exam[r.roi_id] for r in rois if r.roi_id not in report["test_roi_ids"]}
    assert test_exams and not test_exams & train_exams
    assert report["n_test"] == len(report["test_roi_ids"]) == len(report["y_score"])
    header = (out / "metrics.csv").read_text().splitlines()[0]
    assert header == "evaluation,metric,value,ci_low,ci_high"
    assert "sensitivity" in (out / "table.txt").read_text().lower()
    printed = capsys.readouterr().out
    assert str(out / "report.json") in printed
    # per held-out ROI, in predict's columns: decision and label in words, the probability
    # exactly; the label reads back as the report's truth
    header, rows = read_csv(out / "predictions.csv")
    assert header == COLUMNS
    assert [r["roi_id"] for r in rows] == report["test_roi_ids"]
    assert [float(r["probability"]) for r in rows] == report["y_score"]
    assert [parse_label(r["label"]) for r in rows] == report["y_test"]
    for r in rows:
        assert r["decision"] == ("actionable" if float(r["probability"]) >= float(r["threshold"])
                                 else "benign")
    model = load_model(out / "model.skops")
    test_rois = [r for r in rois if r.roi_id in set(report["test_roi_ids"])]
    assert model.predict_proba(test_rois).shape == (len(test_rois), 2)
    html = (out / "report.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and "http://" not in html.replace(
        "http://www.w3.org", "")
    assert (out / "roc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # overwrite protection covers the new outputs too
    assert main(["evaluate", str(dataset / "manifest.csv"), "--out", str(out), "--small-grid",
                 "--cv", "2"]) == 1  # fmt: skip
    assert "already exists" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::skcalc.exceptions.SkcalcWarning")
def test_evaluate_paper_writes_every_result(dataset, tmp_path, capsys):
    out = tmp_path / "paper"
    code = main(["evaluate", "--paper", str(dataset / "manifest.csv"), "--out", str(out),
                 "--small-grid", "--no-deep", "--cv", "2", "--n-outer", "2",
                 "--n-bootstrap", "20", "--n-clusters", N_CLUSTERS])  # fmt: skip
    assert code == 0
    assert sorted(os.listdir(out)) == ["figure6_roc.png", "model.skops", "predictions.csv",
                                       "report.html", "report.json", "roc.png", "table.txt"]
    report = json.loads((out / "report.json").read_text())
    assert report["unit"] == "image" and report["settings"]["deep"] == []
    method = report["results"]["bag of clusters"]
    assert method["split"]["unit"] == "image" and method["exclusions"] is not None
    nested = report["nested_comparison"]
    assert list(nested["models"]) == ["bag of clusters", "mean/std baseline"]
    assert nested["reused_fold0"] == ["bag of clusters", "mean/std baseline"]
    assert len(nested["folds"]) == 2
    # fold 0 of the nested CV is the held-out split: same images, same scores
    fold0 = nested["models"]["bag of clusters"]["y_score"][0]
    assert sorted(fold0) == sorted(method["y_score"])
    assert len(report["held_out_image_ids"]) == method["n_test"]
    assert {r["threshold"] for r in report["supplementary_thresholds"]["bag of clusters"]} == {
        0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9}
    assert report["feature_importances"][0]["feature"].startswith(("local__", "global__"))
    assert set(report["biopsies_avoided"]) == {"bag of clusters", "mean/std baseline"}
    table = (out / "table.txt").read_text()
    printed = capsys.readouterr().out
    for part in ("Table 1", "Table 2", "Table 3", "Nested CV", "Supplementary",
                 "Biopsies avoided", "Features the final model uses most"):
        assert part in table and part in printed
    html = (out / "report.html").read_text()
    for part in ("Nested CV with every comparison", "Biopsies avoided", "Supplementary"):
        assert part in html
    header, rows = read_csv(out / "predictions.csv")
    assert header == COLUMNS  # predict's columns; each row a held-out image
    assert [r["roi_id"] for r in rows] == report["held_out_image_ids"]
    assert [parse_label(r["label"]) for r in rows] == method["y_test"]


def test_demo_options_follow_scikit_learn_conventions(capsys):
    from skcalc.cli import _build_parser

    args = _build_parser().parse_args(["demo"])
    assert args.n_jobs == -1 and args.nested and args.deep
    args = _build_parser().parse_args(["demo", "--no-nested", "--no-deep", "--n-jobs", "1"])
    assert (args.n_jobs, args.nested, args.deep) == (1, False, False)
    assert main(["demo", "--help"]) == 0
    assert "-1 = all cores" in " ".join(capsys.readouterr().out.split())


def write_manifest(folder, text):
    path = folder / "bad.csv"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ("image,cx,cy,radius,label,exam_id\nimages/missing.dcm,5,5,3,benign,E1\n", "line 2"),
        ("image,cx,cy,radius,label,exam_id\n{img},5,5,3,perhaps,E1\n", "unknown label"),
        ("image,cx,cy,radius,label,exam_id\n{img},5,5,-3,benign,E1\n", "radius"),
        ("image,cx,cy,radius,exam_id\n{img},5,5,3,E1\n", "no 'label' column"),
        ("image,cx,cy,radius,label\n{img},5,5,3,benign\n", "all 1 ROIs are benign"),
        ("image,cx,cy,radius,label,exam_id\n{img},5,5,3,benign,E1\n", "add actionable ones"),
        ("image,cx,cy,radius,label,exam_id,spacing\n{img},5,5,3,benign,E1,5\n", "line 2"),
    ],
)
def test_bad_manifest_exits_1_with_message(dataset, tmp_path, capsys, rows, message):
    img = sorted((dataset / "images").glob("*.dcm"))[0]
    manifest = write_manifest(tmp_path, rows.format(img=img))
    before = files_under(tmp_path)
    assert main(["train", str(manifest), "--out", str(tmp_path / "m.skops")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("skcalc train: error:") and message in err
    assert files_under(tmp_path) == before


def test_tune_needs_exam_ids(dataset, tmp_path, capsys):
    img = sorted((dataset / "images").glob("*.dcm"))[0]
    manifest = write_manifest(tmp_path, f"image,cx,cy,radius,label\n{img},5,5,3,benign\n")
    assert main(["train", str(manifest), "--out", str(tmp_path / "m.skops"), "--tune"]) == 1
    assert "exam_id" in capsys.readouterr().err


def test_evaluate_needs_enough_exams_per_class(dataset, tmp_path, capsys):
    code = main(["evaluate", str(dataset / "manifest.csv"), "--out", str(tmp_path / "e"),
                 "--cv", "6"])  # fmt: skip
    assert code == 1
    assert "at least 6 are needed" in capsys.readouterr().err
    assert not (tmp_path / "e" / "report.json").exists()


def test_predict_refuses_a_non_model_file(dataset, tmp_path, capsys):
    fake = tmp_path / "model.skops"
    fake.write_bytes(b"\x80\x04K\x01.")  # a pickle
    out = tmp_path / "p.csv"
    assert main(["predict", str(fake), str(dataset / "manifest.csv"), "--out", str(out)]) == 1
    assert "pickle" in capsys.readouterr().err and not out.exists()


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["frobnicate"],
        ["train", "manifest.csv"],  # --out missing
        ["predict", "model.skops"],
        ["evaluate", "m.csv", "--cv", "0"],
        ["train", "m.csv", "--out", "x", "--threshold", "1.5"],
    ],
)
def test_usage_errors_exit_2(argv, capsys):
    assert main(argv) == 2
    assert "usage:" in capsys.readouterr().err


def test_outputs_only_under_out(dataset, trained, tmp_path, monkeypatch):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    out = tmp_path / "p.csv"
    assert main(["predict", str(trained), str(dataset / "manifest.csv"), "--out", str(out)]) == 0
    assert os.listdir(cwd) == []
    assert sorted(os.listdir(tmp_path)) == ["cwd", "p.csv"]


def run_module(*args, cwd):
    # The skcalc under test, not whichever one is installed in the environment.
    import skcalc

    root = os.path.dirname(os.path.dirname(os.path.abspath(skcalc.__file__)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, "-m", "skcalc", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
        env=env,
    )


def test_python_m_entry_point_and_exit_codes(dataset, trained, reference, tmp_path):
    manifest = copy_manifest(dataset, tmp_path / "four.csv", n_rows=4)
    out = tmp_path / "sub.csv"
    done = run_module("predict", trained, manifest, "--out", out, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"predictions written to {out}" in done.stdout
    _, rows = read_csv(out)
    np.testing.assert_array_equal([float(r["probability"]) for r in rows], reference[2][:4])
    done = run_module("train", tmp_path / "missing.csv", "--out", tmp_path / "m", cwd=tmp_path)
    assert done.returncode == 1 and "does not exist" in done.stderr
    done = run_module("train", cwd=tmp_path)
    assert done.returncode == 2 and "usage:" in done.stderr
    assert sorted(os.listdir(tmp_path)) == ["four.csv", "sub.csv"]


def test_console_script_installed():
    exe = shutil.which("skcalc", path=os.path.dirname(sys.executable))
    if exe is None:
        pytest.skip("the skcalc console script is not installed next to this python")
    done = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.startswith("skcalc ")


def test_dicom_written_as_specified(dataset):
    path = sorted((dataset / "images").glob("*.dcm"))[0]
    ds = pydicom.dcmread(path)
    assert ds.PhotometricInterpretation == "MONOCHROME2" and ds.BitsStored == 12
    assert ds.pixel_array.dtype == np.uint16 and ds.pixel_array.max() <= 4095


def test_train_tune_stores_best_parameters(dataset, tmp_path, capsys):
    model_path = tmp_path / "tuned.skops"
    code = main(["train", str(dataset / "manifest.csv"), "--out", str(model_path), "--tune",
                 "--small-grid", "--cv", "2", "--n-jobs", "1"])  # fmt: skip
    assert code == 0
    model, info = load_model(model_path, return_metadata=True)
    best = info["metadata"]["best_params"]
    assert set(best) == {"features__local__bag__n_clusters", "classify__threshold"}
    params = model.get_params()
    assert all(params[k] == v for k, v in best.items())
    assert f"best parameters: {best}" in capsys.readouterr().out


# ------------------------------------------------------------------ outputs never destroy inputs
def test_predict_refuses_to_write_over_the_model(dataset, trained, tmp_path, capsys):
    """issue 11.2: ``predict model.skops m.csv --out model.skops`` turned the model into a CSV."""
    model = shutil.copy(trained, tmp_path / "model.skops")
    before = Path(model).read_bytes()
    symlink = tmp_path / "link.skops"
    symlink.symlink_to(model)
    hardlink = tmp_path / "hard.skops"
    os.link(model, hardlink)
    manifest = str(dataset / "manifest.csv")
    for out in (model, symlink, hardlink, tmp_path / "sub" / ".." / "model.skops"):
        for flags in ([], ["--overwrite"]):
            code = main(["predict", str(model), manifest, "--out", str(out), *flags])
            assert code == 1
            assert "refusing to write over an input" in capsys.readouterr().err
    assert main(["predict", str(model), manifest, "--out", manifest, "--overwrite"]) == 1
    assert Path(model).read_bytes() == before


def test_train_refuses_to_write_over_the_manifest(dataset, tmp_path, capsys):
    manifest = copy_manifest(dataset, tmp_path / "m.csv")
    before = manifest.read_bytes()
    assert main(["train", str(manifest), "--out", str(manifest), "--overwrite"]) == 1
    assert "refusing to write over an input" in capsys.readouterr().err
    assert manifest.read_bytes() == before
    # an image of the manifest is an input too
    img = str(dataset / "images" / sorted(os.listdir(dataset / "images"))[0])
    image_before = Path(img).read_bytes()
    assert main(["train", str(manifest), "--out", img, "--overwrite"]) == 1
    assert Path(img).read_bytes() == image_before


def test_existing_output_needs_overwrite(dataset, trained, tmp_path, capsys):
    manifest = copy_manifest(dataset, tmp_path / "four.csv", n_rows=4)
    out = tmp_path / "p.csv"
    out.write_text("keep me")
    argv = ["predict", str(trained), str(manifest), "--out", str(out)]
    assert main(argv) == 1
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    assert out.read_text() == "keep me"
    assert main([*argv, "--overwrite"]) == 0
    assert out.read_text().startswith("roi_id,")
    folder = tmp_path / "eval"
    folder.mkdir()
    (folder / "report.json").write_text("{}")
    code = main(["evaluate", str(manifest), "--out", str(folder), "--cv", "2"])
    assert code == 1 and "already exists" in capsys.readouterr().err
    assert (folder / "report.json").read_text() == "{}"


def test_unwritable_output_fails_before_the_work(dataset, trained, tmp_path, monkeypatch, capsys):
    import skcalc.cli as cli
    import skcalc.io

    def no_work(*args, **kwargs):
        raise AssertionError("the work started before the output was checked")

    monkeypatch.setattr(skcalc.io, "load_manifest", no_work)
    manifest = str(dataset / "manifest.csv")
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    out = blocker / "p.csv"
    assert main(["predict", str(trained), manifest, "--out", str(out)]) == 1
    assert "is not a folder" in capsys.readouterr().err

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(cli.tempfile, "mkstemp", refuse)
    code = main(["train", manifest, "--out", str(tmp_path / "ro" / "m.skops")])
    assert code == 1
    err = capsys.readouterr().err
    assert "cannot write in" in err and "Permission denied" in err
    assert not (tmp_path / "ro").exists()


def test_killed_write_leftover_is_cleaned_on_the_next_run(dataset, trained, tmp_path, capsys):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    dead_pid = int(dead.stdout)
    manifest = copy_manifest(dataset, tmp_path / "four.csv", n_rows=4)
    out = tmp_path / "out" / "p.csv"
    out.parent.mkdir()
    stale = out.parent / f".p.csv.{dead_pid}.k2j4h5g6.tmp.csv"
    stale.write_text("half a file")
    legacy = out.parent / ".p.csv.a1b2c3d4.tmp.csv"  # written before pids were recorded
    legacy.write_text("half a file")
    running = out.parent / f".p.csv.{os.getpid()}.zzzzzzzz.tmp.csv"  # a writer still at work
    running.write_text("being written")
    other = out.parent / ".notes.txt.a1b2c3d4.tmp.txt"
    other.write_text("not ours to clean")
    assert main(["predict", str(trained), str(manifest), "--out", str(out)]) == 0
    assert sorted(os.listdir(out.parent)) == sorted(["p.csv", running.name, other.name])


# ------------------------------------------------------------------ the model decides
def test_predict_uses_the_models_own_decisions(dataset, trained, tmp_path, capsys):
    """issue 10.7: the CLI thresholded P(actionable) itself (``"auto"`` -> 0.5)."""
    from sklearn.linear_model import LogisticRegression

    from skcalc.classification import ThresholdedClassifier
    from skcalc.persistence import save_model

    rois, y, _ = load_manifest(dataset / "manifest.csv")
    model = load_model(trained)
    features = model[:-2].transform(rois)
    clf = ThresholdedClassifier(
        LogisticRegression(C=0.01, max_iter=1000), threshold=0.0,
        response_method="decision_function",
    ).fit(features, y)  # fmt: skip
    model.steps[-1] = ("classify", clf)
    path = save_model(model, tmp_path / "decision.skops")
    out = tmp_path / "p.csv"
    assert main(["predict", str(path), str(dataset / "manifest.csv"), "--out", str(out)]) == 0
    _, rows = read_csv(out)
    want = np.where(model.predict(rois) == 1, "actionable", "benign")
    assert [r["decision"] for r in rows] == want.tolist()
    assert len(set(want)) == 2  # a threshold of 0 on probabilities would call all actionable
    got = np.array([float(r["probability"]) for r in rows])
    np.testing.assert_array_equal(got, model.predict_proba(rois)[:, 1])


def test_train_without_tune_needs_no_exam_ids(dataset, tmp_path, capsys):
    _, rows = read_csv(dataset / "manifest.csv")
    manifest = tmp_path / "no_exams.csv"
    with open(manifest, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["image", "mask", "cx", "cy", "radius", "label"])
        for row in rows:
            mask = str(dataset / row["mask"]) if row["mask"] else ""
            writer.writerow([str(dataset / row["image"]), mask, row["cx"], row["cy"],
                             row["radius"], row["label"]])  # fmt: skip
    out = tmp_path / "m.skops"
    assert main(["train", str(manifest), "--out", str(out), "--n-clusters", N_CLUSTERS,
                 "--n-jobs", "1"]) == 0  # fmt: skip
    assert load_model(out, return_metadata=True)[1]["metadata"]["n_exams"] is None


# ------------------------------------------------------------------ progress and verbosity
@pytest.fixture
def four(dataset, tmp_path):
    return copy_manifest(dataset, tmp_path / "four.csv", n_rows=4)


def fake_tty(monkeypatch, value=True):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: value, raising=False)


def test_progress_on_a_terminal(trained, four, tmp_path, monkeypatch, capsys):
    fake_tty(monkeypatch)
    out = tmp_path / "p.csv"
    assert main(["predict", str(trained), str(four), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "scoring 4 ROIs ..." in captured.err
    assert "scoring 4 ROIs: done in" in captured.err
    assert "loading the model" in captured.err and "reading the manifest" in captured.err
    assert f"predictions written to {out}" in captured.out
    assert "scoring" not in captured.out  # progress never mixes with results


def test_no_progress_when_stderr_is_not_a_terminal(trained, four, tmp_path, monkeypatch, capsys):
    fake_tty(monkeypatch, False)
    assert main(["predict", str(trained), str(four), "--out", str(tmp_path / "p.csv")]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and "predictions written" in captured.out


def test_quiet_and_verbose(trained, four, tmp_path, monkeypatch, capsys):
    fake_tty(monkeypatch)
    out = tmp_path / "p.csv"
    assert main(["predict", "-q", str(trained), str(four), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == "" and out.exists()
    out.unlink()
    assert main(["predict", "-v", str(trained), str(four), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "scoring 4 ROIs: " in captured.out  # step durations in the log
    # -q still reports errors
    assert main(["predict", "-q", str(trained), str(four), "--out", str(out)]) == 1
    assert "already exists" in capsys.readouterr().err
    # and nothing else: no library's warning either, in this process or its workers
    import warnings

    import skcalc.cli as cli

    real = cli._threshold_text

    def noisy(model):
        warnings.warn("a library's notice", UserWarning, stacklevel=1)
        assert os.environ.get("PYTHONWARNINGS") == "ignore"
        return real(model)

    monkeypatch.setattr(cli, "_threshold_text", noisy)
    monkeypatch.delenv("PYTHONWARNINGS", raising=False)
    out.unlink()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        assert main(["predict", "-q", str(trained), str(four), "--out", str(out)]) == 0
    assert not seen and capsys.readouterr().err == ""
    assert "PYTHONWARNINGS" not in os.environ


@pytest.mark.parametrize("command", ["demo", "train", "predict", "evaluate", "segment",
                                     "segment-demo", "features"])  # fmt: skip
def test_every_command_takes_verbosity_and_overwrite(command, capsys):
    assert main([command, "--help"]) == 0
    text = capsys.readouterr().out
    assert "--verbose" in text and "--quiet" in text and "--overwrite" in text
    if command in ("train", "predict", "evaluate", "segment", "features"):
        assert "--spacing" in text


def test_manifest_spacing_option(dataset, trained, tmp_path, capsys):
    """The manifest error says what to do; --spacing is the option it names."""
    _, rows = read_csv(dataset / "manifest.csv")
    npy = tmp_path / "roi.npy"
    np.save(npy, pydicom.dcmread(dataset / rows[0]["image"]).pixel_array)
    manifest = tmp_path / "npy.csv"
    row = rows[0]  # a circle region with calcifications
    manifest.write_text(f"image,cx,cy,radius\n{npy},{row['cx']},{row['cy']},{row['radius']}\n")
    out = tmp_path / "p.csv"
    assert main(["predict", str(trained), str(manifest), "--out", str(out)]) == 1
    assert "--spacing" in capsys.readouterr().err
    assert main(["predict", str(trained), str(manifest), "--out", str(out), "--spacing", "70"]) == 1
    assert "plausible" in capsys.readouterr().err
    code = main(["predict", str(trained), str(manifest), "--out", str(out), "--spacing", "0.07"])
    assert code == 0, capsys.readouterr().err


def test_an_unreadable_image_is_named_by_roi_and_line(dataset, trained, tmp_path, capsys):
    manifest = copy_manifest(dataset, tmp_path / "m.csv")
    fields, rows = read_csv(manifest)
    broken = tmp_path / "broken.dcm"
    broken.write_bytes(Path(rows[2]["image"]).read_bytes()[:-5000])
    rows[2]["image"] = str(broken)
    with open(manifest, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    for argv in (["train", str(manifest), "--out", str(tmp_path / "t.skops")],
                 ["predict", str(trained), str(manifest), "--out", str(tmp_path / "p.csv")]):
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert f"ROI {rows[2]['roi_id']!r} (line 4)" in err and "broken.dcm" in err
    assert not (tmp_path / "t.skops").exists() and not (tmp_path / "p.csv").exists()


def test_predict_scores_images_with_a_model_whose_unit_is_the_image(dataset, trained, tmp_path,
                                                                    capsys):
    from skcalc.persistence import load_model, save_model
    from skcalc.samples import pool_by_image

    model = load_model(trained)
    by_image = tmp_path / "image_model.skops"
    save_model(model, by_image, metadata={"unit": "image"})
    manifest = copy_manifest(dataset, tmp_path / "m.csv", n_rows=4)
    fields, rows = read_csv(manifest)
    extra = dict(rows[0], roi_id=rows[0]["roi_id"] + "-b", label="malignant")
    with open(manifest, "a", newline="") as fh:  # a second region of the first image
        csv.DictWriter(fh, fieldnames=fields).writerow(extra)
    out = tmp_path / "p.csv"
    assert main(["predict", str(by_image), str(manifest), "--out", str(out)]) == 0
    assert "5 ROIs pooled into 4 images" in capsys.readouterr().out
    _, got = read_csv(out)
    assert [r["roi_id"] for r in got] == [r["roi_id"] for r in rows] + [extra["roi_id"]]
    assert got[0]["probability"] == got[4]["probability"]  # both regions: their image's score
    rois, _, _ = load_manifest(manifest)
    images, _, _ = pool_by_image(rois)
    want = model.predict_proba(images)[:, 1]
    np.testing.assert_array_equal([float(r["probability"]) for r in got[:4]], want)
    assert got[4]["label"] == "actionable"  # each row keeps its own ROI's truth


def test_evaluate_nested_meanstd_prints_its_own_results(dataset, tmp_path, capsys):
    out = tmp_path / "eval"
    assert main(["evaluate", str(dataset / "manifest.csv"), "--out", str(out), "--small-grid",
                 "--cv", "2", "--n-bootstrap", "10", "--aggregation", "meanstd", "--nested",
                 "--n-outer", "2"]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    table = (out / "table.txt").read_text()
    assert "mean/std baseline" in table and "bag of clusters" not in table
    report = json.loads((out / "report.json").read_text())
    auc = report["nested_cv"]["roc_auc"]
    line = f"  roc_auc      {auc['mean']:.2f} +- {auc['std']:.2f}"
    assert line in table and line in printed
