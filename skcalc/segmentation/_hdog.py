"""Placeholder, being written."""


def hdog_candidates(*args, **kwargs):
    raise NotImplementedError
