"""The paper's protocol: exam-level split, grouped grid search, nested CV."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression

from skcalc.datasets import make_calcification_cohort
from skcalc.metrics import sensitivity_then_specificity
from skcalc.model_selection import (
    NESTED_METRICS,
    check_classes_per_fold,
    check_nested_folds,
    evaluate_protocol,
    grid_search,
    grouped_train_test_split,
    nested_cross_validate,
    paper_exclusions,
)
from skcalc.pipeline import make_calcification_pipeline

pytestmark = pytest.mark.filterwarnings("ignore:.*fewer than two calcifications")

TINY_GRID = {"classify__threshold": [0.3, 0.5]}


def exam_cohort(n_exams, rng, prevalence=0.3):
    """Labels set per exam (as in the paper's data), 1-3 ROIs per exam."""
    sizes = rng.integers(1, 4, size=n_exams)
    exam_labels = (rng.random(n_exams) < prevalence).astype(int)
    exam_labels[:5], exam_labels[5:10] = 1, 0  # both classes in every fold, whatever the draw
    groups = np.repeat([f"E{i:03d}" for i in range(n_exams)], sizes)
    y = np.repeat(exam_labels, sizes)
    return y, groups


@settings(max_examples=30, deadline=None)
@given(
    n_exams=st.integers(10, 60),
    seed=st.integers(0, 2**16),
    test_size=st.sampled_from([0.2, 0.25, 0.34]),
)
def test_split_partitions_rois_and_never_shares_an_exam(n_exams, seed, test_size):
    y, groups = exam_cohort(n_exams, np.random.default_rng(seed))
    train, test = grouped_train_test_split(y, groups, test_size=test_size, random_state=seed)
    assert len(test) > 0 and len(train) > 0
    np.testing.assert_array_equal(np.sort(np.concatenate([train, test])), np.arange(len(y)))
    assert not set(groups[train]) & set(groups[test])


def test_split_refuses_sizes_it_cannot_hold_out_and_folds_without_a_class():
    y, groups = exam_cohort(40, np.random.default_rng(3))
    for bad in (0.4, 0.95, 0.0, 1.0):
        with pytest.raises(ValueError, match="is not 1/k"):
            grouped_train_test_split(y, groups, test_size=bad)
    train, test = grouped_train_test_split(y, groups, test_size=0.3, random_state=0)
    assert abs(len(set(groups[test])) / 40 - 1 / 3) < 0.1  # 0.3 is taken as 1/3
    y3 = np.zeros_like(y)
    y3[np.isin(groups, ["E000", "E001", "E002"])] = 1  # 3 actionable exams
    with pytest.raises(ValueError, match="3 exam.*actionable ROI for 4 grouped folds"):
        grouped_train_test_split(y3, groups, test_size=0.25)
    with pytest.raises(ValueError, match="grid search.*3 exam.*for 5 grouped folds"):
        grid_search(None, [None] * len(y3), y3, groups, TINY_GRID, cv=5)


def test_split_is_stratified_and_sized():
    y, groups = exam_cohort(200, np.random.default_rng(0), prevalence=0.28)
    for seed in range(5):
        train, test = grouped_train_test_split(y, groups, test_size=0.25, random_state=seed)
        assert abs(len(test) / len(y) - 0.25) < 0.05
        assert abs(y[test].mean() - y.mean()) < 0.05
        assert abs(y[train].mean() - y.mean()) < 0.05


def test_split_is_deterministic_and_seed_dependent():
    y, groups = exam_cohort(60, np.random.default_rng(1))
    a = grouped_train_test_split(y, groups, random_state=7)
    b = grouped_train_test_split(y, groups, random_state=7)
    c = grouped_train_test_split(y, groups, random_state=8)
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])


@pytest.fixture(scope="module")
def cohort():
    rois, y, groups = make_calcification_cohort(n_rois=24, random_state=1)
    return rois, y, groups


@pytest.fixture(scope="module")
def protocol(cohort):
    rois, y, groups = cohort
    pipe = make_calcification_pipeline(n_clusters=4, n_jobs=1)
    return evaluate_protocol(pipe, rois, y, groups, TINY_GRID, cv=2, n_bootstrap=30, random_state=0)


