"""The paper's method as one imbalanced-learn Pipeline, and its hyper-parameter grid.

``segment -> masks -> features (local: extract -> bag | global: topology) -> resample -> classify``
"""

from __future__ import annotations

from typing import Any

from imblearn.pipeline import Pipeline
from sklearn.pipeline import FeatureUnion

from .aggregation import BagOfClustersAggregator, MeanStdAggregator
from .classification import ThresholdedClassifier, make_default_lightgbm
from .features import LocalFeatureExtractor, TopologyFeatures
from .masks import MaskBuilder
from .resampling import SafeSMOTEENN
from .segmentation import HDoGRegSegmenter
from .utils import InProcessMemory

__all__ = ["make_calcification_pipeline", "paper_param_grid"]


def make_calcification_pipeline(
    n_clusters: int = 15,
    threshold: float = 0.4,
    *,
    aggregation: str = "bag",
    segmenter: Any = None,
    classifier: Any = None,
    resample: bool = True,
    memory: Any = "auto",
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
        standard deviation of each local feature (the paper's baseline).
    segmenter : estimator, optional
        The segmentation step; default :class:`~skcalc.segmentation.HDoGRegSegmenter`.
    classifier : estimator, optional
        Probabilistic classifier wrapped by :class:`~skcalc.ThresholdedClassifier`;
        default :func:`~skcalc.classification.make_default_lightgbm`.
    resample : bool, default=True
        Include the SMOTE + ENN step (:class:`~skcalc.resampling.SafeSMOTEENN`).
    memory : "auto", None, str or joblib.Memory, default="auto"
        Per-ROI cache of the image stages (segmentation, masks, local and topology
        features). With a cache, a grid search runs each image stage once per ROI.
        ``"auto"`` caches in this process only (:class:`~skcalc.utils.InProcessMemory`);
        a folder or :class:`joblib.Memory` also shares results between processes and runs;
        ``None`` disables caching.
    n_jobs : int, optional
        Parallel jobs of the per-ROI loops.
    random_state : int, optional
        Seed of k-means, SMOTE and LightGBM.

    Returns
    -------
    imblearn.pipeline.Pipeline
        Steps ``segment``, ``masks``, ``features`` (a FeatureUnion of ``local`` =
        Pipeline(``extract``, ``bag``) and ``global`` = TopologyFeatures), ``resample``,
        ``classify``. Grid-search e.g. ``features__local__bag__n_clusters`` and
        ``classify__threshold``.

    Examples
    --------
    >>> from skcalc.pipeline import make_calcification_pipeline
    >>> pipe = make_calcification_pipeline(n_clusters=10)
    >>> [name for name, _ in pipe.steps]
    ['segment', 'masks', 'features', 'resample', 'classify']
    >>> pipe.get_params()["features__local__bag__n_clusters"]
    10
    """
    if isinstance(memory, str) and memory == "auto":
        memory = InProcessMemory()
    if aggregation == "bag":
        aggregator = BagOfClustersAggregator(n_clusters=n_clusters, random_state=random_state)
    elif aggregation == "meanstd":
        aggregator = MeanStdAggregator()
    else:
        raise ValueError(f"aggregation must be 'bag' or 'meanstd', got {aggregation!r}")
    if segmenter is None:
        segmenter = HDoGRegSegmenter(memory=memory, n_jobs=n_jobs)
    if classifier is None:
        classifier = make_default_lightgbm(random_state)
    local = Pipeline(
        [
            ("extract", LocalFeatureExtractor(memory=memory, n_jobs=n_jobs)),
            ("bag", aggregator),
        ]
    )
    features = FeatureUnion(
        [("local", local), ("global", TopologyFeatures(memory=memory, n_jobs=n_jobs))]
    )
    steps = [
        ("segment", segmenter),
        ("masks", MaskBuilder(memory=memory, n_jobs=n_jobs)),
        ("features", features),
        ("resample", SafeSMOTEENN(random_state=random_state) if resample else "passthrough"),
        ("classify", ThresholdedClassifier(classifier, threshold=threshold)),
    ]
    return Pipeline(steps)


def paper_param_grid(*, aggregation: str = "bag", lightgbm: bool = True) -> dict[str, list]:
    """The paper's grid: K in {5, 10, 15, 20}, threshold in {0.3, 0.4, 0.5}, small LightGBM grid.

    The paper tuned "regularization, number of trees, learning rate, number of leaves, max
    depth" without giving values; the LightGBM part here is a small grid over the number of
    trees and leaves so that the demo stays within minutes.

    Examples
    --------
    >>> from skcalc.pipeline import paper_param_grid
    >>> grid = paper_param_grid()
    >>> grid["features__local__bag__n_clusters"], grid["classify__threshold"]
    ([5, 10, 15, 20], [0.3, 0.4, 0.5])
    >>> "features__local__bag__n_clusters" in paper_param_grid(aggregation="meanstd")
    False
    """
    grid: dict[str, list] = {}
    if aggregation == "bag":
        grid["features__local__bag__n_clusters"] = [5, 10, 15, 20]
    grid["classify__threshold"] = [0.3, 0.4, 0.5]
    if lightgbm:
        grid["classify__estimator__n_estimators"] = [100, 200]
        grid["classify__estimator__num_leaves"] = [7, 15]
    return grid
