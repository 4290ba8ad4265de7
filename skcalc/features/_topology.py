"""Multi-scale topological features of the calcification graph (Chen et al.).

Each calcification is a node; at dilation scale ``k`` two nodes are joined when the two
objects, each dilated by the disk of radius ``scales[k]``, overlap (``merge_index <= k``,
see :func:`skcalc.masks.multiscale_merge_index`). Eight features per scale (with the default
65 scales, 8 x 65 = 520 columns, and 523 with the three handcrafted features):

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

How the features are computed
-----------------------------
Graphs of up to 64 nodes (most ROIs) are analysed scale by scale with dense matrix
products. Larger ones use the fact that the graphs of the successive scales are nested
(``merge_index <= k`` only gains edges as ``k`` grows): :func:`topology_features` adds the
edges of each scale to the previous graph and updates every quantity incrementally, instead
of analysing 65 graphs from scratch (which cost about ``n**3`` per ROI, ~25 s for 800
objects):

* degrees by counting the new edges; components by merging only the touched ones;
* triangles through each node on bit-packed neighbourhoods (rows of ``uint64`` words): the
  endpoints of a new edge ``(x, y)`` gain one triangle per common neighbour of ``x`` and
  ``y`` (half when a second side is new too, as that triangle is met twice), and a node gains
  one per new edge between two of its old neighbours;
* eccentricities only in the components that changed, from exact bounds: for any searched
  node ``s``, ``max(d(s, v), ecc(s) - d(s, v)) <= ecc(v) <= ecc(s) + d(s, v)``; neighbours'
  eccentricities differ by at most one; a node keeps its last eccentricity as an upper bound
  while its component only gains edges (or a few new nodes, whose distances are then
  searched). Breadth-first searches, bit-parallel on the packed rows, run from a few nodes
  per scale (the nodes found farthest at the previous scale, then the nodes whose upper
  bound no neighbour can lower) until every lower bound meets its upper bound, in the
  spirit of Takes & Kosters, "Computing the eccentricity distribution of large graphs"
  (Algorithms, 2013).

Every step is exact integer arithmetic on the same graphs, so the features equal the
networkx reference (:func:`skcalc.testing.networkx_graph_features`). The updates
cost about ``n**2`` per ROI in all; each search costs ``n**2 / 64`` word operations, and a
scale typically needs a few percent of the nodes as sources.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral

import numpy as np
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.csgraph import connected_components, shortest_path
from sklearn.utils._param_validation import HasMethods
from sklearn.utils.validation import check_is_fitted

from ..exceptions import ROIValidationError
from ..masks import check_scales
from ..utils._stage import ImageStage
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

# Largest temporary block of 64-bit words (rows x words) built at once, to bound memory.
_BLOCK_WORDS = 1 << 21

# Breadth-first search runs on scipy's compressed adjacency while the graph has fewer than
# this many directed edges per packed word of the adjacency (the bit-parallel search reads
# whole rows, which only pays once rows are dense).
_SPARSE_EDGES_PER_WORD = 2.0

# Graphs up to this many nodes are analysed scale by scale with dense matrix products,
# cheaper than the incremental bookkeeping at that size.
_DENSE_MAX_NODES = 64

# Components with at most this many undecided nodes search from all of them at once.
_SMALL_OPEN = 16

_ONE = np.uint64(1)

# Packed rows are little-endian words, so that bit j of a row is bit j % 8 of its byte
# j // 8 (what np.unpackbits(..., bitorder="little") reads) on any platform.
_WORD = np.dtype("<u8")

if hasattr(np, "bitwise_count"):  # numpy >= 2.0

    def _popcount(words: np.ndarray) -> np.ndarray:
        return np.bitwise_count(words).sum(axis=-1, dtype=np.int64)

else:  # pragma: no cover - numpy < 2.0
    _BYTE_BITS = np.array([bin(i).count("1") for i in range(256)], np.uint8)

    def _popcount(words: np.ndarray) -> np.ndarray:
        b = np.ascontiguousarray(words).view(np.uint8).reshape(words.shape[:-1] + (-1,))
        return _BYTE_BITS[b].sum(axis=-1, dtype=np.int64)


def _unpack(words: np.ndarray, n: int) -> np.ndarray:
    """Bits of packed rows as a ``(rows, n)`` uint8 array (bit ``j`` of word ``j // 64``)."""
    return np.unpackbits(
        np.ascontiguousarray(words).view(np.uint8), axis=-1, count=n, bitorder="little"
    )


def _set_bits(words: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> None:
    cols = np.asarray(cols, dtype=np.int64)
    np.bitwise_or.at(words, (rows, cols >> 6), np.left_shift(_ONE, (cols & 63).astype(np.uint64)))


def _pack(nodes: np.ndarray, n_words: int) -> np.ndarray:
    """One packed row with the bits of ``nodes`` set."""
    row = np.zeros((1, n_words), _WORD)
    _set_bits(row, np.zeros(nodes.size, np.int64), nodes)
    return row


def _column_counts(words: np.ndarray, n: int) -> np.ndarray:
    """Number of rows with bit ``j`` set, for each ``j < n``."""
    out = np.zeros(n, np.int64)
    # Sum up to 255 unpacked rows as uint64 lanes of 8 bytes: no byte can overflow.
    for a in range(0, words.shape[0], 255):
        bits = np.unpackbits(
            np.ascontiguousarray(words[a : a + 255]).view(np.uint8), axis=1, bitorder="little"
        )
        lanes = bits.view(np.uint64).sum(axis=0, dtype=np.uint64)
        out += lanes.view(np.uint8)[:n]
    return out


def _bfs_packed(rows: np.ndarray, sources: np.ndarray, n: int):
    """Breadth-first search from each source, bit-parallel on packed adjacency rows.

    Level ``t + 1`` of a search is the union of the rows of its level ``t`` minus the visited
    nodes, so each node's row is read once per search. Returns the distances (``-1`` where
    unreachable), the eccentricity of each source and one farthest node.
    """
    n_src = sources.size
    visited = np.zeros((n_src, rows.shape[1]), _WORD)
    _set_bits(visited, np.arange(n_src), sources)
    dist = np.full((n_src, n), -1, np.int32)
    dist[np.arange(n_src), sources] = 0
    ecc = np.zeros(n_src, np.int64)
    far = sources.astype(np.int64)
    active = np.arange(n_src)  # searches whose last level is not empty
    owner, member = np.arange(n_src), far.copy()  # (search, node) pairs of the last level
    t = 0
    while owner.size:
        t += 1
        starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
        searches = active[owner[starts]]
        level = np.bitwise_or.reduceat(rows[member], starts, axis=0)
        level &= ~visited[searches]
        visited[searches] |= level
        bits = _unpack(level, n)
        found = bits.any(axis=1)
        active = searches[found]
        bits = bits[found]
        owner, member = np.nonzero(bits)
        dist[active[owner], member] = t
        ecc[active] = t
        far[active] = bits.argmax(axis=1)
    return dist, ecc, far


def _bfs_sparse(graph, sources: np.ndarray, n: int):
    """Same as :func:`_bfs_packed` with scipy's search on a sparse graph."""
    d = shortest_path(graph, method="D", directed=False, unweighted=True, indices=sources)
    d[np.isinf(d)] = -1
    dist = d.astype(np.int32)
    return dist, dist.max(axis=1).astype(np.int64), dist.argmax(axis=1)


class _GrowingGraph:
    """An undirected graph on ``n`` nodes that only gains edges, with its 8 features.

    :meth:`add_edges` updates degrees, triangles and components; :meth:`features`
    brings the eccentricities of the changed components up to date.
    """

    def __init__(self, n: int):
        self.n = n
        self.n_words = max(1, -(-n // 64))
        self.rows = np.zeros((n, self.n_words), _WORD)  # packed adjacency
        self.deg = np.zeros(n, np.int64)
        self.tri = np.zeros(n, np.int64)  # triangles through each node
        self.comp = np.arange(n)  # component label of each node
        self.ecc = np.zeros(n, np.int64)
        self.far = np.arange(n)  # a node at distance ecc[v] from v (a search hint only)
        self.changed = np.zeros(n, bool)  # eccentricity out of date
        self.part = np.arange(n)  # component labels when ecc was last brought up to date
        self._edges: list[tuple[np.ndarray, np.ndarray]] = []

    # ------------------------------------------------------------------ edges
    def add_edges(self, u: np.ndarray, v: np.ndarray) -> None:
        """Add the edges ``(u[i], v[i])``: distinct, absent, ``u != v``."""
        if u.size == 0:
            return
        self._edges.append((u, v))
        self._add_triangles(u, v)
        self.deg += np.bincount(u, minlength=self.n) + np.bincount(v, minlength=self.n)
        self._merge_components(u, v)

    def _add_triangles(self, u: np.ndarray, v: np.ndarray) -> None:
        n, rows = self.n, self.rows
        step = max(1, _BLOCK_WORDS // self.n_words)
        # A node x gains the triangles {x, u, v} of the new edges (u, v) whose sides xu
        # and xv are old: x is a common old neighbour of u and v.
        apex = np.zeros(n, np.int64)
        for a in range(0, u.size, step):
            apex += _column_counts(rows[u[a : a + step]] & rows[v[a : a + step]], n)
        new = np.zeros_like(rows)
        _set_bits(new, u, v)
        _set_bits(new, v, u)
        rows |= new
        # The endpoint x of a new edge (x, y) gains one triangle per common neighbour w of
        # x and y; when xw is new as well the triangle is met from both new edges, so
        # those count half (2 * credit is an integer).
        credit2 = np.zeros(n)
        for a in range(0, u.size, step):
            uu, vv = u[a : a + step], v[a : a + step]
            common = _popcount(rows[uu] & rows[vv])
            credit2 += np.bincount(uu, 2 * common - _popcount(new[uu] & rows[vv]), n)
            credit2 += np.bincount(vv, 2 * common - _popcount(new[vv] & rows[uu]), n)
        self.tri += apex + np.rint(credit2).astype(np.int64) // 2

    def _merge_components(self, u: np.ndarray, v: np.ndarray) -> None:
        n, old = self.n, self.comp
        cu, cv = old[u], old[v]
        cross = cu != cv
        if cross.any():
            links = coo_matrix((np.ones(int(cross.sum())), (cu[cross], cv[cross])), shape=(n, n))
            _, relabel = connected_components(links, directed=False)
            self.comp = relabel[old]
        touched = np.zeros(n, bool)
        touched[self.comp[u]] = True
        self.changed |= touched[self.comp]

    # ------------------------------------------------------------------ features
    def features(self) -> np.ndarray:
        """The eight features of the current graph (module docstring conventions)."""
        n = self.n
        self._update_eccentricities()
        sizes = np.bincount(self.comp, minlength=n)
        deg = self.deg
        pairs = deg * (deg - 1.0)
        clust = np.divide(2.0 * self.tri, pairs, out=np.zeros(n), where=pairs > 0)
        return np.array(
            [
                np.count_nonzero(sizes),
                deg.mean(),
                deg.max(),
                self.ecc.mean(),
                self.ecc.max(),
                clust.mean(),
                sizes.max() / n,
                np.count_nonzero(deg == 0) / n,
            ],
            dtype=float,
        )

    def _sparse_graph(self):
        u = np.concatenate([e[0] for e in self._edges])
        v = np.concatenate([e[1] for e in self._edges])
        return csr_matrix((np.ones(u.size), (u, v)), shape=(self.n, self.n))

    def _update_eccentricities(self) -> None:
        todo = np.flatnonzero(self.changed)
        if todo.size == 0:
            return
        n = self.n
        comp = self.comp[todo]
        size = np.bincount(self.comp, minlength=n)[comp]
        deg = self.deg[todo]
        pos = np.full(n, -1)
        pos[todo] = np.arange(todo.size)
        graph = None
        if self.deg.sum() < _SPARSE_EDGES_PER_WORD * n * self.n_words:
            graph = self._sparse_graph()
        search = _bfs_packed if graph is None else _bfs_sparse
        adjacency = self.rows if graph is None else graph

        # A node adjacent to its whole component has eccentricity 1 (0 if alone), any
        # other at least 2.
        lo = np.where(deg < size - 1, 2, np.minimum(size - 1, 1))
        far = self.far[todo].copy()
        # Upper bounds: adding edges never lengthens a path, so a node of the largest old
        # part of its component ("main") is within its last eccentricity of that part;
        # the other parts ("newcomers") are searched when few, which bounds the distances
        # from every node to them.
        main = self._main_part(todo, comp)
        n_new = np.bincount(comp[~main], minlength=n)[comp]
        few = n_new <= np.maximum(_SMALL_OPEN, size // 16)
        hi = np.where(main & few, self.ecc[todo], n)
        newcomers = np.flatnonzero(~main & few)
        if newcomers.size:
            to_new = np.zeros(todo.size, np.int64)
            via = np.full(todo.size, n)
            for s, dist, ecc, sfar in self._searches(search, adjacency, todo, newcomers):
                self._tighten(dist, ecc, sfar, todo[s], pos, lo, via, far, to_new)
                lo[s] = via[s] = ecc
                far[s] = sfar
            hi = np.minimum(np.maximum(hi, to_new), via)
        hi = np.where(deg == size - 1, lo, hi)

        first = True
        while True:
            open_ = np.flatnonzero(lo < hi)
            if open_.size == 0:
                break
            if first:
                # The farthest nodes of the last scale usually still give the exact lower
                # bound of most nodes (and the farthest node of each search is peripheral).
                hint = pos[far[open_]]
                src = np.union1d(hint[hint >= 0], self._pick(open_, todo, lo, hi, ~few))
                first = False
            else:
                src = self._unsettled_minima(open_, todo, lo)
            if src.size == 0:
                src = self._pick(open_, todo, lo, hi)
            # Small components: search from all their undecided nodes at once.
            c = comp[open_]
            src = np.union1d(src, open_[np.bincount(c, minlength=n)[c] <= _SMALL_OPEN])
            for s, dist, ecc, sfar in self._searches(search, adjacency, todo, src):
                self._tighten(dist, ecc, sfar, todo[s], pos, lo, hi, far)
                lo[s] = hi[s] = ecc
                far[s] = sfar
            self._propagate(todo, lo, hi)
            if (lo > hi).any():  # pragma: no cover - would be a bug in the bounds
                raise RuntimeError("inconsistent eccentricity bounds")
        self.ecc[todo] = lo
        self.far[todo] = far
        self.part = self.comp.copy()
        self.changed[:] = False

    def _main_part(self, todo: np.ndarray, comp: np.ndarray) -> np.ndarray:
        """Whether each node belongs to the largest old part of its current component."""
        old = self.part[todo]
        key = comp * self.n + old
        _, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
        part_size = counts[inverse.ravel()]
        # One main part per component: the largest, ties to the smallest old label.
        order = np.lexsort((old, -part_size, comp))
        first = np.r_[True, comp[order][1:] != comp[order][:-1]]
        main_label = np.full(self.n, -1)
        main_label[comp[order][first]] = old[order][first]
        return old == main_label[comp]

    def _searches(self, search, adjacency, todo, src):
        """Yield ``(positions, distances, eccentricities, farthest)`` by memory-bounded blocks."""
        per_block = max(1, 2 * _BLOCK_WORDS // (self.n * self.n_words))
        for a in range(0, src.size, per_block):
            s = src[a : a + per_block]
            yield (s, *search(adjacency, todo[s], self.n))

    @staticmethod
    def _tighten(dist, ecc, sfar, sources, pos, lo, hi, far, reach=None) -> None:
        """Bounds from searched nodes ``s``: ``max(d, ecc(s) - d) <= ecc(v) <= ecc(s) + d``.

        ``reach`` (optional) gets the largest distance from a source to each node.
        """
        b, node = np.nonzero(dist >= 0)
        j = pos[node]  # a searched node's whole component is being updated
        d = dist[b, node].astype(np.int64)
        e = ecc[b]
        low = np.maximum(d, e - d)
        new_lo = lo.copy()
        np.maximum.at(new_lo, j, low)
        better = (low == new_lo[j]) & (low > lo[j])
        # A node at distance lo[v] from v: s itself, or the farthest node from s
        # (d(v, far(s)) >= ecc(s) - d(s, v) = lo[v] >= d(v, far(s))).
        far[j[better]] = np.where(d >= e - d, sources[b], sfar[b])[better]
        lo[:] = new_lo
        np.minimum.at(hi, j, e + d)
        if reach is not None:
            np.maximum.at(reach, j, d)

    def _propagate(self, todo, lo, hi) -> None:
        """Neighbours' eccentricities differ by at most one: spread both bounds."""
        open_ = lo < hi
        if not open_.any():
            return
        rows = self.rows[todo[open_]]
        o_lo, o_hi = lo[open_], hi[open_]
        # Ascending values: a node next to one with upper bound e is within e + 1, and
        # bounds lowered at e are used at e + 1 (one pass settles whole chains).
        for e in range(int(hi.min()), int(o_hi.max()) - 1):
            near = (rows & _pack(todo[hi <= e], self.n_words)).any(axis=1)
            upd = near & (o_hi > e + 1)
            o_hi[upd] = e + 1
            hi[open_] = o_hi
        for e in range(int(lo.max()), int(o_lo.min()) + 1, -1):
            near = (rows & _pack(todo[lo >= e], self.n_words)).any(axis=1)
            upd = near & (o_lo < e - 1)
            o_lo[upd] = e - 1
            lo[open_] = o_lo

    def _unsettled_minima(self, open_, todo, lo) -> np.ndarray:
        """Undecided nodes without a neighbour of smaller lower bound.

        Their upper bound cannot come down through a neighbour, so they need their own
        search; the nodes behind them then settle by propagation.
        """
        rows = self.rows[todo[open_]]
        lo_open = lo[open_]
        has_lower = np.zeros(open_.size, bool)
        for e in np.unique(lo_open):
            sel = lo_open == e
            lower = todo[lo < e]
            if lower.size:
                has_lower[sel] = (rows[sel] & _pack(lower, self.n_words)).any(axis=1)
        return open_[~has_lower]

    def _pick(self, open_, todo, lo, hi, among=None) -> np.ndarray:
        """Per component, the undecided nodes of largest upper and smallest lower bound.

        ``among`` (boolean per position in ``todo``) restricts the choice.
        """
        if among is not None:
            open_ = open_[among[open_]]
        if open_.size == 0:
            return open_
        comp = self.comp[todo[open_]]
        deg = self.deg[todo[open_]]
        chosen = []
        for key in (-hi[open_] * (self.n + 1) - deg, lo[open_] * (self.n + 1) - deg):
            order = np.lexsort((key, comp))
            c = comp[order]
            rank = np.arange(c.size) - np.searchsorted(c, c, side="left")
            chosen.append(open_[order[rank < _SMALL_OPEN // 2]])
        return np.unique(np.concatenate(chosen))


def _dense_graph_features(adjacency: np.ndarray) -> np.ndarray:
    """The eight features of a small graph by dense matrix products, scale by scale.

    Row ``v`` of ``reach`` holds the nodes within ``t`` hops of ``v``; it last grows at
    step ``ecc(v)``, and only rows that grew at the previous step can grow again.
    """
    a = adjacency.copy()
    np.fill_diagonal(a, False)
    n = a.shape[0]
    af = a.astype(np.float64)
    deg = a.sum(axis=1)
    reach = a.copy()
    np.fill_diagonal(reach, True)
    ecc = (deg > 0).astype(float)
    active = np.flatnonzero(deg > 0)
    t = 1
    while active.size:
        sub = reach[active]
        grown = sub | ((sub.astype(np.float64) @ af) > 0)
        grew = (grown != sub).any(axis=1)
        t += 1
        active = active[grew]
        reach[active] = grown[grew]
        ecc[active] = t
    roots = reach.argmax(axis=1)  # smallest node of each node's component
    tri2 = ((af @ af) * af).sum(axis=1)  # twice the triangles through each node
    pairs = deg * (deg - 1.0)
    clust = np.divide(tri2, pairs, out=np.zeros(n), where=pairs > 0)
    return np.array(
        [
            np.count_nonzero(roots == np.arange(n)),
            deg.mean(),
            deg.max(),
            ecc.mean(),
            ecc.max(),
            clust.mean(),
            reach.sum(axis=1).max() / n,
            np.count_nonzero(deg == 0) / n,
        ],
        dtype=float,
    )


def _check_merge_index(mi: np.ndarray, name: str) -> np.ndarray:
    if mi.ndim != 2 or mi.shape[0] != mi.shape[1]:
        raise ValueError(f"{name} must be a square matrix, got shape {mi.shape}")
    if not np.array_equal(mi, mi.T):
        raise ValueError(f"{name} must be symmetric (undirected graph)")
    return mi


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
    a = _check_merge_index(np.asarray(adjacency, dtype=bool), "adjacency")
    return topology_features(np.where(a, 0, 1), [0])[0]


def topology_features(merge_index: np.ndarray, scale_indices: int | Sequence[int]) -> np.ndarray:
    """Graph features at several scales from a merge-index matrix.

    The graphs are built incrementally from the smallest scale up (module docstring), so
    asking for all the scales costs little more than asking for the largest one.

    Parameters
    ----------
    merge_index : ndarray of int, shape (n, n)
        First scale index at which each pair is connected
        (:attr:`skcalc.masks.CalcificationMasks.merge_index`); symmetric, diagonal ignored.
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
    mi = _check_merge_index(np.asarray(merge_index), "merge_index")
    if isinstance(scale_indices, Integral):
        idx = np.arange(int(scale_indices))
    else:
        idx = np.asarray(scale_indices, dtype=np.int64).ravel()
    out = np.zeros((idx.size, 8))
    n = mi.shape[0]
    if n == 0 or idx.size == 0:
        return out
    wanted, where = np.unique(idx, return_inverse=True)
    iu, ju = np.nonzero(np.triu(mi <= wanted[-1], 1))
    value = mi[iu, ju]
    order = np.argsort(value, kind="stable")
    iu, ju = iu[order], ju[order]
    ends = np.searchsorted(value[order], wanted, side="right")
    rows = np.empty((wanted.size, 8))
    if n <= _DENSE_MAX_NODES:
        # Edge sets are nested across scales, so equal edge counts mean equal graphs.
        for r, (k, end) in enumerate(zip(wanted, ends)):
            same = r > 0 and end == ends[r - 1]
            rows[r] = rows[r - 1] if same else _dense_graph_features(mi <= k)
    else:
        graph = _GrowingGraph(n)
        start = 0
        for r, end in enumerate(ends):
            graph.add_edges(iu[start:end], ju[start:end])
            start = end
            rows[r] = graph.features()
    out[:] = rows[where.ravel()]
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


class TopologyFeatures(ImageStage):
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

    _stage = "topology"
    _one = staticmethod(_topology_one)
    _requires = ("masks",)
    _depends_on = ("masks",)

    def _fit_rois(self, rois):
        """Record the scales of the output (from the masks or the ``scales`` parameter)."""
        scales = self._resolve_scales(rois)
        self._check_rois_scales(rois, scales)
        self.scales_ = scales

    def _params(self, rois):
        scales = self.scales_ if hasattr(self, "scales_") else self._resolve_scales(rois)
        self._check_rois_scales(rois, scales)
        return {
            "scales": tuple(float(s) for s in scales),
            "include_handcrafted": bool(self.include_handcrafted),
        }

    def _summary(self, rois, rows):
        few = [r.roi_id for r in rois if r.masks.n_objects < 2]
        if few:
            return (
                f"{len(few)} ROI(s) have fewer than two calcifications (e.g. {few[:3]}); "
                "their graph and handcrafted features take the documented default values"
            )
        return None

    def _assemble(self, rois, rows):
        return np.vstack(rows).astype(float, copy=False)

    def transform(self, X):
        """The global features of every ROI, shape ``(n_rois, 8 * n_scales [+ 3])``.

        Defined here (not only inherited) so that scikit-learn's ``set_output`` wraps it:
        this stage returns a table, with names from :meth:`get_feature_names_out`.
        """
        return super().transform(X)

    def get_feature_names_out(self, input_features=None):
        """Names ``topo_<feature>_r<radius>mm`` per scale, then ``hand_<feature>``."""
        check_is_fitted(self, "scales_")
        names = [
            f"topo_{f}_r{s}mm" for s in _format_scales(self.scales_) for f in GRAPH_FEATURE_NAMES
        ]
        if self.include_handcrafted:
            names += [f"hand_{f}" for f in HANDCRAFTED_FEATURE_NAMES]
        return np.asarray(names, dtype=object)
