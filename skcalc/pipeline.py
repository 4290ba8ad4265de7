"""The paper's method as one imbalanced-learn Pipeline, and its hyper-parameter grids.

``segment -> masks -> features (local: extract -> bag | global: topology -> select)
-> resample -> classify``
"""

from __future__ import annotations

from typing import Any

import numpy as np
from imblearn.pipeline import Pipeline
from sklearn.impute import SimpleImputer
from sklearn.pipeline import FeatureUnion, _final_estimator_has
from sklearn.utils.metaestimators import available_if

from ._fitcache import (
    FIT_CACHE,
    PipelineMemory,
    all_params,
    data_key,
    deterministic,
    input_key,
    params_key,
)
from .aggregation import BagOfClustersAggregator, MeanStdAggregator
from .classification import ThresholdedClassifier, make_default_lightgbm
from .feature_selection import ImportanceSelector, model_importances
from .features import LocalFeatureExtractor, TopologyFeatures
from .masks import MaskBuilder
from .resampling import SafeSMOTEENN
from .segmentation import HDoGRegSegmenter
from .utils import InProcessMemory
from .utils._base import CachedParamNamesMixin

__all__ = [
    "feature_importances",
    "make_calcification_pipeline",
    "paper_param_grid",
]

#: Columns of :class:`~skcalc.features.TopologyFeatures` that are not graph features (the
#: three handcrafted features it appends): always kept by the topology selection.
HANDCRAFTED_COLUMNS = (-3, -2, -1)


class _CalcificationPipeline(CachedParamNamesMixin, Pipeline):
    """An imbalanced-learn ``Pipeline`` that, with a :class:`~skcalc._fitcache.PipelineMemory`,
    also memoises the transformation of prediction inputs.

    Private: what :func:`make_calcification_pipeline` returns (the common estimator checks
    skip it: a pipeline has no default steps).

    With ``memory=PipelineMemory()`` the fits of the steps are memoised by the memory (a
    scikit-learn mechanism); this class adds the same for ``predict``, ``predict_proba``,
    ``predict_log_proba`` and ``decision_function``: the output of the steps before the
    classifier is memoised in this process, keyed on the content of the training data and
    the steps' parameters at fit, and on the content of ``X``. In a grid search, the
    candidates that differ only in the classifier (its settings, the decision threshold)
    then transform each validation fold once. The results are identical: the memo is only
    used when the steps are deterministic (integer random states), no metadata is passed,
    the steps' parameters are unchanged since fit and no ``set_output`` container is
    configured; otherwise this is imbalanced-learn's ``Pipeline``.
    """

    def _prefix_params_key(self) -> str | None:
        keys = []
        for _, step in self.steps[:-1]:
            if step is None or isinstance(step, str):
                keys.append(repr(step))
                continue
            params = all_params(step)
            if not deterministic(params):
                return None
            for value in (step, *params.values()):
                if getattr(value, "_sklearn_output_config", None):
                    return None
            keys.append(f"{type(step).__qualname__}:{params_key(params)}")
        return "|".join(keys)

    def _fit(self, X, y=None, routed_params=None, raw_params=None):
        self.__dict__.pop("_prefix_key_", None)
        out = super()._fit(X, y, routed_params=routed_params, raw_params=raw_params)
        if isinstance(self.memory, PipelineMemory) and not raw_params:
            params_key = self._prefix_params_key()
            if params_key is not None:
                self._prefix_key_ = (params_key, input_key(X), data_key(y))
        return out

    def _memoised_prefix(self, X, params):
        from sklearn import get_config

        key = getattr(self, "_prefix_key_", None)
        if key is None or params or get_config()["transform_output"] != "default":
            return None
        if self._prefix_params_key() != key[0]:  # parameters changed since fit
            return None
        full = ("predict-prefix", *key, input_key(X))
        found, Xt = FIT_CACHE.get(full)
        if not found:
            Xt = X
            for _, _, transform in self._iter(with_final=False):
                Xt = transform.transform(Xt)
            FIT_CACHE.put(full, Xt)
        return Xt.copy() if hasattr(Xt, "copy") else Xt

    def _predict_and_score(self, X):
        """``(predict(X), score)`` transforming ``X`` once, or None.

        For :class:`skcalc.metrics.ClinicalScorer`: available when the prefix is memoised
        (see the class) and the last step answers ``_predict_and_score``
        (:class:`~skcalc.classification.ThresholdedClassifier`); ``score`` is what the ROC
        AUC scorer reads (``decision_function``, else the last column of
        ``predict_proba``), and both are the values of those methods.
        """
        final = self.steps[-1][1]
        method = getattr(final, "_predict_and_score", None)
        if method is None:
            return None
        Xt = self._memoised_prefix(X, {})
        return None if Xt is None else method(Xt)

    @available_if(_final_estimator_has("predict"))
    def predict(self, X, **params):
        """Transform ``X`` with the steps (memoised, see the class) and predict."""
        Xt = self._memoised_prefix(X, params)
        if Xt is None:
            return super().predict(X, **params)
        return self.steps[-1][1].predict(Xt)

    @available_if(_final_estimator_has("predict_proba"))
    def predict_proba(self, X, **params):
        """Transform ``X`` with the steps (memoised, see the class); class probabilities."""
        Xt = self._memoised_prefix(X, params)
        if Xt is None:
            return super().predict_proba(X, **params)
        return self.steps[-1][1].predict_proba(Xt)

    @available_if(_final_estimator_has("predict_log_proba"))
    def predict_log_proba(self, X, **params):
        """Transform ``X`` with the steps (memoised, see the class); log probabilities."""
        Xt = self._memoised_prefix(X, params)
        if Xt is None:
            return super().predict_log_proba(X, **params)
        return self.steps[-1][1].predict_log_proba(Xt)

    @available_if(_final_estimator_has("decision_function"))
    def decision_function(self, X, **params):
        """Transform ``X`` with the steps (memoised, see the class); decision values."""
        Xt = self._memoised_prefix(X, params)
        if Xt is None:
            return super().decision_function(X, **params)
        return self.steps[-1][1].decision_function(Xt)


