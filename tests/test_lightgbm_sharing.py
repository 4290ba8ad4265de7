"""LightGBM boosting shared across fits (skcalc.classification): the same models, byte for byte."""

import pickle
import threading

import lightgbm
import lightgbm.sklearn as lgb_sklearn
import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV, StratifiedKFold

import skcalc._lightgbm_sharing as cls_mod
from skcalc._fitcache import FIT_CACHE
from skcalc._lightgbm_sharing import fit_classifier
from skcalc.classification import ThresholdedClassifier, make_default_lightgbm
from skcalc.metrics import ClinicalScorer
from skcalc.utils import InProcessMemory

pytestmark = pytest.mark.skipif(
    not cls_mod._lightgbm_verified(), reason="sharing is only enabled for verified LightGBM"
)


@pytest.fixture(autouse=True)
def _fresh_stores():
    FIT_CACHE.clear()
    yield
    FIT_CACHE.clear()


@pytest.fixture(scope="module")
def data():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(160, 30))
    X[:, 3] = np.round(X[:, 3])  # a few-valued column: coarse bins
    X[rng.rand(*X.shape) < 0.02] = np.nan  # LightGBM's missing values
    y = (X[:, 0] + 0.7 * np.nan_to_num(X[:, 1]) + 0.8 * rng.normal(size=160) > 0.3)
    return X, y.astype(int)


def _plain(X, y, **params):
    return make_default_lightgbm(**params).fit(X, y)


def _shared(X, y, **params):
    return fit_classifier(make_default_lightgbm(**params), X, y, {}, share=True)


def _assert_same_model(a, b, X):
    assert a.booster_.model_to_string() == b.booster_.model_to_string()
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    assert a.n_estimators_ == b.n_estimators_
    assert a.booster_.params == b.booster_.params
    # everything LightGBM and scikit-learn keep, in the same order: the same pickle
    assert pickle.dumps(a) == pickle.dumps(b)


SETTINGS = [
    {},
    {"subsample": 0.5, "colsample_bytree": 0.3},
    {"subsample": 1.0, "subsample_freq": 0, "colsample_bytree": 1.0},
    {"num_leaves": 7, "max_depth": 4, "learning_rate": 0.1, "reg_lambda": 0.0},
    {"reg_alpha": 0.5, "min_split_gain": 0.01, "random_state": 7},
]


@pytest.mark.parametrize("setting", SETTINGS)
@pytest.mark.parametrize("order", [(100, 200), (200, 100), (30, 80, 50)])
def test_shared_fits_equal_plain_fits_in_any_order(data, setting, order):
    X, y = data
    for n in order:
        _assert_same_model(_plain(X, y, n_estimators=n, **setting),
                           _shared(X, y, n_estimators=n, **setting), X)
    # one Dataset and one training Booster served every number of trees
    assert len(cls_mod._DATASETS) == 1 and len(cls_mod._BOOSTERS) == 1
    assert FIT_CACHE.computed[("LightGBM", "update")] == max(order)


def test_settings_share_the_dataset_and_interleave(data):
    X, y = data
    # the grid's order: each setting at 100 trees, then each at 200, one Dataset for all
    # (every parameter that _BOOSTER_ONLY lets share a Dataset is varied)
    settings = [{"learning_rate": lr, "num_leaves": nl} for lr in (0.05, 0.1) for nl in (7, 15)]
    settings += [{"max_depth": 3, "reg_lambda": 0.0}, {"reg_alpha": 0.5, "min_split_gain": 0.01}]
    for n in (100, 200):
        for s in settings:
            _assert_same_model(_plain(X, y, n_estimators=n, **s),
                               _shared(X, y, n_estimators=n, **s), X)
    assert FIT_CACHE.computed[("LightGBM", "Dataset")] == 1
    assert FIT_CACHE.computed[("LightGBM", "Booster")] == 6
    assert FIT_CACHE.computed[("LightGBM", "update")] == 6 * 200
    # other data: its own Dataset
    _assert_same_model(_plain(X[:100], y[:100]), _shared(X[:100], y[:100]), X)
    assert FIT_CACHE.computed[("LightGBM", "Dataset")] == 2


def test_rounds_without_a_split_are_counted_like_lightgbm(data):
    # min_split_gain stops the trees on some rounds: a fit of n rounds has fewer than n
    # trees, and the kept Booster must cut at the same round, whichever fit came first.
    X, y = data
    setting = {"min_split_gain": 4.0, "subsample": 0.6, "num_leaves": 4}
    big = _plain(X, y, n_estimators=120, **setting)
    assert big.n_estimators_ < 100  # the case is exercised (80 trees here)
    for n in (120, 40, 80):
        _assert_same_model(_plain(X, y, n_estimators=n, **setting),
                           _shared(X, y, n_estimators=n, **setting), X)


def test_evicted_boosters_are_retrained_identically(data, monkeypatch):
    X, y = data
    monkeypatch.setattr(cls_mod._BOOSTERS, "max_items", 1)
    for lr, n in [(0.05, 50), (0.1, 50), (0.05, 80)]:  # the 0.05 Booster was evicted
        _assert_same_model(_plain(X, y, n_estimators=n, learning_rate=lr),
                           _shared(X, y, n_estimators=n, learning_rate=lr), X)
    assert len(cls_mod._BOOSTERS) == 1
    assert FIT_CACHE.computed[("LightGBM", "Booster")] == 3
    assert FIT_CACHE.computed[("LightGBM", "update")] == 50 + 50 + 80


