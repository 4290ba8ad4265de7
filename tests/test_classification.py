import numpy as np
import pytest
from lightgbm import LGBMClassifier
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import FixedThresholdClassifier, GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.utils import get_tags

from skcalc._fitcache import FIT_CACHE
from skcalc.classification import ThresholdedClassifier, make_default_lightgbm
from skcalc.metrics import make_clinical_scorers, sensitivity_then_specificity
from skcalc.utils import InProcessMemory


@pytest.fixture(scope="module")
def data():
    return make_classification(n_samples=120, n_features=6, weights=[0.7], random_state=0)


def test_defaults_and_params_unchanged_by_fit(data):
    X, y = data
    clf = ThresholdedClassifier()
    assert clf.get_params()["threshold"] == 0.4 and clf.estimator is None
    assert isinstance(clf, FixedThresholdClassifier)
    clf.fit(X, y)
    assert clf.estimator is None  # the default is built in fit, never stored as a param
    assert isinstance(clf.estimator_, LGBMClassifier)
    assert clf.estimator_.get_params() == {
        **make_default_lightgbm().get_params(), **{}}
    assert clf.n_features_in_ == 6 and clf.classes_.tolist() == [0, 1]
    assert clone(clf).get_params() == ThresholdedClassifier().get_params()


def test_predict_is_proba_at_least_threshold(data):
    X, y = data
    for t in (0.1, 0.4, 0.8):
        clf = ThresholdedClassifier(threshold=t).fit(X, y)
        proba = clf.predict_proba(X)[:, 1]
        np.testing.assert_array_equal(clf.predict(X), (proba >= t).astype(int))
    # Same thresholding as scikit-learn's class on the same fitted model.
    ref = FixedThresholdClassifier(clf.estimator_, threshold=0.8)
    np.testing.assert_array_equal(ref.predict(X), clf.predict(X))


def test_explicit_estimator_and_string_labels(data):
    X, y = data
    labels = np.where(y == 1, "actionable", "benign")
    clf = ThresholdedClassifier(LogisticRegression(), threshold=0.3, pos_label="actionable")
    clf.fit(X, labels)
    proba = clf.predict_proba(X)[:, list(clf.classes_).index("actionable")]
    np.testing.assert_array_equal(clf.predict(X) == "actionable", proba >= 0.3)
    assert hasattr(clf, "decision_function")
    assert not hasattr(ThresholdedClassifier(), "predict_log_proba")  # LightGBM has none


def test_unfitted_and_tags():
    clf = ThresholdedClassifier()
    assert not hasattr(clf, "classes_")
    with pytest.raises(Exception, match="not fitted"):
        clf.predict(np.zeros((2, 3)))
    assert get_tags(clf).input_tags.allow_nan  # copied from LightGBM
    assert not get_tags(ThresholdedClassifier(LogisticRegression())).input_tags.allow_nan


def test_nan_input_accepted_and_held_out_auc_above_chance():
    # A known signal: the label depends on two of six features, which are partly missing.
    X, y = make_classification(
        n_samples=400, n_features=6, n_informative=2, n_redundant=0, weights=[0.7],
        class_sep=1.5, random_state=0,
    )
    X = X.copy()
    X[::7, 0] = np.nan
    X[::5, 3] = np.nan
    train, test = np.arange(300), np.arange(300, 400)
    clf = ThresholdedClassifier().fit(X[train], y[train])
    auc = roc_auc_score(y[test], clf.predict_proba(X[test])[:, 1])
    assert auc > 0.85, auc
    # the same classifier on shuffled labels is at chance: the signal is real
    shuffled = np.random.default_rng(0).permutation(y[train])
    auc_null = roc_auc_score(
        y[test], ThresholdedClassifier().fit(X[train], shuffled).predict_proba(X[test])[:, 1]
    )
    assert abs(auc_null - 0.5) < 0.15, auc_null


def test_fit_never_writes_the_estimator_parameter(data, monkeypatch):
    X, y = data
    clf = ThresholdedClassifier()
    seen = []
    original = ThresholdedClassifier.__setattr__

    def spy(self, name, value):
        if name == "estimator":
            seen.append(value)
        original(self, name, value)

    monkeypatch.setattr(ThresholdedClassifier, "__setattr__", spy)
    clf.fit(X, y)
    assert seen == []  # only __init__ (before the spy) set it


def test_memoised_fit_is_threshold_independent_and_identical(data):
    X, y = data
    FIT_CACHE.clear()
    scorers = make_clinical_scorers()
    grid = {"threshold": [0.2, 0.4, 0.6], "estimator__n_estimators": [20, 40]}
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    kw = dict(scoring={"sensitivity": scorers["sensitivity"],
                       "specificity": scorers["specificity"], "roc_auc": scorers["roc_auc"]},
              refit=sensitivity_then_specificity, cv=cv)
    base = ThresholdedClassifier(make_default_lightgbm())
    cached = GridSearchCV(base.set_params(memory=InProcessMemory()), grid, **kw).fit(X, y)
    # 2 settings x 3 folds + 1 refit fits; the 3 thresholds share them
    assert FIT_CACHE.misses == 7 and FIT_CACHE.hits == 12
    plain = GridSearchCV(clone(base).set_params(memory=None), grid, **kw).fit(X, y)
    for key in ("mean_test_sensitivity", "mean_test_specificity", "mean_test_roc_auc",
                "split0_test_sensitivity", "rank_test_roc_auc"):
        np.testing.assert_array_equal(cached.cv_results_[key], plain.cv_results_[key])
    assert cached.best_index_ == plain.best_index_
    # a cache hit returns the very fitted model; predictions agree with a fresh fit
    a = clone(cached.best_estimator_).fit(X, y)
    np.testing.assert_array_equal(a.predict_proba(X), plain.best_estimator_.predict_proba(X))
    FIT_CACHE.clear()


def test_threshold_grid_searchable_with_sensitivity_first(data):
    X, y = data
    pipe = Pipeline([("classify", ThresholdedClassifier())])
    scorers = make_clinical_scorers()
    gs = GridSearchCV(
        pipe, {"classify__threshold": [0.05, 0.2, 0.5, 0.9]},
        scoring={"sensitivity_first": scorers["sensitivity_first"],
                 "sensitivity": scorers["sensitivity"], "specificity": scorers["specificity"]},
        refit="sensitivity_first", cv=StratifiedKFold(3, shuffle=True, random_state=0),
    ).fit(X, y)
    res = gs.cv_results_
    sens, spec = res["mean_test_sensitivity"], res["mean_test_specificity"]
    # Lexicographic choice: best sensitivity, then best specificity among those.
    best = max(range(4), key=lambda i: (round(sens[i], 9), spec[i]))
    assert gs.best_index_ == best
    # Sensitivity falls and specificity rises with the threshold.
    assert sens[0] >= sens[-1] and spec[0] <= spec[-1]
