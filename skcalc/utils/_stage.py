"""The contract of an image stage: a transformer that maps each ROI to one new result.

Every image stage (segmentation, masks, local features, topology) validates its parameters
and its ROIs the same way, computes one result per ROI with a module-level function through
:func:`~skcalc.utils.map_rois` (parallel, memoised per ROI content), warns once per call with
a summary attributed to the user's code, and assembles the output. A stage states only what
differs: its per-ROI function, the ROI fields it needs and depends on, its parameters, and
how results become output.
"""

from __future__ import annotations

import sys
import warnings
from abc import ABCMeta, abstractmethod
from collections.abc import Callable, Hashable, Sequence
from typing import Any, ClassVar

from sklearn.base import BaseEstimator, TransformerMixin, _fit_context

from ..exceptions import SkcalcWarning
from ..roi import ROI, as_roi_list
from ._base import CachedParamNamesMixin, ImageTransformerMixin
from ._parallel import map_rois

__all__ = ["ImageStage", "user_stacklevel", "warn_summary"]

# Frames of these packages are library internals: a warning points at the first frame
# outside them, the user's own line (a pipeline's fit, a grid search, a script).
_INTERNAL = ("imblearn", "joblib", "sklearn", "skcalc", "threadpoolctl")


def user_stacklevel() -> int:
    """``stacklevel`` for ``warnings.warn`` called here that names the caller's own line."""
    frame = sys._getframe(1)
    level = 1
    while frame is not None:
        if frame.f_globals.get("__name__", "").split(".")[0] not in _INTERNAL:
            return level
        frame = frame.f_back
        level += 1
    return level


def warn_summary(message: str, category: type[Warning] = SkcalcWarning) -> None:
    """One warning, attributed to the first frame outside skcalc/scikit-learn/joblib."""
    # Level 1 of user_stacklevel is this function's frame, as for warnings.warn.
    warnings.warn(message, category, stacklevel=user_stacklevel())


class ImageStage(
    ImageTransformerMixin,
    CachedParamNamesMixin,
    TransformerMixin,
    BaseEstimator,
    metaclass=ABCMeta,
):
    """Base of the image stages: one result per ROI, memoised and parallel.

    Subclasses set the class attributes and implement :meth:`_params`; they may override
    :meth:`_fit_rois`, :meth:`_together`, :meth:`_summary` and :meth:`_assemble`. Their
    ``__init__`` must accept ``memory`` and ``n_jobs``.

    Attributes (class level)
    ------------------------
    _stage : str
        Name of the stage in cache keys.
    _one : callable
        Module-level ``func(roi, **params)`` computing one ROI's result.
    _requires : tuple of str
        ROI fields that must be present (e.g. ``("masks",)``).
    _depends_on : tuple of str
        ROI fields the result depends on (the cache key).
    _output_field : str or None
        The ROI field the result is stored in (the output is then a list of new ROIs);
        ``None`` means :meth:`_assemble` builds the output.
    """

    _stage: ClassVar[str]
    _one: ClassVar[Callable[..., Any]]
    _requires: ClassVar[tuple[str, ...]] = ()
    _depends_on: ClassVar[tuple[str, ...]] = ("image",)
    _output_field: ClassVar[str | None] = None

    # ------------------------------------------------------------------ hooks
    @abstractmethod
    def _params(self, rois: list[ROI]) -> dict:
        """Keyword parameters of the per-ROI function (part of the cache key)."""

    def _fit_rois(self, rois: list[ROI]) -> None:
        """Learn from the training ROIs (stateless stages only check them)."""

    def _together(self, roi: ROI, params: dict) -> Hashable | None:
        """Key of the ROIs that share in-process work (run in one parallel task), or None."""
        return None

    def _map(self, rois: list[ROI], params: dict) -> list[Any]:
        """One result per ROI: the per-ROI function through :func:`map_rois`."""
        return map_rois(
            type(self)._one,
            rois,
            params,
            n_jobs=self.n_jobs,
            memory=self.memory,
            stage=self._stage,
            fields=self._depends_on,
            together=[self._together(r, params) for r in rois],
        )

    def _summary(self, rois: list[ROI], results: list[Any]) -> str | None:
        """One warning message about this call's results, or None."""
        return None

    def _assemble(self, rois: list[ROI], results: list[Any]) -> Any:
        """The output of :meth:`transform` from the per-ROI results."""
        return [r.replace(**{self._output_field: v}) for r, v in zip(rois, results)]

    # ------------------------------------------------------------------ contract
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Sequence[ROI], y: Any = None) -> ImageStage:
        """Check the parameters and the ROIs (and learn, for stages that do); return self.

        Parameters
        ----------
        X : list of ROI
        y : ignored

        Returns
        -------
        self
        """
        self._fit_rois(as_roi_list(X, require=self._requires))
        return self

    def transform(self, X: Sequence[ROI]) -> Any:
        """Compute the stage for every ROI (the input records are never modified).

        Parameters
        ----------
        X : list of ROI

        Returns
        -------
        list of ROI, or the stage's output (tables, a 2-D array)
        """
        self._validate_params()
        rois = as_roi_list(X, require=self._requires)
        results = self._map(rois, self._params(rois))
        message = self._summary(rois, results)
        if message:
            warn_summary(message)
        return self._assemble(rois, results)
