"""Masks of the paper's "Mask Generation" section: foreground, background band, dilations.

The :class:`CalcificationMasks` record is what :class:`MaskBuilder` attaches to each ROI. It
holds the foreground label image, the background-band rule and the multi-scale connectivity
(which pairs of calcifications overlap once each is dilated by a disk of a given radius),
derived from object-to-object geometry instead of 65 full-image dilations.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

__all__ = ["CalcificationMasks", "object_band"]


def object_band(
    obj: np.ndarray, foreground: np.ndarray, width_mm: float, spacing: tuple[float, float]
) -> np.ndarray:
    """Background band of one object: pixels within ``width_mm`` of it, no calcification.

    The distance is Euclidean in mm (so anisotropic spacing gives an elliptical band in
    pixels). Pixels of *any* calcification are excluded; bands of nearby calcifications may
    share pixels (each object keeps its own full band).

    Parameters
    ----------
    obj : ndarray of bool
        The object (usually a crop around it).
    foreground : ndarray of bool
        All calcifications in the same crop.
    width_mm : float
        Band width in mm (paper: 25 px at 0.07 mm = 1.75 mm).
    spacing : (float, float)
        Pixel spacing in mm.

    Examples
    --------
    >>> import numpy as np
    >>> obj = np.zeros((7, 7), bool); obj[3, 3] = True
    >>> object_band(obj, obj, 1.0, (1.0, 1.0)).astype(int)
    array([[0, 0, 0, 0, 0, 0, 0],
           [0, 0, 0, 0, 0, 0, 0],
           [0, 0, 0, 1, 0, 0, 0],
           [0, 0, 1, 0, 1, 0, 0],
           [0, 0, 0, 1, 0, 0, 0],
           [0, 0, 0, 0, 0, 0, 0],
           [0, 0, 0, 0, 0, 0, 0]])
    """
    dist = ndi.distance_transform_edt(~obj, sampling=spacing)
    return (dist <= width_mm) & ~foreground


@dataclass(frozen=True, eq=False)
class CalcificationMasks:
    """Foreground, background and multi-scale connectivity of one ROI.

    Attributes
    ----------
    foreground : ndarray of int32, shape (H, W)
        Calcifications kept for analysis, labelled 1..n (0 = background).
    spacing : (float, float)
        Pixel spacing in mm.
    band_width : float
        Width of each object's background band in mm.
    scales : ndarray of float, shape (S,)
        Dilation radii in mm (paper: 0..64 px at 0.07 mm).
    merge_index : ndarray of int, shape (n, n)
        ``merge_index[i, j]`` is the index of the first scale at which objects ``i+1`` and
        ``j+1``, each dilated by a disk of that radius, overlap; ``S`` if they never do within
        ``scales``. The diagonal is 0.
    """

    foreground: np.ndarray
    spacing: tuple[float, float]
    band_width: float
    scales: np.ndarray
    merge_index: np.ndarray

    @property
    def n_objects(self) -> int:
        """Number of calcifications."""
        return int(self.merge_index.shape[0])

    def adjacency(self, scale_index: int) -> np.ndarray:
        """Boolean adjacency matrix of the connectivity graph at one scale."""
        a = self.merge_index <= scale_index
        np.fill_diagonal(a, False)
        return a

    def band_margin(self) -> tuple[int, int]:
        """Pixels to add around an object's bounding box so that its band fits."""
        return tuple(int(np.ceil(self.band_width / s)) + 1 for s in self.spacing)

    def object_windows(
        self, pad: int = 0
    ) -> Iterator[tuple[int, tuple[slice, slice], np.ndarray, np.ndarray]]:
        """Yield ``(label, window, object_mask, band_mask)`` for each object.

        ``window`` is a pair of slices into the ROI image covering the object, its band and
        ``pad`` extra pixels, clipped to the image; the masks are crops of that window.
        """
        fg = self.foreground
        my, mx = self.band_margin()
        for lab, sl in enumerate(ndi.find_objects(fg), start=1):
            if sl is None:
                continue
            r0 = max(sl[0].start - my - pad, 0)
            r1 = min(sl[0].stop + my + pad, fg.shape[0])
            c0 = max(sl[1].start - mx - pad, 0)
            c1 = min(sl[1].stop + mx + pad, fg.shape[1])
            win = (slice(r0, r1), slice(c0, c1))
            crop = fg[win]
            obj = crop == lab
            band = object_band(obj, crop > 0, self.band_width, self.spacing)
            yield lab, win, obj, band

    def background(self) -> np.ndarray:
        """Union of all objects' background bands (boolean image, for plots)."""
        out = np.zeros(self.foreground.shape, bool)
        for _, win, _, band in self.object_windows():
            out[win] |= band
        return out
