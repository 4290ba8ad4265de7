"""The paper's deep-learning baselines on ROI crops (ResNet-50 and VGG-16).

Marathe et al. compare their method with a ResNet-50 and a VGG-16 fine-tuned with
class-weighted cross-entropy, with LightGBM on the features of the fine-tuned networks, and
with LightGBM on the features of the ImageNet networks as they are. This subpackage offers
them as scikit-learn estimators on lists of :class:`~skcalc.ROI`:

- :class:`DeepROIClassifier`: the fine-tuned network as a classifier;
- :class:`DeepFeatureExtractor`: 2048 (ResNet-50) or 4096 (VGG-16) features, pretrained or
  fine-tuned, for a LightGBM classifier;
- :func:`make_deep_pipeline`: the three baselines as pipelines, like
  :func:`skcalc.pipeline.make_calcification_pipeline`.

The architectures are written out in torch with torchvision's module names
(:func:`resnet50`, :func:`vgg16`), so torchvision's ImageNet weight files load unchanged;
they are read from the torch hub cache and never downloaded.
"""

from ._estimators import DeepFeatureExtractor, DeepROIClassifier
from ._models import (
    ARCHITECTURES,
    IMAGENET_FILES,
    build_network,
    imagenet_or_random,
    imagenet_weights_path,
    load_state_dict_file,
    resnet50,
    vgg16,
)
from ._pipeline import DEEP_MODES, make_deep_pipeline
from ._preprocess import preprocess_rois, roi_to_array

__all__ = [
    "ARCHITECTURES",
    "DEEP_MODES",
    "IMAGENET_FILES",
    "DeepFeatureExtractor",
    "DeepROIClassifier",
    "build_network",
    "imagenet_or_random",
    "imagenet_weights_path",
    "load_state_dict_file",
    "make_deep_pipeline",
    "preprocess_rois",
    "resnet50",
    "roi_to_array",
    "vgg16",
]
