"""Aggregation of ragged per-object tables into fixed-width per-ROI vectors.

The paper's "Clustering and concatenation" section: each local feature set (foreground
radiomics, foreground region properties, background radiomics) has one row per object and a
varying number of objects per ROI. :class:`BagOfClustersAggregator` fits one k-means model per
set on the training objects and describes each ROI by the fraction of its objects in each
cluster; :class:`MeanStdAggregator` is the paper's baseline (mean and standard deviation of
each feature over the ROI's objects).

Accepted input ``X`` (both aggregators):

* a sequence with one entry per ROI, each entry either a mapping ``set name -> 2-D array of
  shape (n_objects_i, d_set)`` (what :class:`skcalc.features.LocalFeatureExtractor` returns;
  0 rows are allowed) or a single 2-D array ``(n_objects_i, d)`` meaning one feature set
  named ``"objects"``; a 1-D object array of such entries is read the same way;
* a plain 2-D array ``(n_rois, d)``: the degenerate case of one object per ROI and a single
  feature set, validated with :func:`sklearn.utils.validation.validate_data` (so the full
  scikit-learn estimator suite runs on it).

Feature names are read from a ``feature_names`` attribute of the mapping (``set ->
sequence of names``), from the columns of pandas DataFrames, or from the columns of a
DataFrame ``X`` on the 2-D path; otherwise they are ``f0, f1, ...``.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.cluster import KMeans
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import _check_feature_names_in, check_is_fitted, validate_data

from ._fitcache import memoised
from .exceptions import SkcalcWarning
from .utils._base import CachedParamNamesMixin
from .utils._parallel import single_threaded

__all__ = ["BagOfClustersAggregator", "MeanStdAggregator"]


#: Set name used when an ROI's table is a plain array rather than a mapping of sets.
SINGLE_SET = "objects"


class _Objects:
    """All objects of one feature set, stacked, with the index of the ROI owning each row."""

    __slots__ = ("values", "owner", "names")

    def __init__(self, values: np.ndarray, owner: np.ndarray, names: list[str] | None):
        self.values = values
        self.owner = owner
        self.names = names


def _is_table(t) -> bool:
    return isinstance(t, Mapping) or (hasattr(t, "shape") and len(getattr(t, "shape", ())) == 2)


def _is_ragged_input(X) -> bool:
    """True for a sequence of per-ROI tables, False for a 2-D array-like of rows."""
    if isinstance(X, np.ndarray):
        return X.dtype == object and X.ndim == 1 and X.size > 0 and _is_table(X[0])
    if isinstance(X, (list, tuple)):
        return len(X) > 0 and _is_table(X[0])
    return False


def _table_columns(table) -> list[str] | None:
    cols = getattr(table, "columns", None)
    return None if cols is None else [str(c) for c in cols]


def _collect(X) -> tuple[int, dict[str, _Objects]]:
    """Stack a sequence of per-ROI tables into one ``_Objects`` per feature set."""
    n_rois = len(X)
    pieces: dict[str, list[np.ndarray]] = {}
    owners: dict[str, list[np.ndarray]] = {}
    names: dict[str, list[str] | None] = {}
    for i, table in enumerate(X):
        if isinstance(table, Mapping):
            items = list(table.items())
            declared = getattr(table, "feature_names", None) or {}
        elif _is_table(table):
            items = [(SINGLE_SET, table)]
            declared = {}
        else:
            raise TypeError(
                f"ROI {i}: expected a mapping of feature tables or a 2-D array, "
                f"got {type(table).__name__}"
            )
        if i > 0 and set(k for k, _ in items) != set(pieces):
            raise ValueError(
                f"ROI {i}: feature sets {sorted(k for k, _ in items)} differ from those of "
                f"ROI 0 {sorted(pieces)}"
            )
        for key, arr in items:
            cols = declared.get(key) if isinstance(declared, Mapping) else None
            cols = list(map(str, cols)) if cols is not None else _table_columns(arr)
            try:
                a = np.asarray(arr, dtype=np.float64)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"ROI {i}, feature set {key!r}: not numeric ({exc})") from exc
            if a.ndim != 2:
                raise ValueError(
                    f"ROI {i}, feature set {key!r}: expected a 2-D table, got shape {a.shape}"
                )
            if np.isinf(a).any():
                raise ValueError(
                    f"ROI {i}, feature set {key!r}: infinite values (NaN is accepted as missing)"
                )
            if key in pieces and pieces[key] and a.shape[1] != pieces[key][0].shape[1]:
                raise ValueError(
                    f"ROI {i}, feature set {key!r}: {a.shape[1]} features, "
                    f"ROI 0 has {pieces[key][0].shape[1]}"
                )
            pieces.setdefault(key, []).append(a)
            owners.setdefault(key, []).append(np.full(a.shape[0], i, dtype=np.intp))
            if names.get(key) is None:
                names[key] = cols
    objects = {
        k: _Objects(np.concatenate(pieces[k], axis=0), np.concatenate(owners[k]), names[k])
        for k in pieces
    }
    return n_rois, objects


class _BaseAggregator(CachedParamNamesMixin, TransformerMixin, BaseEstimator):
    """Input handling shared by the aggregators (ragged tables or a plain 2-D array)."""

    def _read(self, X, *, reset: bool) -> tuple[int, dict[str, _Objects]]:
        if _is_ragged_input(X):
            n_rois, objects = _collect(X)
            if reset:
                # A previous 2-D fit must not leave stale input metadata behind.
                for attr in ("n_features_in_", "feature_names_in_"):
                    if hasattr(self, attr):
                        delattr(self, attr)
            return n_rois, objects
        A = validate_data(
            self, X, reset=reset, ensure_all_finite="allow-nan", dtype=np.float64
        )
        names = None
        if hasattr(self, "n_features_in_"):
            names = list(map(str, _check_feature_names_in(self, None)))
        owner = np.arange(A.shape[0], dtype=np.intp)
        return A.shape[0], {SINGLE_SET: _Objects(A, owner, names)}

    def _fit_sets(self, X) -> dict[str, _Objects]:
        _, objects = self._read(X, reset=True)
        self.feature_sets_ = list(objects)
        self.n_features_per_set_ = {k: o.values.shape[1] for k, o in objects.items()}
        self.feature_names_ = {
            k: (o.names if o.names is not None and len(o.names) == o.values.shape[1]
                else [f"f{j}" for j in range(o.values.shape[1])])
            for k, o in objects.items()
        }
        return objects

    def _transform_sets(self, X) -> tuple[int, dict[str, _Objects]]:
        check_is_fitted(self, "feature_sets_")
        n_rois, objects = self._read(X, reset=False)
        if set(objects) != set(self.feature_sets_):
            raise ValueError(
                f"feature sets {sorted(objects)} differ from those seen in fit "
                f"{sorted(self.feature_sets_)}"
            )
        for k, o in objects.items():
            if o.values.shape[1] != self.n_features_per_set_[k]:
                raise ValueError(
                    f"feature set {k!r} has {o.values.shape[1]} features, "
                    f"{self.n_features_per_set_[k]} in fit"
                )
        return n_rois, objects

    def _check_input_features(self, input_features):
        # On the 2-D path, validate ``input_features`` the scikit-learn way.
        if hasattr(self, "n_features_in_"):
            _check_feature_names_in(self, input_features)
        elif input_features is not None:
            raise ValueError(
                "input_features is only supported when fitted on a 2-D array; "
                "names of per-ROI tables come from the tables"
            )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags


class _LegacySetModel:
    """The fitted pieces of a bag-of-clusters set saved by skcalc 0.1 (before ``pipelines_``):
    training-mean imputation, optional scaler, k-means; predicts as it did."""

    def __init__(self, impute_values, scaler, kmeans) -> None:
        self.impute_values = np.asarray(impute_values, float)
        self.scaler = scaler
        self.kmeans = kmeans

    def predict(self, values: np.ndarray) -> np.ndarray:
        values = np.where(np.isnan(values), self.impute_values, values)
        if self.scaler is not None:
            values = self.scaler.transform(values)
        return self.kmeans.predict(values)


class BagOfClustersAggregator(_BaseAggregator):
    """Bag of clusters: per-ROI histograms of k-means cluster fractions, one per feature set.

    For each feature set, the training objects of all ROIs are imputed, standardised and
    clustered with k-means (one :class:`~sklearn.pipeline.Pipeline` of
    :class:`~sklearn.impute.SimpleImputer`, :class:`~sklearn.preprocessing.StandardScaler`
    and :class:`~sklearn.cluster.KMeans` per set); each ROI is then described by the
    fraction of its objects that fall in each of the ``n_clusters`` clusters (the paper's
    Figure 5). The vectors of the sets are concatenated.

    Parameters
    ----------
    n_clusters : int, default=15
        Number of clusters K per feature set (paper: K=15, grid-searched). When a set has
        fewer training objects than K, k-means is fitted with as many clusters as objects
        and a :class:`~skcalc.SkcalcWarning` is issued; the output keeps K columns per set
        (the extra clusters are never populated), so the output width never depends on the
        data. A set with no training object at all gives all-zero columns.
    scale : bool, default=True
        Standardise each feature on the training objects before clustering (k-means is
        scale-sensitive; radiomics features span many orders of magnitude).
    nan_strategy : {"impute_mean", "drop_objects", "error"}, default="impute_mean"
        Missing feature values (NaN, e.g. texture features of one-pixel objects):

        - ``"impute_mean"``: replaced by the training mean of that feature
          (``SimpleImputer(keep_empty_features=True)``); a feature that is NaN for every
          training object is set to 0 (it then carries no information);
        - ``"drop_objects"``: objects with any NaN are ignored (in fit and transform);
        - ``"error"``: raise a ``ValueError``.

        Infinite values always raise.
    n_init : int, default=10
        Number of k-means initialisations (:class:`sklearn.cluster.KMeans`).
    random_state : int, RandomState instance or None, default=None
        Seeds the k-means of every set (one seed drawn per set).
    memory : None or object with a ``location``, default=None
        When set (e.g. :class:`skcalc.utils.InProcessMemory`), the fitted models are
        memoised in this process, keyed on the content of the training objects and on the
        parameters: a grid search fits k-means once per fold and K, whatever the other
        candidates' parameters. Only deterministic fits (integer ``random_state``) are
        memoised; results are identical with and without it (see :mod:`skcalc._fitcache`).

    Attributes
    ----------
    feature_sets_ : list of str
        Names of the feature sets, in output order.
    n_features_per_set_ : dict of str -> int
        Number of per-object features of each set.
    feature_names_ : dict of str -> list of str
        Per-object feature names of each set.
    pipelines_ : dict of str -> Pipeline or None
        Fitted ``Pipeline(impute, scale, kmeans)`` of each set (None when the set had no
        training object; ``scale`` is ``"passthrough"`` when ``scale=False``).
    impute_values_ : dict of str -> ndarray
        Training mean of each feature (0 where it is undefined): the imputers' statistics.
    scalers_ : dict of str -> StandardScaler or None
        The pipelines' fitted scalers (None when ``scale=False`` or no training object).
    kmeans_ : dict of str -> KMeans or None
        The pipelines' fitted k-means models (None when the set had no training object).
    n_features_in_ : int
        Only when fitted on a 2-D array.
    feature_names_in_ : ndarray of str
        Only when fitted on a DataFrame.

    Notes
    -----
    An ROI with no object in a set gets all-zero fractions for that set (its histogram cannot
    sum to 1); downstream, all-zero rows are distinguishable from any real histogram.

    See Also
    --------
    MeanStdAggregator : the paper's mean/std baseline.

    Examples
    --------
    >>> import numpy as np
    >>> from skcalc.aggregation import BagOfClustersAggregator
    >>> rng = np.random.default_rng(0)
    >>> tables = [{"fg": rng.normal(size=(n, 3))} for n in (5, 8, 0)]
    >>> bag = BagOfClustersAggregator(n_clusters=2, random_state=0).fit(tables)
    >>> Xt = bag.transform(tables)
    >>> Xt.shape, Xt.sum(axis=1).tolist()
    ((3, 2), [1.0, 1.0, 0.0])
    >>> bag.get_feature_names_out().tolist()
    ['fg_cluster_00', 'fg_cluster_01']
    >>> [name for name, _ in bag.pipelines_["fg"].steps]
    ['impute', 'scale', 'kmeans']
    """

    _parameter_constraints: dict = {
        "n_clusters": [Interval(Integral, 1, None, closed="left")],
        "scale": ["boolean"],
        "nan_strategy": [StrOptions({"impute_mean", "drop_objects", "error"})],
        "n_init": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "memory": [None, HasMethods(["cache"])],
    }

    def __init__(
        self, n_clusters=15, *, scale=True, nan_strategy="impute_mean", n_init=10,
        random_state=None, memory=None,
    ):
        self.n_clusters = n_clusters
        self.scale = scale
        self.nan_strategy = nan_strategy
        self.n_init = n_init
        self.random_state = random_state
        self.memory = memory

    def _filter(self, key: str, objs: _Objects) -> tuple[np.ndarray, np.ndarray]:
        """Objects left after the NaN policy (imputation happens in the pipeline)."""
        values, owner = objs.values, objs.owner
        if self.nan_strategy == "impute_mean":
            return values, owner
        nan = np.isnan(values)
        if not nan.any():
            return values, owner
        if self.nan_strategy == "error":
            rois = np.unique(owner[nan.any(axis=1)])
            raise ValueError(
                f"feature set {key!r}: NaN values in ROI(s) {rois[:10].tolist()}; "
                "use nan_strategy='impute_mean' or 'drop_objects'"
            )
        keep = ~nan.any(axis=1)
        return values[keep], owner[keep]

    def _make_pipeline(self, k: int, seed: int) -> Pipeline:
        return Pipeline(
            [
                ("impute", SimpleImputer(keep_empty_features=True)),
                ("scale", StandardScaler() if self.scale else "passthrough"),
                ("kmeans", KMeans(n_clusters=k, n_init=self.n_init, random_state=seed)),
            ]
        )

    def _fit_pipelines(self, objects: dict[str, _Objects]) -> dict:
        rng = check_random_state(self.random_state)
        pipelines: dict[str, Pipeline | None] = {}
        for key, objs in objects.items():
            values, _ = self._filter(key, objs)
            seed = rng.randint(np.iinfo(np.int32).max)
            if values.shape[0] == 0:
                warnings.warn(
                    f"feature set {key!r} has no training object; its "
                    f"{self.n_clusters} cluster fractions will always be 0",
                    SkcalcWarning, stacklevel=3,
                )
                pipelines[key] = None
                continue
            k = self.n_clusters
            if values.shape[0] < k:
                warnings.warn(
                    f"feature set {key!r} has {values.shape[0]} training objects, fewer than "
                    f"n_clusters={k}; fitting {values.shape[0]} clusters (the remaining "
                    "fractions are always 0)",
                    SkcalcWarning, stacklevel=3,
                )
                k = values.shape[0]
            # A few thousand objects: BLAS/OpenMP threads cost far more than they save here
            # (70x slower measured on a busy 2-core machine), so k-means runs on one.
            with single_threaded():
                pipelines[key] = self._make_pipeline(k, seed).fit(values)
        return pipelines

    def __setstate__(self, state):
        # Models saved by skcalc 0.1 hold the set models as separate dicts.
        if "kmeans_" in state and "pipelines_" not in state:
            state = dict(state)
            state["pipelines_"] = {
                key: None if km is None else _LegacySetModel(
                    state["impute_values_"][key], state["scalers_"][key], km
                )
                for key, km in state["kmeans_"].items()
            }
        super().__setstate__(state)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the imputer, scaler and k-means model of every feature set.

        Parameters
        ----------
        X : sequence of per-ROI tables, or array-like of shape (n_rois, n_features)
            See the module documentation.
        y : None
            Ignored.

        Returns
        -------
        self : BagOfClustersAggregator
        """
        objects = self._fit_sets(X)
        keys = list(objects)
        self.pipelines_ = memoised(
            self,
            "fit",
            (repr(keys), *(objects[k].values for k in keys)),
            lambda: self._fit_pipelines(objects),
        )
        self.impute_values_, self.scalers_, self.kmeans_ = {}, {}, {}
        for key in keys:
            pipe = self.pipelines_[key]
            if pipe is None:
                self.impute_values_[key] = np.zeros(self.n_features_per_set_[key])
                self.scalers_[key] = self.kmeans_[key] = None
                continue
            self.impute_values_[key] = pipe.named_steps["impute"].statistics_
            scaler = pipe.named_steps["scale"]
            self.scalers_[key] = None if scaler == "passthrough" else scaler
            self.kmeans_[key] = pipe.named_steps["kmeans"]
        return self

    def transform(self, X):
        """Per-ROI cluster fractions of every feature set.

        Parameters
        ----------
        X : sequence of per-ROI tables, or array-like of shape (n_rois, n_features)

        Returns
        -------
        Xt : ndarray of shape (n_rois, n_clusters * n_sets), float64
            Fractions in [0, 1]; each set's block sums to 1, or to 0 for an ROI without
            objects in that set.
        """
        n_rois, objects = self._transform_sets(X)
        K = self.n_clusters
        out = np.zeros((n_rois, K * len(self.feature_sets_)), dtype=np.float64)
        for s, key in enumerate(self.feature_sets_):
            pipe = self.pipelines_[key]
            values, owner = self._filter(key, objects[key])
            if pipe is None or values.shape[0] == 0:
                continue
            with single_threaded():
                labels = pipe.predict(values)
            counts = np.zeros((n_rois, K))
            np.add.at(counts, (owner, labels), 1.0)
            totals = counts.sum(axis=1, keepdims=True)
            out[:, s * K:(s + 1) * K] = np.divide(
                counts, totals, out=np.zeros_like(counts), where=totals > 0
            )
        return out

    def get_feature_names_out(self, input_features=None):
        """Output names ``<set>_cluster_<k>`` (k zero-padded to at least two digits).

        Parameters
        ----------
        input_features : array-like of str or None
            Only checked (2-D path); the cluster names do not depend on it.

        Returns
        -------
        names : ndarray of str
        """
        check_is_fitted(self, "pipelines_")
        self._check_input_features(input_features)
        width = max(2, len(str(self.n_clusters - 1)))
        return np.asarray(
            [f"{key}_cluster_{k:0{width}d}" for key in self.feature_sets_
             for k in range(self.n_clusters)],
            dtype=object,
        )