@pytest.mark.parametrize(
    "case",
    ["share_off", "sample_weight", "two_threads", "dart", "extra_param", "float_seed_none",
     "pandas"],
)
def test_unverified_cases_go_through_plain_lightgbm(data, case):
    X, y = data
    params, fit_params, share, Xin = {}, {}, True, X
    if case == "share_off":
        share = False
    elif case == "sample_weight":
        fit_params = {"sample_weight": np.linspace(0.5, 1.5, len(y))}
    elif case == "two_threads":
        params = {"n_jobs": 2}
    elif case == "dart":
        params = {"boosting_type": "dart"}
    elif case == "extra_param":
        params = {"max_bin": 63}
    elif case == "float_seed_none":
        params = {"random_state": None}
    else:
        import pandas as pd

        Xin = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    est = make_default_lightgbm(n_estimators=20, **params)
    got = fit_classifier(est, Xin, y, fit_params, share=share)
    assert FIT_CACHE.computed == {}  # nothing shared, nothing kept
    assert len(cls_mod._BOOSTERS) == 0 and len(cls_mod._DATASETS) == 0
    if case != "float_seed_none":  # LightGBM's own result (a seedless fit differs per run)
        ref = make_default_lightgbm(n_estimators=20, **params).fit(Xin, y, **fit_params)
        assert got.booster_.model_to_string() == ref.booster_.model_to_string()


def test_train_is_restored_and_other_threads_pass_through(data):
    X, y = data
    original = lgb_sklearn.train
    seen = {}

    def other_thread():
        # runs while the main thread is inside the sharing context: plain LightGBM
        seen["model"] = make_default_lightgbm(n_estimators=30).fit(X, y)
        seen["computed"] = dict(FIT_CACHE.computed)

    with cls_mod._shared_boosting():
        assert lgb_sklearn.train is cls_mod._train_sharing
        t = threading.Thread(target=other_thread)
        t.start()
        t.join()
    assert lgb_sklearn.train is original is lightgbm.engine.train
    assert seen["computed"] == {}
    assert (seen["model"].booster_.model_to_string()
            == _shared(X, y, n_estimators=30).booster_.model_to_string())


def test_thresholded_classifier_with_memory_shares_and_matches(data):
    X, y = data
    est = make_default_lightgbm(n_estimators=60)
    a = ThresholdedClassifier(est, memory=InProcessMemory()).fit(X, y)
    b = ThresholdedClassifier(est).fit(X, y)
    assert FIT_CACHE.computed[("LightGBM", "Booster")] == 1
    assert pickle.dumps(a.estimator_) == pickle.dumps(b.estimator_)


def test_grid_over_n_estimators_gives_identical_cv_results(data):
    X, y = data
    grid = {
        "estimator__n_estimators": [200, 50, 100],  # not ascending on purpose
        "estimator__learning_rate": [0.05, 0.1],
        "estimator__subsample": [0.7, 1.0],
        "threshold": [0.3, 0.5],
    }

    def search(memory):
        gs = GridSearchCV(
            ThresholdedClassifier(make_default_lightgbm(), memory=memory), grid,
            scoring=ClinicalScorer(), refit="sensitivity_first",
            cv=StratifiedKFold(4, shuffle=True, random_state=0),
        )
        return gs.fit(X, y)

    shared = search(InProcessMemory())
    # per fold: a Dataset per subsample (it is keyed on every parameter but the
    # tree-learning ones) and a Booster per (learning_rate, subsample); one each for refit
    assert FIT_CACHE.computed[("LightGBM", "Dataset")] == 4 * 2 + 1
    assert FIT_CACHE.computed[("LightGBM", "Booster")] == 4 * 4 + 1
    FIT_CACHE.clear()
    plain = search(None)
    assert FIT_CACHE.computed == {}
    for key in plain.cv_results_:
        if key.startswith(("mean_test", "std_test", "rank_test", "split")):
            np.testing.assert_array_equal(shared.cv_results_[key], plain.cv_results_[key],
                                          err_msg=key)
    assert shared.best_params_ == plain.best_params_
    assert pickle.dumps(shared.best_estimator_.estimator_) == pickle.dumps(
        plain.best_estimator_.estimator_)


def test_booster_store_is_bounded_in_estimated_bytes(data, monkeypatch):
    X, y = data
    _shared(X, y, n_estimators=10)
    one = cls_mod._BOOSTERS.weight
    ds = next(iter(cls_mod._DATASETS._data.values()))
    n_bins = sum(ds.feature_num_bin(i) for i in range(ds.num_feature()))
    assert one == 16 * n_bins * 15 + 64 * len(y)  # the histogram pool of 15 leaves
    monkeypatch.setattr(cls_mod._BOOSTERS, "max_weight", 2.5 * one)
    for lr in (0.1, 0.2, 0.3):
        _assert_same_model(_plain(X, y, n_estimators=10, learning_rate=lr),
                           _shared(X, y, n_estimators=10, learning_rate=lr), X)
    assert len(cls_mod._BOOSTERS) == 2 and cls_mod._BOOSTERS.weight == 2 * one
