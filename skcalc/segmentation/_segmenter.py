"""Placeholder, being written."""


class HDoGRegSegmenter:
    pass
