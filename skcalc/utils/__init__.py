"""Caching, parallel helpers and estimator checks for image estimators."""

from ._caching import InProcessMemory, cached_call, roi_content_hash
from ._parallel import map_rois, single_threaded

__all__ = ["InProcessMemory", "cached_call", "map_rois", "roi_content_hash", "single_threaded"]
