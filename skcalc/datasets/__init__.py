"""Synthetic mammography (the embedded default data) and loaders for public datasets."""

from ._public import load_cbis_ddsm, load_inbreast
from ._realistic import digitised_film, make_training_patch
from ._synthetic import make_calcification_cohort, make_full_field_mammogram

__all__ = [
    "digitised_film",
    "load_cbis_ddsm",
    "load_inbreast",
    "make_calcification_cohort",
    "make_full_field_mammogram",
    "make_training_patch",
]
