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
import os
import warnings
from collections.abc import Iterator, Mapping, Sequence
from numbers import Integral, Real
from typing import Any

import numpy as np
from scipy import ndimage as ndi
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions

from ..exceptions import ROIValidationError
from ..roi import ROI, bright_image, check_roi
from ..utils._stage import ImageStage, warn_summary
from . import _radiomics_batched
from ._radiomics import (
    ALL_RADIOMICS_CLASSES,
    DEFAULT_MAX_GRAY_LEVELS,
    _features_batch,
    _Report,
    gray_level_message,
    radiomics_feature_names,
    radiomics_settings,
)
from ._radiomics_reference import quiet_radiomics
from ._regionprops import REGIONPROPS_FEATURES, regionprops_features_batch

__all__ = [
    "DEFAULT_MAX_OBJECTS",
    "FEATURE_SETS",
    "GEOMETRY_COLUMNS",
    "LocalFeatureExtractor",
    "LocalFeatureTables",
    "local_feature_names",
    "local_features",
    "local_features_table",
    "write_local_features_csv",
]

#: The paper's three local feature sets, in output order.
FEATURE_SETS = ("fg_radiomics", "fg_regionprops", "bg_radiomics")

#: Most calcifications one ROI may have (``max_objects``): a cohort ROI has tens; thousands
#: mean a segmentation gone wrong (noise, salt pixels), at about 5-10 ms per object.
DEFAULT_MAX_OBJECTS = 5000
#: Objects processed together: memory is bounded by this batch plus the output table.
BATCH_SIZE = 256
#: Per-object columns of :meth:`LocalFeatureTables.to_frame` before the features.
GEOMETRY_COLUMNS = (
    "roi_id",
    "label",
    "centroid_row_px",
    "centroid_col_px",
    "centroid_row_mm",
    "centroid_col_mm",
    "bbox_row_min_px",
    "bbox_col_min_px",
    "bbox_row_max_px",
    "bbox_col_max_px",
    "bbox_row_min_mm",
    "bbox_col_min_mm",
    "bbox_row_max_mm",
    "bbox_col_max_mm",
    "area_px",
    "area_mm2",
)
#: Column prefix of each feature set in :meth:`LocalFeatureTables.to_frame`.
FRAME_PREFIXES = {
    "fg_radiomics": "fg_original_",
    "fg_regionprops": "rp_",
    "bg_radiomics": "bg_original_",
}
# Pixel geometry kept per object: centroid (row, col), bbox [min, max) and area, in pixels.
_GEOMETRY = (
    "centroid_row",
    "centroid_col",
    "bbox_row_min",
    "bbox_col_min",
    "bbox_row_max",
    "bbox_col_max",
    "area",
)

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
    This mapping is what the aggregators consume; :meth:`to_frame` gives the same rows as one
    pyradiomics-batch-style table (one row per calcification, with its position and size).

    Parameters
    ----------
    tables : mapping of str to ndarray of shape (n_objects, n_features)
    feature_names : mapping of str to list of str
        Column names of each table.
    labels : ndarray of int, shape (n_objects,)
        Foreground label of each row.
    roi_id : str, optional
    geometry : mapping of str to ndarray of shape (n_objects,), optional
        Pixel geometry of each object: ``centroid_row``, ``centroid_col`` (pixel centres at
        integer coordinates), ``bbox_row_min``, ``bbox_col_min``, ``bbox_row_max``,
        ``bbox_col_max`` (half-open, like slices) and ``area`` (pixels).
    spacing : (float, float), optional
        Pixel spacing in mm, for the mm columns of :meth:`to_frame`.

    Attributes
    ----------
    notes : list of (type, str)
        Warnings raised while the tables were computed (re-emitted by
        :meth:`LocalFeatureExtractor.transform`, also for cached results).

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
        geometry: Mapping[str, np.ndarray] | None = None,
        spacing: tuple[float, float] | None = None,
    ) -> None:
        self.labels = np.asarray(labels, dtype=np.int64).reshape(-1)
        self.roi_id = roi_id
        self.spacing = None if spacing is None else tuple(float(s) for s in spacing)
        self.notes: list[tuple[type, str]] = []
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
        self.geometry = None
        if geometry is not None:
            self.geometry = {k: np.asarray(geometry[k], dtype=np.float64) for k in _GEOMETRY}
            for k, v in self.geometry.items():
                if v.shape != (self.labels.size,):
                    raise ValueError(f"geometry {k!r} has shape {v.shape}")

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

    def to_frame(self):
        """One row per calcification: ids, position, size and every feature (a DataFrame).

        Columns: :data:`GEOMETRY_COLUMNS` (ROI id, label, centroid and bounding box in pixels
        and mm, area in pixels and mm^2; pixel centres at integer coordinates, boxes
        half-open like slices, mm = pixels x spacing), then the features of each set with
        pyradiomics' batch-mode names prefixed by the set: ``fg_original_firstorder_Mean``,
        ``rp_area_mm2``, ``bg_original_glcm_Contrast``. NaN where a feature is undefined.

        Examples
        --------
        >>> import numpy as np
        >>> from skcalc.masks import CalcificationMasks
        >>> fg = np.zeros((30, 30), np.int32); fg[10:13, 10:14] = 1; fg[20, 20] = 2
        >>> img = np.full((30, 30), 1000.0); img[fg > 0] = 1400
        >>> masks = CalcificationMasks(fg, (0.07, 0.07), 0.35, np.zeros(1), np.zeros((2, 2), int))
        >>> df = local_features(img, masks, feature_sets="fg_regionprops", roi_id="r1").to_frame()
        >>> df[["roi_id", "label", "centroid_row_px", "area_px", "bbox_col_max_px"]]
          roi_id  label  centroid_row_px  area_px  bbox_col_max_px
        0     r1      1             11.0       12               14
        1     r1      2             20.0        1               21
        >>> df.shape
        (2, 29)
        """
        import pandas as pd

        n = self.n_objects
        sr, sc = self.spacing if self.spacing is not None else (np.nan, np.nan)
        g = self.geometry or {k: np.full(n, np.nan) for k in _GEOMETRY}
        cols: dict[str, Any] = {
            "roi_id": pd.Series([self.roi_id] * n, dtype=object),
            "label": self.labels,
            "centroid_row_px": g["centroid_row"],
            "centroid_col_px": g["centroid_col"],
            "centroid_row_mm": g["centroid_row"] * sr,
            "centroid_col_mm": g["centroid_col"] * sc,
        }
        for k in ("row_min", "col_min", "row_max", "col_max"):
            cols[f"bbox_{k}_px"] = g[f"bbox_{k}"]
        for k in ("row_min", "col_min", "row_max", "col_max"):
            cols[f"bbox_{k}_mm"] = g[f"bbox_{k}"] * (sr if k.startswith("row") else sc)
        cols["area_px"] = g["area"]
        cols["area_mm2"] = g["area"] * sr * sc
        frame = pd.DataFrame(cols)
        if self.geometry is not None:
            ints = [c for c in frame.columns if c.startswith("bbox_") and c.endswith("_px")]
            frame[ints + ["area_px"]] = frame[ints + ["area_px"]].astype(np.int64)
        parts = [frame]
        for name, table in self._tables.items():
            prefix = FRAME_PREFIXES.get(name, f"{name}_")
            columns = [prefix + f for f in self.feature_names[name]]
            parts.append(pd.DataFrame(table, columns=columns))
        return pd.concat(parts, axis=1)

    def to_csv(self, path: str | os.PathLike, *, overwrite: bool = False) -> None:
        """Write :meth:`to_frame` to ``path`` (see :func:`write_local_features_csv`)."""
        write_local_features_csv([self], path, overwrite=overwrite)


