"""Placeholder, being written."""


def plot_roi(*args, **kwargs):
    raise NotImplementedError
