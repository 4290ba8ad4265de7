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
from skcalc._fitcache import FIT_CACHE
from skcalc.datasets import make_calcification_cohort
from skcalc.metrics import make_clinical_scorers, sensitivity_then_specificity
from skcalc.pipeline import feature_importances, make_calcification_pipeline, paper_param_grid
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
    # Image stages hold their per-ROI function as the class attribute ``_one``.
    for obj in list(vars(module).values()):
        one = obj.__dict__.get("_one") if isinstance(obj, type) else None
        if isinstance(one, staticmethod) and one.__func__ is original:
            monkeypatch.setattr(obj, "_one", staticmethod(wrapped))


def test_steps_and_grid_parameters_exist():
    pipe = make_calcification_pipeline()
    assert [n for n, _ in pipe.steps] == ["segment", "masks", "features", "resample", "classify"]
    params = pipe.get_params()
    for size in ("paper", "small", "quick"):
        for key in paper_param_grid(size):
            assert key in params, (size, key)
    lgbm = {k.split("__")[-1] for k in paper_param_grid("paper") if "estimator__" in k}
    # the paper's five: regularization, number of trees, learning rate, leaves, max depth
    assert lgbm == {"reg_lambda", "n_estimators", "learning_rate", "num_leaves", "max_depth"}
    assert all(len(v) >= 2 for v in paper_param_grid("paper").values())
    assert len(paper_param_grid("paper", lightgbm=False)) == 2
    assert params["features__global__select__max_features"] == 122
    with pytest.raises(ValueError, match="size"):
        paper_param_grid("huge")
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
        paper_param_grid("small"),
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


_RESULT_KEYS = ("mean_test_", "std_test_", "rank_test_", "split")


def test_tail_memoisation_keeps_cv_results_identical_and_fits_each_thing_once(cohort):
    rois, y, groups = cohort
    grid = {
        "features__local__bag__n_clusters": [3, 5],
        "classify__threshold": [0.3, 0.5],
        "classify__estimator__n_estimators": [20, 40],
    }

    def search(cache_tail):
        gs = GridSearchCV(
            make_calcification_pipeline(memory=InProcessMemory(), cache_tail=cache_tail),
            grid,
            scoring=make_clinical_scorers(),
            refit=sensitivity_then_specificity,
            cv=StratifiedGroupKFold(3, shuffle=True, random_state=0),
        )
        with config_context(enable_metadata_routing=True):
            gs.fit(rois, y, groups=groups)
        return gs

    FIT_CACHE.clear()
    cached = search(True)
    computed = {f"{c}.{s}": n for (c, s), n in FIT_CACHE.computed.items()}
    # 3 folds (+1 refit on all ROIs): the image stages per fold, the features (k-means)
    # per (fold, K), the selection per fold, SMOTE+ENN per (fold, K), LightGBM per
    # (fold, K, n_estimators), never per threshold; and LightGBM's Dataset and training
    # Booster once per (fold, K), boosted to 40 rounds once (20 then 20 more).
    refit_rounds = cached.best_params_["classify__estimator__n_estimators"]
    assert computed == {
        "LightGBM.Dataset": 3 * 2 + 1,
        "LightGBM.Booster": 3 * 2 + 1,
        "LightGBM.update": 3 * 2 * 40 + refit_rounds,
        "HDoGRegSegmenter._fit_transform_one": 3 + 1,
        "MaskBuilder._fit_transform_one": 3 + 1,
        "FeatureUnion._fit_transform_one": 3 * 2 + 1,
        "BagOfClustersAggregator.fit": 3 * 2 + 1,
        "ImportanceSelector.fit": 3 + 1,
        "SafeSMOTEENN._fit_resample_one": 3 * 2 + 1,
        "SafeSMOTEENN.fit_resample": 3 * 2 + 1,
        "ThresholdedClassifier.fit": 3 * 2 * 2 + 1,
    }
    assert type(cached.best_estimator_).__name__ == "_CalcificationPipeline"
    FIT_CACHE.clear()
    plain = search(False)
    assert FIT_CACHE.computed == {}  # the optimisation was really off
    res_c, res_p = cached.cv_results_, plain.cv_results_
    keys = [k for k in res_p if k.startswith(_RESULT_KEYS)]
    assert len(keys) > 50
    for key in keys:
        np.testing.assert_array_equal(res_c[key], res_p[key], err_msg=key)
    assert res_c["params"] == res_p["params"]
    assert cached.best_index_ == plain.best_index_
    assert cached.best_params_ == plain.best_params_
    np.testing.assert_array_equal(
        cached.predict_proba(rois[:10]), plain.predict_proba(rois[:10])
    )
    FIT_CACHE.clear()


def _emptied(roi):
    """The same ROI with a flat image: nothing to segment."""
    flat = np.full_like(roi.image, int(np.median(roi.image)))
    return roi.replace(image=flat, reference=None)