def test_protocol_holds_out_whole_exams(protocol, cohort):
    _, y, groups = cohort
    test = protocol.test_index
    train = np.setdiff1d(np.arange(len(y)), test)
    assert not set(groups[test]) & set(groups[train])
    np.testing.assert_array_equal(protocol.y_test, y[test])
    assert protocol.y_score.shape == test.shape
    assert np.all((protocol.y_score >= 0) & (protocol.y_score <= 1))
    # the refitted model saw the training ROIs only
    assert protocol.search.best_estimator_.steps[-1][1].estimator_ is not None
    assert protocol.search.n_splits_ == 2
    assert len(protocol.search.cv_results_["params"]) == 2
    assert protocol.best_params["classify__threshold"] in TINY_GRID["classify__threshold"]
    assert protocol.threshold == protocol.best_params["classify__threshold"]
    assert protocol.report["n_samples"] == len(test)
    assert set(protocol.timings) == {"grid_search", "predict_test"}


def test_protocol_to_dict_is_json(protocol):
    d = protocol.to_dict()
    text = json.dumps(d, allow_nan=False)  # strict JSON: no NaN/Infinity
    back = json.loads(text)
    assert back["n_test"] == len(protocol.test_index)
    assert back["y_test"] == protocol.y_test.tolist()
    assert back["best_params"] == protocol.best_params
    assert back["nested_cv"] is None
    assert "search" not in back


def test_protocol_to_frame(protocol):
    frame = protocol.to_frame()
    assert list(frame.columns) == ["evaluation", "metric", "value", "ci_low", "ci_high"]
    assert set(frame["evaluation"]) == {"held-out"}
    assert set(frame["metric"]) == set(protocol.report["metrics"])
    row = frame.set_index("metric").loc["sensitivity"]
    assert row["value"] == protocol.report["metrics"]["sensitivity"]["value"]


def test_nested_cross_validate(cohort):
    rois, y, groups = cohort
    pipe = make_calcification_pipeline(n_clusters=4, n_jobs=1)
    res = nested_cross_validate(
        pipe, rois, y, groups, TINY_GRID, n_outer=3, n_inner=2, random_state=0
    )
    assert res["n_outer"] == 3 and res["n_inner"] == 2
    for metric in NESTED_METRICS:
        folds = np.asarray(res[metric]["folds"], dtype=float)
        assert folds.shape == (3,)
        assert res[metric]["mean"] == pytest.approx(np.nanmean(folds))
        assert res[metric]["std"] == pytest.approx(np.nanstd(folds))
    assert len(res["best_params"]) == 3 and len(res["fit_time"]) == 3
    assert all(p["classify__threshold"] in (0.3, 0.5) for p in res["best_params"])
    json.dumps(res)


def test_protocol_with_nested_fills_frame(cohort):
    rois, y, groups = cohort
    pipe = make_calcification_pipeline(n_clusters=4, n_jobs=1)
    # 3 outer folds: with 2 (and this seed) an outer training part keeps 1 actionable exam,
    # too few for 2 inner folds, which the nested CV refuses
    res = evaluate_protocol(
        pipe, rois, y, groups, {"classify__threshold": [0.4]}, cv=2, nested=True,
        n_outer=3, n_bootstrap=0, random_state=1,
    )  # fmt: skip
    frame = res.to_frame()
    nested = frame[frame["evaluation"] == "nested-cv"].set_index("metric")
    assert list(nested.index) == list(NESTED_METRICS)
    m = res.nested["sensitivity"]
    assert nested.loc["sensitivity", "ci_low"] == pytest.approx(m["mean"] - m["std"])
    json.dumps(res.to_dict())
    assert "nested_cv" in res.timings


