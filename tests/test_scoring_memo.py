"""The grid search's scoring shortcuts give the values of the plain calls, bit for bit."""

import functools
import warnings

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

import skcalc.classification as cls_mod
from skcalc._fitcache import _LIST_KEYS, FIT_CACHE, input_key
from skcalc.classification import ThresholdedClassifier, make_default_lightgbm
from skcalc.datasets import make_calcification_cohort
from skcalc.metrics import ClinicalScorer, make_clinical_scorers
from skcalc.metrics._clinical import _AUC_MEMO, _memoised_roc_auc
from skcalc.pipeline import make_calcification_pipeline
from skcalc.utils import InProcessMemory


@pytest.fixture(autouse=True)
def _fresh():
    FIT_CACHE.clear()
    cls_mod._RESPONSE_MEMO.clear()
    _AUC_MEMO.clear()
    yield
    FIT_CACHE.clear()


@pytest.fixture(scope="module")
def data():
    rng = np.random.RandomState(1)
    X = rng.normal(size=(120, 8))
    y = (X[:, 0] + rng.normal(size=120) > 0).astype(int)
    return X, y


def _plain_pair(clf, X):
    # what ClinicalScorer read before: predict, and the ROC AUC scorer's response
    if getattr(clf, "decision_function", None) is not None:
        return clf.predict(X), clf.decision_function(X)
    return clf.predict(X), clf.predict_proba(X)[:, -1]


def _svc():
    from sklearn.svm import LinearSVC

    return LinearSVC()  # decision_function only


@pytest.mark.parametrize(
    "labels, kw",
    [
        ((0, 1), {}),
        ((0, 1), {"threshold": "auto"}),
        ((0, 1), {"threshold": 0.1, "pos_label": 0}),
        (("benign", "malignant"), {"threshold": 0.3, "pos_label": "benign"}),
        (("benign", "malignant"), {"threshold": 0.6}),
        ((-1, 1), {"response_method": "predict_proba", "threshold": 0.45}),
        ((0, 1), {"response_method": "decision_function", "threshold": 0.2}),
        (("a", "b"), {"response_method": "decision_function", "pos_label": "a"}),
    ],
)
@pytest.mark.parametrize("make", [lambda: make_default_lightgbm(n_estimators=30),
                                  LogisticRegression, _svc], ids=["lgbm", "logreg", "svc"])
@pytest.mark.parametrize("memory", [None, InProcessMemory()], ids=["plain", "memory"])
def test_predict_and_score_equals_predict_and_the_auc_response(data, labels, kw, make, memory):
    X, y01 = data
    y = np.asarray(labels)[y01]
    if make is _svc and kw.get("response_method") == "predict_proba":
        pytest.skip("LinearSVC has no predict_proba")
    clf = ThresholdedClassifier(make(), memory=memory, **kw)
    clf.fit(X[:80], y[:80])
    for _ in range(2):  # the second call may come from the memo
        y_pred, score = clf._predict_and_score(X[80:])
        ref_pred, ref_score = _plain_pair(clf, X[80:])
        assert y_pred.dtype == ref_pred.dtype
        np.testing.assert_array_equal(y_pred, ref_pred)
        np.testing.assert_array_equal(score, ref_score)


def test_thresholds_share_the_responses_of_a_memoised_fit(data, monkeypatch):
    X, y = data
    est = make_default_lightgbm(n_estimators=30)
    clfs = [ThresholdedClassifier(est, threshold=t, memory=InProcessMemory()).fit(X[:80], y[:80])
            for t in (0.2, 0.5, 0.8)]
    assert clfs[0].estimator_ is clfs[2].estimator_  # one memoised fit
    calls = []
    cls = type(clfs[0].estimator_)
    for name in ("predict_proba", "decision_function"):
        original = getattr(cls, name)

        @functools.wraps(original)  # scikit-learn dispatches on the method's __name__
        def counting(self, X, *a, _original=original, _name=name, **k):
            calls.append(_name)
            return _original(self, X, *a, **k)

        monkeypatch.setattr(cls, name, counting)
    preds = [c._predict_and_score(X[80:].copy())[0] for c in clfs]
    # LightGBM: predict thresholds predict_proba, the AUC reads decision_function; once each
    assert sorted(calls) == ["decision_function", "predict_proba"]
    for c, p in zip(clfs, preds):
        np.testing.assert_array_equal(p, c.predict(X[80:]))
    assert len({p.tobytes() for p in preds}) == 3  # the thresholds do differ
    calls.clear()
    clfs[0]._predict_and_score(X[:40])  # other content: new responses
    assert len(calls) == 2


def test_pipeline_predict_and_score_equals_its_methods():
    rois, y, _ = make_calcification_cohort(n_rois=30, random_state=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipe = make_calcification_pipeline(n_clusters=3, threshold=0.5).fit(rois[:20], y[:20])
        y_pred, score = pipe._predict_and_score(rois[20:])
        np.testing.assert_array_equal(y_pred, pipe.predict(rois[20:]))
        np.testing.assert_array_equal(score, pipe.decision_function(rois[20:]))
        scores = ClinicalScorer()(pipe, rois[20:], y[20:])
        ref = {k: s(pipe, rois[20:], y[20:]) for k, s in make_clinical_scorers().items()}
    assert scores == ref
    # without the tail's memo, no shortcut: the scorer asks predict and predict_proba
    plain = make_calcification_pipeline(n_clusters=3, cache_tail=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain.fit(rois[:20], y[:20])
    assert plain._predict_and_score(rois[20:]) is None


def test_memoised_roc_auc_is_roc_auc_score():
    rng = np.random.RandomState(0)
    for _ in range(20):
        y = rng.randint(0, 2, 30)
        s = np.round(rng.rand(30), 1)  # ties
        assert _memoised_roc_auc(y, s) == roc_auc_score(y, s)
        assert _memoised_roc_auc(y, s.copy()) == roc_auc_score(y, s)
    y = np.array([0, 1, 1, 0])
    s = np.array([0.1, 0.9, 0.3, 0.5])
    a = _memoised_roc_auc(y, s)
    # same bytes, other dtype or shape: other keys
    assert _memoised_roc_auc(y.astype(np.int32), s) == a
    assert _memoised_roc_auc(y, s[::-1].copy()) == roc_auc_score(y, s[::-1])
    assert len(_AUC_MEMO) == 20 + 3


def test_input_key_of_a_new_list_of_the_same_records():
    rois, _, _ = make_calcification_cohort(n_rois=6, random_state=0)
    rois = list(rois)
    key = input_key(rois)
    assert input_key(list(rois)) == key  # a new list: remembered
    assert input_key(tuple(rois)) == key
    assert input_key(rois[::-1]) != key
    assert input_key(rois[:5]) != key
    other = rois[:5] + [rois[0].replace(image=rois[0].image + 1)]
    assert input_key(other) != key
    # the memo's entry holds the records, and is checked by identity
    entry = _LIST_KEYS.get(tuple(map(id, rois)))[1]
    assert all(a is b for a, b in zip(entry[0], rois)) and entry[1] == key
