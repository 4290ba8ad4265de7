"""Loaders for the public CBIS-DDSM and INbreast datasets, from their documented layouts.

Neither dataset ships with skcalc (both need a registration or a TCIA download); point the
loaders at the folder you downloaded.
"""

from __future__ import annotations

import csv
import math
import os
import plistlib
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from xml.parsers.expat import ExpatError

import numpy as np

from ..exceptions import SkcalcWarning, UnreadableImageError
from ..io._dicom import read_dicom_header
from ..io._manifest import region_box
from ..io._readers import read_mammogram
from ..roi import ROI

__all__ = ["load_cbis_ddsm", "load_inbreast"]

#: CBIS-DDSM pathology -> label (1 = malignant).
CBIS_PATHOLOGY = {"BENIGN": 0, "BENIGN_WITHOUT_CALLBACK": 0, "MALIGNANT": 1}
#: DDSM films were digitised at 42-50 um depending on the scanner; CBIS-DDSM headers
#: usually carry no spacing, so this default is used (with a warning).
CBIS_DEFAULT_SPACING_MM = 0.05
#: INbreast: Siemens MammoNovation, 70 um pixels.
INBREAST_SPACING_MM = 0.07


class _Skip(ValueError):
    pass


def _cbis_bases(root: Path) -> list[Path]:
    bases = [root / "CBIS-DDSM", root]
    bases += sorted(p for p in root.glob("*/CBIS-DDSM") if p.is_dir())
    return [b for b in bases if b.is_dir()]


def _find_folder(bases: Sequence[Path], name: str) -> Path | None:
    for base in bases:
        if (base / name).is_dir():
            return base / name
    return None


