"""Placeholder, being written."""


def read_mammogram(path):
    raise NotImplementedError
