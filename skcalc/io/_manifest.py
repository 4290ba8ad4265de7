"""Manifests: a CSV listing images and regions, turned into lazy ROI records."""

from __future__ import annotations

import csv
import io
import math
import os
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._units import check_spacing
from ..exceptions import SkcalcWarning, UnreadableImageError
from ..roi import ROI, Box
from ._dicom import is_dicom, read_dicom_header
from ._readers import read_image_shape, read_mammogram

__all__ = ["LABELS", "load_manifest", "parse_label", "region_box"]

#: Accepted label spellings (case-insensitive, ``-``/``_``/space equivalent).
#: 1 = actionable (malignant or high-risk lesion, needs biopsy/surgery); 0 = benign.
LABELS = {
    "0": 0,
    "benign": 0,
    "benign_without_callback": 0,
    "non_actionable": 0,
    "nonactionable": 0,
    "negative": 0,
    "1": 1,
    "malignant": 1,
    "actionable": 1,
    "high_risk": 1,
    "highrisk": 1,
    "positive": 1,
}

_BBOX_XY = ("x0", "y0", "x1", "y1")
_BBOX_RC = ("row0", "col0", "row1", "col1")
_CIRCLE = ("cx", "cy", "radius")
_KNOWN = {
    "image", "mask", "label", "patient_id", "exam_id", "roi_id", "spacing", "margin_mm",
    *_BBOX_XY, *_BBOX_RC, *_CIRCLE,
}  # fmt: skip


class _RowError(ValueError):
    pass


def parse_label(value: Any) -> int:
    """Map a label (0/1 or a clinical word) to 0/1; raise ``ValueError`` when unknown.

    Examples
    --------
    >>> from skcalc.io import parse_label
    >>> [parse_label(v) for v in ("malignant", "High-Risk", "BENIGN_WITHOUT_CALLBACK", 1)]
    [1, 1, 0, 1]
    """
    key = re.sub(r"[\s\-]+", "_", str(value).strip().lower())
    if key in ("0.0", "1.0"):
        key = key[0]
    if key not in LABELS:
        raise ValueError(
            f"unknown label {value!r}; use 0/1 or one of {sorted(k for k in LABELS if k[0] > '1')}"
        )
    return LABELS[key]


def region_box(
    bbox: Sequence[int], shape: Sequence[int], margin_px: Sequence[int]
) -> tuple[int, int, int, int]:
    """Grow a ``(r0, r1, c0, c1)`` box by ``margin_px`` (rows, cols), clipped to ``shape``.

    Examples
    --------
    >>> from skcalc.io import region_box
    >>> region_box((10, 20, 5, 8), (100, 50), (3, 6))
    (7, 23, 0, 14)
    """
    r0, r1, c0, c1 = bbox
    mr, mc = margin_px
    return (
        max(0, r0 - mr),
        min(int(shape[0]), r1 + mr),
        max(0, c0 - mc),
        min(int(shape[1]), c1 + mc),
    )


def _float(row: dict[str, str], key: str) -> float:
    try:
        value = float(row[key])
    except (TypeError, ValueError):
        raise _RowError(f"column {key!r} must be a number, got {row.get(key)!r}") from None
    if not math.isfinite(value):
        raise _RowError(f"column {key!r} must be finite, got {row[key]!r}")
    return value


def _int(row: dict[str, str], key: str) -> int:
    value = _float(row, key)
    if value != int(value):
        raise _RowError(f"column {key!r} must be a whole number of pixels, got {row[key]!r}")
    return int(value)


def _parse_spacing(text: str) -> tuple[float, float]:
    parts = [p for p in re.split(r"[\s;x/]+", text.strip().lower()) if p]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise _RowError(f"spacing must be a number or two numbers, got {text!r}") from None
    try:
        return check_spacing(values[0] if len(values) == 1 else values, name="column 'spacing'")
    except ValueError as exc:
        raise _RowError(str(exc)) from None


def _resolve(base: Path, value: str, what: str) -> str:
    if not value:
        raise _RowError(f"empty {what!r} path")
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = base / path
    if not path.is_file():
        raise _RowError(f"{what} file {str(path)!r} does not exist")
    return str(path)