def _dicoms(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.dcm") if p.is_file())


def _full_mammogram(folder: Path) -> Path:
    files = _dicoms(folder)
    if len(files) > 1:
        named = [p for p in files if "full mammogram" in str(p.parent).lower()]
        files = named or files
    if len(files) != 1:
        raise _Skip(f"expected one full-mammogram DICOM under {str(folder)!r}, found {len(files)}")
    return files[0]


def _roi_mask(folder: Path, image_shape: tuple[int, int]) -> Path:
    """The ROI mask among the DICOMs of a ``<image folder>_<abnormality id>`` folder.

    That folder holds the binary mask (the full image's size) and a small cropped image;
    their file names and the CSV's columns are known to be swapped in places, so the mask
    is identified by its size, then by a series description or folder name containing
    "mask".
    """
    files = _dicoms(folder)
    if not files:
        raise _Skip(f"no DICOM in the ROI folder {str(folder)!r}")
    headers = {p: read_dicom_header(p, warn=False) for p in files}
    same_size = [p for p in files if (headers[p]["rows"], headers[p]["columns"]) == image_shape]
    if len(same_size) == 1:
        return same_size[0]
    pool = same_size or files
    named = [
        p
        for p in pool
        if "mask" in (headers[p].get("series_description") or "").lower()
        or "mask" in str(p.parent.name).lower()
    ]
    if len(named) == 1:
        return named[0]
    raise _Skip(
        f"cannot tell the ROI mask among {len(files)} DICOM(s) in {str(folder)!r} "
        f"(none or several have the full image's size {image_shape})"
    )


#: Columns ``load_cbis_ddsm`` reads (after stripping and lower-casing the header).
_CBIS_COLUMNS = frozenset({"patient_id", "left or right breast", "image view",
                           "abnormality id", "calc type", "pathology", "image file path",
                           "roi mask file path"})


def _csv_row(raw: dict, path: Path, where: str) -> dict[str, str]:
    """A ``csv.DictReader`` record with stripped keys and values; a record with more or
    fewer fields than the header (a stray delimiter, a cut line) is an error naming it."""
    if None in raw:
        raise ValueError(f"{path}, {where}: {len(raw[None])} field(s) more than the header "
                         "(a stray delimiter?)")
    if any(v is None for v in raw.values()):
        n = sum(v is not None for v in raw.values())
        raise ValueError(f"{path}, {where}: {n} field(s), the header has {len(raw)}")
    return {(k or "").strip(): (v or "").strip() for k, v in raw.items()}


def _calc_types(value: str) -> set[str]:
    return {t.strip().upper() for t in value.split("-") if t.strip()}


def load_cbis_ddsm(
    root: str | os.PathLike,
    calc_type: str | Sequence[str] | None = "AMORPHOUS",
    subset: str = "train",
    *,
    margin_mm: float = 2.0,
    spacing: float | None = None,
    skip_missing: bool = False,
):
    """Calcification ROIs of CBIS-DDSM as lazy :class:`~skcalc.ROI` records.

    Parameters
    ----------
    root : path
        Folder holding ``calc_case_description_train_set.csv`` /
        ``calc_case_description_test_set.csv`` and the TCIA image folders, either directly,
        under ``root/CBIS-DDSM/`` or under ``root/<manifest-...>/CBIS-DDSM/``.
    calc_type : str, sequence of str or None, default="AMORPHOUS"
        Keep abnormalities whose ``calc type`` includes one of these types. Combined types
        are written with ``-`` (``AMORPHOUS-PLEOMORPHIC``) and count when any component
        matches; ``None`` keeps all.
    subset : {"train", "test"}
    margin_mm : float, default=2.0
        Context kept around the bounding box of the ROI mask.
    spacing : float, optional
        Pixel spacing in mm. Default: the header's when present, else 0.05 mm (DDSM films
        were scanned at 42-50 um; CBIS-DDSM DICOMs generally lack the attribute), with one
        :class:`~skcalc.exceptions.SkcalcWarning` saying how many images used the default.
    skip_missing : bool, default=False
        Warn and skip rows whose files cannot be found or resolved, instead of raising
        (useful with a partial download).

    Returns
    -------
    rois : list of ROI
        One per CSV row (abnormality): ``path`` = the full mammogram, ``box`` = the mask's
        bounding box plus the margin, ``region`` = the mask inside that crop. The masks are
        read now (to place the box); the mammograms are read on access.
    y : ndarray of int
        BENIGN and BENIGN_WITHOUT_CALLBACK -> 0, MALIGNANT -> 1.
    groups : ndarray of str
        Exam ids: the ``patient_id``. A DDSM case is one screening visit of both breasts;
        its four views (and several abnormalities) share the group, so one patient never
        falls on both sides of a split.

    Notes
    -----
    File resolution: the CSV paths (``Calc-Training_P_00005_RIGHT_CC/<uid>/<uid>/000000.dcm``)
    do not match the TCIA download's names, so only their first component is used: the
    full mammogram is the single DICOM under that folder (preferring a ``full mammogram
    images`` series when there are several); the mask is looked up in the folder named by
    the first component of ``ROI mask file path`` (``..._CC_1``) as the DICOM with the full
    image's size, else the one whose series says "mask".
    """
    if subset not in ("train", "test"):
        raise ValueError(f"subset must be 'train' or 'test', got {subset!r}")
    root = Path(os.fspath(root))
    name = f"calc_case_description_{subset}_set.csv"
    candidates = [root / name, *sorted(root.glob(f"*/{name}"))]
    csv_path = next((p for p in candidates if p.is_file()), None)
    if csv_path is None:
        raise FileNotFoundError(f"{name} not found in {str(root)!r} or its sub-folders")
    wanted = None
    if calc_type is not None:
        wanted = (
            {calc_type.upper()} if isinstance(calc_type, str) else {t.upper() for t in calc_type}
        )
    bases = _cbis_bases(root)
    rois, labels, groups = [], [], []
    n_default = n_rows = 0
    types_seen: set[str] = set()
    with open(csv_path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        header = {(k or "").strip().lower() for k in reader.fieldnames or []}
        missing = sorted(_CBIS_COLUMNS - header)
        if missing:
            raise ValueError(
                f"{csv_path}: no column(s) {missing} (the CBIS-DDSM description CSVs name "
                f"them with spaces, e.g. 'calc type'); found {sorted(header)}")
        for record, raw in enumerate(reader, start=1):
            # Quoted paths in the official CSVs contain newlines: name the record and its
            # last physical line.
            where = f"row {record} (line {reader.line_num})"
            row = _csv_row(raw, csv_path, where)
            row = {k.lower(): v for k, v in row.items()}
            n_rows += 1
            types = _calc_types(row.get("calc type", ""))
            types_seen |= types
            if wanted is not None and not wanted & types:
                continue
            try:
                roi, label, used_default = _cbis_row(row, bases, margin_mm, spacing, subset)
            except (_Skip, UnreadableImageError) as exc:
                message = f"{csv_path}, {where}: {exc}"
                if not skip_missing:
                    raise ValueError(message) from None
                warnings.warn(f"skipped {message}", SkcalcWarning, stacklevel=2)
                continue
            n_default += used_default
            rois.append(roi)
            labels.append(label)
            groups.append(roi.meta["exam_id"])
    if wanted is not None and n_rows and not (wanted & types_seen):
        raise ValueError(
            f"{csv_path}: no row has calc type {sorted(wanted)}; the file has "
            f"{sorted(types_seen)}")
    if n_default:
        warnings.warn(
            f"CBIS-DDSM: {n_default} of {len(rois)} ROIs have no pixel spacing in their "
            f"header; using {CBIS_DEFAULT_SPACING_MM} mm (pass spacing= to choose)",
            SkcalcWarning,
            stacklevel=2,
        )
    return rois, np.asarray(labels, dtype=np.int64), np.asarray(groups, dtype=object)


def _cbis_row(row: dict[str, str], bases, margin_mm, spacing, subset):
    pathology = row.get("pathology", "").upper()
    if pathology not in CBIS_PATHOLOGY:
        raise _Skip(f"unknown pathology {row.get('pathology')!r}; expected {list(CBIS_PATHOLOGY)}")
    image_top = re.split(r"[\\/]", row.get("image file path", ""))[0].strip()
    mask_top = re.split(r"[\\/]", row.get("roi mask file path", ""))[0].strip()
    if not image_top or not mask_top:
        raise _Skip("empty 'image file path' or 'ROI mask file path'")
    image_dir = _find_folder(bases, image_top)
    if image_dir is None:
        raise _Skip(f"image folder {image_top!r} not found under {[str(b) for b in bases]}")
    mask_dir = _find_folder(bases, mask_top)
    if mask_dir is None:
        raise _Skip(f"ROI folder {mask_top!r} not found under {[str(b) for b in bases]}")
    image_path = _full_mammogram(image_dir)
    header = read_dicom_header(image_path, warn=False)
    shape = (header["rows"], header["columns"])
    mask_path = _roi_mask(mask_dir, shape)
    mask = read_mammogram(mask_path, warn_spacing=False)[0] != 0
    if mask.shape != shape:
        raise _Skip(f"ROI mask {str(mask_path)!r} has shape {mask.shape}, image has {shape}")
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        raise _Skip(f"ROI mask {str(mask_path)!r} is empty")

    used_default = False
    if spacing is not None:
        sp = (float(spacing), float(spacing))
    elif header["spacing"] is not None:
        sp = header["spacing"]
    else:
        sp, used_default = (CBIS_DEFAULT_SPACING_MM,) * 2, True
    margin = (math.ceil(margin_mm / sp[0]), math.ceil(margin_mm / sp[1]))
    bbox = (int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1)
    box = region_box(bbox, shape, margin)
    region = mask[box[0] : box[1], box[2] : box[3]].copy()

    patient = row.get("patient_id", "")
    side = row.get("left or right breast", "").upper()
    abnormality = row.get("abnormality id", "")
    meta: dict[str, Any] = {
        "roi_id": f"{image_top}_{abnormality}",
        "patient_id": patient,
        # a DDSM case is one screening visit of both breasts: grouping by breast would let
        # one patient's two breasts fall on both sides of a split
        "exam_id": patient,
        "image_id": image_top,
        "laterality": {"LEFT": "L", "RIGHT": "R"}.get(side, side or None),
        "view": row.get("image view", "").upper() or None,
        "source": str(image_path),
        "mask_path": str(mask_path),
        "dataset": "CBIS-DDSM",
        "subset": subset,
        "abnormality_id": abnormality,
        "calc_type": row.get("calc type"),
        "calc_distribution": row.get("calc distribution"),
        "pathology": pathology,
        "assessment": row.get("assessment"),
        "subtlety": row.get("subtlety"),
        "breast_density": row.get("breast density") or row.get("breast_density"),
        "spacing_source": "default" if used_default else "header or argument",
    }
    roi = ROI(path=image_path, box=box, region=region, spacing=sp, meta=meta)
    return roi, CBIS_PATHOLOGY[pathology], used_default


# ---------------------------------------------------------------------------- INbreast
_POINT = re.compile(r"\(\s*([-+0-9.eE]+)\s*,\s*([-+0-9.eE]+)\s*(?:,[^)]*)?\)")


def _parse_points(points: Sequence[str], where: str) -> np.ndarray:
    """``["(x, y)", ...]`` -> array of (row, col) floats."""
    out = []
    for p in points:
        m = _POINT.search(str(p))
        if m is None:
            raise ValueError(f"{where}: cannot parse point {p!r}")
        x, y = float(m.group(1)), float(m.group(2))
        out.append((y, x))
    return np.asarray(out, dtype=float).reshape(-1, 2)


def inbreast_rois(xml_path: str | os.PathLike) -> list[dict[str, Any]]:
    """The ROIs of one INbreast XML (Apple plist): dicts with ``name`` and ``points``.

    ``points`` are (row, col) pixel coordinates from ``Point_px`` (``"(x, y)"`` strings).
    """
    xml_path = os.fspath(xml_path)
    try:
        with open(xml_path, "rb") as fh:
            plist = plistlib.load(fh)
    except (plistlib.InvalidFileException, ExpatError, ValueError, OSError) as exc:
        raise ValueError(f"{xml_path}: not a readable INbreast plist XML ({exc})") from exc
    out = []
    for image in plist.get("Images", []):
        for k, roi in enumerate(image.get("ROIs", [])):
            where = f"{xml_path}, ROI {k}"
            out.append(
                {
                    "name": str(roi.get("Name", "")).strip(),
                    "points": _parse_points(roi.get("Point_px", []), where),
                }
            )
    return out


def rasterise_calcifications(rois: Sequence[dict[str, Any]], shape: tuple[int, int]):
    """Boolean mask of the ``Calcification`` ROIs: single points become one-pixel dots,
    two points a line, polygons are filled (outline included, so thin ones do not vanish).

    Examples
    --------
    >>> import numpy as np
    >>> from skcalc.datasets._public import rasterise_calcifications
    >>> dot = {"name": "Calcification", "points": np.array([[1.2, 2.6]])}
    >>> np.argwhere(rasterise_calcifications([dot], (4, 5))).tolist()
    [[1, 3]]
    """
    from skimage.draw import line, polygon, polygon_perimeter

    mask = np.zeros(shape, dtype=bool)
    for roi in rois:
        if not roi["name"].lower().startswith("calcification"):
            continue
        pts = np.rint(roi["points"]).astype(int)
        if len(pts) == 0:
            continue
        if len(pts) == 1:
            r, c = pts[0]
            if 0 <= r < shape[0] and 0 <= c < shape[1]:
                mask[r, c] = True
            continue
        if len(pts) == 2:
            rr, cc = line(pts[0, 0], pts[0, 1], pts[1, 0], pts[1, 1])
            keep = (rr >= 0) & (rr < shape[0]) & (cc >= 0) & (cc < shape[1])
            mask[rr[keep], cc[keep]] = True
            continue
        rr, cc = polygon(roi["points"][:, 0], roi["points"][:, 1], shape)
        mask[rr, cc] = True
        rr, cc = polygon_perimeter(pts[:, 0], pts[:, 1], shape, clip=False)
        keep = (rr >= 0) & (rr < shape[0]) & (cc >= 0) & (cc < shape[1])
        mask[rr[keep], cc[keep]] = True
    return mask


class _LazyCalcificationMask:
    """An INbreast reference mask kept as the XML's points and rasterised on access.

    The ``reference`` that :func:`load_inbreast` gives its records (see :class:`skcalc.ROI`):
    a few kB instead of a full-size mask (~13 MB for 3328 x 4084, ~5 GB for the 410
    images), and small to pickle to workers. ``materialise()`` returns
    ``rasterise_calcifications(annotations, shape)``.
    """

    __slots__ = ("annotations", "shape")

    def __init__(self, annotations: Sequence[dict[str, Any]], shape: tuple[int, int]) -> None:
        # Read-only copies: the record's mask, and the cache keys digesting it, must not
        # follow later changes to the caller's point arrays.
        self.annotations = tuple(
            {"name": str(a["name"]), "points": _read_only(a["points"])} for a in annotations
        )
        self.shape = (int(shape[0]), int(shape[1]))

    def materialise(self) -> np.ndarray:
        return rasterise_calcifications(self.annotations, self.shape)

    def __repr__(self) -> str:
        rows, cols = self.shape
        return f"<INbreast reference {rows}x{cols}, {len(self.annotations)} annotation(s)>"


def _read_only(points: Any) -> np.ndarray:
    out = np.array(points, dtype=float, copy=True)
    out.flags.writeable = False
    return out


def _inbreast_table(root: Path) -> dict[str, dict[str, str]]:
    path = root / "INbreast.csv"
    if not path.is_file():
        return {}
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh, delimiter=";")
        table = {}
        for record, raw in enumerate(reader, start=1):
            if not any((v or "").strip() for v in raw.values() if isinstance(v, str)):
                continue  # the release's trailing ';;;;;;;' lines
            row = _csv_row(raw, path, f"row {record} (line {reader.line_num})")
            if row.get("File Name"):
                table[row["File Name"]] = row
    return table


def load_inbreast(
    root: str | os.PathLike,
    *,
    spacing: float = INBREAST_SPACING_MM,
    only_annotated: bool = False,
    image_ids: Sequence[str] | None = None,
) -> list[ROI]:
    """Whole INbreast mammograms with their calcification masks, to train the segmenter.

    Parameters
    ----------
    root : path
        The INbreast folder: ``AllDICOMs/<image id>_<patient>_MG_<L|R>_<CC|ML>_ANON.dcm``,
        ``AllXML/<image id>.xml`` (Apple plist; ROIs with ``Name`` ``Calcification`` and
        ``Point_px`` ``"(x, y)"`` strings) and optionally ``INbreast.csv`` (``;``-separated:
        ``Patient ID;Patient age;Laterality;View;Acquisition date;File Name;ACR;Bi-Rads``).
    spacing : float, default=0.07
        INbreast's native pixel size (mm).
    only_annotated : bool, default=False
        Keep only images that have an XML file. Images without one have no annotated
        finding and get an empty ``reference`` (negatives for training).
    image_ids : sequence of str, optional
        Load only these image ids (the number starting each file name).

    Returns
    -------
    list of ROI
        Lazy records (``path`` = the DICOM, whole image), ``reference`` = individual
        calcifications rasterised from the XML (one-point ROIs are single-pixel dots,
        polygons are filled). ``meta``: ``image_id``, ``patient_id`` (the anonymised hash in
        the file name), ``exam_id`` (the patient: one visit of both breasts),
        ``laterality``, ``view``, ``birads``, ``acr``, ``n_calcifications``, ``clusters``
        (point arrays of the ``Cluster`` ROIs). Like the images, the masks are not held:
        a record keeps the XML's points and rasterises its full-size mask on each access
        of ``roi.reference`` (``roi.shape`` is the DICOM header's, known without either).
    """
    root = Path(os.fspath(root))
    dicom_dir = root / "AllDICOMs"
    if not dicom_dir.is_dir():
        raise FileNotFoundError(f"{str(dicom_dir)!r} not found (expected the INbreast layout)")
    xml_dir = root / "AllXML"
    table = _inbreast_table(root)
    wanted = None if image_ids is None else {str(i) for i in image_ids}
    rois = []
    for path in sorted(dicom_dir.glob("*.dcm")):
        tokens = path.stem.split("_")
        image_id = tokens[0]
        if wanted is not None and image_id not in wanted:
            continue
        xml_path = xml_dir / f"{image_id}.xml"
        annotated = xml_path.is_file()
        if only_annotated and not annotated:
            continue
        header = read_dicom_header(path, warn=False)
        if not header["rows"] or not header["columns"]:
            raise UnreadableImageError(f"{path}: DICOM header has no Rows/Columns")
        shape = (header["rows"], header["columns"])
        annotations = inbreast_rois(xml_path) if annotated else []
        reference = _LazyCalcificationMask(annotations, shape)
        row = table.get(image_id, {})
        patient = tokens[1] if len(tokens) > 1 else None
        laterality = (row.get("Laterality") or (tokens[3] if len(tokens) > 3 else "")).upper()
        view = (row.get("View") or (tokens[4] if len(tokens) > 4 else "")).upper()
        n_calc = sum(a["name"].lower().startswith("calcification") for a in annotations)
        meta = {
            "roi_id": image_id,
            "image_id": image_id,
            "patient_id": patient,
            "exam_id": patient,  # one visit of both breasts (as CBIS-DDSM)
            "laterality": laterality or None,
            "view": view or None,
            "birads": row.get("Bi-Rads"),
            "acr": row.get("ACR"),
            "source": str(path),
            "dataset": "INbreast",
            "annotated": annotated,
            "n_calcifications": int(n_calc),
            "clusters": [a["points"] for a in annotations if a["name"].lower() == "cluster"],
        }
        rois.append(ROI(path=path, reference=reference, spacing=spacing, meta=meta))
    if wanted is not None:
        missing = wanted - {r.meta["image_id"] for r in rois}
        if missing and not only_annotated:
            raise FileNotFoundError(f"no DICOM in {str(dicom_dir)!r} for image id(s) {missing}")
    if not rois:
        raise FileNotFoundError(f"no INbreast DICOM found in {str(dicom_dir)!r}")
    return rois
