"""Common estimator checks: scikit-learn's suite on tabular estimators, data-free checks +
skcalc's image checks on image estimators. Expected failures come from the one table in
``skcalc/testing/_instance_generator.py``."""

from numbers import Real

import numpy as np
import pytest
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils.estimator_checks import parametrize_with_checks

from skcalc import ROI
from skcalc.roi import as_roi_list
from skcalc.testing._instance_generator import (
    PER_ESTIMATOR_XFAIL_CHECKS,
    _get_expected_failed_checks,
    _tested_estimators,
    make_rois,
)
from skcalc.testing.discovery import all_estimators
from skcalc.testing.estimator_checks import (
    assert_outputs_equal,
    check_image_order_invariance,
    parametrize_with_image_checks,
)


@parametrize_with_checks(
    list(_tested_estimators(type_filter="tabular")),
    expected_failed_checks=_get_expected_failed_checks,
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


@parametrize_with_image_checks(
    list(_tested_estimators(type_filter="image")),
    expected_failed_checks=_get_expected_failed_checks,
)
def test_image_estimator(estimator, check):
    check(estimator)


def test_discovery_finds_the_estimators():
    names = {n for n, _ in all_estimators()}
    assert {"BagOfClustersAggregator", "MeanStdAggregator", "ThresholdedClassifier"} <= names
    tab = {n for n, _ in all_estimators(type_filter="tabular")}
    img = {n for n, _ in all_estimators(type_filter="image")}
    assert not tab & img
    assert set(PER_ESTIMATOR_XFAIL_CHECKS) <= names  # no stale entries in the table
    with pytest.raises(ValueError, match="type_filter"):
        all_estimators(type_filter="regressor")


# ------------------------------------------------------- the framework on a dummy estimator
def _mean_of(roi):
    return float(np.mean(roi.image, dtype=np.float64))  # float32 sums would drift


class DummyImageTransformer(TransformerMixin, BaseEstimator):
    """Per-ROI mean intensity minus the training mean (fitted, image input)."""

    _parameter_constraints = {"offset": [Real]}

    def __init__(self, offset=0.0):
        self.offset = offset

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        self.mean_ = np.mean([_mean_of(r) for r in as_roi_list(X)])
        return self

    def transform(self, X):
        return np.array([[_mean_of(r) - self.mean_ + self.offset] for r in as_roi_list(X)])

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        return tags


class OrderDependentTransformer(DummyImageTransformer):
    """Broken on purpose: output depends on the position in the list."""

    def transform(self, X):
        return super().transform(X) + np.arange(len(X))[:, None]


class MutatingTransformer(DummyImageTransformer):
    """Broken on purpose: writes into the input ROIs' metadata (arrays are read-only)."""

    def transform(self, X):
        for r in X:
            r.meta["touched"] = True
        return super().transform(X)


@parametrize_with_image_checks(
    [DummyImageTransformer()],
    rois_factory=lambda est: make_rois(4),
)
def test_framework_on_dummy_image_transformer(estimator, check):
    check(estimator)


def test_image_checks_catch_broken_estimators():
    rois = [r.replace(meta=dict(r.meta)) for r in make_rois(4)]
    with pytest.raises(AssertionError):
        check_image_order_invariance("Broken", OrderDependentTransformer(), rois)
    from skcalc.testing.estimator_checks import check_image_no_input_mutation

    with pytest.raises(AssertionError):
        check_image_no_input_mutation("Broken", MutatingTransformer(), rois)


def test_assert_outputs_equal_handles_rois_tables_and_arrays():
    img = np.arange(12, dtype=np.uint16).reshape(3, 4)
    a = [ROI(img, calcifications=np.zeros((3, 4), np.int32))]
    assert_outputs_equal(a, [a[0].replace()])
    with pytest.raises(AssertionError, match="calcifications"):
        assert_outputs_equal(a, [a[0].replace(calcifications=np.ones((3, 4), np.int32))])
    assert_outputs_equal([{"t": np.array([[np.nan]])}], [{"t": np.array([[np.nan]])}])
    with pytest.raises(AssertionError):
        assert_outputs_equal([{"t": np.zeros((1, 1))}], [{"u": np.zeros((1, 1))}])
    assert_outputs_equal(img, img.astype(np.float32))
