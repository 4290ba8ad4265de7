import warnings

import numpy as np
import pytest
from imblearn.over_sampling import SMOTE
from imblearn.pipeline import Pipeline
from sklearn import config_context
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.datasets import make_classification
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, roc_auc_score
from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold
from sklearn.utils import get_tags

from skcalc import ROI
from skcalc.calibration import CalibratedClassifier, calibrated_param_grid


def _problem(n=600, seed=0):
    X, y = make_classification(
        n_samples=n, n_features=8, n_informative=4, weights=[0.8, 0.2], flip_y=0.15,
        class_sep=0.8, random_state=seed,
    )
    groups = np.repeat(np.arange(n // 3), 3)  # three samples per "exam"
    return X, y, groups


def _smote_boost():
    # The paper's shape: resampling to balance, then boosting -> overconfident scores.
    return Pipeline([
        ("resample", SMOTE(random_state=0)),
        ("classify", GradientBoostingClassifier(n_estimators=150, learning_rate=0.5,
                                                max_depth=3, random_state=0)),
    ])


@pytest.mark.parametrize("method", ["sigmoid", "isotonic"])
def test_calibration_lowers_brier_score_on_held_out_exams(method):
    X, y, groups = _problem()
    train, test = next(StratifiedGroupKFold(4, shuffle=True, random_state=0).split(X, y, groups))
    raw = _smote_boost().fit(X[train], y[train])
    cal = CalibratedClassifier(_smote_boost(), method=method, cv=5).fit(
        X[train], y[train], groups=groups[train]
    )
    p_raw = raw.predict_proba(X[test])[:, 1]
    p_cal = cal.predict_proba(X[test])[:, 1]
    assert brier_score_loss(y[test], p_cal) < brier_score_loss(y[test], p_raw) - 0.01
    # the ranking is kept (up to the fold models' differences)
    assert roc_auc_score(y[test], p_cal) > roc_auc_score(y[test], p_raw) - 0.03
    # (with little label noise the overconfident raw model can have the lower Brier
    # score: measure it, do not assume it)
    # raw scores pile up at the extremes, calibrated ones much less
    extreme = lambda p: np.mean((p < 0.05) | (p > 0.95))  # noqa: E731
    assert extreme(p_cal) < extreme(p_raw)


_LOGS: dict[str, list] = {}


class _Recorder(ClassifierMixin, BaseEstimator):
    """Remembers the sample ids (column 0) it was fitted on, in a module-level log.

    (A list parameter would be deep-copied by ``clone``.)
    """

    def __init__(self, log="default"):
        self.log = log

    def fit(self, X, y):
        _LOGS.setdefault(self.log, []).append(np.asarray(X)[:, 0].astype(int).copy())
        self.classes_ = np.unique(y)
        return self

    def predict_proba(self, X):
        p = np.clip(np.asarray(X)[:, 1], 0, 1)
        return np.column_stack([1 - p, p])

    def predict(self, X):
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)


@pytest.mark.parametrize("ensemble", [True, False])
def test_no_leakage_folds_keep_exams_together_and_test_data_is_never_seen(ensemble):
    rng = np.random.default_rng(0)
    n = 120
    ids = np.arange(n)
    y = (rng.random(n) < 0.3).astype(int)
    groups = ids // 4
    X = np.column_stack([ids, rng.random(n)])
    train = ids[groups % 4 != 0]
    test = ids[groups % 4 == 0]
    log = _LOGS.setdefault(f"leak-{ensemble}", [])
    log.clear()
    clf = CalibratedClassifier(_Recorder(f"leak-{ensemble}"), cv=3, ensemble=ensemble)
    clf.fit(X[train], y[train], groups=groups[train])
    seen = np.concatenate(log)
    assert set(seen) <= set(train) and not set(seen) & set(test)
    g = groups[train]
    for tr, te in clf.splits_:
        assert set(g[tr]).isdisjoint(g[te])
        assert len(tr) + len(te) == len(train)
    # each fold model saw exactly its training part (the calibrator its complement)
    fold_fits = log[:3]
    for (tr, _), fitted in zip(clf.splits_, fold_fits):
        np.testing.assert_array_equal(np.sort(fitted), np.sort(train[tr]))


def test_threshold_applies_to_calibrated_probability():
    X, y, groups = _problem(300)
    clf = CalibratedClassifier(_smote_boost(), cv=3, threshold=0.2).fit(X, y, groups=groups)
    p = clf.predict_proba(X)[:, 1]
    np.testing.assert_array_equal(clf.predict(X), (p >= 0.2).astype(int))
    with pytest.raises(ValueError, match="threshold"):
        CalibratedClassifier(_smote_boost(), threshold=2.0).fit(X, y)
    default = CalibratedClassifier(cv=3).fit(X, y, groups=groups)  # LightGBM
    assert type(default.calibrated_.calibrated_classifiers_[0].estimator).__name__ == (
        "LGBMClassifier"
    )


def test_grid_search_routes_groups_to_the_calibration_folds():
    _, y, groups = _problem(300)
    X = np.column_stack([np.arange(300), np.random.default_rng(0).random(300)])
    log = _LOGS.setdefault("grid", [])
    log.clear()
    base = Pipeline([("classify", _Recorder("grid"))])
    grid = calibrated_param_grid({"classify__log": ["grid"], "classify__threshold": [0.3, 0.5]})
    assert grid == {"estimator__classify__log": ["grid"], "threshold": [0.3, 0.5]}
    search = GridSearchCV(
        CalibratedClassifier(base, cv=3), grid, cv=StratifiedGroupKFold(3), scoring="roc_auc",
    )
    with config_context(enable_metadata_routing=True):
        search.fit(X, y, groups=groups)
    best = search.best_estimator_
    for tr, te in best.splits_:
        assert set(groups[tr]).isdisjoint(groups[te])
    # grouped calibration folds: every exam's samples are fitted together or not at all
    assert len(log) >= 3 * 2 * 3  # outer folds x candidates x calibration folds
    for fitted in log:
        fitted_groups, counts = np.unique(groups[fitted], return_counts=True)
        assert np.all(counts == 3)


class _RoiMean(TransformerMixin, BaseEstimator):
    """A toy image stage: the mean pixel of each ROI."""

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return np.array([[float(np.mean(r.image))] for r in X])

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        return tags


def test_wraps_an_image_pipeline_taking_lists_of_rois():
    from skcalc.pipeline import make_calcification_pipeline

    tags = get_tags(CalibratedClassifier(make_calcification_pipeline(memory=None)))
    assert tags.input_tags.two_d_array is False
    rng = np.random.default_rng(0)
    y = np.array([0, 1] * 20)
    rois = [ROI(rng.random((8, 8)) + yi, meta={"roi_id": f"r{i}"}) for i, yi in enumerate(y)]
    pipe = Pipeline([("feat", _RoiMean()), ("classify", LogisticRegression())])
    clf = CalibratedClassifier(pipe, cv=2).fit(rois, y, groups=np.arange(40) // 2)
    assert clf.predict_proba(rois).shape == (40, 2)
    assert not hasattr(clf, "n_features_in_")  # a list of ROIs has no feature count


def _separable(n=120, n_pos_exams=None, seed=0):
    """Two samples per exam; the positives are the first exams (so a plain KFold puts them
    all in the first folds)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    groups = np.repeat(np.arange(n // 2), 2)
    if n_pos_exams is None:
        y = (X[:, 0] + rng.normal(size=n) > 0.8).astype(int)
    else:
        y = (groups < n_pos_exams).astype(int)
        X[y == 1, 0] += 3
    return X, y, groups


def test_too_few_actionable_exams_for_the_folds_is_refused():
    # 3 actionable exams, 5 folds: two calibration folds would hold no actionable sample
    # and their calibrators would map every score to a near-zero probability.
    X, y, groups = _separable(n_pos_exams=3)
    with pytest.raises(ValueError, match=r"3 exam\(s\) with an actionable ROI for 5 grouped"):
        CalibratedClassifier(LogisticRegression(), cv=5).fit(X, y, groups=groups)
    # the check counts the positive class, whatever its label
    words = np.where(y == 1, "actionable", "benign")
    with pytest.raises(ValueError, match=r"3 exam\(s\) with an actionable ROI"):
        CalibratedClassifier(LogisticRegression(), cv=5, pos_label="actionable").fit(
            X, words, groups=groups)
    CalibratedClassifier(LogisticRegression(), cv=3).fit(X, y, groups=groups)


@pytest.mark.filterwarnings("ignore:The groups parameter is ignored by KFold")
def test_a_fold_without_both_classes_is_refused():
    from sklearn.model_selection import KFold

    X, y, groups = _separable(n_pos_exams=6)  # 12 positives: the first 10 % of samples
    with pytest.raises(ValueError, match=r"calibration part of calibration fold 0 has only "
                                         r"the label\(s\) \[1\]"):
        CalibratedClassifier(LogisticRegression(), cv=KFold(10)).fit(X, y, groups=groups)
    with pytest.raises(ValueError, match=r"training part of calibration fold 0 has only "
                                         r"the label\(s\) \[0\]"):
        CalibratedClassifier(LogisticRegression(), cv=KFold(5)).fit(X, y, groups=groups)


def _image_pipeline():
    return Pipeline([("feat", _RoiMean()), ("classify", LogisticRegression())])


def _rois(meta_of):
    rng = np.random.default_rng(0)
    y = np.array([0, 1, 0, 0] * 10)
    rois = [ROI(rng.random((8, 8)) + yi, meta={"roi_id": f"r{i}", **meta_of(i)})
            for i, yi in enumerate(y)]
    return rois, y


@pytest.mark.parametrize("key", ["exam_id", "patient_id"])
def test_groups_default_to_the_rois_exam_ids(key):
    from skcalc.exceptions import SkcalcWarning

    rois, y = _rois(lambda i: {key: f"e{i // 2}"})
    exams = np.array([f"e{i // 2}" for i in range(len(rois))])
    with warnings.catch_warnings():
        warnings.simplefilter("error", SkcalcWarning)
        clf = CalibratedClassifier(_image_pipeline(), cv=3).fit(rois, y)
    for tr, te in clf.splits_:
        assert set(exams[tr]).isdisjoint(exams[te])
    # the same folds as with the exam ids given
    given = CalibratedClassifier(_image_pipeline(), cv=3).fit(rois, y, groups=exams)
    for (a, b), (c, d) in zip(clf.splits_, given.splits_):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)


def test_ungrouped_calibration_folds_are_warned_about():
    from skcalc.exceptions import SkcalcWarning

    rois, y = _rois(lambda i: {})
    with pytest.warns(SkcalcWarning, match="not grouped by exam"):
        CalibratedClassifier(_image_pipeline(), cv=3).fit(rois, y)
    X, y, _ = _separable()
    with pytest.warns(SkcalcWarning, match="not grouped by exam"):
        CalibratedClassifier(LogisticRegression(), cv=3).fit(X, y)


def test_pos_label_is_the_thresholded_class():
    from sklearn.utils._param_validation import InvalidParameterError

    X, y, groups = _separable()
    words = np.where(y == 1, "actionable", "benign")
    clf = CalibratedClassifier(LogisticRegression(), cv=3, threshold=0.05,
                               pos_label="actionable").fit(X, words, groups=groups)
    assert clf.classes_.tolist() == ["actionable", "benign"]
    p = clf.predict_proba(X)[:, 0]  # P(actionable): the first column
    np.testing.assert_array_equal(clf.predict(X) == "actionable", p >= 0.05)
    assert (clf.predict(X[y == 1]) == "actionable").mean() > 0.9  # a low threshold
    # the same model as with 0/1 labels and the default pos_label (the greater label, 1)
    ints = CalibratedClassifier(LogisticRegression(), cv=3, threshold=0.05).fit(
        X, y, groups=groups)
    np.testing.assert_allclose(ints.predict_proba(X)[:, 1], p)
    np.testing.assert_array_equal(ints.predict(X) == 1, clf.predict(X) == "actionable")
    with pytest.raises(ValueError, match=r"pos_label='malignant' is not one of the labels"):
        CalibratedClassifier(LogisticRegression(), cv=3, pos_label="malignant").fit(
            X, words, groups=groups)
    with pytest.raises(InvalidParameterError, match="pos_label"):
        CalibratedClassifier(LogisticRegression(), pos_label=[1]).fit(X, y, groups=groups)
    with pytest.raises(InvalidParameterError, match="method"):
        CalibratedClassifier(LogisticRegression(), method="beta").fit(X, y, groups=groups)


def test_ranking_is_kept_without_ensemble_only():
    # (module notes) one monotone calibrator on one refitted pipeline keeps the ranking;
    # the average over fold models need not.
    X, y, groups = _problem(300)
    raw = _smote_boost().fit(X, y).predict_proba(X)[:, 1]
    single = CalibratedClassifier(_smote_boost(), cv=3, ensemble=False).fit(
        X, y, groups=groups).predict_proba(X)[:, 1]
    order = np.argsort(raw, kind="stable")
    assert np.all(np.diff(single[order]) >= 0)
    averaged = CalibratedClassifier(_smote_boost(), cv=3).fit(
        X, y, groups=groups).predict_proba(X)[:, 1]
    assert np.any(np.diff(averaged[order]) < 0)