def _present(row: dict[str, str], keys: Sequence[str]) -> bool:
    return all(row.get(k) not in (None, "") for k in keys)


def _region_of_row(row, image_shape, spacing, margin_mm, base):
    """Return (box, region mask relative to the crop, description of the ROI geometry)."""
    margin = (math.ceil(margin_mm / spacing[0]), math.ceil(margin_mm / spacing[1]))
    height, width = image_shape
    if _present(row, ("mask",)):
        mask_path = _resolve(base, row["mask"], "mask")
        try:
            mask = read_mammogram(mask_path, warn_spacing=False)[0] != 0
        except UnreadableImageError as exc:
            raise _RowError(str(exc)) from None
        if mask.shape != tuple(image_shape):
            raise _RowError(f"mask shape {mask.shape} differs from image shape {image_shape}")
        rows, cols = np.nonzero(mask)
        if rows.size == 0:
            raise _RowError(f"mask {mask_path!r} is empty")
        bbox = (int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1)
        box = region_box(bbox, image_shape, margin)
        return box, mask[box[0] : box[1], box[2] : box[3]].copy(), {"mask": mask_path}
    if _present(row, _BBOX_RC) or _present(row, _BBOX_XY):
        if _present(row, _BBOX_RC):
            r0, c0, r1, c1 = (_int(row, k) for k in _BBOX_RC)
        else:
            c0, r0, c1, r1 = (_int(row, k) for k in _BBOX_XY)
        if not (0 <= r0 < r1 <= height and 0 <= c0 < c1 <= width):
            raise _RowError(
                f"bad bounding box rows {r0}:{r1}, cols {c0}:{c1} (need 0 <= start < end <= "
                f"size) for an image of shape {tuple(image_shape)}"
            )
        box = region_box((r0, r1, c0, c1), image_shape, margin)
        region = np.zeros((box[1] - box[0], box[3] - box[2]), dtype=bool)
        region[r0 - box[0] : r1 - box[0], c0 - box[2] : c1 - box[2]] = True
        return box, region, {"bbox": Box(r0, r1, c0, c1)}
    if _present(row, _CIRCLE):
        cx, cy, radius = (_float(row, k) for k in _CIRCLE)
        if radius <= 0 or not (0 <= cx < width and 0 <= cy < height):
            raise _RowError(
                f"bad circle centre ({cx}, {cy}) / radius {radius} for an image of shape "
                f"{tuple(image_shape)} (centre inside the image, radius > 0)"
            )
        bbox = (
            max(0, math.floor(cy - radius)),
            min(height, math.floor(cy + radius) + 1),
            max(0, math.floor(cx - radius)),
            min(width, math.floor(cx + radius) + 1),
        )
        box = region_box(bbox, image_shape, margin)
        rr, cc = np.mgrid[box[0] : box[1], box[2] : box[3]]
        region = (rr - cy) ** 2 + (cc - cx) ** 2 <= radius**2
        return box, region, {"circle": (cx, cy, radius)}
    raise _RowError(
        "no region: give 'mask', or 'row0,col0,row1,col1', or 'x0,y0,x1,y1', or 'cx,cy,radius'"
    )