def test_paper_exclusions_drop_empty_rois_and_report_them_per_class(cohort):
    rois, y, groups = cohort
    rois = list(rois)
    emptied = int(np.flatnonzero(y == 1)[0])
    flat = np.full_like(rois[emptied].image, int(np.median(rois[emptied].image)))
    rois[emptied] = rois[emptied].replace(image=flat, reference=None)
    pipe = make_calcification_pipeline(n_clusters=4, n_jobs=1)
    keep, summary = paper_exclusions(pipe, rois, y)
    assert not keep[emptied]
    n_few = int((~keep).sum())
    assert summary["n_excluded"] == n_few and summary["n_input"] == len(rois)
    assert summary["excluded_per_class"]["1"] >= 1
    assert sum(summary["excluded_per_class"].values()) == n_few
    assert rois[emptied].roi_id in summary["excluded_roi_ids"]
    # a calibrated pipeline is excluded from by its wrapped pipeline's steps
    from skcalc.calibration import CalibratedClassifier

    assert paper_exclusions(CalibratedClassifier(pipe, cv=2), rois, y)[1] == summary
    res = evaluate_protocol(
        pipe, rois, y, groups, {"classify__threshold": [0.4]}, cv=2, n_bootstrap=0,
        random_state=0,
    )  # fmt: skip
    assert res.exclusions == summary
    train = np.setdiff1d(np.flatnonzero(keep), res.test_index)
    assert keep[res.test_index].all()  # excluded ROIs are neither tested ...
    # ... nor trained on: the refitted topology selection saw the kept training ROIs only
    select = res.search.best_estimator_.named_steps["features"].transformer_list[1][1][-1]
    assert select.n_samples_fit_ == len(train)
    assert json.loads(json.dumps(res.to_dict()))["exclusions"]["n_excluded"] == n_few


def test_protocol_reports_exclusions_and_can_turn_them_off(protocol, cohort):
    rois, y, groups = cohort
    ex = protocol.exclusions  # on by default
    assert ex["n_input"] == len(rois)
    few = [r.roi_id for r in protocol.search.best_estimator_.named_steps["masks"].transform(
        protocol.search.best_estimator_.named_steps["segment"].transform(rois))
        if r.masks.n_objects < 2]
    assert ex["excluded_roi_ids"] == [str(i) for i in few]
    assert not set(ex["excluded_roi_ids"]) & {str(rois[i].roi_id) for i in protocol.test_index}
    off = evaluate_protocol(
        make_calcification_pipeline(n_clusters=4, n_jobs=1), rois, y, groups,
        {"classify__threshold": [0.4]}, cv=2, n_bootstrap=0, random_state=0, exclude=False,
    )  # fmt: skip
    assert off.exclusions is None and off.to_dict()["exclusions"] is None


def test_one_clinical_scorer_gives_the_13_scorers_cv_results(cohort):
    # grid_search scores with ClinicalScorer; the reference is GridSearchCV with the 13
    # scikit-learn scorers of make_clinical_scorers: every score of every candidate and fold
    # must be identical, bit for bit, and so must the chosen candidate.
    from sklearn.base import clone
    from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold

    from skcalc.metrics import make_clinical_scorers, sensitivity_then_specificity
    from skcalc.model_selection import grid_search

    rois, y, groups = cohort
    pipe = make_calcification_pipeline(n_clusters=4, random_state=0)
    grid = {"classify__threshold": [0.05, 0.3, 0.5, 0.95],
            "classify__estimator__n_estimators": [20, 60]}
    fast = grid_search(clone(pipe), rois, y, groups, grid, cv=3, random_state=0)
    slow = GridSearchCV(
        clone(pipe), grid, scoring=make_clinical_scorers(), refit=sensitivity_then_specificity,
        cv=StratifiedGroupKFold(n_splits=3, shuffle=True, random_state=0),
    ).fit(rois, y, groups=groups)
    keys = [k for k in slow.cv_results_ if "_test_" in k]
    assert len(keys) == 13 * (3 + 3)  # split0-2, mean, std, rank per metric
    for key in keys:
        np.testing.assert_array_equal(fast.cv_results_[key], slow.cv_results_[key], err_msg=key)
    assert fast.best_index_ == slow.best_index_
    # the thresholds 0.05 and 0.95 give folds where everything is called one class
    assert {0.0, 1.0} <= set(slow.cv_results_["split0_test_specificity"].tolist())


def test_clinical_scorer_falls_back_on_labels_it_cannot_count_fast():
    from sklearn.linear_model import LogisticRegression

    from skcalc.metrics import ClinicalScorer, make_clinical_scorers

    X = np.arange(10.0)[:, None]
    y = np.array(["b", "b", "b", "a", "b", "a", "a", "a", "b", "a"])
    est = LogisticRegression().fit(X, y)
    fast = ClinicalScorer(pos_label="a")(est, X, y)
    slow = {k: s(est, X, y) for k, s in make_clinical_scorers(pos_label="a").items()}
    assert fast == slow


