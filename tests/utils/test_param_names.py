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
