"""The paper's comparisons: nested CV on shared outer folds, fold 0 reused, the tables."""

import dataclasses
import warnings

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline

from skcalc._paper import (
    biopsies_avoided,
    format_nested_table,
    metrics_at_threshold,
    outer_folds,
    run_paper_comparison,
    threshold_table,
)
from skcalc.classification import ThresholdedClassifier
from skcalc.datasets import make_calcification_cohort
from skcalc.deep import imagenet_or_random
from skcalc.metrics import clinical_report
from skcalc.model_selection import ProtocolResult, grid_search, grouped_train_test_split
from skcalc.pipeline import make_calcification_pipeline
from skcalc.samples import pool_by_image


@pytest.fixture(scope="module")
def tabular():
    """60 samples of 30 exams with a weak linear signal: fast stand-ins for the pipelines."""
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(30), 2)
    y = (np.arange(60) % 3 == 0).astype(int)
    X = rng.normal(size=(60, 4)) + y[:, None] * np.array([1.0, 0.5, 0.0, 0.0])
    return X, y, groups


def logistic():
    return Pipeline([("classify", ThresholdedClassifier(LogisticRegression(), threshold=0.4))])


GRID = {"classify__estimator__C": [0.1, 1.0]}


def test_outer_fold_0_is_the_held_out_split(tabular):
    _, y, groups = tabular
    folds = outer_folds(y, groups, n_outer=4, random_state=3)
    train, test = grouped_train_test_split(y, groups, test_size=0.25, random_state=3)
    assert np.array_equal(folds[0][0], train) and np.array_equal(folds[0][1], test)
    # the outer folds partition the samples, whole exams on one side
    assert sorted(np.concatenate([te for _, te in folds]).tolist()) == list(range(len(y)))
    for tr, te in folds:
        assert not set(groups[tr]) & set(groups[te])


def test_metrics_and_tables_agree_with_their_definitions():
    y = np.array([0, 0, 0, 0, 1, 1, 1])
    s = np.array([0.1, 0.3, 0.45, 0.8, 0.35, 0.6, 0.9])
    m = metrics_at_threshold(y, s, 0.4)
    rep = clinical_report(y, s, threshold=0.4, n_bootstrap=0)
    for key in ("sensitivity", "specificity", "ppv", "npv", "f1", "accuracy", "roc_auc"):
        assert m[key] == pytest.approx(rep["metrics"][key]["value"])
    rows = threshold_table(y, s, [0.2, 0.4, 0.7])
    assert [r["tp"] for r in rows] == [3, 2, 1] and [r["tn"] for r in rows] == [1, 2, 3]
    # 0.35 is the lowest actionable score: at most the 2 benign below it are spared
    b = biopsies_avoided(y, s, 0.4)
    assert b["at_threshold"] is None and b["false_negatives_at_threshold"] == 1
    assert b["best"] == {"n": 2, "threshold": 0.35, "benign_fraction": 0.5,
                         "all_fraction": 2 / 7}
    assert biopsies_avoided(y, s, 0.3)["at_threshold"]["n"] == 1


def _held_out(pipe, X, y, groups, random_state):
    train, test = grouped_train_test_split(y, groups, test_size=0.25, random_state=random_state)
    search = grid_search(pipe, X[train], y[train], groups[train], GRID, cv=3,
                         random_state=random_state)
    score = search.best_estimator_.predict_proba(X[test])[:, 1]
    return ProtocolResult(best_params=search.best_params_, report={}, y_test=y[test],
                          y_score=score, test_index=test, threshold=0.4, search=search)


def test_nested_table_matches_the_per_fold_results_and_reuses_fold_0(tabular):
    X, y, groups = tabular
    held = _held_out(logistic(), X, y, groups, 1)
    # Marked scores: if fold 0 is reused they are what fold 0 reports.
    held = dataclasses.replace(held, y_score=np.where(held.y_test == 1, 0.9, 0.1))
    comp = run_paper_comparison(list(X), y, groups, {"logistic": logistic()},
                                {"logistic": GRID}, held_out={"logistic": held}, cv=3,
                                deep=(), random_state=1)
    m = comp.models["logistic"]
    assert comp.reused_fold0 == ["logistic"]
    assert m["per_fold"][0]["roc_auc"] == 1.0 and m["per_fold"][0]["sensitivity"] == 1.0
    assert len(m["per_fold"]) == len(comp.folds) == 4
    for k, (fold, pf) in enumerate(zip(comp.folds, m["per_fold"])):
        test = np.asarray(fold["test"])
        assert pf["roc_auc"] == pytest.approx(roc_auc_score(y[test], m["y_score"][k]))
        assert pf["tp"] + pf["fn"] == y[test].sum() == fold["n_test_actionable"]
    # folds 1-3 were searched anew: each has its own grid winner
    assert all("classify__estimator__C" in pf["best_params"] for pf in m["per_fold"][1:])
    for key in ("roc_auc", "sensitivity", "specificity"):
        vals = [pf[key] for pf in m["per_fold"]]
        assert m["summary"][key]["mean"] == pytest.approx(np.mean(vals))
        assert m["summary"][key]["std"] == pytest.approx(np.std(vals))
    table = format_nested_table(comp)
    line = next(row for row in table.splitlines() if row.startswith("logistic"))
    assert f"{m['summary']['roc_auc']['mean']:.2f}+-{m['summary']['roc_auc']['std']:.2f}" in line
    assert "fold 0 is the held-out split" in table
    # the held-out predictions of fold 0 are the figure's and the supplementary table's
    yt, ys, thr = comp.held_out("logistic")
    assert np.array_equal(yt, held.y_test) and np.array_equal(ys, held.y_score)


