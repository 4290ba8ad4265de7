"""Test support for skcalc and for code built on it (like ``sklearn.utils._testing``).

Kept apart from the runtime engine (:mod:`skcalc.utils`), since it imports the stages:
estimator checks for image estimators (:mod:`skcalc.testing.estimator_checks`), estimator
discovery (:mod:`skcalc.testing.discovery`), small DICOM files built with pydicom, the
networkx reference of the topology features and text burned into an image.
"""

from ._fixtures import burn_in_text, make_dicom_dataset, networkx_graph_features, write_dicom

__all__ = ["burn_in_text", "make_dicom_dataset", "networkx_graph_features", "write_dicom"]
