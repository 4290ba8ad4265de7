import json
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import KMeans
from sklearn.preprocessing import StandardScaler
from sklearn.utils import estimator_checks as ec

from skcalc.aggregation import BagOfClustersAggregator, MeanStdAggregator
from skcalc.exceptions import SkcalcWarning

EXTRA_TRANSFORMER_CHECKS = [
    ec.check_transformer_get_feature_names_out,
    ec.check_transformer_get_feature_names_out_pandas,
    ec.check_set_output_transform,
    ec.check_set_output_transform_pandas,
    ec.check_global_output_transform_pandas,
]


class Tables(dict):
    """A mapping with a feature_names attribute, like LocalFeatureTables."""

    def __init__(self, tables, names):
        super().__init__(tables)
        self.feature_names = names


def _tables(rng, sizes, d_fg=3, d_bg=2):
    return [
        {"fg": rng.normal(size=(n, d_fg)), "bg": rng.normal(size=(n, d_bg)) + 5}
        for n in sizes
    ]


def test_bag_matches_reference_implementation():
    rng = np.random.default_rng(0)
    X = _tables(rng, [6, 4, 0, 9])
    bag = BagOfClustersAggregator(n_clusters=3, random_state=0).fit(X)
    out = bag.transform(X)
    assert out.shape == (4, 6) and out.dtype == np.float64
    # Slow reference: per set, scale on all objects, cluster with the fitted k-means, count.
    for s, key in enumerate(["fg", "bg"]):
        allobj = np.vstack([t[key] for t in X])
        scaler = StandardScaler().fit(allobj)
        np.testing.assert_allclose(bag.scalers_[key].mean_, scaler.mean_)
        centers = bag.kmeans_[key].cluster_centers_
        for i, t in enumerate(X):
            expected = np.zeros(3)
            for row in (scaler.transform(t[key]) if len(t[key]) else []):
                expected[np.argmin(((centers - row) ** 2).sum(1))] += 1
            if expected.sum():
                expected /= expected.sum()
            np.testing.assert_allclose(out[i, 3 * s:3 * s + 3], expected)
    np.testing.assert_allclose(out[[0, 1, 3]].reshape(3, 2, 3).sum(-1), 1.0)
    assert np.all(out[2] == 0)  # an ROI without objects
    assert bag.get_feature_names_out()[:4].tolist() == [
        "fg_cluster_00", "fg_cluster_01", "fg_cluster_02", "bg_cluster_00"]


def test_bag_uses_training_clusters_on_new_rois():
    # Two well-separated object types: a test ROI of only type B is all in B's cluster.
    rng = np.random.default_rng(1)
    a = rng.normal(0, 0.1, size=(20, 2))
    b = rng.normal(10, 0.1, size=(20, 2))
    train = [a[:10], b[:10], np.vstack([a[10:], b[10:]])]
    bag = BagOfClustersAggregator(n_clusters=2, random_state=0).fit(train)
    out = bag.transform([b[:3], a[:1]])
    assert sorted(out[0].tolist()) == [0.0, 1.0]
    assert out[0].argmax() != out[1].argmax()
    assert bag.feature_sets_ == ["objects"]


def test_bag_nan_imputation_and_all_nan_column():
    rng = np.random.default_rng(2)
    X = [rng.normal(size=(5, 3)) for _ in range(3)]
    X[0][0, 1] = np.nan
    for t in X:
        t[:, 2] = np.nan  # never defined in training
    bag = BagOfClustersAggregator(n_clusters=2, random_state=0).fit(X)
    means = np.nanmean(np.vstack(X)[:, :2], axis=0)
    np.testing.assert_allclose(bag.impute_values_["objects"], [means[0], means[1], 0.0])
    out = bag.transform(X)
    assert np.isfinite(out).all()
    # Imputing by hand gives the same output.
    filled = [np.where(np.isnan(t), bag.impute_values_["objects"], t) for t in X]
    np.testing.assert_allclose(bag.transform(filled), out)
    with pytest.raises(ValueError, match="NaN values in ROI"):
        BagOfClustersAggregator(n_clusters=2, nan_strategy="error").fit(X)
    dropped = BagOfClustersAggregator(n_clusters=2, nan_strategy="drop_objects").fit(X)
    assert np.all(dropped.transform(X) == 0)  # every object has a NaN -> no objects


