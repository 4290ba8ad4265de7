"""The paper's deep baselines as pipelines, mirroring ``make_calcification_pipeline``."""

from __future__ import annotations

import os
from typing import Any

from imblearn.pipeline import Pipeline

from ..classification import ThresholdedClassifier, make_default_lightgbm
from ..resampling import SafeSMOTEENN
from ._estimators import DeepFeatureExtractor, DeepROIClassifier

__all__ = ["DEEP_MODES", "make_deep_pipeline"]

#: The three baselines of the paper's "Generalization performance" section.
DEEP_MODES = ("finetune", "finetune+lgbm", "pretrained+lgbm")


def make_deep_pipeline(
    arch: str = "resnet50",
    mode: str = "finetune",
    *,
    weights: str | os.PathLike | None = "imagenet",
    threshold: float = 0.4,
    classifier: Any = None,
    resample: bool = True,
    random_state: int | None = 0,
    **deep_params: Any,
) -> Pipeline:
    """One of the paper's deep-learning baselines as an imbalanced-learn Pipeline.

    Parameters
    ----------
    arch : {"resnet50", "vgg16"}, default="resnet50"
    mode : {"finetune", "finetune+lgbm", "pretrained+lgbm"}, default="finetune"
        ``"finetune"``: the fine-tuned network itself (:class:`DeepROIClassifier`);
        ``"finetune+lgbm"``: LightGBM on the features of the fine-tuned network;
        ``"pretrained+lgbm"``: LightGBM on the features of the ImageNet network, not
        fine-tuned (:class:`DeepFeatureExtractor`).
    weights : None, "imagenet" or path, default="imagenet"
        Initial weights (the paper: ImageNet). ``"imagenet"`` needs torchvision's file in
        the torch hub cache (see :func:`skcalc.deep.imagenet_weights_path`); ``None``
        starts from a random initialisation, which makes ``"pretrained+lgbm"`` a
        random-feature baseline.
    threshold : float, default=0.4
        Decision threshold on the probability of the positive class (the paper reports
        the deep baselines at 0.4 too).
    classifier : estimator, optional
        Classifier on the deep features (``+lgbm`` modes); default
        :func:`~skcalc.classification.make_default_lightgbm`.
    resample : bool, default=True
        SMOTE + ENN before the classifier (``+lgbm`` modes, as the paper's pipeline).
    random_state : int, optional
        Seed of the network, SMOTE and LightGBM.
    **deep_params
        Further parameters of the deep estimator (``input_size``, ``epochs``, ``lr``...).

    Returns
    -------
    imblearn.pipeline.Pipeline
        ``"finetune"``: one step ``classify`` = ThresholdedClassifier(DeepROIClassifier);
        ``+lgbm``: ``features`` (DeepFeatureExtractor), ``resample``, ``classify``. Grid-search
        e.g. ``classify__estimator__lr`` or ``features__input_size`` and
        ``classify__threshold``.

    Notes
    -----
    Cost on one CPU thread at ``input_size=64`` (ResNet-50; 276 ROIs of the synthetic
    cohort): features about 4 s (VGG-16 about 11 s); fine-tuning about 9 s per epoch
    (VGG-16 about 40 s), usually 6-10 epochs with early stopping. Nothing is cached: in a
    grid search each candidate and fold recomputes the features. The
    ``"pretrained+lgbm"`` features learn nothing from the data, so they may be computed
    once (``DeepFeatureExtractor(...).fit_transform(rois)``) and the grid search run on
    that array with the tabular steps, without leakage.

    Examples
    --------
    >>> from skcalc.deep import make_deep_pipeline
    >>> pipe = make_deep_pipeline("vgg16", "pretrained+lgbm", input_size=32)
    >>> [name for name, _ in pipe.steps]
    ['features', 'resample', 'classify']
    >>> pipe.get_params()["features__fine_tune"], pipe.get_params()["features__input_size"]
    (False, 32)
    >>> make_deep_pipeline(mode="finetune").get_params()["classify__estimator__arch"]
    'resnet50'
    """
    if mode not in DEEP_MODES:
        raise ValueError(f"mode must be one of {DEEP_MODES}, got {mode!r}")
    if mode == "finetune":
        net = DeepROIClassifier(arch, weights=weights, random_state=random_state, **deep_params)
        return Pipeline([("classify", ThresholdedClassifier(net, threshold=threshold))])
    features = DeepFeatureExtractor(arch, weights=weights, fine_tune=mode == "finetune+lgbm",
                                    random_state=random_state, **deep_params)
    if classifier is None:
        classifier = make_default_lightgbm(random_state)
    return Pipeline([
        ("features", features),
        ("resample", SafeSMOTEENN(random_state=random_state) if resample else "passthrough"),
        ("classify", ThresholdedClassifier(classifier, threshold=threshold)),
    ])