def local_features_table(tables, **extractor_params):
    """One DataFrame row per calcification of every ROI (pyradiomics batch-mode style).

    Parameters
    ----------
    tables : LocalFeatureTables, sequence of LocalFeatureTables, or sequence of ROI
        Outputs of :class:`LocalFeatureExtractor`, or ROIs carrying ``masks`` (they are run
        through ``LocalFeatureExtractor(**extractor_params)`` first).
    **extractor_params
        Parameters of :class:`LocalFeatureExtractor` when ROIs are given.

    Returns
    -------
    pandas.DataFrame
        The rows of :meth:`LocalFeatureTables.to_frame` of every ROI, in input order; an ROI
        without calcification adds no row.

    Examples
    --------
    >>> import numpy as np
    >>> from skcalc import ROI
    >>> from skcalc.masks import CalcificationMasks
    >>> fg = np.zeros((40, 40), np.int32); fg[18:22, 18:23] = 1; fg[5:7, 5:8] = 2
    >>> img = (1000 + 300 * (fg > 0) + np.arange(40)).astype(np.uint16)
    >>> masks = CalcificationMasks(fg, (0.07, 0.07), 0.7, np.zeros(1), np.zeros((2, 2), int))
    >>> rois = [ROI(img, masks=masks, meta={"roi_id": r}) for r in ("a", "b")]
    >>> df = local_features_table(rois)
    >>> df.shape, df["roi_id"].tolist(), df["label"].tolist()
    ((4, 224), ['a', 'a', 'b', 'b'], [1, 2, 1, 2])
    >>> df["fg_original_firstorder_Mean"].round(1).tolist()
    [1320.0, 1306.0, 1320.0, 1306.0]
    """
    import pandas as pd

    if isinstance(tables, LocalFeatureTables):
        tables = [tables]
    tables = list(tables)
    if tables and all(isinstance(t, ROI) for t in tables):
        tables = LocalFeatureExtractor(**extractor_params).fit_transform(tables)
    elif extractor_params:
        raise TypeError("extractor parameters are only used when ROIs are given")
    bad = [type(t).__name__ for t in tables if not isinstance(t, LocalFeatureTables)]
    if bad:
        raise TypeError(f"expected LocalFeatureTables or ROIs, got {sorted(set(bad))}")
    if not tables:
        raise ValueError("no tables given")
    frames = [t.to_frame() for t in tables]
    return pd.concat(frames, axis=0, ignore_index=True)


