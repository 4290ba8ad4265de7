"""Clinical classification metrics and segmentation (detection) metrics."""

from ._clinical import (
    ClinicalReport,
    ClinicalScorer,
    clinical_report,
    confusion_counts,
    make_clinical_scorers,
    negative_predictive_value,
    positive_predictive_value,
    sensitivity_score,
    sensitivity_then_specificity,
    spared_biopsy_fraction,
    specificity_score,
)
from ._froc import froc, froc_thresholds, iou_per_object, mean_iou_per_image, partial_auc
from ._segmentation import match_objects

__all__ = [
    "ClinicalReport",
    "ClinicalScorer",
    "confusion_counts",
    "froc",
    "froc_thresholds",
    "iou_per_object",
    "mean_iou_per_image",
    "partial_auc",
    "clinical_report",
    "make_clinical_scorers",
    "match_objects",
    "negative_predictive_value",
    "positive_predictive_value",
    "sensitivity_score",
    "sensitivity_then_specificity",
    "spared_biopsy_fraction",
    "specificity_score",
]
