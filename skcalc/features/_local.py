"""Local (per-calcification) features of the paper's "Local Features" section.

For every calcification of ``roi.masks.foreground`` three feature sets are computed:

``"fg_radiomics"``
    pyradiomics on the calcification: shape2D, firstorder, glcm, glrlm, glszm, gldm, ngtdm
    (102 features with pyradiomics-bhklab 3.1.4; paper: 90 with an older pyradiomics).
``"fg_regionprops"``
    13 scikit-image region measurements, geometric ones in mm / mm^2
    (:data:`~skcalc.features._regionprops.REGIONPROPS_FEATURES`).
``"bg_radiomics"``
    pyradiomics on the calcification's background band (pixels within ``band_width`` mm of it,
    excluding every calcification): the same classes without shape2D (93 features; paper: 87).

See :mod:`skcalc.features._radiomics` for the pyradiomics settings, the feature counts and the
NaN policy for objects too small for a feature class.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterator, Mapping, Sequence
from numbers import Integral, Real
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions

from ..exceptions import ROIValidationError, SkcalcWarning
from ..roi import ROI, as_roi_list, check_roi
from ..utils import map_rois
from ..utils._base import ImageTransformerMixin
from ._radiomics import (
    ALL_RADIOMICS_CLASSES,
    radiomics_feature_names,
    radiomics_features_batch,
)
from ._regionprops import REGIONPROPS_FEATURES, regionprops_features

__all__ = [
    "FEATURE_SETS",
    "LocalFeatureExtractor",
    "LocalFeatureTables",
    "local_feature_names",
    "local_features",
]

#: The paper's three local feature sets, in output order.
FEATURE_SETS = ("fg_radiomics", "fg_regionprops", "bg_radiomics")

_FG_CLASSES = ALL_RADIOMICS_CLASSES
_BG_CLASSES = tuple(c for c in ALL_RADIOMICS_CLASSES if c != "shape2D")


def _check_feature_sets(feature_sets: str | Sequence[str]) -> tuple[str, ...]:
    if isinstance(feature_sets, str):
        feature_sets = (feature_sets,)
    sets = tuple(feature_sets)
    bad = [s for s in sets if s not in FEATURE_SETS]
    if bad or not sets or len(set(sets)) != len(sets):
        raise ValueError(
            f"feature_sets must be distinct names from {FEATURE_SETS}, got {feature_sets!r}"
        )
    return sets


def local_feature_names(
    feature_sets: str | Sequence[str] = FEATURE_SETS,
) -> dict[str, list[str]]:
    """Feature names of each local feature set.

    Examples
    --------
    >>> names = local_feature_names()
    >>> {k: len(v) for k, v in names.items()}
    {'fg_radiomics': 102, 'fg_regionprops': 13, 'bg_radiomics': 93}
    >>> names["bg_radiomics"][0]
    'firstorder_10Percentile'
    """
    out = {}
    for s in _check_feature_sets(feature_sets):
        if s == "fg_radiomics":
            out[s] = radiomics_feature_names(_FG_CLASSES)
        elif s == "bg_radiomics":
            out[s] = radiomics_feature_names(_BG_CLASSES)
        else:
            out[s] = list(REGIONPROPS_FEATURES)
    return out


class LocalFeatureTables(Mapping):
    """One ROI's local features: a mapping feature-set name -> 2-D array (objects x features).

    Row ``i`` of every table describes the object with label ``labels[i]`` of the ROI's
    foreground. An ROI without calcifications has tables of shape ``(0, n_features)``.

    Parameters
    ----------
    tables : mapping of str to ndarray of shape (n_objects, n_features)
    feature_names : mapping of str to list of str
        Column names of each table.
    labels : ndarray of int, shape (n_objects,)
        Foreground label of each row.
    roi_id : str, optional

    Examples
    --------
    >>> import numpy as np
    >>> t = LocalFeatureTables({"a": np.zeros((2, 3))}, {"a": ["x", "y", "z"]}, [1, 2], "r1")
    >>> t
    LocalFeatureTables(roi_id='r1', n_objects=2, a=(2, 3))
    >>> t["a"].shape, t.feature_names["a"], list(t)
    ((2, 3), ['x', 'y', 'z'], ['a'])
    """

    def __init__(
        self,
        tables: Mapping[str, np.ndarray],
        feature_names: Mapping[str, Sequence[str]],
        labels: Sequence[int],
        roi_id: str | None = None,
    ) -> None:
        self.labels = np.asarray(labels, dtype=np.int64).reshape(-1)
        self.roi_id = roi_id
        self._tables = {}
        self.feature_names = {}
        for name, table in tables.items():
            table = np.asarray(table, dtype=np.float64)
            names = list(feature_names[name])
            if table.ndim != 2 or table.shape != (self.labels.size, len(names)):
                raise ValueError(
                    f"table {name!r} has shape {table.shape}, expected "
                    f"({self.labels.size}, {len(names)})"
                )
            self._tables[name] = table
            self.feature_names[name] = names

    @property
    def n_objects(self) -> int:
        """Number of objects (rows of every table)."""
        return int(self.labels.size)

    def __getitem__(self, key: str) -> np.ndarray:
        return self._tables[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._tables)

    def __len__(self) -> int:
        return len(self._tables)

    def __repr__(self) -> str:
        shapes = ", ".join(f"{k}={v.shape}" for k, v in self._tables.items())
        return f"LocalFeatureTables(roi_id={self.roi_id!r}, n_objects={self.n_objects}, {shapes})"


def local_features(
    image: np.ndarray,
    masks: Any,
    *,
    feature_sets: str | Sequence[str] = FEATURE_SETS,
    bin_width: float = 5.0,
    bin_count: int | None = None,
    min_texture_size: int = 4,
    roi_id: str | None = None,
) -> LocalFeatureTables:
    """Local features of every calcification of one ROI.

    Each object is cropped out with its band (``masks.object_windows()``) and all objects of
    the ROI go through pyradiomics together
    (:func:`~skcalc.features._radiomics.radiomics_features_batch`); the values equal
    pyradiomics' ``execute`` on the whole image, object by object (see
    :mod:`skcalc.features._radiomics`).

    Parameters
    ----------
    image : ndarray, shape (H, W)
        Raw detector values.
    masks : CalcificationMasks
        Foreground labels, spacing (mm) and band width (mm) of the ROI.
    feature_sets : str or sequence of str, default=all three
        Subset of ``("fg_radiomics", "fg_regionprops", "bg_radiomics")``.
    bin_width, bin_count, min_texture_size
        See :func:`~skcalc.features._radiomics.radiomics_features`.
    roi_id : str, optional
        Kept on the result.

    Returns
    -------
    LocalFeatureTables
        One row per object, in label order; NaN for feature classes an object is too small for.

    Examples
    --------
    >>> import numpy as np
    >>> from skcalc.masks import CalcificationMasks
    >>> fg = np.zeros((30, 30), np.int32); fg[10:13, 10:14] = 1; fg[20, 20] = 2
    >>> img = np.full((30, 30), 1000.0); img[fg > 0] = 1400
    >>> masks = CalcificationMasks(fg, (0.07, 0.07), 0.35, np.zeros(1), np.zeros((2, 2), int))
    >>> t = local_features(img, masks, feature_sets="fg_regionprops")
    >>> t["fg_regionprops"][:, 0].round(4)  # areas in mm^2
    array([0.0588, 0.0049])
    """
    sets = _check_feature_sets(feature_sets)
    names = local_feature_names(sets)
    image = np.asarray(image)
    spacing = tuple(float(s) for s in masks.spacing)
    kw = {"bin_width": bin_width, "bin_count": bin_count, "min_texture_size": min_texture_size}
    labels, crops, objects, bands = [], [], [], []
    # pad=0 is exact: pyradiomics crops to the mask's bounding box without padding itself.
    for label, window, obj, band in masks.object_windows(pad=0):
        labels.append(label)
        crops.append(image[window])
        objects.append(obj)
        bands.append(band)
    tables = {}
    for s in sets:
        if s == "fg_regionprops":
            rows = [regionprops_features(o, c, spacing) for o, c in zip(objects, crops)]
            tables[s] = np.array(rows, dtype=np.float64).reshape(len(labels), len(names[s]))
        else:
            # All objects of the ROI at once: one call per pyradiomics feature, not per object.
            fg = s == "fg_radiomics"
            tables[s] = radiomics_features_batch(
                crops,
                objects if fg else bands,
                spacing,
                classes=_FG_CLASSES if fg else _BG_CLASSES,
                **kw,
            ).reshape(len(labels), len(names[s]))
    return LocalFeatureTables(tables, names, labels, roi_id)


def _check_masks(roi: ROI) -> None:
    masks = roi.masks
    fg = getattr(masks, "foreground", None)
    if not isinstance(fg, np.ndarray) or not hasattr(masks, "object_windows"):
        raise ROIValidationError(
            roi.roi_id, f"masks must be a CalcificationMasks, got {type(masks).__name__}"
        )
    if fg.shape != tuple(roi.shape):
        raise ROIValidationError(
            roi.roi_id, f"masks.foreground has shape {fg.shape}, image has shape {roi.shape}"
        )
    if not np.allclose(masks.spacing, roi.spacing):
        raise ROIValidationError(
            roi.roi_id, f"masks.spacing {masks.spacing} differs from roi.spacing {roi.spacing}"
        )


def _roi_local_features(roi: ROI, **params: Any) -> LocalFeatureTables:
    # Module-level so that map_rois can memoise it and ship it to joblib workers.
    roi = roi.load()  # a lazy image is read once, here in the worker
    check_roi(roi, require=("masks",))
    _check_masks(roi)
    return local_features(roi.image, roi.masks, roi_id=roi.roi_id, **params)


class LocalFeatureExtractor(
    ImageTransformerMixin, TransformerMixin, BaseEstimator, auto_wrap_output_keys=None
):
    """Per-calcification local features (paper: Local Features), one table set per ROI.

    Stateless: ``fit`` only validates. ``transform`` takes a list of ROIs carrying ``masks``
    (from :class:`skcalc.masks.MaskBuilder`) and returns one :class:`LocalFeatureTables` per
    ROI, mapping each feature set to an array of shape (n_objects, n_features). This is the
    ragged input of the bag-of-clusters aggregator.

    Parameters
    ----------
    feature_sets : str or tuple of str, default=("fg_radiomics", "fg_regionprops", "bg_radiomics")
        Which sets to compute.
    bin_width : float, default=5.0
        pyradiomics gray-level bin width in raw detector units. On 12-bit data, faint
        calcifications span about 50-110 units and their bands 135-205 (about 10-41 bins).
        Scale it with the data: on images normalised to [0, 1] it would give a single bin.
    bin_count : int, default=None
        Fixed number of gray-level bins per object instead of ``bin_width``.
    min_texture_size : int, default=4
        Objects with fewer pixels (or without any 2x2 block of pixels, i.e. 1 pixel thick) get
        NaN for the texture classes glcm, glrlm, glszm, gldm and ngtdm. Raise it (e.g. to 10)
        to drop the noisy texture matrices of very small objects. Single-pixel objects
        get NaN for every pyradiomics class (regionprops stay finite).
    memory : None, str or object with a ``cache`` method, default=None
        Per-ROI memoisation (joblib.Memory or a cache directory).
    n_jobs : int, default=None
        Parallel ROIs (joblib; ``None`` = 1 unless a ``parallel_config`` says otherwise).

    Attributes
    ----------
    feature_names_ : dict of str to list of str
        Column names of each feature set.

    Notes
    -----
    An ROI with no calcification gives tables with 0 rows (and a :class:`SkcalcWarning`);
    rows may hold NaN (tiny objects), so aggregators must impute or ignore NaN.

    Examples
    --------
    >>> import numpy as np
    >>> from skcalc import ROI
    >>> from skcalc.masks import CalcificationMasks
    >>> fg = np.zeros((40, 40), np.int32); fg[18:22, 18:23] = 1
    >>> rng = np.random.default_rng(0)
    >>> img = (1000 + 60 * rng.random((40, 40)) + 300 * (fg > 0)).astype(np.uint16)
    >>> masks = CalcificationMasks(fg, (0.07, 0.07), 0.7, np.zeros(1), np.zeros((1, 1), int))
    >>> roi = ROI(img, spacing=0.07, masks=masks, meta={"roi_id": "r1"})
    >>> tables = LocalFeatureExtractor().fit_transform([roi])[0]
    >>> tables
    LocalFeatureTables(roi_id='r1', n_objects=1, fg_radiomics=(1, 102), fg_regionprops=(1, 13), \
bg_radiomics=(1, 93))
    >>> bool(np.isfinite(tables["bg_radiomics"]).all())
    True
    """

    _parameter_constraints: dict = {
        "feature_sets": [tuple, list, StrOptions(set(FEATURE_SETS))],
        "bin_width": [Interval(Real, 0, None, closed="neither")],
        "bin_count": [Interval(Integral, 1, None, closed="left"), None],
        "min_texture_size": [Interval(Integral, 2, None, closed="left")],
        "memory": [None, str, HasMethods(["cache"])],
        "n_jobs": [Integral, None],
    }

    def __init__(
        self,
        feature_sets=FEATURE_SETS,
        bin_width=5.0,
        bin_count=None,
        min_texture_size=4,
        memory=None,
        n_jobs=None,
    ):
        self.feature_sets = feature_sets
        self.bin_width = bin_width
        self.bin_count = bin_count
        self.min_texture_size = min_texture_size
        self.memory = memory
        self.n_jobs = n_jobs

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Validate the parameters and the ROIs; set ``feature_names_``.

        Parameters
        ----------
        X : list of ROI
            ROIs carrying ``masks``.
        y : ignored

        Returns
        -------
        self
        """
        as_roi_list(X, require=("masks",))
        self.feature_names_ = local_feature_names(self.feature_sets)
        return self

    def transform(self, X) -> list[LocalFeatureTables]:
        """Local feature tables of every ROI.

        Parameters
        ----------
        X : list of ROI
            ROIs carrying ``masks``; never modified.

        Returns
        -------
        list of LocalFeatureTables
            One per ROI, in input order.
        """
        if not hasattr(self, "feature_names_"):
            # Stateless: transform without fit is allowed, parameters are checked here then.
            self._validate_params()
        sets = _check_feature_sets(self.feature_sets)
        rois = as_roi_list(X, require=("masks",))
        params = {
            "feature_sets": sets,
            "bin_width": float(self.bin_width),
            "bin_count": None if self.bin_count is None else int(self.bin_count),
            "min_texture_size": int(self.min_texture_size),
        }
        out = map_rois(
            _roi_local_features,
            rois,
            params,
            n_jobs=self.n_jobs,
            memory=self.memory,
            stage="local_features",
            fields=("image", "masks"),
        )
        for i, (roi, tables) in enumerate(zip(rois, out)):
            if tables.roi_id != roi.roi_id:
                # A memoised result may come from another ROI with the same content: relabel
                # a copy, never the cached object other ROIs share.
                tables = out[i] = copy.copy(tables)
                tables.roi_id = roi.roi_id
            if tables.n_objects == 0:
                warnings.warn(
                    f"ROI {tables.roi_id!r} has no calcification: its local feature tables "
                    "have 0 rows",
                    SkcalcWarning,
                    stacklevel=2,
                )
        return out
