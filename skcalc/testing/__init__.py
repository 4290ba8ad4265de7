"""Test support for skcalc and for code built on it (like ``sklearn.utils._testing``).

Kept apart from the runtime engine (:mod:`skcalc.utils`), since it imports the stages:
estimator checks for image estimators (:mod:`skcalc.testing.estimator_checks`), estimator
discovery (:mod:`skcalc.testing.discovery`), small DICOM files built with pydicom, the
networkx reference of the topology features, text burned into an image and hot pixels.
"""

from ._fixtures import (
    add_hot_pixels,
    burn_in_text,
    make_dicom_dataset,
    networkx_graph_features,
    write_dicom,
)

__all__ = [
    "add_hot_pixels",
    "burn_in_text",
    "make_dicom_dataset",
    "networkx_graph_features",
    "write_dicom",
]
