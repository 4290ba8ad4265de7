"""Synthetic mammography (the embedded default data) and loaders for public datasets."""

from ._public import load_cbis_ddsm, load_inbreast
from ._synthetic import make_calcification_cohort, make_full_field_mammogram

__all__ = [
    "load_cbis_ddsm",
    "load_inbreast",
    "make_calcification_cohort",
    "make_full_field_mammogram",
]