def test_bag_fewer_objects_than_clusters_warns_and_keeps_width():
    X = [np.array([[0.0], [1.0]]), np.empty((0, 1))]
    with pytest.warns(SkcalcWarning, match="fewer than n_clusters=5"):
        bag = BagOfClustersAggregator(n_clusters=5, random_state=0).fit(X)
    out = bag.transform(X)
    assert out.shape == (2, 5)
    assert out[0].sum() == 1.0 and np.all(out[0, 2:] == 0) and np.all(out[1] == 0)
    with pytest.warns(SkcalcWarning, match="no training object"):
        bag = BagOfClustersAggregator(n_clusters=2).fit([np.empty((0, 2))])
    assert bag.transform([np.ones((3, 2))]).tolist() == [[0.0, 0.0]]


def test_bag_deterministic_and_grid_searchable_k():
    rng = np.random.default_rng(3)
    X = _tables(rng, [5, 7, 3, 8])
    a = BagOfClustersAggregator(n_clusters=4, random_state=7).fit_transform(X)
    b = BagOfClustersAggregator(n_clusters=4, random_state=7).fit_transform(X)
    np.testing.assert_array_equal(a, b)
    bag = BagOfClustersAggregator(random_state=0).set_params(n_clusters=2)
    assert bag.fit_transform(X).shape == (4, 4)
    assert isinstance(bag.kmeans_["fg"], KMeans) and bag.kmeans_["fg"].n_clusters == 2


def test_input_validation_messages():
    bag = BagOfClustersAggregator(n_clusters=2)
    with pytest.raises(ValueError, match="ROI 1: feature sets"):
        bag.fit([{"fg": np.ones((2, 2))}, {"bg": np.ones((2, 2))}])
    with pytest.raises(ValueError, match="ROI 1, feature set 'fg': 3 features"):
        bag.fit([{"fg": np.ones((2, 2))}, {"fg": np.ones((2, 3))}])
    with pytest.raises(ValueError, match="infinite"):
        bag.fit([{"fg": np.array([[np.inf, 1.0]])}])
    bag.fit([{"fg": np.random.default_rng(0).normal(size=(4, 2))}])
    with pytest.raises(ValueError, match="differ from those seen in fit"):
        bag.transform([{"other": np.ones((1, 2))}])
    with pytest.raises(ValueError, match="has 3 features, 2 in fit"):
        bag.transform([{"fg": np.ones((1, 3))}])


def test_two_d_path_is_one_object_per_roi_and_pandas_output():
    X = pd.DataFrame({"area": [1.0, 2.0, 3.0, 10.0], "contrast": [0.1, 0.2, 0.1, 0.9]})
    bag = BagOfClustersAggregator(n_clusters=2, random_state=0).set_output(transform="pandas")
    out = bag.fit_transform(X)
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == ["objects_cluster_00", "objects_cluster_01"]
    assert (out.sum(axis=1) == 1).all() and set(np.unique(out.to_numpy())) == {0.0, 1.0}
    agg = MeanStdAggregator().fit(X)
    assert agg.get_feature_names_out().tolist() == [
        "objects__area_mean", "objects__contrast_mean", "objects__area_std",
        "objects__contrast_std"]
    np.testing.assert_allclose(agg.transform(X)[:, :2], X.to_numpy())
    assert np.all(agg.transform(X)[:, 2:] == 0)


