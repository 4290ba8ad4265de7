"""Instances and the one table of expected failures for skcalc's common estimator tests.

Modelled on ``imblearn/utils/_test_common/instance_generator.py``:

* :data:`INIT_PARAMS`: small, fast parameters per estimator class name (a list of
  parameter dicts = several instances);
* :data:`PER_ESTIMATOR_XFAIL_CHECKS`: **the** table of checks expected to fail, each with
  its reason; nothing else in the code base may mark an estimator check as xfail;
* :func:`_tested_estimators`, :func:`_get_expected_failed_checks`;
* small ROI fixtures for image estimators: :func:`make_rois`, :func:`make_rois_for` and
  :func:`_prepare_rois_for` (runs the upstream stages an estimator needs).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

import numpy as np
from scipy import ndimage as ndi

from ..roi import ROI
from .discovery import all_estimators

__all__ = [
    "INIT_PARAMS",
    "PER_ESTIMATOR_XFAIL_CHECKS",
    "make_rois",
    "make_rois_for",
]

#: Parameters of the instances under test, by class name (default parameters otherwise).
INIT_PARAMS: dict[str, list[dict]] = {
    "BagOfClustersAggregator": [{"n_clusters": 3, "n_init": 2, "random_state": 0}],
    "MeanStdAggregator": [{}],
    # The default (estimator=None -> LightGBM) is the path that needs testing; LightGBM on
    # the checks' small data sets takes milliseconds.
    "ThresholdedClassifier": [{}],
    # Small inputs keep the real architectures affordable in the checks.
    "DeepFeatureExtractor": [{"input_size": 32, "batch_size": 3}],
    "DeepROIClassifier": [{"input_size": 32, "epochs": 1}],
}

_DEEP_CLASSIFIER_REASON = (
    "a classifier: the image checks fit without y and call transform; "
    "tests/deep/test_deep_estimators.py covers their classifier analogues"
)

#: The one table of expected failures: class name -> {check name: reason}.
PER_ESTIMATOR_XFAIL_CHECKS: dict[str, dict[str, str]] = {
    "DeepROIClassifier": {
        name: _DEEP_CLASSIFIER_REASON
        for name in (
            "check_image_clone_pickle_roundtrip",
            "check_image_dtype_invariance",
            "check_image_few_objects",
            "check_image_fit_idempotent",
            "check_image_fit_returns_self",
            "check_image_list_vs_tuple",
            "check_image_no_input_mutation",
            "check_image_order_invariance",
        )
    },
    "CalibratedClassifier": {
        "check_fit2d_1feature": (
            "10 samples with 3 of one class in the default 5 calibration folds: a fold "
            "without that class is refused (its calibrator would map every score to the "
            "other class)"
        ),
    },
    "ThresholdedClassifier": {
        "check_classifiers_one_label": (
            "FixedThresholdClassifier is binary only: fitting on a single class raises "
            "'Expected estimator to be a binary classifier'"
        ),
        "check_classifiers_train": (
            "predict thresholds the positive-class probability at 0.4 (the paper), so it "
            "differs from argmax(predict_proba) on samples scoring in [0.4, 0.5)"
        ),
    },
}

# Fields each image stage reads beyond the image (by class name); unknown image estimators
# get raw ROIs (image, region, reference).
_REQUIRES: dict[str, tuple[str, ...]] = {
    "HDoGRegSegmenter": (),
    "MaskBuilder": ("calcifications",),
    "LocalFeatureExtractor": ("calcifications", "masks"),
    "TopologyFeatures": ("calcifications", "masks"),
}


def _get_expected_failed_checks(estimator) -> dict[str, str]:
    """``{check_name: reason}`` expected to fail for this estimator (may be empty)."""
    return dict(PER_ESTIMATOR_XFAIL_CHECKS.get(type(estimator).__name__, {}))


def _tested_estimators(type_filter=None) -> Iterator:
    """One instance per entry of :data:`INIT_PARAMS` (default parameters if absent)."""
    for name, cls in all_estimators(type_filter=type_filter):
        for params in INIT_PARAMS.get(name, [{}]):
            yield cls(**params)


# --------------------------------------------------------------------------- ROI fixtures
def _handmade_rois(n_rois: int, shape=(40, 40), random_state=0) -> list[ROI]:
    """Small uint16 ROIs: smooth background, 2-5 bright blobs with reference labels."""
    rng = np.random.default_rng(random_state)
    rois = []
    for i in range(n_rois):
        bg = ndi.gaussian_filter(rng.normal(0.0, 40.0, shape), 3) + 1500.0
        reference = np.zeros(shape, bool)
        yy, xx = np.mgrid[: shape[0], : shape[1]]
        for _ in range(2 + i % 4):
            cy, cx = rng.integers(5, shape[0] - 5), rng.integers(5, shape[1] - 5)
            r = rng.uniform(1.0, 2.2)
            reference |= (yy - cy) ** 2 + (xx - cx) ** 2 <= r**2
        image = bg + 300.0 * ndi.gaussian_filter(reference.astype(float), 0.7) + rng.normal(
            0, 5.0, shape
        )
        rois.append(ROI(
            np.clip(image, 0, 4095).astype(np.uint16), spacing=(0.07, 0.07), reference=reference,
            meta={"roi_id": f"handmade-{i}", "exam_id": f"e{i // 2}", "patient_id": f"p{i // 2}"},
        ))
    return rois


@functools.lru_cache(maxsize=4)
def _cached_rois(n_rois: int, random_state: int) -> tuple[ROI, ...]:
    from ..datasets import make_calcification_cohort

    try:
        rois, _, _ = make_calcification_cohort(
            n_rois=n_rois, roi_size_mm=4.0, margin_mm=0.5, spacing=0.07, random_state=random_state
        )
    except NotImplementedError:  # the generator is still a placeholder
        rois = _handmade_rois(n_rois, random_state=random_state)
    return tuple(rois)


def make_rois(n_rois: int = 4, random_state: int = 0) -> list[ROI]:
    """A few small ROIs with ``reference`` masks: a tiny synthetic cohort (or hand-made ones).

    Cached per arguments; records are immutable, so sharing them between tests is safe.
    """
    return list(_cached_rois(n_rois, random_state))


def _prepare_rois_for(estimator, rois: list[ROI]) -> list[ROI]:
    """Give ``rois`` the fields ``estimator`` consumes, by running the upstream stages.

    ``calcifications`` come from the connected components of ``reference`` when present
    (fast and exact), otherwise from :class:`~skcalc.segmentation.HDoGRegSegmenter`;
    ``masks`` from :class:`~skcalc.masks.MaskBuilder` with default parameters. Fields
    already present are kept.
    """
    needs = _REQUIRES.get(type(estimator).__name__, ())
    if "calcifications" in needs and any(r.calcifications is None for r in rois):
        if all(r.reference is not None for r in rois):
            rois = [
                r if r.calcifications is not None
                else r.replace(calcifications=ndi.label(r.reference)[0].astype(np.int32))
                for r in rois
            ]
        else:
            from ...segmentation import HDoGRegSegmenter

            rois = HDoGRegSegmenter().fit_transform(rois)
    if "masks" in needs and any(r.masks is None for r in rois):
        from ..masks import MaskBuilder

        rois = MaskBuilder().fit_transform(rois)
    return list(rois)


_PREPARED: dict[str, list[ROI]] = {}


def make_rois_for(estimator, n_rois: int = 4) -> list[ROI]:
    """:func:`make_rois` prepared for ``estimator`` (cached per estimator class)."""
    key = f"{type(estimator).__name__}-{n_rois}"
    if key not in _PREPARED:
        _PREPARED[key] = _prepare_rois_for(estimator, make_rois(n_rois))
    return list(_PREPARED[key])
