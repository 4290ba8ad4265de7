"""The README's main command and the segmentation demo, run as a user would."""

import json

import pytest

from skcalc.cli import main


@pytest.mark.slow
def test_quick_demo_writes_tables_figures_and_report(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["demo", "--quick", "--out", str(out), "--n-jobs", "1"]) == 0
    printed = capsys.readouterr().out
    for name in ("report.json", "table.txt", "roc.png", "example_overlay.png"):
        assert (out / name).is_file(), name
        assert str(out / name) in printed
    report = json.loads((out / "report.json").read_text())
    assert set(report["results"]) == {"bag of clusters", "mean/std baseline"}
    held_out = report["results"]["bag of clusters"]["held_out"]
    cm = held_out["confusion_matrix"]
    assert cm["tn"] + cm["fp"] + cm["fn"] + cm["tp"] == report["results"]["bag of clusters"][
        "n_test"
    ]
    assert 0.0 <= held_out["metrics"]["roc_auc"]["value"] <= 1.0
    # the table like the paper's Tables 2 and 3
    table = (out / "table.txt").read_text()
    for row in ("Accuracy", "Sensitivity", "Specificity", "F1", "PPV", "ROC AUC", "actionable"):
        assert row in table


def test_segment_demo_writes_an_overlay(tmp_path, capsys):
    assert main(["segment-demo", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert (tmp_path / "segment_demo_overlay.png").stat().st_size > 10_000
    assert "reference calcifications found" in printed