def write_local_features_csv(tables, path: str | os.PathLike, *, overwrite: bool = False) -> str:
    """Write :func:`local_features_table` ``(tables)`` as CSV, atomically.

    The file is written to a temporary file next to ``path`` and renamed; an existing file
    is never replaced unless ``overwrite=True``.

    Returns
    -------
    str
        The path written.
    """
    from ..io._writers import write_text_atomic

    path = os.fspath(path)
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    frame = local_features_table(tables)
    write_text_atomic(path, frame.to_csv(index=False))
    return path


def _check_budget(image, masks, sets, settings, max_objects, max_gray_levels, roi_id) -> None:
    """Refuse an ROI whose cost would exceed the documented budget, before any work."""
    name = "<unnamed>" if roi_id is None else roi_id
    fg = masks.foreground
    slices = ndi.find_objects(fg)
    n = sum(s is not None for s in slices)
    if max_objects is not None and n > max_objects:
        raise ROIValidationError(
            name,
            f"{n} calcifications exceed max_objects={max_objects} (about 5-10 ms and a few "
            "kB of output per object); check the segmentation, or raise max_objects "
            "(None: no limit)",
        )
    radiomics = [s for s in sets if s != "fg_regionprops"]
    if max_gray_levels is None or not radiomics:
        return
    my, mx = masks.band_margin()
    worst, n_over = None, 0
    for lab, sl in enumerate(slices, start=1):
        if sl is None:
            continue
        checks = []
        if "fg_radiomics" in radiomics:
            checks.append(image[sl][fg[sl] == lab])
        if "bg_radiomics" in radiomics:
            # The band lies in this window, outside every calcification (a bound, not exact).
            r0, c0 = max(sl[0].start - my, 0), max(sl[1].start - mx, 0)
            win = (slice(r0, sl[0].stop + my), slice(c0, sl[1].stop + mx))
            checks.append(image[win][fg[win] == 0])
        over = False
        for values in checks:
            if values.size < 2:
                continue
            vmin, vmax = float(values.min()), float(values.max())
            levels = _radiomics_batched.n_gray_levels(vmin, vmax, settings)
            if levels > max_gray_levels:
                over = True
                if worst is None or vmax - vmin > worst.vmax - worst.vmin:
                    worst = _radiomics_batched.GrayLevelBudgetError(
                        levels, vmin, vmax, max_gray_levels
                    )
        n_over += over
    if worst is not None:
        raise ROIValidationError(
            name, f"{n_over} of {n} objects: the widest " + gray_level_message(worst, settings)
        )


def _object_geometry(window, obj) -> tuple[float, ...]:
    rr, cc = np.nonzero(obj)
    r0, c0 = window[0].start, window[1].start
    return (
        r0 + rr.mean(),
        c0 + cc.mean(),
        r0 + rr.min(),
        c0 + cc.min(),
        r0 + rr.max() + 1,
        c0 + cc.max() + 1,
        rr.size,
    )


