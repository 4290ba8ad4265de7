"""Tests of the graph features (against networkx) and of TopologyFeatures."""

import networkx as nx
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.utils.estimator_checks import (
    check_get_params_invariance,
    check_no_attributes_set_in_init,
    check_param_validation,
)

import skcalc.features._topology as topo
from skcalc import ROI, ROIValidationError, SkcalcWarning
from skcalc.features import TopologyFeatures, handcrafted_features, topology_features
from skcalc.features._topology import GRAPH_FEATURE_NAMES, graph_features
from skcalc.masks import MaskBuilder
from skcalc.testing import networkx_graph_features


def nx_features(adj):
    """The eight features with networkx (the slow reference)."""
    g = nx.Graph()
    g.add_nodes_from(range(adj.shape[0]))
    g.add_edges_from(zip(*np.nonzero(np.triu(adj, 1))))
    return networkx_graph_features(g)


@st.composite
def graphs(draw):
    n = draw(st.integers(0, 14))
    p = draw(st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.9, 1.0]))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    a = np.triu(rng.random((n, n)) < p, 1)
    return a | a.T


@settings(max_examples=150, deadline=None)
@given(adj=graphs())
def test_graph_features_equal_networkx(adj):
    ref = nx_features(adj)
    np.testing.assert_allclose(graph_features(adj), ref, rtol=0, atol=1e-12)
    mi = np.where(adj, 0, 1)
    np.testing.assert_allclose(incremental_features(mi, [0])[0], ref, rtol=0, atol=1e-12)


def test_graph_features_known_answers():
    assert graph_features(np.zeros((0, 0), bool)).tolist() == [0.0] * 8
    assert graph_features(np.zeros((1, 1), bool)).tolist() == [1, 0, 0, 0, 0, 0, 1, 1]
    # Triangle plus a pendant node 3 attached to node 0, plus an isolated node 4.
    a = np.zeros((5, 5), bool)
    for i, j in [(0, 1), (1, 2), (0, 2), (0, 3)]:
        a[i, j] = a[j, i] = True
    f = dict(zip(GRAPH_FEATURE_NAMES, graph_features(a)))
    assert f["n_subgraphs"] == 2
    assert f["mean_degree"] == pytest.approx(8 / 5)
    assert f["max_degree"] == 3
    assert f["mean_eccentricity"] == pytest.approx((1 + 2 + 2 + 2 + 0) / 5)
    assert f["diameter"] == 2
    assert f["mean_clustering"] == pytest.approx((1 / 3 + 1 + 1) / 5)
    assert f["giant_component_ratio"] == pytest.approx(4 / 5)
    assert f["isolated_fraction"] == pytest.approx(1 / 5)
    with pytest.raises(ValueError, match="symmetric"):
        graph_features(np.triu(np.ones((3, 3), bool), 1))


