"""Exceptions raised by skcalc; each subclasses a built-in so ``except ValueError`` works."""

from __future__ import annotations

__all__ = ["ROIValidationError", "UnreadableImageError", "SkcalcWarning"]


class ROIValidationError(ValueError):
    """An ROI is not valid input; the message names the ROI and the problem."""

    def __init__(self, roi_id: str, problem: str) -> None:
        self.roi_id = roi_id
        self.problem = problem
        super().__init__(f"ROI {roi_id!r}: {problem}")


class UnreadableImageError(ValueError):
    """A file could not be read as a mammogram; the message names the file and why."""


class SkcalcWarning(UserWarning):
    """Warnings about data that skcalc handles but the user should know of."""
