"""Reading mammograms (DICOM, PNG, TIFF, PGM, NPY), manifests and writing outputs."""

from ._readers import read_mammogram

__all__ = ["read_mammogram"]
