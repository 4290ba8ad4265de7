"""Test support for skcalc and for code built on it (like ``sklearn.utils._testing``).

Kept apart from the runtime engine (:mod:`skcalc.utils`), since it imports the stages:
estimator checks for image estimators (:mod:`skcalc.testing.estimator_checks`), estimator
discovery (:mod:`skcalc.testing.discovery`), small DICOM files built with pydicom and the
networkx reference of the topology features.
"""

from ._fixtures import make_dicom_dataset, networkx_graph_features, write_dicom

__all__ = ["make_dicom_dataset", "networkx_graph_features", "write_dicom"]
