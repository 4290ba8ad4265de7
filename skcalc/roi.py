"""The ROI record: one mammogram region of interest and everything the stages attach to it.

Image stages take and return plain Python lists of :class:`ROI`, so that scikit-learn's
indexing, CV splitters and ``GridSearchCV`` work unchanged. A record is immutable: a stage
returns new records through :meth:`ROI.replace` and never mutates its input.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, Protocol, runtime_checkable

import numpy as np

from ._arrays import array_digest, freeze, owned
from ._units import DEFAULT_SPACING, check_spacing
from .exceptions import ROIValidationError

__all__ = [
    "ROI",
    "Box",
    "as_roi_list",
    "bright_image",
    "check_roi",
    "exam_groups",
    "register_image_reader",
]

#: ``meta`` key set by the segmenter when it found the breast darker than its air: the
#: value ``top`` such that ``top - image`` has the breast bright (see :func:`bright_image`).
INVERSION_KEY = "inversion_top"

_FIELDS = (
    "image",
    "spacing",
    "region",
    "calcifications",
    "reference",
    "masks",
    "meta",
    "path",
    "box",
)


@runtime_checkable
class _DeferredMask(Protocol):
    """A mask that a loader gives without holding it: its shape, and a method making it.

    ``materialise()`` returns a new array of ``shape`` on each call. A record accepts one as
    ``reference`` so that a data set of full-size mammograms need not hold every mask
    (INbreast's is ~13 MB an image); the source must be small and picklable, as records are
    sent to worker processes.
    """

    shape: tuple[int, int]

    def materialise(self) -> np.ndarray: ...


class Box(NamedTuple):
    """A crop of an image file: rows ``row0:row1``, columns ``col0:col1`` (half-open).

    ``ROI.box`` is one. The tuple order is ``(row0, row1, col0, col1)`` (each axis's
    slice), while a manifest names its box columns ``row0,col0,row1,col1`` (two corners):
    read the fields by name (``box.row0``) or use :attr:`slices`, and neither order matters.

    Examples
    --------
    >>> import numpy as np
    >>> from skcalc.roi import Box
    >>> box = Box(row0=10, row1=20, col0=5, col1=8)
    >>> box.row1, box.col0, box == (10, 20, 5, 8)
    (20, 5, True)
    >>> np.zeros((30, 30))[box.slices].shape, box.shape
    ((10, 3), (10, 3))
    """

    row0: int
    row1: int
    col0: int
    col1: int

    @property
    def slices(self) -> tuple[slice, slice]:
        """``(slice(row0, row1), slice(col0, col1))``: index the file's image with it."""
        return slice(self.row0, self.row1), slice(self.col0, self.col1)

    @property
    def shape(self) -> tuple[int, int]:
        """Rows and columns of the crop."""
        return self.row1 - self.row0, self.col1 - self.col0


class ROI:
    """A mammogram region of interest.

    The record owns its arrays: read-only arrays that no one can write are kept, anything
    else is copied once (the caller's arrays are neither modified nor followed), so the
    record's content, and the cache keys derived from it, can never change. A stage that
    derives new arrays stores them with :meth:`replace`.

    Parameters
    ----------
    image : ndarray of shape (H, W), optional
        The crop in raw detector values (uint16 or float); never rescaled by skcalc.
        May be omitted when ``path`` is given: the image is then read on access (lazily),
        which lets a cluster worker load it where the work happens.
    spacing : float or (float, float), default=(0.07, 0.07)
        Pixel spacing in mm, (row, column); must be plausible for a mammogram (0.02-1 mm,
        see :func:`skcalc.plausible_spacing` to widen it).
    region : ndarray of bool, shape (H, W), optional
        The annotated region inside the crop (the radiologist's ROI). ``None`` means the
        whole crop. The crop may carry a margin around it so that filters see context.
    calcifications : ndarray of int, shape (H, W), optional
        Label image of segmented calcifications (0 = background), filled by the segmenter.
    reference : ndarray of bool, shape (H, W), optional
        Ground-truth calcification mask, for training and scoring the segmenter. Dataset
        loaders may give it lazily (e.g. :func:`skcalc.datasets.load_inbreast` keeps the
        annotation points): ``roi.reference`` then rasterises the mask on each access,
        while ``roi.shape``, :func:`check_roi`, :meth:`replace` and pickling do not.
    masks : object, optional
        The :class:`skcalc.masks.CalcificationMasks` built by :class:`skcalc.MaskBuilder`.
    meta : mapping, optional
        Identifiers (``roi_id``, ``patient_id``, ``exam_id``, ``image_id``, ``laterality``,
        ``view``, ``source``) and anything else. The segmenter adds ``segmentation`` (its
        summary) and, when it found the breast darker than its air, ``inversion_top``
        (see :func:`bright_image`).
    path : str or path-like, optional
        File to read the image from when ``image`` is not given (any format of
        :func:`skcalc.io.read_mammogram`).
    box : (int, int, int, int), optional
        ``(row0, row1, col0, col1)`` crop of the file's image (each axis's half-open slice;
        note a manifest's columns are ``row0,col0,row1,col1``); ``None`` for the whole
        image. Read back as a :class:`Box` with named fields (``roi.box.row0``) and
        ``roi.box.slices``.

    Examples
    --------
    >>> import numpy as np
    >>> from skcalc import ROI
    >>> roi = ROI(np.zeros((4, 5), np.uint16), spacing=0.07, meta={"roi_id": "r1"})
    >>> roi.shape, roi.spacing, roi.roi_id
    ((4, 5), (0.07, 0.07), 'r1')
    >>> roi.replace(meta={"roi_id": "r2"}).roi_id
    'r2'
    """

    __slots__ = tuple("_" + f for f in _FIELDS)

    def __init__(
        self,
        image: np.ndarray | None = None,
        spacing: float | Sequence[float] = DEFAULT_SPACING,
        region: np.ndarray | None = None,
        calcifications: np.ndarray | None = None,
        reference: np.ndarray | _DeferredMask | None = None,
        masks: Any = None,
        meta: Mapping[str, Any] | None = None,
        path: str | os.PathLike | None = None,
        box: Sequence[int] | None = None,
    ) -> None:
        set_ = object.__setattr__
        set_(self, "_meta", dict(meta) if meta is not None else {})
        set_(self, "_path", None if path is None else os.fspath(path))
        try:
            spacing = check_spacing(spacing)
        except ValueError as exc:
            raise ROIValidationError(self.roi_id, str(exc)) from None
        set_(self, "_image", owned(image))
        set_(self, "_spacing", spacing)
        set_(self, "_region", owned(region))
        set_(self, "_calcifications", owned(calcifications))
        set_(self, "_reference", owned(reference))
        set_(self, "_masks", masks)
        set_(self, "_box", None if box is None else tuple(int(b) for b in box))
        if image is None and path is None:
            raise ROIValidationError(self.roi_id, "needs an image or a path to read it from")

    # ------------------------------------------------------------------ access
    @property
    def image(self) -> np.ndarray:
        """The pixel array; read from ``path`` on each access when not held in memory."""
        if self._image is not None:
            return self._image
        img = _READER["read"](self._path)
        if self._box is not None:
            r0, r1, c0, c1 = self._box
            img = img[r0:r1, c0:c1]
        return img

    @property
    def is_lazy(self) -> bool:
        """True when the image is read from ``path`` on access."""
        return self._image is None

    spacing = property(lambda self: self._spacing, doc="Pixel spacing in mm (row, col).")
    region = property(lambda self: self._region, doc="Annotated-region mask or None.")
    calcifications = property(lambda self: self._calcifications, doc="Calcification labels.")
    masks = property(lambda self: self._masks, doc="CalcificationMasks from MaskBuilder.")
    meta = property(lambda self: self._meta, doc="Identifiers and other metadata.")
    path = property(lambda self: self._path, doc="Source file of a lazy image.")
    box = property(
        lambda self: None if self._box is None else Box(*self._box),
        doc="Crop of the file: a :class:`Box` (row0, row1, col0, col1), fields by name.",
    )

    @property
    def reference(self) -> np.ndarray | None:
        """Ground-truth calcification mask; rasterised on each access when given lazily."""
        ref = self._reference
        if ref is None or isinstance(ref, np.ndarray) or not isinstance(ref, _DeferredMask):
            return ref
        # Not kept: holding the mask in the record is what a lazy source avoids.
        mask = np.asarray(ref.materialise())
        if mask.shape != tuple(ref.shape):
            raise ROIValidationError(
                self.roi_id, f"lazy reference made a mask of shape {mask.shape}, not {ref.shape}"
            )
        # Read-only like the record's own arrays (and so digested once while it lives).
        return freeze(mask)

    @property
    def roi_id(self) -> str:
        """``meta['roi_id']``, else the source path, else ``'<unnamed ROI>'``."""
        rid = self._meta.get("roi_id") if self._meta else None
        if rid is None:
            rid = self._path or "<unnamed ROI>"
        return str(rid)

    @property
    def shape(self) -> tuple[int, int]:
        """Image shape, without reading a lazy image when a box or mask tells it.

        A lazy reference tells its shape without being rasterised.
        """
        if self._image is not None:
            return tuple(self._image.shape)
        for m in (self._region, self._calcifications, self._reference):
            if m is not None:
                return tuple(m.shape)
        if self._box is not None:
            r0, r1, c0, c1 = self._box
            return (r1 - r0, c1 - c0)
        return tuple(self.image.shape)

    @property
    def region_mask(self) -> np.ndarray:
        """``region`` as a boolean array, the whole crop when no region is given."""
        if self._region is None:
            return np.ones(self.shape, dtype=bool)
        return np.asarray(self._region, dtype=bool)

    # ------------------------------------------------------------------ updates
    def replace(self, **changes: Any) -> ROI:
        """Return a new record with some fields changed; a lazy image or reference stays lazy."""
        unknown = set(changes) - set(_FIELDS)
        if unknown:
            raise TypeError(f"ROI has no field(s) {sorted(unknown)}")
        kwargs = {f: getattr(self, "_" + f) for f in _FIELDS}
        kwargs.update(changes)
        return ROI(**kwargs)

    def load(self) -> ROI:
        """Return a record holding its image in memory."""
        if self._image is not None:
            return self
        return self.replace(image=self.image, path=None, box=None)

    def content_hash(self, fields: Sequence[str] = ("image",)) -> str:
        """SHA-1 of the spacing and the named fields: the key of per-ROI caches.

        Arrays are hashed by content (the record owns them, so a digest is computed once per
        array). A lazy image is hashed by its file's bytes in the box, read once per file
        state (path, size, modification time, inode). ``masks`` hash themselves
        (``masks.content_hash()``). A lazy reference is hashed by the mask it rasterises, so
        the key is that of a record holding the mask.

        Examples
        --------
        >>> import numpy as np
        >>> a = ROI(np.zeros((2, 2), np.uint16))
        >>> b = ROI(np.zeros((2, 2), np.uint16), meta={"roi_id": "other"})
        >>> a.content_hash() == b.content_hash()
        True
        >>> a.content_hash() == ROI(np.ones((2, 2), np.uint16)).content_hash()
        False
        """
        h = hashlib.sha1()
        h.update(repr(self._spacing).encode())
        for name in fields:
            if name == "inversion":
                # the orientation :func:`bright_image` applies; nothing when there is none,
                # so that the keys of images used as given do not change
                top = self._meta.get(INVERSION_KEY)
                if top is not None:
                    h.update(b"inversion" + repr(float(top)).encode())
                continue
            h.update(name.encode())
            if name == "image" and self.is_lazy:
                h.update(_file_digest(self._path, self._box))
            elif name == "masks":
                m = self._masks
                h.update(b"none" if m is None else m.content_hash().encode())
            else:
                # The public accessor: a lazy reference's mask, not its source object.
                value = getattr(self, name)
                h.update(b"none" if value is None else array_digest(np.asarray(value)))
        return h.hexdigest()

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("ROI records are immutable; use roi.replace(...)")

    def __getstate__(self):
        return {f: getattr(self, "_" + f) for f in _FIELDS}

    def __setstate__(self, state):
        for f in _FIELDS:
            object.__setattr__(self, "_" + f, state.get(f))

    def __repr__(self) -> str:
        shape = "x".join(map(str, self.shape)) if not self.is_lazy or self._box else "lazy"
        parts = [f"id={self.roi_id!r}", f"shape={shape}", f"spacing={self._spacing}"]
        if self._calcifications is not None:
            parts.append(f"n_calcifications={int(np.max(self._calcifications, initial=0))}")
        if self._reference is not None:
            parts.append("reference")
        if self._masks is not None:
            parts.append("masks")
        return f"ROI({', '.join(parts)})"


def reflect(image: np.ndarray, top: float) -> np.ndarray:
    """``top - image`` in the image's own type (signed integers widened to int32).

    Examples
    --------
    >>> import numpy as np
    >>> reflect(np.array([0, 1, 4095], np.uint16), 4095)
    array([4095, 4094,    0], dtype=uint16)
    """
    image = np.asarray(image)
    if np.issubdtype(image.dtype, np.signedinteger):
        return (np.int64(top) - image.astype(np.int64)).astype(np.int32)
    return (image.dtype.type(top) - image).astype(image.dtype, copy=False)


def bright_image(roi: ROI) -> np.ndarray:
    """The ROI's pixels the way its segmentation saw them: with the breast bright.

    When :class:`~skcalc.segmentation.HDoGRegSegmenter` (``polarity="auto"`` or ``"dark"``)
    found the breast darker than the air around it (raw "for processing" data, MONOCHROME1
    pixels read without their inversion), it segmented ``top - image`` and recorded ``top``
    in ``meta["inversion_top"]``; the stages that measure intensities (local radiomic
    features, the CNN classifier's input, the overlays) read the pixels through this
    function, so they see the calcifications bright too. Otherwise the image as given.

    Parameters
    ----------
    roi : ROI

    Returns
    -------
    ndarray of shape (H, W)

    Examples
    --------
    >>> import numpy as np
    >>> from skcalc import ROI
    >>> roi = ROI(np.array([[0, 4000]], np.uint16), spacing=0.1)
    >>> bright_image(roi)
    array([[   0, 4000]], dtype=uint16)
    >>> bright_image(roi.replace(meta={"inversion_top": 4095}))
    array([[4095,   95]], dtype=uint16)
    """
    top = roi.meta.get(INVERSION_KEY)
    image = roi.image
    return image if top is None else reflect(image, top)


def _no_reader(path: str) -> np.ndarray:
    raise RuntimeError(f"no image reader registered to read {path!r}; import skcalc.io")


# The file layer (skcalc.io) sits above the records: it registers its reader here when it
# is imported (skcalc's package import does), so records never import the file layer.
_READER: dict[str, Any] = {"read": _no_reader}


def register_image_reader(read: Any) -> None:
    """Set the function ``read(path) -> 2-D ndarray`` that lazy ROIs load their pixels with.

    Called by :mod:`skcalc.io` on import; not needed in user code.
    """
    _READER["read"] = read


_FILE_DIGESTS: dict[tuple, bytes] = {}


def _file_digest(path: str, box: tuple | None) -> bytes:
    # Content, not (path, size, mtime): ``cp -p`` can give new content the old size and
    # time. The file is hashed once per state, so a grid search reads it once.
    st = os.stat(path)
    key = (os.path.abspath(path), st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)
    digest = _FILE_DIGESTS.get(key)
    if digest is None:
        h = hashlib.sha1()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        digest = h.digest()
        _FILE_DIGESTS[key] = digest
    return digest + repr(box).encode()


def check_roi(roi: ROI, *, require: Sequence[str] = (), load_image: bool = True) -> ROI:
    """Validate one ROI and raise :class:`ROIValidationError` naming it on bad input.

    Checks: 2-D image, numeric and finite, not empty, positive finite spacing, masks of the
    image's shape, and the presence of the fields in ``require``.

    Examples
    --------
    >>> import numpy as np
    >>> from skcalc import ROI
    >>> from skcalc.roi import check_roi
    >>> check_roi(ROI(np.ones((3, 3)), meta={"roi_id": "a"}))
    ROI(id='a', shape=3x3, spacing=(0.07, 0.07))
    >>> check_roi(ROI(np.ones(3), meta={"roi_id": "b"}))
    Traceback (most recent call last):
    ...
    skcalc.exceptions.ROIValidationError: ROI 'b': image must be 2-D, got 1-D with shape (3,)
    """
    if not isinstance(roi, ROI):
        raise TypeError(f"expected an skcalc.ROI, got {type(roi).__name__}")
    rid = roi.roi_id
    if load_image or not roi.is_lazy:
        img = roi.image
        if not isinstance(img, np.ndarray):
            raise ROIValidationError(rid, f"image must be a numpy array, got {type(img).__name__}")
        if img.ndim != 2:
            raise ROIValidationError(
                rid, f"image must be 2-D, got {img.ndim}-D with shape {img.shape}"
            )
        if img.size == 0:
            raise ROIValidationError(rid, f"image is empty (shape {img.shape})")
        if not (np.issubdtype(img.dtype, np.number) or img.dtype == bool):
            raise ROIValidationError(rid, f"image must be numeric, got dtype {img.dtype}")
        if np.issubdtype(img.dtype, np.floating) and not np.isfinite(img).all():
            n_bad = int(np.size(img) - np.isfinite(img).sum())
            raise ROIValidationError(rid, f"image has {n_bad} NaN or infinite pixel(s)")
        shape = img.shape
    else:
        # The box is the unread image's shape; ROI.shape would take the masks' first.
        shape = roi.box.shape if roi.box is not None else roi.shape
    for name in ("region", "calcifications", "reference"):
        # A lazy reference is checked by the shape it declares, without rasterising it
        # (ROI.reference refuses a mask of another shape).
        m = getattr(roi, "_" + name)
        if m is None:
            continue
        if not isinstance(m, (np.ndarray, _DeferredMask)) or tuple(m.shape) != tuple(shape):
            got = getattr(m, "shape", type(m).__name__)
            raise ROIValidationError(rid, f"{name} has shape {got}, image has shape {shape}")
    r = roi.region
    if r is not None and np.issubdtype(r.dtype, np.floating) and not np.isfinite(r).all():
        n_bad = int(np.size(r) - np.isfinite(r).sum())
        raise ROIValidationError(
            rid, f"region has {n_bad} NaN or infinite value(s); pass a boolean mask"
        )
    if roi.region is not None and not np.asarray(roi.region, bool).any():
        raise ROIValidationError(rid, "region mask is empty")
    for name in require:
        # A field given lazily is present: do not rasterise it to say so.
        if getattr(roi, "_" + name, None) is None and getattr(roi, name) is None:
            raise ROIValidationError(rid, f"has no {name!r}; run the stage that produces it first")
    return roi


def as_roi_list(X: Any, *, require: Sequence[str] = (), load_image: bool = False) -> list[ROI]:
    """Validate ``X`` as a sequence of ROIs and return it as a list.

    A bare 2-D array is refused rather than read as rows: image stages take lists of
    :class:`ROI` (use :meth:`ROI` to wrap a single image).
    """
    if isinstance(X, ROI):
        raise TypeError("expected a list of ROI records, got a single ROI; wrap it in a list")
    if isinstance(X, np.ndarray) and X.dtype != object:
        raise TypeError(
            f"expected a list of skcalc.ROI records, got an array of shape {X.shape}; "
            "wrap images with skcalc.ROI(image, spacing=...)"
        )
    if isinstance(X, (str, bytes)) or not hasattr(X, "__len__"):
        raise TypeError(f"expected a list of skcalc.ROI records, got {type(X).__name__}")
    rois = list(X)
    if len(rois) == 0:
        raise ValueError("expected at least one ROI, got an empty list")
    for r in rois:
        check_roi(r, require=require, load_image=load_image)
    return rois


def exam_groups(rois: Sequence[ROI]) -> tuple[np.ndarray | None, str | None]:
    """Group ids of ROIs for splits that keep an exam on one side, from their metadata.

    Parameters
    ----------
    rois : sequence of ROI

    Returns
    -------
    groups : ndarray of str (object dtype) or None
        ``meta["exam_id"]`` of each ROI when every ROI has one, else ``meta["patient_id"]``
        when every ROI has one, else None.
    key : {"exam_id", "patient_id"} or None
        The metadata key the groups come from.

    Examples
    --------
    >>> from skcalc import ROI
    >>> rois = [ROI([[0.0]], meta={"exam_id": "e1", "patient_id": "p1"}),
    ...         ROI([[0.0]], meta={"patient_id": "p2"})]
    >>> exam_groups(rois)
    (array(['p1', 'p2'], dtype=object), 'patient_id')
    >>> exam_groups([ROI([[0.0]])])
    (None, None)
    """
    for key in ("exam_id", "patient_id"):
        ids = [r.meta.get(key) for r in rois]
        if all(i is not None and str(i) != "" for i in ids):
            return np.asarray([str(i) for i in ids], dtype=object), key
    return None, None
