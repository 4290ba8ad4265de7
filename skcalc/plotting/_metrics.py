"""Placeholder, being written."""


def plot_confusion_matrix(*args, **kwargs):
    raise NotImplementedError


def plot_roc(*args, **kwargs):
    raise NotImplementedError
