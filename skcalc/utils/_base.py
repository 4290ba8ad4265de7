"""Shared base pieces of skcalc's estimators."""

from __future__ import annotations

__all__ = ["ImageTransformerMixin"]


class ImageTransformerMixin:
    """Tags of the image stages: they take lists of :class:`~skcalc.ROI`, not 2-D arrays.

    Like scikit-learn's ``PatchExtractor``, an image stage declares ``two_d_array=False``
    (the common estimator checks then run only the data-free ones; skcalc's image checks
    cover the rest) and ``requires_fit=False`` (it learns nothing by default).
    Put it left of ``TransformerMixin`` and ``BaseEstimator``.
    """

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.requires_fit = False
        return tags