def local_features(
    image: np.ndarray,
    masks: Any,
    *,
    feature_sets: str | Sequence[str] = FEATURE_SETS,
    bin_width: float = 5.0,
    bin_count: int | None = None,
    min_texture_size: int = 4,
    max_gray_levels: int | None = DEFAULT_MAX_GRAY_LEVELS,
    max_objects: int | None = DEFAULT_MAX_OBJECTS,
    roi_id: str | None = None,
) -> LocalFeatureTables:
    """Local features of every calcification of one ROI.

    Objects are cropped out with their bands (``masks.object_windows()``) and go through
    pyradiomics in batches of at most ``BATCH_SIZE`` (256) objects
    (:func:`~skcalc.features._radiomics.radiomics_features_batch`), so memory is bounded by
    one batch plus the output table (about 1.7 kB per object). The values equal pyradiomics'
    ``execute`` on the whole image, object by object (see :mod:`skcalc.features._radiomics`).

    Budget: an ROI with more than ``max_objects`` calcifications, or an object whose values
    would need more than ``max_gray_levels`` gray levels (checked on the object and on the
    window around it, outside calcifications, for its band), is refused with an
    :class:`~skcalc.exceptions.ROIValidationError` naming the ROI before any feature is
    computed. With both bounds the cost is at most linear in objects and pixels.

    Parameters
    ----------
    image : ndarray, shape (H, W)
        Raw detector values.
    masks : CalcificationMasks
        Foreground labels, spacing (mm) and band width (mm) of the ROI.
    feature_sets : str or sequence of str, default=all three
        Subset of ``("fg_radiomics", "fg_regionprops", "bg_radiomics")``.
    bin_width, bin_count, min_texture_size, max_gray_levels
        See :func:`~skcalc.features._radiomics.radiomics_features`.
    max_objects : int or None, default=DEFAULT_MAX_OBJECTS (5000)
        Most calcifications accepted; None: no limit.
    roi_id : str, optional
        Kept on the result and named in warnings and errors.

    Returns
    -------
    LocalFeatureTables
        One row per object, in label order; NaN for feature classes an object is too small for.

    Warns
    -----
    DiscretisationWarning
        Most objects are left with a single gray level (e.g. values in [0, 1], bin_width 5).
    RadiomicsFallbackWarning
        The batched path failed on some objects (the reference path was used) or pyradiomics
        failed on some (NaN).

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
    settings = radiomics_settings(bin_width, bin_count)
    _check_budget(image, masks, sets, settings, max_objects, max_gray_levels, roi_id)
    n = int(sum(s is not None for s in ndi.find_objects(masks.foreground)))
    tables = {s: np.full((n, len(names[s])), np.nan) for s in sets}
    labels = np.zeros(n, np.int64)
    geometry = np.zeros((n, len(_GEOMETRY)))
    report = _Report(settings)
    common = (min_texture_size, max_gray_levels, roi_id, True, report)
    # pad=0 is exact: pyradiomics crops to the mask. Only bg_radiomics reads the bands.
    windows = masks.object_windows(pad=0, bands="bg_radiomics" in sets)
    start = 0
    while start < n:
        batch = [w for _, w in zip(range(BATCH_SIZE), windows)]
        rows = slice(start, start + len(batch))
        start += len(batch)
        crops = [image[win] for _, win, _, _ in batch]
        objects = [obj for _, _, obj, _ in batch]
        labels[rows] = [lab for lab, _, _, _ in batch]
        geometry[rows] = [_object_geometry(win, obj) for _, win, obj, _ in batch]
        for s in sets:
            if s == "fg_regionprops":
                tables[s][rows] = regionprops_features_batch(objects, crops, spacing)
            elif s == "fg_radiomics":
                tables[s][rows] = _features_batch(crops, objects, spacing, _FG_CLASSES, *common)
            else:
                bands = [band for _, _, _, band in batch]
                tables[s][rows] = _features_batch(crops, bands, spacing, _BG_CLASSES, *common)
        del batch, crops, objects
    report.warn(roi_id, stacklevel=2)
    return LocalFeatureTables(
        tables, names, labels, roi_id, dict(zip(_GEOMETRY, geometry.T)), spacing
    )


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


def _check_region(roi: ROI) -> None:
    # bool(NaN) is True: a float region with NaN would count NaN pixels as inside.
    region = roi.region
    if region is None:
        return
    region = np.asarray(region)
    if np.issubdtype(region.dtype, np.floating) and not np.isfinite(region).all():
        n_bad = int(region.size - np.isfinite(region).sum())
        raise ROIValidationError(
            roi.roi_id,
            f"region has {n_bad} NaN or infinite value(s); pass a boolean mask "
            "(e.g. np.nan_to_num(region) > 0)",
        )


def _roi_local_features(roi: ROI, **params: Any) -> LocalFeatureTables:
    # Module-level so that map_rois can memoise it and ship it to joblib workers.
    roi = roi.load()  # a lazy image is read once, here in the worker
    check_roi(roi, require=("masks",))
    _check_region(roi)
    _check_masks(roi)
    # The warnings travel with the result, so that transform re-emits them in the caller's
    # process, also from joblib workers and from the cache.
    with warnings.catch_warnings(record=True) as caught, quiet_radiomics():
        warnings.simplefilter("always")
        tables = local_features(bright_image(roi), roi.masks, roi_id=roi.roi_id, **params)
    tables.notes = [(w.category, str(w.message)) for w in caught]
    return tables


class LocalFeatureExtractor(ImageStage, auto_wrap_output_keys=None):
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
    max_gray_levels : int or None, default=256
        Most gray levels per object (the texture cost grows as Ng^2 to Ng^3). An ROI with an
        object (or band window) whose value range needs more at this ``bin_width`` is refused
        with an error naming it and the ``bin_width`` that would fit, before any work.
    max_objects : int or None, default=5000
        Most calcifications per ROI (about 5-10 ms each); more is refused with an error
        naming the ROI before any work. None: no limit.
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

    Cost: memory is one batch of 256 objects plus the output (about 1.7 kB per object);
    time is linear in objects and pixels within the two budgets above. Images scaled to
    huge values need a larger ``bin_width`` (or ``bin_count``); images in [0, 1] need a
    ``bin_width`` of about their objects' value range / 30 (a
    :class:`~skcalc.features.DiscretisationWarning` says so). A float ``region`` with NaN is
    refused.

    :meth:`LocalFeatureTables.to_frame` and :func:`local_features_table` give one row per
    calcification with ids, centroid, bounding box and area (pixels and mm) and every
    feature under its pyradiomics name; :func:`write_local_features_csv` writes it.

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
        "max_gray_levels": [Interval(Integral, 2, None, closed="left"), None],
        "max_objects": [Interval(Integral, 0, None, closed="left"), None],
        "memory": [None, str, HasMethods(["cache"])],
        "n_jobs": [Integral, None],
    }

    def __init__(
        self,
        feature_sets=FEATURE_SETS,
        bin_width=5.0,
        bin_count=None,
        min_texture_size=4,
        max_gray_levels=DEFAULT_MAX_GRAY_LEVELS,
        max_objects=DEFAULT_MAX_OBJECTS,
        memory=None,
        n_jobs=None,
    ):
        self.feature_sets = feature_sets
        self.bin_width = bin_width
        self.bin_count = bin_count
        self.min_texture_size = min_texture_size
        self.max_gray_levels = max_gray_levels
        self.max_objects = max_objects
        self.memory = memory
        self.n_jobs = n_jobs

    _stage = "local_features"
    _one = staticmethod(_roi_local_features)
    _requires = ("masks",)
    _depends_on = ("image", "masks", "inversion")

    def _fit_rois(self, rois):
        self.feature_names_ = local_feature_names(self.feature_sets)

    def _params(self, rois):
        return {
            "feature_sets": _check_feature_sets(self.feature_sets),
            "bin_width": float(self.bin_width),
            "bin_count": None if self.bin_count is None else int(self.bin_count),
            "min_texture_size": int(self.min_texture_size),
            "max_gray_levels": None if self.max_gray_levels is None else int(self.max_gray_levels),
            "max_objects": None if self.max_objects is None else int(self.max_objects),
        }

    def _summary(self, rois, out):
        empty = [t.roi_id for t in out if t.n_objects == 0]
        if empty:
            return (
                f"{len(empty)} ROI(s) have no calcification (e.g. {empty[:3]}): their local "
                "feature tables have 0 rows"
            )
        return None

    def _assemble(self, rois, out) -> list[LocalFeatureTables]:
        """Local feature tables of every ROI, in input order (one per ROI)."""
        notes: dict = {}
        for i, (roi, tables) in enumerate(zip(rois, out)):
            out_id = tables.roi_id
            if tables.roi_id != roi.roi_id:
                # A memoised result may come from another ROI with the same content: relabel
                # a copy, never the cached object other ROIs share.
                tables = out[i] = copy.copy(tables)
                tables.roi_id = roi.roi_id
                tables.notes = [
                    (cat, msg.replace(f"ROI {out_id!r}", f"ROI {roi.roi_id!r}", 1))
                    for cat, msg in tables.notes
                ]
            for category, message in getattr(tables, "notes", ()):
                notes.setdefault(category, []).append(message)
        # One warning per kind of note and call, naming how many ROIs it concerns.
        for category, messages in notes.items():
            more = f" (and {len(messages) - 1} more ROI(s) alike)" if len(messages) > 1 else ""
            warn_summary(messages[0] + more, category)
        return out
