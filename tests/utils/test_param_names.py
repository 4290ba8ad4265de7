"""Cached parameter names equal scikit-learn's, for every skcalc estimator using the cache."""

from __future__ import annotations

import pytest
from sklearn.base import BaseEstimator

from skcalc.aggregation import BagOfClustersAggregator, MeanStdAggregator
from skcalc.classification import ThresholdedClassifier
from skcalc.feature_selection import ImportanceSelector
from skcalc.features import LocalFeatureExtractor, TopologyFeatures
from skcalc.masks import MaskBuilder
from skcalc.pipeline import make_calcification_pipeline
from skcalc.resampling import SafeSMOTEENN
from skcalc.segmentation import HDoGRegSegmenter
from skcalc.utils._base import CachedParamNamesMixin

CLASSES = [
    BagOfClustersAggregator,
    MeanStdAggregator,
    ThresholdedClassifier,
    ImportanceSelector,
    LocalFeatureExtractor,
    TopologyFeatures,
    MaskBuilder,
    SafeSMOTEENN,
    HDoGRegSegmenter,
    type(make_calcification_pipeline()),
]


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_cached_param_names_equal_scikit_learns(cls):
    assert issubclass(cls, CachedParamNamesMixin)
    uncached = BaseEstimator._get_param_names.__func__(cls)  # the signature, read now
    assert cls._get_param_names() == uncached
    assert cls._get_param_names() == uncached  # from the cache
    names = cls._get_param_names()
    names.append("x")  # callers get a copy
    assert cls._get_param_names() == uncached


def test_pipeline_params_unchanged_by_the_cache():
    pipe = make_calcification_pipeline(n_clusters=7)
    params = pipe.get_params(deep=True)
    assert params["features__local__bag__n_clusters"] == 7
    assert pipe.set_params(classify__threshold=0.3).get_params()["classify__threshold"] == 0.3


# memoised_param_names: every class's names read once inside the context, scikit-learn's
# function back afterwards.

ORIGINAL = BaseEstimator.__dict__["_get_param_names"]


def _is_original() -> bool:
    return BaseEstimator.__dict__["_get_param_names"] is ORIGINAL


def test_memoised_param_names_reads_each_signature_once_and_equals_sklearns(monkeypatch):
    import inspect

    from sklearn.cluster import KMeans
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from skcalc.utils._base import memoised_param_names

    classes = [KMeans, StandardScaler, Pipeline, SafeSMOTEENN]
    expected = {cls: ORIGINAL.__func__(cls) for cls in classes}
    calls = []
    signature = inspect.signature
    monkeypatch.setattr(inspect, "signature", lambda f, *a, **k: calls.append(f) or
                        signature(f, *a, **k))
    with memoised_param_names():
        assert not _is_original()
        for _ in range(3):
            for cls in classes:
                assert cls._get_param_names() == expected[cls]
        names = KMeans._get_param_names()
        names.append("x")  # callers get a copy
        assert KMeans._get_param_names() == expected[KMeans]
        assert KMeans(n_clusters=3).get_params()["n_clusters"] == 3
    # KMeans, StandardScaler, Pipeline once each; SafeSMOTEENN has its own cache
    assert len(calls) == 3
    assert _is_original()
    calls.clear()
    KMeans._get_param_names()
    KMeans._get_param_names()
    assert len(calls) == 2  # scikit-learn's again: the signature at every call


def test_memoised_param_names_restores_on_exception_and_when_nested():
    from skcalc.utils._base import memoised_param_names

    with pytest.raises(KeyError):
        with memoised_param_names():
            raise KeyError("boom")
    assert _is_original()
    with memoised_param_names():
        with memoised_param_names():
            assert not _is_original()
        assert not _is_original()  # the outer user is still inside
        with pytest.raises(ValueError):
            with memoised_param_names():
                raise ValueError
        assert not _is_original()
    assert _is_original()


def test_memoised_param_names_keeps_sklearns_errors_and_caches_nothing_then():
    from skcalc.utils._base import _MEMO_NAMES, memoised_param_names

    class VarArgs(BaseEstimator):
        def __init__(self, *args):
            self.args = args

    with memoised_param_names():
        for _ in range(2):
            with pytest.raises(RuntimeError, match="no varargs"):
                VarArgs._get_param_names()
        assert VarArgs not in _MEMO_NAMES
    assert _is_original() and not _MEMO_NAMES


def test_memoised_param_names_threads_leaving_in_any_order():
    # Thread A enters, B enters, A leaves (B still inside: still memoised), B leaves.
    import threading

    from sklearn.preprocessing import StandardScaler

    from skcalc.utils._base import memoised_param_names

    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    seen = {}

    def a():
        with memoised_param_names():
            a_in.set()
            b_in.wait(5)
        a_out.set()

    def b():
        a_in.wait(5)
        with memoised_param_names():
            b_in.set()
            a_out.wait(5)
            seen["patched_after_a_left"] = not _is_original()
            seen["names"] = StandardScaler._get_param_names()

    threads = [threading.Thread(target=a), threading.Thread(target=b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert seen == {"patched_after_a_left": True,
                    "names": ORIGINAL.__func__(StandardScaler)}
    assert _is_original()
