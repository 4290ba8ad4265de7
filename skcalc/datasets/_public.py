"""Loaders for CBIS-DDSM and INbreast (placeholder, being written)."""


def load_cbis_ddsm(*args, **kwargs):
    raise NotImplementedError


def load_inbreast(*args, **kwargs):
    raise NotImplementedError