def test_grid_search_puts_sklearns_param_names_back_also_on_error():
    # grid_search memoises every class's parameter names while it runs (memoised_param_names)
    from sklearn.base import BaseEstimator
    from sklearn.linear_model import LogisticRegression

    from skcalc.model_selection import grid_search

    original = BaseEstimator.__dict__["_get_param_names"]
    X = np.arange(24.0).reshape(12, 2)
    y = np.tile([0, 1], 6)
    groups = np.repeat(np.arange(6), 2)
    search = grid_search(LogisticRegression(), X, y, groups, {"C": [0.1, 1.0]}, cv=2)
    assert search.best_params_["C"] in (0.1, 1.0)
    assert BaseEstimator.__dict__["_get_param_names"] is original
    with pytest.raises(ValueError, match="Invalid parameter"):
        grid_search(LogisticRegression(), X, y, groups, {"not_a_param": [1]}, cv=2)
    assert BaseEstimator.__dict__["_get_param_names"] is original


def test_grid_search_cv_results_equal_a_plain_gridsearchcv(cohort, monkeypatch):
    # grid_search's speed-ups (memoised parameter names, ClinicalScorer and its ROC AUC,
    # the resampler on one thread) against scikit-learn's GridSearchCV with the 13 scorers,
    # the same pipeline, grid, grouped folds and seeds, nothing carried over between the
    # two: every column of cv_results_ but the times, exactly, and the refitted model.
    from contextlib import nullcontext

    from sklearn import config_context
    from sklearn.base import clone
    from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold

    import skcalc.resampling
    from skcalc._fitcache import FIT_CACHE
    from skcalc.classification import _RESPONSE_MEMO
    from skcalc.metrics import make_clinical_scorers, sensitivity_then_specificity
    from skcalc.metrics._clinical import _AUC_MEMO
    from skcalc.model_selection import grid_search

    def forget():
        for memo in (FIT_CACHE, _RESPONSE_MEMO, _AUC_MEMO):
            memo.clear()

    rois, y, groups = cohort
    pipe = make_calcification_pipeline(n_clusters=4, random_state=0)
    grid = {"features__local__bag__n_clusters": [3, 4],
            "classify__estimator__n_estimators": [20, 40],
            "classify__threshold": [0.3, 0.6]}
    forget()
    fast = grid_search(clone(pipe), rois, y, groups, grid, cv=3, random_state=0)
    forget()
    monkeypatch.setattr(skcalc.resampling, "single_threaded", nullcontext)
    plain = GridSearchCV(
        clone(pipe), grid, scoring=make_clinical_scorers(), refit=sensitivity_then_specificity,
        cv=StratifiedGroupKFold(n_splits=3, shuffle=True, random_state=0),
    )
    with config_context(enable_metadata_routing=True):
        plain.fit(rois, y, groups=groups)
    forget()
    assert sorted(fast.cv_results_) == sorted(plain.cv_results_)
    columns = [k for k in plain.cv_results_ if not k.endswith("_time")]
    assert len(columns) == 1 + 3 + 13 * (3 + 3)  # params, param_*, split0-2/mean/std/rank
    for key in columns:
        a, b = fast.cv_results_[key], plain.cv_results_[key]
        if key.startswith("param_"):
            np.testing.assert_array_equal(np.ma.getmaskarray(a), np.ma.getmaskarray(b))
        assert np.asarray(a).dtype == np.asarray(b).dtype, key
        np.testing.assert_array_equal(a, b, err_msg=key)  # NaN equals NaN here
    assert fast.best_index_ == plain.best_index_ and fast.best_params_ == plain.best_params_
    np.testing.assert_array_equal(fast.best_estimator_.predict_proba(rois),
                                  plain.best_estimator_.predict_proba(rois))


def test_grid_search_reports_a_failing_fit_with_its_own_message(cohort):
    rois, y, groups = cohort
    pipe = make_calcification_pipeline(n_clusters=4, n_jobs=1).set_params(
        features__local__extract__max_gray_levels=2)  # every ROI over the texture budget
    with pytest.raises(ValueError, match=r"ROI '.*': .*use bin_width >="):
        grid_search(pipe, rois, y, groups, TINY_GRID, cv=2)


class _RecordingLogistic(LogisticRegression):
    """LogisticRegression that records its fits: a refused nested CV must fit nothing."""

    fits: list = []  # shared by the clones the searches make

    def fit(self, X, y, **kw):
        self.fits.append(len(y))
        return super().fit(X, y, **kw)