def test_mean_std_matches_numpy_and_names_from_tables():
    rng = np.random.default_rng(4)
    names = {"fg_radiomics": ["energy", "entropy"], "fg_regionprops": ["area"]}
    X = [
        Tables({"fg_radiomics": rng.normal(size=(n, 2)), "fg_regionprops": rng.normal(size=(n, 1))},
               names)
        for n in (4, 1, 0, 6)
    ]
    X[3]["fg_radiomics"][2, 0] = np.nan
    agg = MeanStdAggregator().fit(X)
    out = agg.transform(X)
    assert agg.get_feature_names_out().tolist() == [
        "fg_radiomics__energy_mean", "fg_radiomics__entropy_mean", "fg_radiomics__energy_std",
        "fg_radiomics__entropy_std", "fg_regionprops__area_mean", "fg_regionprops__area_std"]
    for i, t in enumerate(X):
        a = t["fg_radiomics"]
        if len(a) == 0:
            assert np.isnan(out[i]).all()
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            np.testing.assert_allclose(out[i, :2], np.nanmean(a, axis=0))
            np.testing.assert_allclose(out[i, 2:4], np.nanstd(a, axis=0))
    assert out[1, 2] == 0.0  # one object: std 0
    with pytest.raises(ValueError, match="NaN"):
        MeanStdAggregator(nan_strategy="error").fit(X).transform(X)
    json.dumps(agg.get_feature_names_out().tolist())


def test_dataframe_tables_and_object_array_input():
    df = pd.DataFrame({"a": [1.0, 3.0], "b": [2.0, 2.0]})
    X = np.empty(2, dtype=object)
    X[0], X[1] = df, df.iloc[:1]
    agg = MeanStdAggregator().fit(X)
    assert agg.get_feature_names_out().tolist() == [
        "objects__a_mean", "objects__b_mean", "objects__a_std", "objects__b_std"]
    np.testing.assert_allclose(agg.transform(X), [[2, 2, 1, 0], [1, 2, 0, 0]])


@pytest.mark.parametrize("est", [BagOfClustersAggregator(n_clusters=3, random_state=0),
                                 MeanStdAggregator()], ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("check", EXTRA_TRANSFORMER_CHECKS, ids=lambda c: c.__name__)
def test_feature_names_and_set_output_checks(est, check):
    # scikit-learn 1.9 no longer yields these from parametrize_with_checks.
    check(type(est).__name__, est)


def test_bag_is_one_sklearn_pipeline_per_set_and_memoised_identically():
    from skcalc._fitcache import FIT_CACHE
    from skcalc.utils import InProcessMemory

    rng = np.random.default_rng(5)
    X = _tables(rng, [6, 4, 0, 9, 7])
    X[0]["fg"][1, 2] = np.nan
    bag = BagOfClustersAggregator(n_clusters=3, random_state=0).fit(X)
    for key in ("fg", "bg"):
        pipe = bag.pipelines_[key]
        assert [n for n, _ in pipe.steps] == ["impute", "scale", "kmeans"]
        assert pipe.named_steps["impute"].keep_empty_features
        assert bag.kmeans_[key] is pipe.named_steps["kmeans"]
    no_scale = BagOfClustersAggregator(n_clusters=3, scale=False, random_state=0).fit(X)
    assert no_scale.scalers_["fg"] is None
    assert no_scale.pipelines_["fg"].named_steps["scale"] == "passthrough"
    FIT_CACHE.clear()
    cached = BagOfClustersAggregator(n_clusters=3, random_state=0, memory=InProcessMemory())
    a = cached.fit(X).transform(X)
    b = clone_fit = BagOfClustersAggregator(
        n_clusters=3, random_state=0, memory=InProcessMemory()).fit([dict(t) for t in X])
    assert FIT_CACHE.hits == 1 and FIT_CACHE.misses == 1  # same objects: k-means once
    np.testing.assert_array_equal(a, bag.transform(X))
    np.testing.assert_array_equal(clone_fit.transform(X), a)
    assert b.kmeans_["fg"] is cached.kmeans_["fg"]
    cached.set_params(n_clusters=2).fit(X)  # another K: fitted anew
    assert FIT_CACHE.misses == 2
    FIT_CACHE.clear()
