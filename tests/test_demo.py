"""The README's main command and the segmentation demo, run as a user would."""

import json
import warnings

import pytest
from sklearn.metrics import roc_auc_score

from skcalc._demo import run_demo
from skcalc.cli import main
from skcalc.datasets import make_calcification_cohort
from skcalc.model_selection import grouped_train_test_split
from skcalc.pipeline import make_calcification_pipeline, paper_param_grid


@pytest.mark.slow
def test_quick_demo_writes_tables_figures_and_report(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    # n_jobs=None is one job (scikit-learn's convention); the deep baselines have their own
    # tests (tests/test_paper.py): skipped here to keep this test short.
    assert run_demo(out, quick=True, n_jobs=None, deep=False) == 0
    printed = capsys.readouterr().out
    for name in ("report.json", "table.txt", "report.html", "roc.png", "figure6_roc.png",
                 "example_overlay.png"):
        assert (out / name).is_file(), name
        assert str(out / name) in printed
    report = json.loads((out / "report.json").read_text())
    assert report["settings"]["n_jobs"] == 1 and report["settings"]["deep"] == []
    assert set(report["results"]) == {"bag of clusters", "mean/std baseline"}
    held_out = report["results"]["bag of clusters"]["held_out"]
    cm = held_out["confusion_matrix"]
    assert cm["tn"] + cm["fp"] + cm["fn"] + cm["tp"] == report["results"]["bag of clusters"][
        "n_test"
    ]
    # the reported AUC is the AUC of the reported held-out scores ...
    res = report["results"]["bag of clusters"]
    auc = held_out["metrics"]["roc_auc"]["value"]
    assert auc == pytest.approx(roc_auc_score(res["y_test"], res["y_score"]))
    # ... and, with this fixed seed, above chance (0.82 measured on 16 held-out images;
    # the method-learns test in tests/test_paper.py uses a larger held-out set)
    assert auc > 0.6
    assert report["grids"]["held_out"]["bag of clusters"] == paper_param_grid("quick")
    # the nested CV runs by default, fold 0 being the held-out split
    nested = report["nested_comparison"]
    assert nested["reused_fold0"] == ["bag of clusters", "mean/std baseline"]
    assert sorted(nested["models"]["bag of clusters"]["y_score"][0]) == sorted(res["y_score"])
    # the tables like the paper's
    table = (out / "table.txt").read_text()
    for row in ("Table 1", "Accuracy", "Sensitivity", "Specificity", "F1", "PPV", "ROC AUC",
                "actionable", "Nested CV", "Supplementary", "Biopsies avoided",
                "Features the final model uses most"):
        assert row in table and row in printed


def test_segment_demo_writes_an_overlay(tmp_path, capsys):
    assert main(["segment-demo", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert (tmp_path / "segment_demo_overlay.png").stat().st_size > 10_000
    assert "reference calcifications found" in printed


@pytest.mark.slow
def test_pipeline_finds_a_known_signal_on_held_out_exams():
    # difficulty=0: the classes differ by their cluster distributions only (ground-truth
    # features reach a held-out AUC of about 0.99); the full pipeline, trained on 70 % of
    # the exams, must rank the held-out exams' ROIs far better than chance. About 27 ROIs
    # are held out per cohort, so one cohort's AUC moves by several hundredths when the
    # segmentation changes a little: three cohorts (measured 0.83 / 1.00 / 0.94).
    aucs = []
    for seed in (0, 1, 2):
        rois, y, groups = make_calcification_cohort(80, difficulty=0.0, random_state=seed)
        train, test = grouped_train_test_split(y, groups, test_size=0.3, random_state=seed)
        assert not set(groups[train]) & set(groups[test])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pipe = make_calcification_pipeline(n_clusters=5).fit(
                [rois[i] for i in train], y[train])
            proba = pipe.predict_proba([rois[i] for i in test])[:, 1]
        assert y[test].sum() >= 5 and (1 - y[test]).sum() >= 5
        aucs.append(roc_auc_score(y[test], proba))
    assert min(aucs) > 0.75 and sum(aucs) / len(aucs) > 0.85, aucs