def _exams(n_actionable_per_exam, n_benign_per_exam):
    """Labels, exam ids and a 1-feature X that separates the classes (2 features, noisy)."""
    y = np.concatenate([np.r_[np.ones(a, int), np.zeros(b, int)]
                        for a, b in zip(n_actionable_per_exam, n_benign_per_exam)])
    groups = np.repeat([f"E{i:02d}" for i in range(len(n_actionable_per_exam))],
                       np.add(n_actionable_per_exam, n_benign_per_exam))
    X = np.c_[y + np.random.default_rng(0).normal(0, 0.6, len(y)), np.arange(len(y)) % 3]
    return X, y, groups


def _outer_training_parts(y, groups, n_outer, random_state):
    from sklearn.model_selection import StratifiedGroupKFold

    outer = StratifiedGroupKFold(n_splits=n_outer, shuffle=True, random_state=random_state)
    return [train for train, _ in outer.split(np.zeros((len(y), 1)), y, groups)]


def test_nested_refuses_an_inner_fold_without_a_class_before_fitting():
    # 3 actionable exams among 9: every outer fold (2) holds both classes, and the whole
    # cohort has enough exams of each class for 2 grouped folds, but one outer training part
    # keeps a single actionable exam, too few for the 2 inner folds of its grid search.
    X, y, groups = _exams([2, 2, 2, 0, 0, 0, 0, 0, 0], [0, 0, 0, 2, 2, 2, 2, 2, 2])
    check_classes_per_fold(y, groups, 2)  # what grid_search and the CLI check: it passes
    (k, train), = [(k, t) for k, t in enumerate(_outer_training_parts(y, groups, 2, 0))
                   if len(set(groups[t][y[t] == 1])) < 2]
    _RecordingLogistic.fits.clear()
    with pytest.raises(ValueError) as exc:
        nested_cross_validate(_RecordingLogistic(), X, y, groups, {"C": [0.1, 1.0]},
                              n_outer=2, n_inner=2, random_state=0)
    msg = str(exc.value)
    assert f"outer fold {k} of 2" in msg
    assert ("trains on 1 exam(s) (2 ROIs) with an actionable ROI and "
            f"{len(set(groups[train][y[train] == 0]))} exam(s) "
            f"({int((y[train] == 0).sum())} ROIs) with a benign ROI") in msg
    assert "no actionable ROI" in msg and "lower n_inner or n_outer" in msg and "--cv" in msg
    assert _RecordingLogistic.fits == []  # refused before any fit
    # the same without a seed: the folds are drawn once, then checked and used
    with pytest.raises(ValueError, match=r"nested CV .*: outer fold \d of 2 .*no actionable"):
        nested_cross_validate(_RecordingLogistic(), X, y, groups, {"C": [1.0]},
                              n_outer=2, n_inner=2)
    assert _RecordingLogistic.fits == []


def test_nested_checks_the_inner_folds_its_splitter_makes_not_only_the_counts():
    # Exams holding both classes: every outer training part has 2 exams of each class, so
    # a count (check_classes_per_fold) passes, yet the inner grouped split of outer fold 0
    # puts only benign ROIs in inner fold 0. Only splitting as the inner search will sees it.
    X, y, groups = _exams([1, 0, 3, 0, 1, 2, 3], [2, 3, 0, 1, 2, 1, 1])
    for train in _outer_training_parts(y, groups, 2, 0):
        check_classes_per_fold(y[train], groups[train], 2)
    with pytest.raises(ValueError, match=r"outer fold 0 of 2 .*: inner fold 0 of the 2 "
                       r"grouped inner folds .*\(random_state=0\) would have no actionable"):
        nested_cross_validate(_RecordingLogistic(), X, y, groups, {"C": [1.0]},
                              n_outer=2, n_inner=2, random_state=0)