def make_calcification_pipeline(
    n_clusters: int = 15,
    threshold: float = 0.4,
    *,
    aggregation: str = "bag",
    segmenter: Any = None,
    classifier: Any = None,
    resample: bool = True,
    select_topology: int | None = 122,
    memory: Any = "auto",
    cache_tail: bool = True,
    n_jobs: int | None = None,
    random_state: int | None = 0,
) -> Pipeline:
    """Build the full method of Marathe et al. as an imbalanced-learn Pipeline.

    Parameters
    ----------
    n_clusters : int, default=15
        K of the bag-of-clusters aggregation (paper: 15).
    threshold : float, default=0.4
        Decision threshold on the predicted probability of "actionable" (paper: 0.4).
    aggregation : {"bag", "meanstd"}, default="bag"
        ``"bag"``: k-means bag of clusters (the paper's method); ``"meanstd"``: mean and
        standard deviation of each local feature (the paper's baseline), followed by a
        mean imputation (``SimpleImputer(keep_empty_features=True)``): an ROI without
        objects has undefined means and stds, which SMOTE cannot take.
    segmenter : estimator, optional
        The segmentation step; default :class:`~skcalc.segmentation.HDoGRegSegmenter`.
    classifier : estimator, optional
        Probabilistic classifier wrapped by :class:`~skcalc.ThresholdedClassifier`;
        default :func:`~skcalc.classification.make_default_lightgbm`.
    resample : bool, default=True
        Include the SMOTE + ENN step (:class:`~skcalc.resampling.SafeSMOTEENN`).
    select_topology : int or None, default=122
        Number of graph features kept by importance on the training data
        (:class:`~skcalc.feature_selection.ImportanceSelector`; the paper kept 122 of
        520); the three handcrafted features are always kept. None keeps them all.
        Grid-search it as ``features__global__select__max_features``.
    memory : "auto", None, str or joblib.Memory, default="auto"
        Per-ROI cache of the image stages (segmentation, masks, local and topology
        features). With a cache, a grid search runs each image stage once per ROI.
        ``"auto"`` caches in this process only (:class:`~skcalc.utils.InProcessMemory`);
        a folder or :class:`joblib.Memory` also shares results between processes and runs;
        ``None`` disables caching (the pipeline then has no ``memory`` either: every fit
        runs the image stages).
    cache_tail : bool, default=True
        Memoise fits in this process, keyed on the content of their data and on their
        parameters (:mod:`skcalc._fitcache`): the pipeline's steps through its
        ``memory`` (:class:`~skcalc._fitcache.PipelineMemory`: the segmentation-to-
        features prefix once per training fold and K, SMOTE+ENN once per distinct
        input), and inside the steps k-means once per fold and K, the topology selection
        once per fold, LightGBM once per input and setting, whatever the threshold. The
        results are identical either way; only the time differs.
    n_jobs : int, optional
        Parallel jobs of the per-ROI loops.
    random_state : int, optional
        Seed of k-means, the selection model, SMOTE and LightGBM.

    Returns
    -------
    imblearn.pipeline.Pipeline
        An imbalanced-learn Pipeline (of a private subclass that also memoises the
        transformation of prediction inputs when ``cache_tail``). Steps ``segment``,
        ``masks``, ``features`` (a FeatureUnion of ``local`` = Pipeline(``extract``,
        ``bag``[, ``impute``]) and ``global`` = Pipeline(``topology``, ``select``)),
        ``resample``, ``classify``. Grid-search e.g.
        ``features__local__bag__n_clusters`` and ``classify__threshold``.

    Examples
    --------
    >>> from skcalc.pipeline import make_calcification_pipeline
    >>> pipe = make_calcification_pipeline(n_clusters=10)
    >>> [name for name, _ in pipe.steps]
    ['segment', 'masks', 'features', 'resample', 'classify']
    >>> params = pipe.get_params()
    >>> params["features__local__bag__n_clusters"], params["features__global__select__max_features"]
    (10, 122)
    """
    if isinstance(memory, str) and memory == "auto":
        memory = InProcessMemory()
    tail_memory = InProcessMemory() if cache_tail else None
    local_steps: list = [("extract", LocalFeatureExtractor(memory=memory, n_jobs=n_jobs))]
    if aggregation == "bag":
        local_steps.append(
            (
                "bag",
                BagOfClustersAggregator(
                    n_clusters=n_clusters, random_state=random_state, memory=tail_memory
                ),
            )
        )
    elif aggregation == "meanstd":
        local_steps += [
            ("bag", MeanStdAggregator()),
            ("impute", SimpleImputer(keep_empty_features=True)),
        ]
    else:
        raise ValueError(f"aggregation must be 'bag' or 'meanstd', got {aggregation!r}")
    if segmenter is None:
        segmenter = HDoGRegSegmenter(memory=memory, n_jobs=n_jobs)
    if classifier is None:
        classifier = make_default_lightgbm(random_state)
    topology = Pipeline(
        [
            ("topology", TopologyFeatures(memory=memory, n_jobs=n_jobs)),
            (
                "select",
                ImportanceSelector(
                    max_features=select_topology,
                    keep=list(HANDCRAFTED_COLUMNS),
                    random_state=random_state,
                    memory=tail_memory,
                ),
            ),
        ]
    )
    features = FeatureUnion([("local", Pipeline(local_steps)), ("global", topology)])
    steps = [
        ("segment", segmenter),
        ("masks", MaskBuilder(memory=memory, n_jobs=n_jobs)),
        ("features", features),
        (
            "resample",
            SafeSMOTEENN(random_state=random_state, memory=tail_memory)
            if resample
            else "passthrough",
        ),
        (
            "classify",
            ThresholdedClassifier(classifier, threshold=threshold, memory=tail_memory),
        ),
    ]
    # memory=None means "recompute the image stages": no pipeline-level memo of them either.
    pipeline_memory = PipelineMemory() if cache_tail and memory is not None else None
    return _CalcificationPipeline(steps, memory=pipeline_memory)


