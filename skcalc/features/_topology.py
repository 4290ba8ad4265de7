"""Placeholder, being written."""


def topology_features(*args, **kwargs):
    raise NotImplementedError


class TopologyFeatures:
    pass