def test_nested_refuses_an_outer_test_fold_without_a_class_before_fitting():
    # 3 actionable exams for 4 outer folds: one outer fold tests on benign ROIs only (its
    # sensitivity and AUC undefined), although each training part has enough exams of both
    # classes for its 2 inner folds.
    X, y, groups = _exams([2, 2, 2] + [0] * 9, [0, 0, 0] + [2] * 9)
    from sklearn.model_selection import StratifiedGroupKFold

    outer = StratifiedGroupKFold(n_splits=4, shuffle=True, random_state=3)
    (k,), = np.nonzero([not y[test].any() for _, test in outer.split(X, y, groups)])
    assert k == 0  # checked first: no inner fold of another outer fold is refused instead
    _RecordingLogistic.fits.clear()
    with pytest.raises(ValueError) as exc:
        nested_cross_validate(_RecordingLogistic(), X, y, groups, {"C": [1.0]},
                              n_outer=4, n_inner=2, random_state=3)
    msg = str(exc.value)
    assert "outer fold 0 of 4 (counted from 0) would test on no actionable ROI" in msg
    assert "3 exam(s) in all have one, for 4 grouped outer folds" in msg
    assert "sensitivity and ROC AUC would be undefined" in msg
    assert "another random_state" not in msg  # too few exams: no shuffle can help
    assert _RecordingLogistic.fits == []


def test_check_nested_folds_refuses_as_nested_cross_validate_does():
    # the public check makes the same folds as nested_cross_validate with an int seed
    X, y, groups = _exams([2, 2, 2] + [0] * 9, [0, 0, 0] + [2] * 9)
    with pytest.raises(ValueError) as checked:
        check_nested_folds(y, groups, n_outer=4, n_inner=2, random_state=3)
    with pytest.raises(ValueError) as nested:
        nested_cross_validate(_RecordingLogistic(), X, y, groups, {"C": [1.0]},
                              n_outer=4, n_inner=2, random_state=3)
    assert str(checked.value) == str(nested.value)
    # enough exams of each class for 2 outer and 2 inner folds: nothing to refuse
    X, y, groups = _exams([2] * 6 + [0] * 6, [0] * 6 + [2] * 6)
    check_nested_folds(y, groups, n_outer=2, n_inner=2, random_state=0)


def test_evaluate_protocol_refuses_the_nested_cv_before_its_grid_search():
    X, y, groups = _exams([2, 2, 2, 0, 0, 0, 0, 0, 0], [0, 0, 0, 2, 2, 2, 2, 2, 2])
    _RecordingLogistic.fits.clear()
    with pytest.raises(ValueError, match=r"outer fold \d of 2 .*lower cv or n_outer"):
        evaluate_protocol(_RecordingLogistic(), X, y, groups, {"C": [1.0]}, test_size=0.5,
                          cv=2, nested=True, n_outer=2, n_bootstrap=0, exclude=False,
                          random_state=0)
    assert _RecordingLogistic.fits == []


def test_nested_that_passes_the_check_equals_a_plain_nested_cv():
    # The check only reads the folds: the result is scikit-learn's own nested CV, unchanged.
    from sklearn import config_context
    from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold, cross_validate

    from skcalc.metrics import ClinicalScorer, make_clinical_scorers

    X, y, groups = _exams([2, 0] * 8, [0, 2] * 8)
    grid = {"C": [0.01, 1.0]}
    res = nested_cross_validate(LogisticRegression(), X, y, groups, grid, n_outer=2,
                                n_inner=2, random_state=0)
    inner = GridSearchCV(
        LogisticRegression(), grid, scoring=ClinicalScorer(),
        refit=sensitivity_then_specificity, error_score=np.nan,
        cv=StratifiedGroupKFold(n_splits=2, shuffle=True, random_state=0))
    scorers = make_clinical_scorers()
    with config_context(enable_metadata_routing=True):
        plain = cross_validate(
            inner, list(X), y, params={"groups": groups}, return_estimator=True,
            cv=StratifiedGroupKFold(n_splits=2, shuffle=True, random_state=0),
            scoring={m: scorers[m] for m in NESTED_METRICS})
    for m in NESTED_METRICS:
        np.testing.assert_array_equal(res[m]["folds"], plain[f"test_{m}"], err_msg=m)
    assert res["best_params"] == [est.best_params_ for est in plain["estimator"]]
    for est in plain["estimator"]:  # no inner fold lacked a class: no NaN was chosen from
        assert np.isfinite(est.cv_results_["mean_test_roc_auc"]).all()
    for seed in (None, np.random.RandomState(0)):  # no fixed seed: runs all the same
        assert len(nested_cross_validate(LogisticRegression(), X, y, groups, grid, n_outer=2,
                                         n_inner=2, random_state=seed)["best_params"]) == 2