#: Our LightGBM grid for ``paper_param_grid("paper")``: the paper names the five tuned
#: settings but gives no values; these are skcalc's choice (two values each around
#: :func:`~skcalc.classification.make_default_lightgbm`, for a few hundred samples).
PAPER_LIGHTGBM_GRID: dict[str, list] = {
    "reg_lambda": [0.0, 1.0],
    "n_estimators": [100, 200],
    "learning_rate": [0.05, 0.1],
    "num_leaves": [7, 15],
    "max_depth": [-1, 4],
}

_GRIDS: dict[str, dict[str, list]] = {
    "paper": {
        "n_clusters": [5, 10, 15, 20],
        "threshold": [0.3, 0.4, 0.5],
        **{f"lgbm:{k}": v for k, v in PAPER_LIGHTGBM_GRID.items()},
    },
    "small": {
        "n_clusters": [5, 10, 15, 20],
        "threshold": [0.3, 0.4, 0.5],
        "lgbm:n_estimators": [100, 200],
        "lgbm:num_leaves": [7, 15],
    },
    "quick": {"n_clusters": [5, 15], "threshold": [0.3, 0.4, 0.5]},
}


def paper_param_grid(
    size: str = "paper", *, aggregation: str = "bag", lightgbm: bool = True
) -> dict[str, list]:
    """Grid over K, the decision threshold and LightGBM, as the paper tuned them.

    The paper tuned K, the threshold and "regularization, number of trees, learning rate,
    number of leaves, max depth" by a 5-fold grid search for the best sensitivity, and
    reports only the outcome (K = 15, threshold 0.4). **All the values below are skcalc's
    choice**, not the paper's.

    Parameters
    ----------
    size : {"paper", "small", "quick"}, default="paper"
        - ``"paper"``: all five LightGBM settings (:data:`PAPER_LIGHTGBM_GRID`: L2
          regularisation ``reg_lambda`` {0, 1}, ``n_estimators`` {100, 200},
          ``learning_rate`` {0.05, 0.1}, ``num_leaves`` {7, 15}, ``max_depth`` {-1, 4}),
          K in {5, 10, 15, 20} and the threshold in {0.3, 0.4, 0.5}: 384 candidates;
        - ``"small"``: K and threshold as above, ``n_estimators`` {100, 200} and
          ``num_leaves`` {7, 15}: 48 candidates;
        - ``"quick"``: K in {5, 15}, threshold in {0.3, 0.4, 0.5}, LightGBM at its
          defaults: 6 candidates.
    aggregation : {"bag", "meanstd"}, default="bag"
        ``"meanstd"`` has no K.
    lightgbm : bool, default=True
        False leaves LightGBM at its defaults whatever ``size``.

    Returns
    -------
    dict of str -> list
        Keys are parameters of :func:`make_calcification_pipeline`'s pipeline.

    Examples
    --------
    >>> from skcalc.pipeline import paper_param_grid
    >>> grid = paper_param_grid()
    >>> grid["features__local__bag__n_clusters"], grid["classify__threshold"]
    ([5, 10, 15, 20], [0.3, 0.4, 0.5])
    >>> sorted(k.split("__")[-1] for k in grid if k.startswith("classify__estimator"))
    ['learning_rate', 'max_depth', 'n_estimators', 'num_leaves', 'reg_lambda']
    >>> int(np.prod([len(v) for v in grid.values()]))
    384
    >>> len(paper_param_grid("small")), "features__local__bag__n_clusters" in paper_param_grid(
    ...     aggregation="meanstd")
    (4, False)
    """
    if size not in _GRIDS:
        raise ValueError(f"size must be one of {sorted(_GRIDS)}, got {size!r}")
    if aggregation not in ("bag", "meanstd"):
        raise ValueError(f"aggregation must be 'bag' or 'meanstd', got {aggregation!r}")
    grid: dict[str, list] = {}
    for key, values in _GRIDS[size].items():
        if key == "n_clusters":
            if aggregation == "bag":
                grid["features__local__bag__n_clusters"] = list(values)
        elif key == "threshold":
            grid["classify__threshold"] = list(values)
        elif lightgbm:
            grid[f"classify__estimator__{key.removeprefix('lgbm:')}"] = list(values)
    return grid


