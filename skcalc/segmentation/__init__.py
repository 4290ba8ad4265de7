"""HDoGReg segmentation of individual microcalcifications (Marasinou et al.).

Candidates (``_hdog.py``: the authors' absolute threshold; ``_calibrated.py``: threshold in
robust local noise units, and per-candidate features), the candidate filter with its FP/cm^2
operating points (``_filter.py``) and their per-image correction (``_operating_point.py``),
the regression CNN (``_regression.py``), the breast mask (``_breast.py``), hot pixels
(``_defects.py``), which way round the image is (``_polarity.py``), the combining rules
(``_combine.py``) and the estimator (``_segmenter.py``).
"""

from ._breast import breast_area_cm2, delineate_breast, erode_breast
from ._calibrated import (
    calibrated_candidates,
    candidate_features,
    local_robust_scale,
    stabilise_intensity,
)
from ._combine import combine, segment_calibrated, segment_hdogreg
from ._defects import impulse_defects, repair_impulse_defects
from ._filter import (
    CandidateFilter,
    fit_candidate_filter,
    load_default_filter,
    train_candidate_filter,
)
from ._hdog import hdog_candidates
from ._operating_point import image_operating_point
from ._polarity import breast_polarity
from ._segmenter import HDoGRegSegmenter, RegressorWeights

# The regression CNN needs torch (several seconds to import): its names are loaded on first
# use, so the default segmenter (calibrated detection + candidate filter) never pays for it.
_LAZY = {
    "ProximityUNet", "extract_positive_patches", "load_default_weights", "load_weights",
    "predict_proximity", "proximity_function", "proximity_target", "save_weights",
    "soft_dice_loss", "train_regressor",
}


def __getattr__(name):
    if name in _LAZY:
        from . import _regression

        return getattr(_regression, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "CandidateFilter",
    "HDoGRegSegmenter",
    "ProximityUNet",
    "RegressorWeights",
    "breast_area_cm2",
    "breast_polarity",
    "calibrated_candidates",
    "candidate_features",
    "combine",
    "delineate_breast",
    "erode_breast",
    "extract_positive_patches",
    "fit_candidate_filter",
    "hdog_candidates",
    "image_operating_point",
    "impulse_defects",
    "load_default_filter",
    "load_default_weights",
    "local_robust_scale",
    "load_weights",
    "predict_proximity",
    "proximity_function",
    "proximity_target",
    "repair_impulse_defects",
    "save_weights",
    "segment_calibrated",
    "segment_hdogreg",
    "soft_dice_loss",
    "stabilise_intensity",
    "train_candidate_filter",
    "train_regressor",
]
