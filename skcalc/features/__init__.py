"""Local (per-calcification) and global (per-ROI) features of the paper."""

from ._handcrafted import handcrafted_features
from ._local import LocalFeatureExtractor, LocalFeatureTables, local_feature_names, local_features
from ._radiomics import radiomics_features
from ._regionprops import regionprops_features
from ._topology import TopologyFeatures, topology_features

__all__ = [
    "LocalFeatureExtractor",
    "LocalFeatureTables",
    "TopologyFeatures",
    "handcrafted_features",
    "local_feature_names",
    "local_features",
    "radiomics_features",
    "regionprops_features",
    "topology_features",
]