def feature_importances(pipeline: Any, *, normalize: bool = False):
    """Importances of the fitted classifier, named after the features they belong to.

    Parameters
    ----------
    pipeline : fitted Pipeline
        A pipeline of :func:`make_calcification_pipeline` (or any pipeline whose last step
        is a classifier, or a :class:`~skcalc.ThresholdedClassifier`, with
        ``feature_importances_`` or ``coef_``, and whose other steps answer
        ``get_feature_names_out``).
    normalize : bool, default=False
        Divide by the sum (LightGBM's importances are split counts).

    Returns
    -------
    pandas.Series
        Importance per feature name (e.g. ``local__fg_radiomics_cluster_03``,
        ``global__topo_diameter_r1.4mm``), sorted in decreasing order.
    """
    import pandas as pd

    last = pipeline.steps[-1][1]
    model = getattr(last, "estimator_", last)
    values = model_importances(model)
    names = pipeline[:-1].get_feature_names_out()
    if names is None or len(names) != len(values):
        raise ValueError(
            f"the classifier has {len(values)} importances but the pipeline names "
            f"{None if names is None else len(names)} features"
        )
    if normalize and values.sum() > 0:
        values = values / values.sum()
    series = pd.Series(values, index=pd.Index(np.asarray(names, dtype=object), name="feature"),
                       name="importance")
    return series.sort_values(ascending=False, kind="stable")
