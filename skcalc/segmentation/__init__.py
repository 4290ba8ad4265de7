"""HDoGReg segmentation of individual microcalcifications (Marasinou et al.).

Candidates (``_hdog.py``), the regression CNN (``_regression.py``), the breast mask
(``_breast.py``), the combining rule (``_combine.py``) and the estimator (``_segmenter.py``).
"""

from ._breast import breast_area_cm2, delineate_breast, erode_breast
from ._combine import combine, segment_hdogreg
from ._hdog import hdog_candidates
from ._regression import (
    ProximityUNet,
    extract_positive_patches,
    load_default_weights,
    load_weights,
    predict_proximity,
    proximity_function,
    proximity_target,
    save_weights,
    soft_dice_loss,
    train_regressor,
)
from ._segmenter import HDoGRegSegmenter, RegressorWeights

__all__ = [
    "HDoGRegSegmenter",
    "ProximityUNet",
    "RegressorWeights",
    "breast_area_cm2",
    "combine",
    "delineate_breast",
    "erode_breast",
    "extract_positive_patches",
    "hdog_candidates",
    "load_default_weights",
    "load_weights",
    "predict_proximity",
    "proximity_function",
    "proximity_target",
    "save_weights",
    "segment_hdogreg",
    "soft_dice_loss",
    "train_regressor",
]
