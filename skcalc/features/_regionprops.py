"""The 13 scikit-image region measurements of one calcification (paper: Local Features).

The paper lists "13 region measurements (using regionprops module of scikit-image)" without
naming them; skcalc uses these, geometric ones in physical units through ``spacing``:

=========================  ======  ====================================================
name                       unit    definition
=========================  ======  ====================================================
area_mm2                   mm^2    pixel count x pixel area
perimeter_mm               mm      skimage ``perimeter`` (4-connected boundary estimate)
                                   x pixel size; with anisotropic spacing the geometric
                                   mean pixel size (skimage supports isotropic only)
convex_area_mm2            mm^2    area of the convex hull image
equivalent_diameter_mm     mm      diameter of the disk of the same area
major_axis_length_mm       mm      of the ellipse with the same second moments
minor_axis_length_mm       mm      idem
eccentricity               --      of that ellipse (0 = circle)
orientation_rad            rad     angle between the row axis and the major axis,
                                   in [-pi/2, pi/2]
solidity                   --      area / convex area
extent                     --      area / bounding-box area
intensity_mean             raw     mean detector value inside the object
intensity_max              raw     maximum
intensity_min              raw     minimum
=========================  ======  ====================================================

Every object, including a single pixel, gets finite values (a single pixel has zero
perimeter, zero axis lengths, eccentricity 0 and an arbitrary orientation).
"""

from __future__ import annotations

import warnings

import numpy as np

__all__ = ["REGIONPROPS_FEATURES", "regionprops_features"]

#: Names of the 13 region measurements, in output order.
REGIONPROPS_FEATURES = (
    "area_mm2",
    "perimeter_mm",
    "convex_area_mm2",
    "equivalent_diameter_mm",
    "major_axis_length_mm",
    "minor_axis_length_mm",
    "eccentricity",
    "orientation_rad",
    "solidity",
    "extent",
    "intensity_mean",
    "intensity_max",
    "intensity_min",
)


def regionprops_features(
    mask: np.ndarray, image: np.ndarray, spacing: tuple[float, float]
) -> np.ndarray:
    """The 13 region measurements of :data:`REGIONPROPS_FEATURES` for one object.

    Parameters
    ----------
    mask : ndarray of bool, shape (H, W)
        The object (a crop around it is enough).
    image : ndarray, shape (H, W)
        Raw detector values on the same grid.
    spacing : (float, float)
        Pixel spacing in mm, (row, col).

    Returns
    -------
    ndarray of float64, shape (13,)
        All NaN when the mask is empty.

    Examples
    --------
    >>> import numpy as np
    >>> m = np.zeros((6, 7), bool); m[1:4, 2:6] = True  # 3 x 4 rectangle
    >>> f = regionprops_features(m, np.ones((6, 7)), (0.1, 0.1))
    >>> dict(zip(REGIONPROPS_FEATURES[:3], f[:3].round(4).tolist()))
    {'area_mm2': 0.12, 'perimeter_mm': 1.0, 'convex_area_mm2': 0.12}
    """
    from skimage.measure import perimeter, regionprops

    mask = np.asarray(mask, dtype=bool)
    if mask.shape != image.shape:
        raise ValueError(f"mask shape {mask.shape} and image shape {image.shape} differ")
    out = np.full(len(REGIONPROPS_FEATURES), np.nan)
    if not mask.any():
        return out
    sr, sc = float(spacing[0]), float(spacing[1])
    with warnings.catch_warnings():
        # Convex hulls of lines and single pixels are degenerate; skimage still answers.
        warnings.simplefilter("ignore")
        p = regionprops(mask.astype(np.uint8), intensity_image=image, spacing=(sr, sc))[0]
        out[:] = [
            p.area,
            perimeter(mask) * np.sqrt(sr * sc),
            p.area_convex,
            p.equivalent_diameter_area,
            p.axis_major_length,
            p.axis_minor_length,
            p.eccentricity,
            p.orientation,
            p.solidity,
            p.extent,
            p.intensity_mean,
            p.intensity_max,
            p.intensity_min,
        ]
    return out
