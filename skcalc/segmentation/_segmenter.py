"""HDoGRegSegmenter: the HDoGReg segmentation stage as a scikit-learn transformer over ROIs."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils._param_validation import HasMethods, Interval

from ..roi import ROI, as_roi_list, check_roi
from ..utils import map_rois
from ._hdog import hdog_candidates

__all__ = ["HDoGRegSegmenter"]


def _segment_roi(roi: ROI, **params) -> np.ndarray:
    """Label image of one ROI (module level so that joblib workers and the cache can use it).

    Only the labels are returned (and cached): the record is rebuilt by the caller, so a
    lazy image stays lazy and the cache never stores a copy of the pixels.
    """
    loaded = check_roi(roi.load())
    try:
        return hdog_candidates(loaded.image, roi.spacing, **params)
    except (ValueError, TypeError) as exc:
        raise type(exc)(f"ROI {roi.roi_id!r}: {exc}") from exc


class HDoGRegSegmenter(TransformerMixin, BaseEstimator):
    """Segment individual microcalcifications with HDoGReg (Marasinou et al.).

    Transforms a list of :class:`~skcalc.ROI` into new ROIs whose ``calcifications`` field is
    the label image of the detected objects (0 = background, 4-connectivity). At present the
    segmentation is the Hessian difference-of-Gaussians candidate stage
    (:func:`~skcalc.segmentation.hdog_candidates`) with the authors' defaults; the regression
    CNN that filters the candidates comes in a later release, and until then
    ``regressor=None`` is the only accepted value.

    Parameters
    ----------
    min_sigma, max_sigma : float, default=0.0826, 0.217
        Smallest and largest Gaussian scale, in mm (1.18 and 3.1 px at 0.07 mm).
    sigma_ratio : float, default=1.6
        Ratio between consecutive Gaussian scales.
    threshold : float, default=0.006
        DoG peak threshold on the image scaled to [0, 1] by its bit depth.
    overlap : float, default=1.0
        Blob pruning overlap; >= 1 disables pruning (the authors' setting; < 1 is not
        implemented).
    hessian_thr : float or None, default=1.4
        Hessian shape threshold; ``None`` keeps negative-definite pixels only.
    bit_depth : int or None, default=None
        Bits per pixel for the [0, 1] scaling. ``None`` uses ``roi.meta["bits_stored"]`` when
        present, else infers it from the image (see :func:`~skcalc.segmentation.hdog_candidates`).
    regressor : None, default=None
        The candidate-filtering regression CNN. Only ``None`` (candidates only) is accepted
        for now; any other value raises ``NotImplementedError``.
    memory : None, str or joblib.Memory, default=None
        Per-ROI cache of the results (keyed on image content and parameters).
    n_jobs : int or None, default=None
        Number of ROIs processed in parallel (joblib semantics).

    Attributes
    ----------
    n_rois_seen_ : int
        Number of ROIs passed to :meth:`fit` (the transformer is stateless otherwise).

    Examples
    --------
    >>> import numpy as np
    >>> from skcalc import ROI
    >>> from skcalc.segmentation import HDoGRegSegmenter
    >>> yy, xx = np.mgrid[:32, :32]
    >>> img = 0.3 + 0.1 * np.exp(-((yy - 16) ** 2 + (xx - 12) ** 2) / (2 * 1.5**2))
    >>> [out] = HDoGRegSegmenter().fit_transform([ROI(img, meta={"roi_id": "a"})])
    >>> int(out.calcifications.max())
    1
    """

    _parameter_constraints: dict = {
        "min_sigma": [Interval(Real, 0, None, closed="neither")],
        "max_sigma": [Interval(Real, 0, None, closed="neither")],
        "sigma_ratio": [Interval(Real, 1, None, closed="neither")],
        "threshold": [Interval(Real, 0, None, closed="left")],
        "overlap": [Interval(Real, 0, None, closed="left")],
        "hessian_thr": [Interval(Real, 0, None, closed="left"), None],
        "bit_depth": [Interval(Integral, 1, 32, closed="both"), None],
        "regressor": "no_validation",
        "memory": [None, str, HasMethods(["cache"])],
        "n_jobs": [Integral, None],
    }

    def __init__(
        self,
        min_sigma=0.0826,
        max_sigma=0.217,
        sigma_ratio=1.6,
        threshold=0.006,
        overlap=1.0,
        hessian_thr=1.4,
        bit_depth=None,
        regressor=None,
        memory=None,
        n_jobs=None,
    ):
        self.min_sigma = min_sigma
        self.max_sigma = max_sigma
        self.sigma_ratio = sigma_ratio
        self.threshold = threshold
        self.overlap = overlap
        self.hessian_thr = hessian_thr
        self.bit_depth = bit_depth
        self.regressor = regressor
        self.memory = memory
        self.n_jobs = n_jobs

    def _check_settings(self) -> None:
        if self.regressor is not None:
            raise NotImplementedError(
                "HDoGRegSegmenter: the regression CNN stage is not available yet; "
                f"only regressor=None (HDoG candidates) is supported, got {self.regressor!r}"
            )
        if self.max_sigma < self.min_sigma:
            raise ValueError(
                f"max_sigma ({self.max_sigma!r}) must be >= min_sigma ({self.min_sigma!r})"
            )
        if self.overlap < 1:
            raise NotImplementedError(
                "blob pruning (overlap < 1) is not implemented; use overlap >= 1"
            )

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Validate the parameters and the ROIs; nothing is learned.

        Parameters
        ----------
        X : list of ROI
        y : ignored

        Returns
        -------
        self
        """
        self._check_settings()
        rois = as_roi_list(X)
        self.n_rois_seen_ = len(rois)
        return self

    def transform(self, X):
        """Segment every ROI.

        Parameters
        ----------
        X : list of ROI

        Returns
        -------
        list of ROI
            New records with ``calcifications`` set (int32 labels); inputs are not modified.
        """
        self._validate_params()
        self._check_settings()
        rois = as_roi_list(X)
        params = {
            "min_sigma": self.min_sigma,
            "max_sigma": self.max_sigma,
            "sigma_ratio": self.sigma_ratio,
            "threshold": self.threshold,
            "overlap": self.overlap,
            "hessian_thr": self.hessian_thr,
        }
        # The bit depth is a parameter of the per-ROI call (so it is part of the cache key):
        # ROIs are grouped by the depth they resolve to.
        groups: dict = {}
        for i, roi in enumerate(rois):
            groups.setdefault(self._roi_bit_depth(roi), []).append(i)
        out: list = [None] * len(rois)
        for bit_depth, positions in groups.items():
            results = map_rois(
                _segment_roi,
                [rois[i] for i in positions],
                {**params, "bit_depth": bit_depth},
                n_jobs=self.n_jobs,
                memory=self.memory,
                stage="segment",
                fields=("image",),
            )
            for i, labels in zip(positions, results):
                out[i] = rois[i].replace(calcifications=labels)
        return out

    def _roi_bit_depth(self, roi: ROI) -> int | None:
        if self.bit_depth is not None:
            return int(self.bit_depth)
        bits = roi.meta.get("bits_stored")
        if bits is None:
            return None
        try:
            bits = int(bits)
        except (TypeError, ValueError):
            bits = -1
        if not 1 <= bits <= 32:
            raise ValueError(
                f"ROI {roi.roi_id!r}: meta['bits_stored'] must be an integer in [1, 32], "
                f"got {roi.meta.get('bits_stored')!r}"
            )
        return bits

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.requires_fit = False
        return tags