def incremental_features(mi, scales):
    """topology_features through the incremental engine, even for graphs small enough for
    the dense per-scale path."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(topo, "_DENSE_MAX_NODES", 0)
        return topology_features(mi, scales)


def assert_scales_equal_networkx(mi, scales):
    """topology_features(mi, scales), both paths, against networkx at each scale."""
    got = topology_features(mi, scales)
    inc = incremental_features(mi, scales)
    ks = range(scales) if isinstance(scales, int) else scales
    assert got.shape == inc.shape == (len(ks), 8)
    for k, row, row_inc in zip(ks, got, inc):
        adj = mi <= k
        np.fill_diagonal(adj, False)
        ref = nx_features(adj)
        np.testing.assert_allclose(row, ref, rtol=0, atol=1e-12, err_msg=f"{k=}")
        np.testing.assert_allclose(row_inc, ref, rtol=0, atol=1e-12, err_msg=f"{k=}")
    return got


def geometric_merge_index(points, step):
    """Merge index of points joined once their distance is within ``2 * step * k``.

    Rounding the distances makes many ties, as on a pixel lattice.
    """
    d = np.sqrt(((points[:, None, :] - points[None, :, :]) ** 2).sum(-1))
    return np.ceil(np.round(d / (2 * step), 6)).astype(np.int64)


@st.composite
def layouts(draw):
    """Random object centres: uniform, clustered or on a lattice (ties in distances)."""
    n = draw(st.integers(0, 90))
    kind = draw(st.sampled_from(["uniform", "clusters", "lattice"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    if kind == "uniform":
        pts = rng.uniform(0, 100, (n, 2))
    elif kind == "clusters":
        centres = rng.uniform(0, 100, (draw(st.integers(1, 4)), 2))
        pts = centres[rng.integers(0, len(centres), n)] + rng.normal(0, 6, (n, 2))
    else:
        pts = rng.permutation(np.argwhere(np.ones((10, 10))))[:n] * 7.0
    return pts, draw(st.sampled_from([1.0, 2.0, 4.0]))


@settings(max_examples=25, deadline=None)
@given(layout=layouts(), n_scales=st.integers(1, 30))
def test_topology_features_equal_networkx_on_layouts(layout, n_scales):
    # Nested geometric graphs as MaskBuilder makes them: components grow, merge, densify.
    pts, step = layout
    assert_scales_equal_networkx(geometric_merge_index(pts, step), n_scales)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(0, 30), n_scales=st.integers(1, 8), seed=st.integers(0, 2**31 - 1))
def test_topology_features_per_scale(n, n_scales, seed):
    rng = np.random.default_rng(seed)
    mi = rng.integers(0, n_scales + 1, (n, n))
    mi = np.triu(mi, 1)
    mi = mi + mi.T
    got = assert_scales_equal_networkx(mi, n_scales)
    # A subset of scales, in any order and repeated, gives the matching rows.
    idx = np.r_[rng.permutation(n_scales)[: max(1, n_scales // 2)], 0]
    np.testing.assert_array_equal(topology_features(mi, idx), got[idx])
    np.testing.assert_array_equal(incremental_features(mi, idx), got[idx])


@pytest.mark.parametrize(
    "settings_",
    [
        {"_SPARSE_EDGES_PER_WORD": 0.0},  # bit-parallel search only
        {"_SPARSE_EDGES_PER_WORD": 1e9},  # scipy search only
        {"_BLOCK_WORDS": 1, "_SMALL_OPEN": 1},  # one search per block, bounds everywhere
    ],
)
def test_search_paths_equal_networkx(monkeypatch, settings_):
    monkeypatch.setattr(topo, "_DENSE_MAX_NODES", 0)
    for name, value in settings_.items():
        monkeypatch.setattr(topo, name, value)
    rng = np.random.default_rng(7)
    for n, step in [(1, 1.0), (2, 1.0), (50, 2.0), (90, 3.0)]:
        mi = geometric_merge_index(rng.uniform(0, 100, (n, 2)), step)
        assert_scales_equal_networkx(mi, 14)


def test_topology_features_edge_cases():
    S = 4
    # No object; one object; two objects joined at scale 2.
    assert topology_features(np.zeros((0, 0), int), S).tolist() == [[0.0] * 8] * S
    assert topology_features(np.zeros((1, 1), int), S).tolist() == [[1, 0, 0, 0, 0, 0, 1, 1]] * S
    two = assert_scales_equal_networkx(np.array([[0, 2], [2, 0]]), S)
    assert two[1].tolist() == [2, 0, 0, 0, 0, 0, 0.5, 1] and two[2].tolist() == [
        1,
        1,
        1,
        1,
        1,
        0,
        1,
        0,
    ]
    # All isolated at every scale; all connected from scale 0 (complete graph).
    iso = assert_scales_equal_networkx(np.full((6, 6), S), S)
    assert (iso[:, 0] == 6).all() and (iso[:, 7] == 1).all()
    full = assert_scales_equal_networkx(np.zeros((6, 6), int), S)
    assert full[0].tolist() == [1, 5, 5, 1, 1, 1, 1, 0]
    # Two cliques that never meet, a path that grows into a cycle, ties everywhere.
    mi = np.full((10, 10), S + 1)
    mi[:5, :5] = 1
    mi[5:, 5:] = 0
    assert (assert_scales_equal_networkx(mi, S)[1:, 0] == 2).all()
    ring = np.full((8, 8), S)
    for i in range(8):
        ring[i, (i + 1) % 8] = ring[(i + 1) % 8, i] = 0 if i < 7 else 2
    assert_scales_equal_networkx(ring, S)
    lattice = geometric_merge_index(np.argwhere(np.ones((6, 6))) * 3.0, 1.0)
    assert_scales_equal_networkx(lattice, 6)


def test_topology_features_errors():
    with pytest.raises(ValueError, match="square"):
        topology_features(np.zeros((2, 3), int), 2)
    with pytest.raises(ValueError, match="symmetric"):
        topology_features(np.array([[0, 1], [2, 0]]), 2)
    assert topology_features(np.zeros((3, 3), int), []).shape == (0, 8)


def test_topology_features_on_masks_equal_networkx():
    # MaskBuilder's merge index of ~100 small random objects; every 4th default scale
    # (networkx is the slow part).
    calc = _blobs(11, 130, shape=(130, 130))
    (roi,) = MaskBuilder().transform([_roi(calc, "many")])
    assert roi.masks.n_objects > 90
    assert_scales_equal_networkx(roi.masks.merge_index, np.arange(0, 65, 4))


def _roi(calc, rid, spacing=0.07):
    return ROI(np.zeros(calc.shape, np.uint16), spacing, calcifications=calc, meta={"roi_id": rid})


def _blobs(seed, n, shape=(60, 60)):
    rng = np.random.default_rng(seed)
    calc = np.zeros(shape, np.int32)
    for i in range(1, n + 1):
        r, c = rng.integers(0, shape[0] - 3, 2)
        calc[r : r + rng.integers(1, 3), c : c + rng.integers(1, 3)] = i
    return calc


SCALES = np.arange(6) * 0.14


@pytest.fixture
def rois():
    return MaskBuilder(scales=SCALES).transform([_roi(_blobs(s, 8), f"roi{s}") for s in range(3)])


def test_topology_transformer_output(rois):
    tf = TopologyFeatures().fit(rois)
    X = tf.transform(rois)
    names = tf.get_feature_names_out()
    assert X.shape == (3, 8 * len(SCALES) + 3) == (3, names.size)
    assert len(set(names)) == names.size
    assert names[0] == "topo_n_subgraphs_r0mm" and names[9] == "topo_mean_degree_r0.14mm"
    assert names[-3:].tolist() == [
        "hand_area_std_mm2",
        "hand_centroid_xy_corr",
        "hand_mean_pairwise_distance_mm",
    ]
    for row, roi in zip(X, rois):
        m = roi.masks
        np.testing.assert_array_equal(
            row[:-3], topology_features(m.merge_index, len(SCALES)).ravel()
        )
        np.testing.assert_array_equal(row[-3:], handcrafted_features(m.foreground, m.spacing))
        # Scale 0 never connects distinct objects.
        assert row[0] == m.n_objects
    # Without handcrafted features; a subset of scales; transform without fit.
    assert TopologyFeatures(include_handcrafted=False).transform(rois).shape == (3, 48)
    sub = TopologyFeatures(scales=[0.28, 0.7]).fit(rois)
    Xs = sub.transform(rois)
    np.testing.assert_array_equal(Xs[:, :8], X[:, 16:24])
    np.testing.assert_array_equal(Xs[:, 8:16], X[:, 40:48])
    assert sub.get_feature_names_out()[8] == "topo_n_subgraphs_r0.7mm"
    df = TopologyFeatures().set_output(transform="pandas").fit(rois).transform(rois)
    assert isinstance(df, pd.DataFrame) and list(df.columns) == names.tolist()


def test_topology_transformer_errors(rois):
    with pytest.raises(ROIValidationError, match="lack"):
        TopologyFeatures(scales=[0.1]).fit(rois)
    other = MaskBuilder(scales=[0.0, 0.07]).transform([_roi(_blobs(9, 4), "odd")])
    tf = TopologyFeatures().fit(rois)
    with pytest.raises(ROIValidationError, match="odd.*scales"):
        tf.transform(other)
    with pytest.raises(ROIValidationError, match="nomasks.*masks"):
        tf.transform([_roi(_blobs(1, 2), "nomasks")])
    with pytest.raises(Exception, match="not fitted"):
        TopologyFeatures().get_feature_names_out()


def test_topology_zero_and_one_object():
    empty = np.zeros((20, 20), np.int32)
    one = empty.copy()
    one[5, 5] = 1
    with pytest.warns(SkcalcWarning):
        rois = MaskBuilder(scales=[0.0, 0.5]).transform([_roi(empty, "e"), _roi(one, "o")])
    with pytest.warns(SkcalcWarning, match="fewer than two"):
        X = TopologyFeatures().fit_transform(rois)
    assert X[0].tolist() == [0.0] * 19
    assert X[1].tolist() == [1, 0, 0, 0, 0, 0, 1, 1] * 2 + [0, 0, 0]


def test_topology_sklearn_conventions():
    est = TopologyFeatures()
    check_no_attributes_set_in_init("TopologyFeatures", est)
    check_get_params_invariance("TopologyFeatures", est)
    check_param_validation("TopologyFeatures", est)
    assert est.__sklearn_tags__().requires_fit is False