def load_manifest(
    csv_path: str | os.PathLike,
    *,
    spacing: float | Sequence[float] | None = None,
    margin_mm: float = 2.0,
):
    """Read a CSV manifest into lazy :class:`~skcalc.ROI` records, labels and groups.

    Columns (header names are case-sensitive, surrounding spaces ignored):

    ``image`` (required)
        Image path (any :func:`read_mammogram` format); relative paths are resolved against
        the CSV's folder.
    region, one of
        ``mask`` (a mask image of the image's shape, non-zero = region);
        ``row0,col0,row1,col1`` or ``x0,y0,x1,y1`` (x = column, y = row): a bounding box in
        pixels, start inclusive and end exclusive (Python slices). Columns are matched by
        name, in any order; the ROI's ``box`` is a :class:`~skcalc.roi.Box` whose tuple
        order is ``(row0, row1, col0, col1)``: read it by field name;
        ``cx,cy,radius``: a disk in pixels (centre column, centre row).
    ``margin_mm`` (optional)
        Context kept around the region's bounding box (default ``margin_mm``, 2 mm); the
        crop is clipped to the image.
    ``label`` (optional)
        0/1 or words (:data:`LABELS`): benign, benign_without_callback, non-actionable,
        negative -> 0; malignant, actionable, high-risk, positive -> 1.
    ``patient_id``, ``exam_id``, ``roi_id`` (optional)
        ``roi_id`` defaults to ``"<image stem>:<line>"`` and must be unique.
    ``spacing`` (optional)
        mm, one number or two (``"0.07 0.065"``, row then column); checked by
        :func:`skcalc._units.check_spacing` (0.02-1 mm unless widened with
        :func:`skcalc.plausible_spacing`), like the DICOM header's spacing.

    For DICOM images the header's ``BitsStored`` is carried into each ROI's
    ``meta["bits_stored"]``, so that the segmentation scales every crop by the detector's
    depth rather than guessing it from the crop.

    The CSV must be UTF-8 text (a BOM is accepted).

    Any other column is copied to ``meta`` as a string.

    Parameters
    ----------
    csv_path : path
    spacing : float or (float, float), optional
        Fallback spacing in mm for rows whose spacing is neither in the CSV nor in a DICOM
        header. Spacing precedence: CSV column, DICOM header (read with
        ``stop_before_pixels``), this argument; a row with none of them is an error.
    margin_mm : float, default=2.0
        Default crop margin in mm.

    Returns
    -------
    rois : list of ROI
        Lazy records: ``path`` and ``box`` (a :class:`~skcalc.roi.Box`: ``box.row0``,
        ``box.slices``; the crop, i.e. the region's bounding box grown by the margin),
        ``region`` relative to the crop; pixels are read on access (mask files are read now,
        to find their box). ``meta["bbox"]`` is the manifest's own box, also a ``Box``.
    y : ndarray of int or None
        Labels, ``None`` when the CSV has no ``label`` column.
    groups : ndarray of str or None
        ``exam_id``, else ``patient_id``, else ``None`` when the CSV has neither column.

    Raises
    ------
    UnreadableImageError
        An image or mask of a row cannot be read, naming the CSV, the line and the file.
    ValueError
        Naming the CSV, the line number and the problem (missing file, bad box, unknown
        label, missing or implausible spacing, duplicate roi_id, not UTF-8, ...).
    """
    csv_path = Path(os.fspath(csv_path))
    if not csv_path.is_file():
        raise FileNotFoundError(f"manifest {str(csv_path)!r} does not exist")
    if spacing is not None:
        spacing = check_spacing(spacing, name="spacing")
    base = csv_path.parent
    rois, labels, groups, seen = [], [], [], {}
    text = _read_text(csv_path)
    with io.StringIO(text, newline="") as fh:
        reader = csv.DictReader(fh)
        fields = [f.strip() for f in (reader.fieldnames or [])]
        if "image" not in fields:
            raise ValueError(f"{csv_path}: manifest needs an 'image' column, got {fields}")
        has_label = "label" in fields
        group_key = (
            "exam_id" if "exam_id" in fields else ("patient_id" if "patient_id" in fields else None)
        )
        for raw in reader:
            line = reader.line_num
            row = {
                (k or "").strip(): (v or "").strip() if isinstance(v, str) else ""
                for k, v in raw.items()
            }
            if not any(row.values()):
                continue
            try:
                roi, label = _row_to_roi(row, line, base, csv_path, spacing, margin_mm, has_label)
            except UnreadableImageError as exc:
                raise UnreadableImageError(f"{csv_path}, line {line}: {exc}") from exc
            except (_RowError, ValueError, TypeError, OSError) as exc:
                raise ValueError(f"{csv_path}, line {line}: {exc}") from None
            except Exception as exc:  # noqa: BLE001 - whatever a reader raised, name the line
                raise UnreadableImageError(
                    f"{csv_path}, line {line}: {type(exc).__name__}: {exc}"
                ) from exc
            if roi.roi_id in seen:
                raise ValueError(
                    f"{csv_path}, line {line}: roi_id {roi.roi_id!r} already used on line "
                    f"{seen[roi.roi_id]}"
                )
            seen[roi.roi_id] = line
            if group_key is not None and not row.get(group_key):
                raise ValueError(f"{csv_path}, line {line}: empty {group_key!r}")
            rois.append(roi)
            labels.append(label)
            groups.append(row.get(group_key) if group_key else None)
    if not rois:
        raise ValueError(f"{csv_path}: manifest has no rows")
    y = np.asarray(labels, dtype=np.int64) if has_label else None
    return rois, y, (np.asarray(groups, dtype=object) if group_key else None)


