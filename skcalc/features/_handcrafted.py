"""The paper's three handcrafted (expert) global features of an ROI.

1. Standard deviation of the calcification areas (mm², population std, ``ddof=0``).
2. Pearson correlation of the centroid coordinates ``x`` (column) and ``y`` (row, pointing
   down as in the image), measured in mm: the extent of a linear distribution.
3. Mean pairwise Euclidean distance between centroids (mm): the spread.

Conventions: with no object all three are 0; with one object the std and the mean distance
are 0; the correlation is 0 when there are fewer than two objects or when the centroids'
``x`` or ``y`` coordinates do not vary (undefined Pearson correlation).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.spatial.distance import pdist

from .._units import check_spacing
from ..utils._validation import check_label_image

__all__ = ["HANDCRAFTED_FEATURE_NAMES", "handcrafted_features"]

#: Names of the three features, in output order.
HANDCRAFTED_FEATURE_NAMES = (
    "area_std_mm2",
    "centroid_xy_corr",
    "mean_pairwise_distance_mm",
)


def handcrafted_features(
    foreground_labels: np.ndarray, spacing: Sequence[float] = (0.07, 0.07)
) -> np.ndarray:
    """Std of object areas, centroid x/y correlation and mean pairwise centroid distance.

    Parameters
    ----------
    foreground_labels : ndarray of int, shape (H, W)
        Label image of the calcifications (0 = background). Every distinct positive label is
        one object (labels need not be consecutive).
    spacing : (float, float)
        Pixel spacing in mm (row, col).

    Returns
    -------
    ndarray of float, shape (3,)
        ``[area_std_mm2, centroid_xy_corr, mean_pairwise_distance_mm]``; see the module
        docstring for the conventions with fewer than two objects.

    Examples
    --------
    >>> import numpy as np
    >>> lab = np.zeros((10, 10), int)
    >>> lab[0, 0] = 1; lab[3:5, 3:5] = 2; lab[6, 6] = 3
    >>> handcrafted_features(lab, (0.5, 0.5)).round(4)
    array([0.3536, 1.    , 2.8284])
    """
    lab = check_label_image(foreground_labels, "foreground_labels")
    sy, sx = check_spacing(spacing, plausible=False)
    rows, cols = np.nonzero(lab)
    if rows.size == 0:
        return np.zeros(3)
    ids, inv, counts = np.unique(lab[rows, cols], return_inverse=True, return_counts=True)
    n = ids.size
    area = counts * (sy * sx)
    cy = np.bincount(inv, weights=rows, minlength=n) / counts * sy
    cx = np.bincount(inv, weights=cols, minlength=n) / counts * sx
    area_std = float(np.std(area))
    corr = 0.0
    mean_dist = 0.0
    if n >= 2:
        if np.ptp(cx) > 0 and np.ptp(cy) > 0:
            corr = float(np.corrcoef(cx, cy)[0, 1])
        mean_dist = float(pdist(np.column_stack((cy, cx))).mean())
    return np.array([area_std, corr, mean_dist])