def test_a_held_out_split_that_is_not_fold_0_is_refused(tabular):
    X, y, groups = tabular
    held = _held_out(logistic(), X, y, groups, 2)  # another seed: another split
    with pytest.raises(ValueError, match="not outer fold 0"):
        run_paper_comparison(list(X), y, groups, {"logistic": logistic()},
                             {"logistic": GRID}, held_out={"logistic": held}, cv=3, deep=(),
                             random_state=1)


class _RecordingLogistic(LogisticRegression):
    fits: list = []  # shared by clones: a refused comparison fits nothing

    def fit(self, X, y, **kw):
        self.fits.append(len(y))
        return super().fit(X, y, **kw)


def test_comparison_refuses_folds_without_a_class_before_fitting(tabular):
    X, _, groups = tabular
    y = np.isin(groups, [0, 1, 2]).astype(int)  # 3 actionable exams for 4 outer folds
    pipe = Pipeline([("classify", ThresholdedClassifier(_RecordingLogistic(), threshold=0.4))])
    _RecordingLogistic.fits.clear()
    # 3 folds of its inner search on outer fold 0's 2 actionable exams: refused there
    with pytest.raises(ValueError, match=r"outer fold 0 of 4 .* trains on 2 exam\(s\) .*"
                       r"no actionable ROI .*lower cv or n_outer"):
        run_paper_comparison(list(X), y, groups, {"logistic": pipe}, {"logistic": GRID},
                             cv=3, deep=(), random_state=1)
    assert _RecordingLogistic.fits == []


def test_paper_analysis_refuses_its_nested_folds_before_the_held_out_search(monkeypatch):
    import skcalc.model_selection as ms
    from skcalc._paper import run_paper_analysis

    rois, y, groups = make_calcification_cohort(n_rois=20, random_state=0)
    _, yi, gi = pool_by_image(rois, y, groups)
    assert len(set(gi[yi == 1])) == 3  # actionable images in 3 exams: too few for 4 folds
    searched = []
    monkeypatch.setattr(ms, "evaluate_protocol", lambda *a, **k: searched.append(a))
    # the exclusions keep every image (no segmentation in this test)
    monkeypatch.setattr(ms, "paper_exclusions",
                        lambda pipe, rois, y: (np.ones(len(rois), bool), {}))
    with pytest.raises(ValueError, match=r"nested CV \(18 ROIs\): outer fold \d of 4 .*"
                       r"would test on no actionable ROI \(3 exam\(s\)"):
        run_paper_analysis(rois, y, groups, make_pipeline=lambda agg: logistic(), cv=2,
                           n_outer=4, deep=(), say=lambda msg: None)
    assert searched == []
    # without the nested CV the held-out analysis runs (here: the recorder)
    with pytest.raises(AttributeError):  # the recorder returns no ProtocolResult
        run_paper_analysis(rois, y, groups, make_pipeline=lambda agg: logistic(), cv=2,
                           n_outer=4, nested=False, deep=(), say=lambda msg: None)
    assert len(searched) == 1


def test_missing_imagenet_weights_are_labelled_random_init(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    weights, label = imagenet_or_random("vgg16")
    assert weights is None
    assert label == ("random-init, ImageNet weights not found at "
                     f"{tmp_path / 'hub' / 'checkpoints' / 'vgg16-397923af.pth'}")


@pytest.mark.slow
def test_deep_baselines_in_the_nested_comparison(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # no ImageNet file: random init
    rois, y, groups = make_calcification_cohort(n_rois=40, random_state=0)
    images, yi, gi = pool_by_image(rois, y, groups)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        comp = run_paper_comparison(
            images, yi, gi, {}, {}, deep=("resnet50",), n_outer=2,
            deep_params={"input_size": 32, "epochs": 1, "validation_fraction": None},
            random_state=0)
    names = list(comp.models)
    assert names == ["ResNet-50 fine-tuned (random-init)",
                     "ResNet-50 fine-tuned (random-init) + LightGBM",
                     "ResNet-50 not fine-tuned (random-init) + LightGBM"]
    for m in comp.models.values():
        assert m["label"].startswith("random-init, ImageNet weights not found at ")
        assert [pf["threshold"] for pf in m["per_fold"]] == [0.4, 0.4]
        assert all(len(s) == f["n_test"] for s, f in zip(m["y_score"], comp.folds))
    assert "random-init" in format_nested_table(comp)


@pytest.mark.slow
def test_the_method_learns_on_the_default_cohort():
    # The default synthetic cohort (default difficulty), images as the unit, the paper's
    # settings (K = 15, threshold 0.4), no tuning: trained on 75 % of the exams, it must rank
    # the held-out images clearly better than chance (0.5): 0.77 measured with this seed
    # (36 held-out images, 10 actionable).
    rois, y, groups = make_calcification_cohort(n_rois=160, random_state=0)
    images, yi, gi = pool_by_image(rois, y, groups)
    train, test = grouped_train_test_split(yi, gi, test_size=0.25, random_state=0)
    assert not set(gi[train]) & set(gi[test]) and yi[test].sum() >= 8
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipe = make_calcification_pipeline(n_clusters=15, random_state=0)
        pipe.fit([images[i] for i in train], yi[train])
        proba = pipe.predict_proba([images[i] for i in test])[:, 1]
    assert roc_auc_score(yi[test], proba) > 0.7


def test_public_module_exposes_the_paper_functions():
    import skcalc._paper as private
    import skcalc.paper as public

    for name in public.__all__:
        assert getattr(public, name) is getattr(private, name)
    assert {"run_paper_analysis", "run_paper_comparison", "write_paper_outputs"} <= set(
        public.__all__
    )