def _read_text(csv_path: Path) -> str:
    """The manifest as text; a non-UTF-8 file is an error naming the line to fix."""
    data = csv_path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ValueError(
            f"{csv_path}, line {line}: not UTF-8 text (byte 0x{data[exc.start]:02x}); "
            "save the manifest as UTF-8 (in a spreadsheet: 'CSV UTF-8')"
        ) from None


def _row_to_roi(row, line, base, csv_path, default_spacing, margin_mm, has_label):
    image_path = _resolve(base, row.get("image", ""), "image")
    label = None
    if has_label:
        try:
            label = parse_label(row.get("label", ""))
        except ValueError as exc:
            raise _RowError(str(exc)) from None
    header: dict[str, Any] = {}
    if is_dicom(image_path):
        # Header only (stop_before_pixels): spacing, size, BitsStored and identifiers.
        header = read_dicom_header(image_path, warn=False)
    if row.get("spacing"):
        spacing, spacing_source = _parse_spacing(row["spacing"]), "manifest"
        theirs = header.get("spacing")  # (row, col) when the header has one
        if theirs is not None and not np.allclose(spacing, theirs, rtol=0.02):
            # the column wins (documented), but a disagreement is usually a slip
            warnings.warn(
                f"{csv_path}, line {line}: the 'spacing' column ({spacing[0]:g} x "
                f"{spacing[1]:g} mm) overrides {image_path}'s DICOM {header['spacing_source']} "
                f"({theirs[0]:g} x {theirs[1]:g} mm)",
                SkcalcWarning, stacklevel=4)
    elif header.get("spacing") is not None:
        spacing_source = f"DICOM {header['spacing_source']}"
        try:
            spacing = check_spacing(header["spacing"], name=f"pixel spacing from {spacing_source}")
        except ValueError as exc:
            raise _RowError(
                f"{image_path}: {exc}; give the right value in a 'spacing' column"
            ) from None
    elif default_spacing is not None:
        spacing, spacing_source = default_spacing, "load_manifest(spacing=...)"
    else:
        raise _RowError(
            f"no pixel spacing for {image_path!r}: add a 'spacing' column, or pass "
            "load_manifest(..., spacing=MM) (on the command line: --spacing MM)"
        )
    margin = _float(row, "margin_mm") if row.get("margin_mm") else float(margin_mm)
    if margin < 0:
        raise _RowError(f"margin_mm must be >= 0, got {margin}")
    if header.get("rows") and header.get("columns"):
        shape = (header["rows"], header["columns"])
    else:
        shape = read_image_shape(image_path)
    box, region, geometry = _region_of_row(row, shape, spacing, margin, base)
    roi_id = row.get("roi_id") or f"{Path(image_path).stem}:{line}"
    meta = {k: v for k, v in row.items() if k not in _KNOWN and k}
    meta.update(
        roi_id=roi_id,
        patient_id=row.get("patient_id") or header.get("patient_id"),
        exam_id=row.get("exam_id") or None,
        image_id=Path(image_path).stem,
        source=image_path,
        manifest=str(csv_path),
        manifest_line=line,
        label=label,
        margin_mm=margin,
        spacing_source=spacing_source,
        **geometry,
    )
    for key in ("laterality", "view", "manufacturer", "presentation_intent"):
        if header.get(key) and key not in meta:
            meta[key] = header[key]
    identity = (header.get("rescale_slope"), header.get("rescale_intercept")) == (1.0, 0.0)
    if header.get("bits_stored") and identity:
        # The detector's depth, for every crop of the image (issue 10.2); not after a
        # modality rescale, whose float values the stored depth does not bound.
        meta["bits_stored"] = int(header["bits_stored"])
    roi = ROI(path=image_path, box=box, region=region, spacing=spacing, meta=meta)
    return roi, label