@pytest.mark.parametrize(
    "aggregation, memory",
    [("meanstd", None), ("bag", None), ("meanstd", "auto")],
)
def test_roi_without_objects_does_not_crash(cohort, aggregation, memory):
    # issue 12.2: "meanstd" used to raise "Input X contains NaN" in SMOTE.
    rois, y, _ = cohort
    rois = list(rois[:30])
    y = y[:30]
    empty = int(np.flatnonzero(y == 1)[0])
    rois[empty] = _emptied(rois[empty])
    pipe = make_calcification_pipeline(n_clusters=3, aggregation=aggregation, memory=memory)
    pipe.fit(rois, y)
    seg = pipe.named_steps["masks"].transform(pipe.named_steps["segment"].transform([rois[empty]]))
    assert seg[0].masks.n_objects == 0  # the ROI really is empty
    proba = pipe.predict_proba(rois)[:, 1]
    assert np.isfinite(proba).all() and proba.shape == (30,)
    features = pipe[:-2].transform(rois)
    assert np.isfinite(features).all()


def test_feature_names_pandas_output_and_importances(cohort):
    rois, y, _ = cohort
    pipe = make_calcification_pipeline(n_clusters=3, select_topology=10).fit(rois, y)
    names = pipe[:-2].get_feature_names_out()
    X = pipe[:-2].transform(rois)
    assert len(names) == X.shape[1] == 3 * 3 + 10 + 3
    assert names[0] == "local__fg_radiomics_cluster_00"
    assert all(n.startswith("global__topo_") for n in names[9:19])
    assert all(n.startswith("global__hand_") for n in names[-3:])
    kept = pipe.named_steps["features"].transformer_list[1][1].named_steps["select"]
    assert kept.get_support().sum() == 13
    # the resampler is skipped by name lookups: the whole pipeline minus the classifier
    assert list(pipe[:-1].get_feature_names_out()) == list(names)
    imp = feature_importances(pipe)
    assert set(imp.index) == set(names) and imp.is_monotonic_decreasing
    assert imp.sum() == pytest.approx(pipe.steps[-1][1].estimator_.feature_importances_.sum())
    # pandas output through the whole tail: same columns, same predictions
    pd_pipe = clone(pipe).set_output(transform="pandas").fit(rois, y)
    frame = pd_pipe[:-2].transform(rois)
    assert list(frame.columns) == list(names)
    np.testing.assert_allclose(frame.to_numpy(), X)
    np.testing.assert_allclose(pd_pipe.predict_proba(rois), pipe.predict_proba(rois))


def test_calcification_pipeline_memo_is_never_stale():
    # Tabular steps: the memo mechanics without the image stages.
    from imblearn.pipeline import Pipeline as ImbPipeline
    from sklearn.datasets import make_classification
    from sklearn.preprocessing import StandardScaler

    from skcalc._fitcache import PipelineMemory
    from skcalc.classification import ThresholdedClassifier, make_default_lightgbm
    from skcalc.pipeline import _CalcificationPipeline

    X, y = make_classification(n_samples=80, n_features=6, random_state=0)
    X = X * 3 + 5
    steps = [("scale", StandardScaler()),
             ("classify", ThresholdedClassifier(make_default_lightgbm(n_estimators=20)))]
    FIT_CACHE.clear()
    memo = _CalcificationPipeline(steps, memory=PipelineMemory()).fit(X, y)
    plain = ImbPipeline(steps).fit(X, y)
    np.testing.assert_array_equal(memo.predict_proba(X), plain.predict_proba(X))
    hits = FIT_CACHE.hits
    np.testing.assert_array_equal(memo.predict(X), plain.predict(X))
    assert FIT_CACHE.hits == hits + 1  # the transform of X was memoised
    # a parameter changed after fit changes the transform: never served from the memo
    memo.set_params(scale__with_mean=False)
    plain.set_params(scale__with_mean=False)
    np.testing.assert_array_equal(memo.predict_proba(X), plain.predict_proba(X))
    # a new fit on other data forgets the old key
    memo.set_params(scale__with_mean=True).fit(X[:60], y[:60])
    plain.set_params(scale__with_mean=True).fit(X[:60], y[:60])
    np.testing.assert_array_equal(memo.predict_proba(X), plain.predict_proba(X))
    # pandas output configured after fit: the memo steps aside
    memo.set_output(transform="pandas")
    plain.set_output(transform="pandas")
    np.testing.assert_array_equal(memo.predict_proba(X), plain.predict_proba(X))
    FIT_CACHE.clear()


def test_params_key_tells_nested_estimators_apart_without_their_repr(monkeypatch):
    from sklearn.base import BaseEstimator
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import FeatureUnion, Pipeline
    from sklearn.preprocessing import StandardScaler

    from skcalc._fitcache import params_key

    class Holder(BaseEstimator):  # estimators in a list its get_params does not expand
        def __init__(self, models=None):
            self.models = models

    def key(est):
        return params_key(est.get_params(deep=True))

    def union(C, with_mean=True):
        return FeatureUnion([
            ("a", Pipeline([("s", StandardScaler(with_mean=with_mean)),
                            ("m", Holder([LogisticRegression(C=C)]))])),
            ("b", StandardScaler()),
        ])

    # the pretty-printer (what repr costs) is never called
    monkeypatch.setattr(BaseEstimator, "__repr__", lambda self, N_CHAR_MAX=700: 1 / 0)
    assert key(union(1.0)) == key(union(1.0))
    assert key(union(1.0)) != key(union(2.0))  # a parameter only the list holds
    assert key(union(1.0)) != key(union(1.0, with_mean=False))
    assert key(Holder([LogisticRegression()])) != key(Holder([StandardScaler()]))
    assert key(Holder([("x", StandardScaler())])) != key(Holder([("x", LogisticRegression())]))
