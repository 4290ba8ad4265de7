"""Placeholder, being written."""


class LocalFeatureExtractor:
    pass
