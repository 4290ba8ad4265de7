"""The method end to end: one Pipeline that GridSearchCV and nested CV tune."""

import warnings
from collections import Counter

import numpy as np
import pytest
from sklearn import config_context
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold, cross_validate

import skcalc.features._local as local_mod
import skcalc.features._topology as topo_mod
import skcalc.masks as masks_mod
import skcalc.segmentation._segmenter as seg_mod
from skcalc.datasets import make_calcification_cohort
from skcalc.metrics import make_clinical_scorers
from skcalc.pipeline import make_calcification_pipeline, paper_param_grid
from skcalc.utils import InProcessMemory
from skcalc.utils._caching import MEMORY_FRONT


@pytest.fixture(scope="module")
def cohort():
    rois, y, groups = make_calcification_cohort(n_rois=40, random_state=3)
    return rois, y, groups


@pytest.fixture(autouse=True)
def _quiet_and_fresh_cache():
    MEMORY_FRONT.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield
    MEMORY_FRONT.clear()


def _counting(monkeypatch, module, name, counter):
    original = getattr(module, name)

    def wrapped(roi, **params):
        counter[(name, roi.roi_id)] += 1
        return original(roi, **params)

    monkeypatch.setattr(module, name, wrapped)


def test_steps_and_grid_parameters_exist():
    pipe = make_calcification_pipeline()
    assert [n for n, _ in pipe.steps] == ["segment", "masks", "features", "resample", "classify"]
    params = pipe.get_params()
    for key in paper_param_grid():
        assert key in params
    assert params["classify__threshold"] == 0.4
    assert params["features__local__bag__n_clusters"] == 15


def test_grid_search_runs_each_image_stage_once_per_roi(cohort, monkeypatch):
    rois, y, groups = cohort
    calls = Counter()
    _counting(monkeypatch, seg_mod, "_segment_roi", calls)
    _counting(monkeypatch, masks_mod, "_masks_one", calls)
    _counting(monkeypatch, local_mod, "_roi_local_features", calls)
    _counting(monkeypatch, topo_mod, "_topology_one", calls)
    grid = {
        "features__local__bag__n_clusters": [5, 10, 15, 20],
        "classify__threshold": [0.3, 0.4, 0.5],
    }
    search = GridSearchCV(
        make_calcification_pipeline(memory=InProcessMemory()),
        grid,
        scoring=make_clinical_scorers()["sensitivity_first"],
        cv=StratifiedGroupKFold(5, shuffle=True, random_state=0),
        refit=False,
    )
    with config_context(enable_metadata_routing=True):
        search.fit(rois, y, groups=groups)
    assert len(search.cv_results_["params"]) == 12
    # 12 candidates x 5 folds x (fit + predict), yet every stage ran once per ROI
    for stage in ("_segment_roi", "_masks_one", "_roi_local_features", "_topology_one"):
        per_roi = {rid: n for (name, rid), n in calls.items() if name == stage}
        assert len(per_roi) == len(rois), stage
        assert set(per_roi.values()) == {1}, stage


def test_without_memory_image_stages_run_per_fold(cohort, monkeypatch):
    # The counterpart of the test above: the counter really counts executions.
    rois, y, groups = cohort
    calls = Counter()
    _counting(monkeypatch, seg_mod, "_segment_roi", calls)
    pipe = make_calcification_pipeline(n_clusters=3, memory=None)
    pipe.fit(rois[:12], y[:12])
    pipe.fit(rois[:12], y[:12])
    assert set(calls.values()) == {2}


def test_paper_grid_search_and_nested_cv_with_exam_groups(cohort):
    rois, y, groups = cohort
    search = GridSearchCV(
        make_calcification_pipeline(),
        paper_param_grid(),
        cv=StratifiedGroupKFold(5),
        scoring=make_clinical_scorers(),
        refit="sensitivity_first",
    )
    with config_context(enable_metadata_routing=True):
        search.fit(rois, y, groups=groups)
    assert len(search.cv_results_["params"]) == 48
    assert np.isfinite(search.cv_results_["mean_test_sensitivity"]).all()
    proba = search.predict_proba(rois)[:, 1]
    assert proba.shape == (len(rois),) and ((proba >= 0) & (proba <= 1)).all()

    inner = GridSearchCV(
        make_calcification_pipeline(),
        {"features__local__bag__n_clusters": [5, 10], "classify__threshold": [0.3, 0.5]},
        cv=StratifiedGroupKFold(3),
        scoring=make_clinical_scorers(),
        refit="sensitivity_first",
    )
    outer = StratifiedGroupKFold(4)
    with config_context(enable_metadata_routing=True):
        res = cross_validate(
            inner,
            rois,
            y,
            cv=outer,
            params={"groups": groups},
            scoring={"roc_auc": "roc_auc"},
            return_indices=True,
        )
    assert len(res["test_roc_auc"]) == 4
    # exams never straddle an outer split
    for train, test in zip(res["indices"]["train"], res["indices"]["test"]):
        assert not set(groups[train]) & set(groups[test])


def test_pipeline_clone_and_refit_are_deterministic(cohort):
    rois, y, _ = cohort
    pipe = make_calcification_pipeline(n_clusters=5, memory=InProcessMemory())
    a = clone(pipe).fit(rois[:30], y[:30]).predict_proba(rois[30:])
    b = clone(pipe).fit(rois[:30], y[:30]).predict_proba(rois[30:])
    np.testing.assert_array_equal(a, b)


def test_meanstd_baseline_pipeline_fits(cohort):
    rois, y, _ = cohort
    pipe = make_calcification_pipeline(aggregation="meanstd").fit(rois[:30], y[:30])
    assert pipe.predict(rois[30:]).shape == (10,)
    with pytest.raises(ValueError, match="aggregation"):
        make_calcification_pipeline(aggregation="median")
