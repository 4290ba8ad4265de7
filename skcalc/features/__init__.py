"""Local (per-calcification) and global (per-ROI) features of the paper."""

from ._handcrafted import handcrafted_features
from ._local import LocalFeatureExtractor
from ._topology import TopologyFeatures, topology_features

__all__ = [
    "LocalFeatureExtractor",
    "TopologyFeatures",
    "handcrafted_features",
    "topology_features",
]
