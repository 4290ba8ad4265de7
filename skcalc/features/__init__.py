"""Local (per-calcification) and global (per-ROI) features of the paper."""

from ._handcrafted import handcrafted_features
from ._local import (
    LocalFeatureExtractor,
    LocalFeatureTables,
    local_feature_names,
    local_features,
    local_features_table,
    write_local_features_csv,
)
from ._radiomics import DiscretisationWarning, RadiomicsFallbackWarning, radiomics_features
from ._regionprops import regionprops_features
from ._topology import TopologyFeatures, topology_features

__all__ = [
    "DiscretisationWarning",
    "LocalFeatureExtractor",
    "LocalFeatureTables",
    "RadiomicsFallbackWarning",
    "TopologyFeatures",
    "handcrafted_features",
    "local_feature_names",
    "local_features",
    "local_features_table",
    "radiomics_features",
    "regionprops_features",
    "topology_features",
    "write_local_features_csv",
]
