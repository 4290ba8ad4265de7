"""Placeholder, being written."""


def handcrafted_features(*args, **kwargs):
    raise NotImplementedError
