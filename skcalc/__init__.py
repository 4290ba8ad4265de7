"""skcalc: scikit-learn-compatible assessment of amorphous breast calcifications.

Implements Marathe et al., "Automated Quantitative Assessment of Amorphous Calcifications"
end to end, with the HDoGReg segmentation of Marasinou et al.

The estimators are importable from the top level; their modules (and heavy dependencies
such as pyradiomics and torch) load on first use.
"""

import importlib as _importlib

__version__ = "0.1.0.dev0"

from . import io  # noqa: F401,E402  (registers the file reader of lazy ROIs)
from ._units import plausible_spacing
from .exceptions import ROIValidationError, SkcalcWarning, UnreadableImageError
from .roi import ROI, check_roi

_LAZY = {
    "HDoGRegSegmenter": "segmentation",
    "MaskBuilder": "masks",
    "LocalFeatureExtractor": "features",
    "TopologyFeatures": "features",
    "BagOfClustersAggregator": "aggregation",
    "MeanStdAggregator": "aggregation",
    "ThresholdedClassifier": "classification",
    "SafeSMOTEENN": "resampling",
    "make_calcification_pipeline": "pipeline",
    "paper_param_grid": "pipeline",
    "evaluate_protocol": "model_selection",
    "clinical_report": "metrics",
    "DeepROIClassifier": "deep",
    "DeepFeatureExtractor": "deep",
    "make_deep_pipeline": "deep",
    "pool_by_image": "samples",
    "paper_exclusions": "model_selection",
}

__all__ = [
    "ROI",
    "ROIValidationError",
    "SkcalcWarning",
    "UnreadableImageError",
    "__version__",
    "check_roi",
    "plausible_spacing",
    *sorted(_LAZY),
]


def __getattr__(name):
    if name in _LAZY:
        module = _importlib.import_module(f".{_LAZY[name]}", __name__)
        return getattr(module, name)
    raise AttributeError(f"module 'skcalc' has no attribute {name!r}")


def __dir__():
    return sorted(set(__all__) | {"__version__"})
