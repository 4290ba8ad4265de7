"""The operating point of one image: the candidate filter's score threshold for a promised
false-positive rate, corrected for the image's own density of candidates."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["FP_CALIBRATIONS", "image_operating_point"]

#: ``fp_calibration="image"``: candidates scoring above the threshold where the table keeps
#: this fraction of its negatives are not counted in the image's candidate density (they
#: are the likeliest calcifications); the density is shrunk towards the table's with this
#: weight in cm^2 of breast (small ROIs hold too few candidates to measure it); and the
#: correction is bounded to this range.
_DENSITY_TAIL = 0.05
_DENSITY_PRIOR_CM2 = 10.0
_SCALE_LIMITS = (0.25, 4.0)
FP_CALIBRATIONS = ("image", "filter")


def image_operating_point(
    candidate_filter: Any,
    operating_point: str | float,
    scores: np.ndarray,
    breast_area_cm2: float,
    fp_calibration: str = "image",
) -> dict[str, Any]:
    """Score threshold of an operating point for one image, from the image's own candidates.

    The filter's table gives ``fp(t)``, the calibration negatives scoring ``>= t`` per cm^2;
    divided by their density ``D_ref`` (:attr:`CandidateFilter.reference_density`) it is the
    fraction of tissue candidates that pass ``t``. An image whose tissue yields ``D``
    candidates per cm^2 then expects ``D fp(t) / D_ref`` false objects per cm^2, so
    ``fp_calibration="image"`` uses the table's threshold for ``target * D_ref / D``: the
    promise holds whatever the image's candidate density (scanner, processing, pixel size,
    breast density), and only the ranking of candidates by the filter is borrowed from the
    calibration images. ``D`` counts the image's candidates below the threshold that keeps
    the top 5% of the table's negatives (calcifications score high and are left out; the
    count is divided by the fraction of the table's negatives below that threshold), shrunk
    towards ``D_ref`` with a 10 cm^2 prior, and ``D_ref / D`` is bounded to [0.25, 4].
    ``"filter"`` (or a table that does not start at threshold 0) uses the table's threshold
    for ``target`` as it is. The threshold is monotone in the target for a given image.

    Parameters
    ----------
    candidate_filter : CandidateFilter
        Typed loosely: ``_filter`` imports the segmentation that imports this module.
    operating_point : {"sensitive", "balanced", "specific"} or float
        The promised false positives per cm^2.
    scores : ndarray
        The filter's score of every candidate of the image.
    breast_area_cm2 : float
    fp_calibration : {"image", "filter"}

    Returns
    -------
    dict
        ``fp_per_cm2`` (the promise), ``score_threshold``, ``fp_calibration`` (what was
        applied), ``candidate_density_per_cm2`` (``D``, None with ``"filter"``) and
        ``fp_scale`` (``D_ref / D``; 1 with ``"filter"``).

    Examples
    --------
    A table of 4 negatives per cm^2, of which ``4 (1 - t)`` score ``>= t``:

    >>> from skcalc.segmentation import CandidateFilter
    >>> t = np.linspace(0, 1, 11)
    >>> f = CandidateFilter("", t, 4 * (1 - t))
    >>> busy = np.full(4000, 0.3)  # 4000 tissue-like candidates on 1000 cm^2, as calibrated
    >>> image_operating_point(f, 1.0, busy, 1000.0)["score_threshold"]
    0.8
    >>> quiet = np.full(1000, 0.3)  # a quarter of the candidates: a lower threshold
    >>> op = image_operating_point(f, 1.0, quiet, 1000.0)
    >>> op["score_threshold"], round(op["fp_scale"], 2)
    (0.1, 3.88)
    >>> image_operating_point(f, 1.0, quiet, 1000.0, "filter")["score_threshold"]
    0.8
    """
    if fp_calibration not in FP_CALIBRATIONS:
        raise ValueError(f"fp_calibration must be one of {FP_CALIBRATIONS}, got "
                         f"{fp_calibration!r}")
    target, thr = candidate_filter.resolve(operating_point)
    out = {"fp_per_cm2": target, "score_threshold": thr, "fp_calibration": "filter",
           "candidate_density_per_cm2": None, "fp_scale": 1.0}
    d_ref = candidate_filter.reference_density
    if fp_calibration == "filter" or not d_ref:
        return out
    _, t_tail = candidate_filter.resolve(d_ref * _DENSITY_TAIL)
    kept = candidate_filter.calib_fp_per_cm2[
        np.searchsorted(candidate_filter.calib_thresholds, t_tail)] / d_ref
    n = np.count_nonzero(np.asarray(scores) < t_tail) / max(1.0 - kept, 0.5)
    d = (n + d_ref * _DENSITY_PRIOR_CM2) / (max(float(breast_area_cm2), 0.0)
                                            + _DENSITY_PRIOR_CM2)
    scale = float(np.clip(d_ref / d, *_SCALE_LIMITS))
    _, thr = candidate_filter.resolve(target * scale)
    out.update(score_threshold=thr, fp_calibration="image", candidate_density_per_cm2=float(d),
               fp_scale=scale)
    return out
