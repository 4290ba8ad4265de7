"""Model files that are safe to share: skops instead of pickle, with a version check.

A pickle (or joblib) file can run arbitrary code when it is loaded. skcalc's model files are
written with :mod:`skops.io`, whose loader rebuilds only the types it is told to trust and
refuses anything else. The trusted list is explicit: skcalc's own estimators and records and
the scikit-learn, imbalanced-learn and LightGBM types that the paper's pipeline is made of.
``joblib.dump``/``joblib.load`` keep working for users who want them (and trust the file).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

from . import __version__
from .exceptions import SkcalcWarning

__all__ = ["TRUSTED_TYPES", "ModelFileError", "load_model", "save_model"]

_FORMAT = "skcalc-model"
_FORMAT_VERSION = 1

# Every type a model made by skcalc.pipeline contains, by the name skops records.
TRUSTED_TYPES = [
    # skcalc
    "skcalc.segmentation._segmenter.HDoGRegSegmenter",
    "skcalc.masks.MaskBuilder",
    "skcalc.features._local.LocalFeatureExtractor",
    "skcalc.features._topology.TopologyFeatures",
    "skcalc.aggregation.BagOfClustersAggregator",
    "skcalc.aggregation.MeanStdAggregator",
    "skcalc.classification.ThresholdedClassifier",
    "skcalc.resampling.SafeSMOTEENN",
    "skcalc.utils._caching.InProcessMemory",
    # scikit-learn / imbalanced-learn / LightGBM
    "imblearn.pipeline.Pipeline",
    "imblearn.over_sampling._smote.base.SMOTE",
    "imblearn.under_sampling._prototype_selection._edited_nearest_neighbours."
    "EditedNearestNeighbours",
    "sklearn.pipeline.FeatureUnion",
    "sklearn.pipeline.Pipeline",
    "sklearn.cluster._kmeans.KMeans",
    "sklearn.preprocessing._data.StandardScaler",
    "sklearn.impute._base.SimpleImputer",
    "sklearn.neighbors._classification.KNeighborsClassifier",
    "sklearn.neighbors._unsupervised.NearestNeighbors",
    "sklearn.neighbors._kd_tree.KDTree",
    "sklearn.model_selection._classification_threshold.FixedThresholdClassifier",
    "lightgbm.sklearn.LGBMClassifier",
    "lightgbm.basic.Booster",
    "collections.OrderedDict",
    "builtins.slice",
]


class ModelFileError(ValueError):
    """A model file is not an skcalc model, is damaged, or holds untrusted types."""


def save_model(model: Any, path: str | os.PathLike, *, metadata: dict | None = None) -> Path:
    """Write a fitted model to ``path`` with skops, atomically.

    Parameters
    ----------
    model : estimator
        Usually a fitted pipeline from :func:`skcalc.pipeline.make_calcification_pipeline`.
    path : str or path-like
        Destination file (conventionally ``.skops``).
    metadata : dict, optional
        JSON-like extra information stored beside the model (training set, date, ...).

    Returns
    -------
    pathlib.Path
        The written file.
    """
    import skops.io as sio

    from .io._writers import _atomic_path

    payload = {
        "format": _FORMAT,
        "format_version": _FORMAT_VERSION,
        "skcalc_version": __version__,
        "metadata": dict(metadata or {}),
        "model": model,
    }
    path = Path(path)
    with _atomic_path(path) as tmp:
        sio.dump(payload, tmp)
    return path


def load_model(
    path: str | os.PathLike,
    *,
    trusted: list[str] | None = None,
    strict_version: bool = False,
) -> Any:
    """Load a model written by :func:`save_model` without unpickling arbitrary objects.

    Parameters
    ----------
    path : str or path-like
        The model file.
    trusted : list of str, optional
        Extra type names to trust, for models with custom steps. Everything else not in
        :data:`TRUSTED_TYPES` (or skops' own safe defaults) is refused.
    strict_version : bool, default=False
        Refuse files written by another skcalc version (otherwise: a warning).

    Returns
    -------
    model : estimator

    Raises
    ------
    ModelFileError
        The file is not an skcalc model, is damaged, holds types that are not trusted, or
        (with ``strict_version``) was written by another skcalc version.
    """
    import skops.io as sio

    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file")
    allowed = set(TRUSTED_TYPES) | set(trusted or ())
    try:
        found = sio.get_untrusted_types(file=path)
    except Exception as exc:  # zip/json errors: the file is not a skops file
        raise ModelFileError(f"{path}: not an skcalc model file ({exc})") from exc
    refused = sorted(set(found) - allowed)
    if refused:
        raise ModelFileError(
            f"{path}: refusing to load untrusted types {refused}; pass trusted=[...] only "
            "if you know where the file comes from"
        )
    try:
        payload = sio.load(path, trusted=sorted(set(found)))
    except Exception as exc:
        raise ModelFileError(f"{path}: could not be loaded ({exc})") from exc
    if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
        raise ModelFileError(f"{path}: not an skcalc model file")
    saved = payload.get("skcalc_version")
    if saved != __version__:
        msg = f"{path} was written by skcalc {saved}; this is skcalc {__version__}"
        if strict_version:
            raise ModelFileError(msg)
        warnings.warn(msg + "; predictions may differ", SkcalcWarning, stacklevel=2)
    return payload["model"]
