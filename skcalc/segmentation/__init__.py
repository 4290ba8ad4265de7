"""HDoGReg segmentation of individual microcalcifications (Marasinou et al.)."""

from ._hdog import hdog_candidates
from ._segmenter import HDoGRegSegmenter

__all__ = ["HDoGRegSegmenter", "hdog_candidates"]
