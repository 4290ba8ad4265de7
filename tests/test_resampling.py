"""SafeSMOTEENN: imbalanced-learn's composition and checks, plus the small-fold safety."""

import warnings
from collections import Counter

import numpy as np
import pytest
from imblearn.combine import SMOTEENN
from imblearn.over_sampling import SMOTE
from imblearn.under_sampling import EditedNearestNeighbours
from imblearn.utils.estimator_checks import parametrize_with_checks

from skcalc._fitcache import FIT_CACHE
from skcalc.exceptions import SkcalcWarning
from skcalc.resampling import SafeSMOTEENN
from skcalc.utils import InProcessMemory


@parametrize_with_checks([SafeSMOTEENN(random_state=0)])
def test_imblearn_sampler_checks(estimator, check):
    check(estimator)


def _data(n_major=40, n_minor=8, seed=0):
    rng = np.random.default_rng(seed)
    X = np.vstack([rng.normal(0, 1, (n_major, 3)), rng.normal(1.5, 1, (n_minor, 3))])
    y = np.r_[np.zeros(n_major, int), np.ones(n_minor, int)]
    return X, y


def test_matches_imblearn_with_the_same_objects():
    X, y = _data()
    smote = SMOTE(k_neighbors=3, random_state=1)
    enn = EditedNearestNeighbours(sampling_strategy="all", n_neighbors=3)
    ours = SafeSMOTEENN(smote=smote, enn=enn).fit_resample(X, y)
    ref = SMOTEENN(smote=smote, enn=enn).fit_resample(X, y)
    np.testing.assert_array_equal(ours[0], ref[0])
    np.testing.assert_array_equal(ours[1], ref[1])


def test_default_enn_edits_the_majority_only():
    X, y = _data()
    sampler = SafeSMOTEENN(random_state=0)
    Xr, yr = sampler.fit_resample(X, y)
    assert sampler.enn_.sampling_strategy == "majority"
    # SMOTE balanced the classes; ENN removed majority samples only
    assert Counter(yr.tolist())[1] == 40 and Counter(yr.tolist())[0] < 40
    ref = SMOTEENN(
        smote=SMOTE(random_state=0), enn=EditedNearestNeighbours(sampling_strategy="majority")
    ).fit_resample(X, y)
    np.testing.assert_array_equal(Xr, ref[0])


def test_small_minority_lowers_k_and_tiny_one_is_left_alone():
    X, y = _data(n_minor=3)
    sampler = SafeSMOTEENN(smote=SMOTE(k_neighbors=5, random_state=0))
    Xr, yr = sampler.fit_resample(X, y)
    assert sampler.smote_.k_neighbors == 2 and sampler.smote.k_neighbors == 5  # param intact
    assert (yr == 1).sum() > 3
    X1, y1 = _data(n_minor=1)
    with pytest.warns(SkcalcWarning, match="too small to resample"):
        Xo, yo = SafeSMOTEENN(random_state=0).fit_resample(X1, y1)
    np.testing.assert_array_equal(Xo, X1)
    # imblearn's SMOTEENN fails on the same fold
    with pytest.raises(ValueError):
        SMOTEENN(random_state=0).fit_resample(X1, y1)


def test_enn_that_would_remove_a_class_falls_back_to_smote_output():
    # Two interleaved classes: ENN(all) with many neighbours would erase the minority.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 2))
    y = np.r_[np.zeros(27, int), np.ones(3, int)]
    enn = EditedNearestNeighbours(sampling_strategy="all", n_neighbors=25, kind_sel="all")
    Xr, yr = SafeSMOTEENN(enn=enn, random_state=0).fit_resample(X, y)
    assert set(yr.tolist()) == {0, 1} and min(Counter(yr.tolist()).values()) >= 2


def test_memoised_resampling_is_identical_and_not_shared():
    X, y = _data()
    FIT_CACHE.clear()
    plain = SafeSMOTEENN(random_state=0).fit_resample(X, y)
    cached = SafeSMOTEENN(random_state=0, memory=InProcessMemory())
    first = cached.fit_resample(X, y)
    assert FIT_CACHE.misses == 1 and FIT_CACHE.hits == 0
    second = cached.fit_resample(X.copy(), y.copy())
    assert FIT_CACHE.hits == 1
    for a, b in zip(plain, second):
        np.testing.assert_array_equal(a, b)
    second[0][:] = 0  # the caller owns its copy
    np.testing.assert_array_equal(first[0], plain[0])
    # no memoisation without an integer seed
    with warnings.catch_warnings():
        SafeSMOTEENN(memory=InProcessMemory()).fit_resample(X, y)
        SafeSMOTEENN(memory=InProcessMemory()).fit_resample(X, y)
    assert FIT_CACHE.hits == 1
    FIT_CACHE.clear()


class _RecordingSMOTE(SMOTE):
    """SMOTE noting the BLAS/OpenMP thread counts it runs with."""

    seen: list = []

    def _fit_resample(self, X, y):
        from threadpoolctl import threadpool_info

        _RecordingSMOTE.seen.append([p["num_threads"] for p in threadpool_info()])
        return super()._fit_resample(X, y)


def test_resampling_runs_on_one_thread_with_the_same_result(monkeypatch):
    # A fold's size (the demo: ~200 samples, ~60 features): the neighbour searches run on
    # one BLAS/OpenMP thread, and give what they give on all of them.
    from contextlib import nullcontext

    import skcalc.resampling as resampling

    rng = np.random.default_rng(3)
    X = rng.normal(size=(200, 60))
    X[:40] += 0.5
    X[::7, :5] = X[1::7, :5][: len(X[::7])]  # ties in some coordinates
    y = np.r_[np.ones(40, int), np.zeros(160, int)]
    _RecordingSMOTE.seen = []
    one = SafeSMOTEENN(smote=_RecordingSMOTE(random_state=0)).fit_resample(X, y)
    assert _RecordingSMOTE.seen and all(n == 1 for n in _RecordingSMOTE.seen[0])
    monkeypatch.setattr(resampling, "single_threaded", nullcontext)
    _RecordingSMOTE.seen = []
    free = SafeSMOTEENN(smote=_RecordingSMOTE(random_state=0)).fit_resample(X, y)
    np.testing.assert_array_equal(one[0], free[0])
    np.testing.assert_array_equal(one[1], free[1])
