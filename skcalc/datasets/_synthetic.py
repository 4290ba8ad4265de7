"""Synthetic mammography generators (placeholder, being written)."""


def make_calcification_cohort(*args, **kwargs):
    raise NotImplementedError


def make_full_field_mammogram(*args, **kwargs):
    raise NotImplementedError
