"""Multi-scale topological features of the calcification graph (Chen et al.).

Each calcification is a node; at dilation scale ``k`` two nodes are joined when the two
objects, each dilated by the disk of radius ``scales[k]``, overlap (``merge_index <= k``,
see :func:`skcalc.masks.multiscale_merge_index`). Eight features per scale:

1. ``n_subgraphs``: number of connected components.
2. ``mean_degree``: average vertex degree.
3. ``max_degree``: maximum vertex degree.
4. ``mean_eccentricity``: average vertex eccentricity, each node's eccentricity computed
   *within its own component* (an isolated node has eccentricity 0).
5. ``diameter``: largest component diameter (the maximum eccentricity).
6. ``mean_clustering``: average clustering coefficient over all nodes, nodes of degree < 2
   counting as 0 (as ``networkx.average_clustering``).
7. ``giant_component_ratio``: size of the largest component / number of nodes.
8. ``isolated_fraction``: fraction (0..1) of nodes of degree 0.

Empty and single-node graphs are valid: with no node every feature is 0; with one node the
features are those of networkx's one-node graph (1 subgraph, degree 0, eccentricity 0,
diameter 0, clustering 0, giant ratio 1, isolated fraction 1). :class:`TopologyFeatures`
warns (:class:`~skcalc.SkcalcWarning`) for ROIs with fewer than two calcifications.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from numbers import Integral

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components, shortest_path
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils._param_validation import HasMethods
from sklearn.utils.validation import check_is_fitted

from ..exceptions import ROIValidationError, SkcalcWarning
from ..masks import check_scales
from ..roi import as_roi_list
from ..utils import map_rois
from ..utils._base import ImageTransformerMixin
from ._handcrafted import HANDCRAFTED_FEATURE_NAMES, handcrafted_features

__all__ = ["GRAPH_FEATURE_NAMES", "TopologyFeatures", "graph_features", "topology_features"]

#: Names of the eight graph features, in output order.
GRAPH_FEATURE_NAMES = (
    "n_subgraphs",
    "mean_degree",
    "max_degree",
    "mean_eccentricity",
    "diameter",
    "mean_clustering",
    "giant_component_ratio",
    "isolated_fraction",
)

#: Graphs up to this many nodes use dense matrix BFS (no scipy.sparse overhead, which
#: dominates for small graphs); larger ones use scipy.sparse.csgraph.
_DENSE_MAX_NODES = 64


def _dense_bfs(a: np.ndarray, af: np.ndarray, deg: np.ndarray):
    """Eccentricities (within components), component roots and sizes by matrix BFS.

    Row ``v`` of ``reach`` holds the nodes within ``t`` hops of ``v``; it last grows at
    step ``ecc(v)``. Only rows that grew at the previous step can grow again.
    """
    reach = a.copy()
    np.fill_diagonal(reach, True)
    ecc = (deg > 0).astype(float)
    active = np.flatnonzero(deg > 0)
    t = 1
    while active.size:
        sub = reach[active]
        new = sub | ((sub.astype(np.float64) @ af) > 0)
        grew = (new != sub).any(axis=1)
        t += 1
        active = active[grew]
        reach[active] = new[grew]
        ecc[active] = t
    return ecc, reach.argmax(axis=1), reach.sum(axis=1)


def _sparse_bfs(graph, deg: np.ndarray):
    n_comp, comp = connected_components(graph, directed=False)
    sizes = np.bincount(comp)
    edges = np.bincount(comp, weights=deg, minlength=n_comp) / 2
    complete = edges == sizes * (sizes - 1) / 2
    # A complete component of >= 2 nodes has eccentricity 1 everywhere (0 for one node):
    # breadth-first search is needed only in the other components.
    ecc = np.where(sizes[comp] > 1, 1.0, 0.0)
    todo = np.flatnonzero(~complete[comp])
    if todo.size:
        dist = shortest_path(graph, directed=False, unweighted=True, indices=todo)
        dist[np.isinf(dist)] = 0.0
        ecc[todo] = dist.max(axis=1)
    return n_comp, ecc, sizes


def graph_features(adjacency: np.ndarray) -> np.ndarray:
    """The eight graph features of one undirected graph.

    Parameters
    ----------
    adjacency : ndarray of bool, shape (n, n)
        Symmetric adjacency matrix; the diagonal is ignored.

    Returns
    -------
    ndarray of float, shape (8,)
        In the order of :data:`GRAPH_FEATURE_NAMES` (conventions in the module docstring).

    Examples
    --------
    >>> import numpy as np
    >>> a = np.zeros((4, 4), bool)
    >>> a[0, 1] = a[1, 0] = a[1, 2] = a[2, 1] = True  # path 0-1-2, node 3 isolated
    >>> graph_features(a)
    array([2.  , 1.  , 2.  , 1.25, 2.  , 0.  , 0.75, 0.25])
    """
    a = np.asarray(adjacency, dtype=bool)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"adjacency must be a square matrix, got shape {a.shape}")
    n = a.shape[0]
    if n == 0:
        return np.zeros(8)
    a = a.copy()
    np.fill_diagonal(a, False)
    if not np.array_equal(a, a.T):
        raise ValueError("adjacency must be symmetric (undirected graph)")
    deg = a.sum(axis=1)
    if n <= _DENSE_MAX_NODES:
        af = a.astype(np.float64)
        ecc, comp_root, comp_size = _dense_bfs(a, af, deg)
        n_comp = int(np.count_nonzero(comp_root == np.arange(n)))
        giant = comp_size.max()
        tri2 = ((af @ af) * af).sum(axis=1)  # twice the triangles through each node
    else:
        graph = csr_matrix(a, dtype=np.float64)
        n_comp, ecc, sizes = _sparse_bfs(graph, deg)
        giant = sizes.max()
        tri2 = np.asarray((graph @ graph).multiply(graph).sum(axis=1)).ravel()
    denom = deg * (deg - 1.0)
    clust = np.divide(tri2, denom, out=np.zeros(n), where=denom > 0)
    return np.array(
        [
            n_comp,
            deg.mean(),
            deg.max(),
            ecc.mean(),
            ecc.max(),
            clust.mean(),
            giant / n,
            np.count_nonzero(deg == 0) / n,
        ],
        dtype=float,
    )


def topology_features(merge_index: np.ndarray, scale_indices: int | Sequence[int]) -> np.ndarray:
    """Graph features at several scales from a merge-index matrix.

    Parameters
    ----------
    merge_index : ndarray of int, shape (n, n)
        First scale index at which each pair is connected
        (:attr:`skcalc.masks.CalcificationMasks.merge_index`).
    scale_indices : int or sequence of int
        Scales to evaluate: an int ``S`` means ``range(S)``.

    Returns
    -------
    ndarray of float, shape (n_scales, 8)
        Row ``r`` holds :func:`graph_features` of the graph ``merge_index <= k_r``.

    Examples
    --------
    >>> import numpy as np
    >>> mi = np.array([[0, 1, 2], [1, 0, 3], [2, 3, 0]])
    >>> topology_features(mi, 3)[:, :3]  # n_subgraphs, mean and max degree
    array([[3.        , 0.        , 0.        ],
           [2.        , 0.66666667, 1.        ],
           [1.        , 1.33333333, 2.        ]])
    """
    mi = np.asarray(merge_index)
    if mi.ndim != 2 or mi.shape[0] != mi.shape[1]:
        raise ValueError(f"merge_index must be a square matrix, got shape {mi.shape}")
    if isinstance(scale_indices, Integral):
        idx = np.arange(int(scale_indices))
    else:
        idx = np.asarray(scale_indices, dtype=np.int64).ravel()
    out = np.zeros((idx.size, 8))
    n = mi.shape[0]
    if n == 0:
        return out
    # Edge sets are nested across scales, so equal edge counts mean equal graphs.
    pair_vals = np.sort(mi[np.triu_indices(n, 1)])
    seen: dict[int, np.ndarray] = {}
    for r, k in enumerate(idx):
        n_edges = int(np.searchsorted(pair_vals, k, side="right"))
        if n_edges not in seen:
            seen[n_edges] = graph_features(mi <= k)
        out[r] = seen[n_edges]
    return out


def _format_scales(scales: np.ndarray) -> list[str]:
    for digits in range(3, 18):
        txt = [f"{s:.{digits}g}" for s in scales]
        if len(set(txt)) == len(txt):
            return txt
    return [repr(float(s)) for s in scales]


def _scale_positions(available: np.ndarray, wanted: np.ndarray) -> np.ndarray | None:
    """Index of each wanted scale in ``available`` (1e-9 mm tolerance), None if one is absent."""
    close = np.abs(available[None, :] - wanted[:, None]) <= 1e-9
    if not close.any(axis=1).all():
        return None
    return close.argmax(axis=1)


def _topology_one(roi, *, scales: tuple, include_handcrafted: bool) -> np.ndarray:
    masks = roi.masks
    pos = _scale_positions(np.asarray(masks.scales, float), np.asarray(scales, float))
    if pos is None:
        raise ROIValidationError(
            roi.roi_id, f"masks lack some of the scales {list(scales)} (mm); rebuild them"
        )
    feats = topology_features(masks.merge_index, pos).ravel()
    if include_handcrafted:
        feats = np.concatenate((feats, handcrafted_features(masks.foreground, masks.spacing)))
    return feats


class TopologyFeatures(ImageTransformerMixin, TransformerMixin, BaseEstimator):
    """Global features of each ROI: 8 graph features per dilation scale + 3 handcrafted.

    Stateless: reads ``roi.masks`` (from :class:`skcalc.masks.MaskBuilder`) and returns a
    2-D array of shape ``(n_rois, 8 * n_scales + 3)`` (``8 * n_scales`` without the
    handcrafted features), ordered scale by scale, features in the order of
    :data:`GRAPH_FEATURE_NAMES`, then :data:`~skcalc.features._handcrafted.
    HANDCRAFTED_FEATURE_NAMES`. Conventions for empty, one-node and disconnected graphs are
    in the module docstring; ROIs with fewer than two calcifications raise a
    :class:`~skcalc.SkcalcWarning`.

    Parameters
    ----------
    scales : array-like of float, default=None
        Dilation radii (mm) to use; ``None`` uses all the scales of the masks. An explicit
        list selects those scales from the masks' scales (an error if one is missing).
    include_handcrafted : bool, default=True
        Append the three handcrafted features (:func:`handcrafted_features`).
    memory : None, str or joblib.Memory, default=None
        Per-ROI cache.
    n_jobs : int, default=None
        Parallel jobs over ROIs.

    Attributes
    ----------
    scales_ : ndarray of float
        The scales (mm) of the output, set by ``fit``; ``transform`` checks that every ROI's
        masks have them (``scales=None``: exactly these scales).

    Examples
    --------
    >>> import numpy as np
    >>> from skcalc import ROI
    >>> from skcalc.masks import MaskBuilder
    >>> calc = np.zeros((20, 20), np.int32); calc[5, 5] = 1; calc[5, 9] = 2; calc[15, 5] = 3
    >>> rois = MaskBuilder(scales=[0.0, 0.2]).transform([ROI(np.zeros((20, 20)), 0.1,
    ...                                                      calcifications=calc)])
    >>> topo = TopologyFeatures().fit(rois)
    >>> topo.transform(rois).shape
    (1, 19)
    >>> topo.get_feature_names_out()[[0, 8, 16]].tolist()
    ['topo_n_subgraphs_r0mm', 'topo_n_subgraphs_r0.2mm', 'hand_area_std_mm2']
    """

    _parameter_constraints: dict = {
        "scales": ["array-like", None],
        "include_handcrafted": ["boolean"],
        "memory": [None, str, HasMethods(["cache"])],
        "n_jobs": [None, Integral],
    }

    def __init__(self, scales=None, include_handcrafted=True, memory=None, n_jobs=None):
        self.scales = scales
        self.include_handcrafted = include_handcrafted
        self.memory = memory
        self.n_jobs = n_jobs

    def _resolve_scales(self, rois) -> np.ndarray:
        ref = np.asarray(rois[0].masks.scales, float)
        if self.scales is None:
            return ref
        wanted = check_scales(self.scales)
        if _scale_positions(ref, wanted) is None:
            raise ROIValidationError(
                rois[0].roi_id,
                f"masks have scales {ref.tolist()} (mm), which lack some of the requested "
                f"scales {wanted.tolist()}",
            )
        return wanted

    def _check_rois_scales(self, rois, scales: np.ndarray) -> None:
        for r in rois:
            have = np.asarray(r.masks.scales, float)
            if self.scales is None:
                ok = have.shape == scales.shape and np.allclose(have, scales, rtol=0, atol=1e-9)
            else:
                ok = _scale_positions(have, scales) is not None
            if not ok:
                raise ROIValidationError(
                    r.roi_id,
                    f"masks have scales {have.tolist()} (mm) but this transformer uses "
                    f"{scales.tolist()}; build all masks with the same MaskBuilder scales",
                )

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Record the scales of the output (from the masks or the ``scales`` parameter)."""
        rois = as_roi_list(X, require=("masks",))
        scales = self._resolve_scales(rois)
        self._check_rois_scales(rois, scales)
        self.scales_ = scales
        return self

    def transform(self, X):
        """Return the global features, shape ``(n_rois, 8 * n_scales [+ 3])``."""
        rois = as_roi_list(X, require=("masks",))
        scales = self.scales_ if hasattr(self, "scales_") else self._resolve_scales(rois)
        self._check_rois_scales(rois, scales)
        params = {
            "scales": tuple(float(s) for s in scales),
            "include_handcrafted": bool(self.include_handcrafted),
        }
        rows = map_rois(
            _topology_one,
            rois,
            params,
            n_jobs=self.n_jobs,
            memory=self.memory,
            stage="topology",
            fields=("masks",),
        )
        few = [r.roi_id for r in rois if r.masks.n_objects < 2]
        if few:
            warnings.warn(
                f"{len(few)} ROI(s) have fewer than two calcifications (e.g. {few[:3]}); "
                "their graph and handcrafted features take the documented default values",
                SkcalcWarning,
                stacklevel=2,
            )
        return np.vstack(rows).astype(float, copy=False)

    def get_feature_names_out(self, input_features=None):
        """Names ``topo_<feature>_r<radius>mm`` per scale, then ``hand_<feature>``."""
        check_is_fitted(self, "scales_")
        names = [
            f"topo_{f}_r{s}mm" for s in _format_scales(self.scales_) for f in GRAPH_FEATURE_NAMES
        ]
        if self.include_handcrafted:
            names += [f"hand_{f}" for f in HANDCRAFTED_FEATURE_NAMES]
        return np.asarray(names, dtype=object)