class MeanStdAggregator(_BaseAggregator):
    """Mean and standard deviation of each feature over an ROI's objects (paper's baseline).

    Parameters
    ----------
    nan_strategy : {"ignore", "error"}, default="ignore"
        ``"ignore"``: NaN values are left out of each feature's mean and std (a feature that
        is NaN for all of an ROI's objects gives NaN); ``"error"``: raise a ``ValueError``.

    Attributes
    ----------
    feature_sets_ : list of str
    n_features_per_set_ : dict of str -> int
    feature_names_ : dict of str -> list of str
    n_features_in_ : int
        Only when fitted on a 2-D array.
    feature_names_in_ : ndarray of str
        Only when fitted on a DataFrame.

    Notes
    -----
    An ROI without objects in a set gets NaN for that set's means and stds (LightGBM treats
    NaN as missing; add a :class:`~sklearn.impute.SimpleImputer` for other classifiers). The
    std is the population std (``ddof=0``), so an ROI with one object gets std 0. Output
    columns of each set are all the means, then all the stds.

    Examples
    --------
    >>> import numpy as np
    >>> from skcalc.aggregation import MeanStdAggregator
    >>> tables = [{"fg": np.array([[1.0, 2.0], [3.0, 2.0]])}, {"fg": np.empty((0, 2))}]
    >>> agg = MeanStdAggregator().fit(tables)
    >>> agg.transform(tables)
    array([[ 2.,  2.,  1.,  0.],
           [nan, nan, nan, nan]])
    >>> agg.get_feature_names_out().tolist()
    ['fg__f0_mean', 'fg__f1_mean', 'fg__f0_std', 'fg__f1_std']
    """

    _parameter_constraints: dict = {"nan_strategy": [StrOptions({"ignore", "error"})]}

    def __init__(self, *, nan_strategy="ignore"):
        self.nan_strategy = nan_strategy

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Record the feature sets and names.

        Parameters
        ----------
        X : sequence of per-ROI tables, or array-like of shape (n_rois, n_features)
        y : None
            Ignored.

        Returns
        -------
        self : MeanStdAggregator
        """
        self._fit_sets(X)
        return self

    def transform(self, X):
        """Per-ROI mean and std of every feature of every set.

        Parameters
        ----------
        X : sequence of per-ROI tables, or array-like of shape (n_rois, n_features)

        Returns
        -------
        Xt : ndarray of shape (n_rois, 2 * total number of features), float64
        """
        n_rois, objects = self._transform_sets(X)
        blocks = []
        for key in self.feature_sets_:
            values, owner = objects[key].values, objects[key].owner
            nan = np.isnan(values)
            if self.nan_strategy == "error" and nan.any():
                rois = np.unique(owner[nan.any(axis=1)])
                raise ValueError(f"feature set {key!r}: NaN values in ROI(s) {rois[:10].tolist()}")
            d = values.shape[1]
            # Sums by owner with np.add.at: vectorised ragged mean/std, NaN left out.
            filled = np.where(nan, 0.0, values)
            count = np.zeros((n_rois, d))
            total = np.zeros((n_rois, d))
            np.add.at(count, owner, (~nan).astype(float))
            np.add.at(total, owner, filled)
            with np.errstate(invalid="ignore", divide="ignore"):
                mean = total / count
                dev = np.where(nan, 0.0, values - mean[owner])
                sq = np.zeros((n_rois, d))
                np.add.at(sq, owner, dev**2)
                std = np.sqrt(sq / count)
            blocks += [mean, std]
        return np.hstack(blocks) if blocks else np.zeros((n_rois, 0))

    def get_feature_names_out(self, input_features=None):
        """Output names ``<set>__<feature>_mean`` then ``<set>__<feature>_std`` per set.

        Parameters
        ----------
        input_features : array-like of str or None
            On the 2-D path, the input feature names (checked against ``feature_names_in_``).

        Returns
        -------
        names : ndarray of str
        """
        check_is_fitted(self, "feature_sets_")
        self._check_input_features(input_features)
        names = []
        for key in self.feature_sets_:
            feats = self.feature_names_[key]
            if input_features is not None and key == SINGLE_SET:
                feats = list(map(str, input_features))
            names += [f"{key}__{f}_mean" for f in feats] + [f"{key}__{f}_std" for f in feats]
        return np.asarray(names, dtype=object)
