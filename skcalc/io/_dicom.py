"""DICOM mammograms: pixels, grey-level conventions, spacing and header metadata.

The rules implemented here (see :func:`read_dicom`):

* **Bright calcifications.** The returned image always has high attenuation bright.
  ``MONOCHROME1`` pixel data (minimum value displayed white) is reflected within its stored
  range, ``max_stored - value`` with ``max_stored = 2**BitsStored - 1`` (``-1 - value`` for
  signed data). In the DX/MG image modules ``Presentation LUT Shape = INVERSE`` is *required*
  together with ``MONOCHROME1`` and describes the same single inversion (PS3.3 C.8.11.7:
  "INVERSE - output after inversion is in P-Values - shall be used if Photometric
  Interpretation is MONOCHROME1"), so MONOCHROME1 is inverted once whether or not INVERSE is
  present; the two are never treated as cancelling. ``MONOCHROME2`` with ``INVERSE`` (not
  allowed by the standard, seen in some vendor files) is displayed inverted, so it is
  inverted too, with a :class:`~skcalc.exceptions.SkcalcWarning`.
* **Modality LUT.** A Rescale Slope/Intercept other than (1, 0), or a Modality LUT
  Sequence, is applied; the image is then float32. An inversion is a reflection of the
  modality values within the range the stored range maps to; for a linear rescale this is
  exactly ``rescale(max_stored - value)``.
* **VOI LUT.** Window centre/width (``LINEAR``, ``LINEAR_EXACT``, ``SIGMOID``) and the VOI
  LUT Sequence are recorded in ``meta`` and used only for display (:func:`display_image`),
  never on the analysed pixels unless ``apply_voi_lut=True``.
* **Spacing** (:func:`dicom_spacing`): Imager Pixel Spacing divided by Estimated
  Radiographic Magnification Factor when present, else Pixel Spacing, else Nominal Scanned
  Pixel Spacing (digitised film), else ``None`` with a warning; values outside the
  plausible range of :func:`skcalc._units.check_spacing` (0.02-1 mm) are returned with a
  warning.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np

from .._units import check_spacing
from ..exceptions import SkcalcWarning, UnreadableImageError
from ._limits import check_declared_size

__all__ = [
    "display_image",
    "dicom_spacing",
    "is_dicom",
    "read_dicom",
    "read_dicom_header",
    "read_spacing",
]

DICOM_EXTENSIONS = (".dcm", ".dicom", ".dic")


def is_dicom(path: str | os.PathLike) -> bool:
    """True for a DICOM extension, or for an existing file with the ``DICM`` preamble."""
    path = os.fspath(path)
    if path.lower().endswith(DICOM_EXTENSIONS):
        return True
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:] == b"DICM"


# ViewCodeSequence meanings (SNOMED/DICOM CID 4014) -> the usual ACR abbreviations.
_VIEW_MEANINGS = {
    "craniocaudal": "CC",
    "mediolateraloblique": "MLO",
    "mediolateral": "ML",
    "lateromedial": "LM",
    "lateromedialoblique": "LMO",
    "exaggeratedcraniocaudal": "XCC",
    "craniocaudalexaggeratedlaterally": "XCCL",
    "craniocaudalexaggeratedmedially": "XCCM",
    "caudocranialfrombelow": "FB",
    "superolateraltoinferomedialoblique": "SIO",
    "inferomedialtosuperolateraloblique": "ISO",
    "axillarytail": "AT",
}


def _dcmread(path: str, *, stop_before_pixels: bool):
    import pydicom
    from pydicom.errors import InvalidDicomError

    if not os.path.isfile(path):
        raise UnreadableImageError(f"{path}: file does not exist")
    try:
        return pydicom.dcmread(path, stop_before_pixels=stop_before_pixels)
    except InvalidDicomError as exc:
        raise UnreadableImageError(f"{path}: not a DICOM file ({exc})") from exc
    except Exception as exc:  # noqa: BLE001 - pydicom reports damage with many types
        raise UnreadableImageError(
            f"{path}: DICOM header could not be parsed, the file may be truncated or damaged "
            f"({type(exc).__name__}: {exc})"
        ) from exc


def _str(ds, keyword: str) -> str | None:
    value = ds.get(keyword)
    if value is None:
        return None
    value = str(value).strip()
    return value or None


def _floats(value) -> list[float] | None:
    if value is None or value == "":
        return None
    if (
        isinstance(value, (list, tuple))
        or hasattr(value, "__iter__")
        and not isinstance(value, (str, bytes))
    ):
        return [float(v) for v in value]
    return [float(value)]


def dicom_spacing(ds, path: str = "<dataset>", *, warn: bool = True):
    """Pixel spacing in mm ``(row, col)`` of a pydicom dataset, and where it came from.

    Precedence: ``ImagerPixelSpacing / EstimatedRadiographicMagnificationFactor`` (detector
    plane corrected to the breast), then ``PixelSpacing``, then ``NominalScannedPixelSpacing``
    (digitised film). Returns ``(None, None)`` with a :class:`SkcalcWarning` when none is
    usable; a spacing outside the plausible range (:func:`skcalc._units.check_spacing`)
    is returned but warned about.

    Returns
    -------
    spacing : (float, float) or None
    source : str or None
        The attribute used, e.g. ``"ImagerPixelSpacing/EstimatedRadiographicMagnificationFactor"``.
    """
    spacing = source = None
    for keyword in ("ImagerPixelSpacing", "PixelSpacing", "NominalScannedPixelSpacing"):
        try:
            values = _floats(ds.get(keyword))
        except (TypeError, ValueError):
            values = None
        if not values:
            continue
        if len(values) == 1:
            values = values * 2
        if len(values) != 2 or not all(np.isfinite(v) and v > 0 for v in values):
            if warn:
                warnings.warn(
                    f"{path}: ignoring invalid {keyword} {values}", SkcalcWarning, stacklevel=3
                )
            continue
        spacing, source = (values[0], values[1]), keyword
        if keyword == "ImagerPixelSpacing":
            try:
                factor = float(ds.get("EstimatedRadiographicMagnificationFactor") or 0)
            except (TypeError, ValueError):
                factor = 0.0
            if np.isfinite(factor) and factor > 0 and factor != 1.0:
                spacing = (spacing[0] / factor, spacing[1] / factor)
                source = "ImagerPixelSpacing/EstimatedRadiographicMagnificationFactor"
        break
    if spacing is None:
        if warn:
            warnings.warn(
                f"{path}: no pixel spacing in the DICOM header (ImagerPixelSpacing, "
                "PixelSpacing, NominalScannedPixelSpacing); spacing is unknown",
                SkcalcWarning,
                stacklevel=3,
            )
        return None, None
    if warn:
        try:
            check_spacing(spacing, name=f"pixel spacing from {source}")
        except ValueError as exc:
            warnings.warn(
                f"{path}: implausible {exc}; check the header", SkcalcWarning, stacklevel=3
            )
    return spacing, source


def _view(ds) -> str | None:
    view = _str(ds, "ViewPosition")
    if view:
        return view.upper()
    seq = ds.get("ViewCodeSequence")
    if seq:
        meaning = str(seq[0].get("CodeMeaning", "")).strip()
        key = "".join(ch for ch in meaning.lower() if ch.isalpha())
        return _VIEW_MEANINGS.get(key, meaning or None)
    return None


def _header_meta(ds, path: str) -> dict[str, Any]:
    """Identifiers and acquisition attributes, as plain Python values."""
    laterality = _str(ds, "ImageLaterality") or _str(ds, "Laterality")
    centers = _floats(ds.get("WindowCenter")) if "WindowCenter" in ds else None
    widths = _floats(ds.get("WindowWidth")) if "WindowWidth" in ds else None
    ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    meta = {
        "source": path,
        "format": "dicom",
        "rows": int(ds.get("Rows", 0)) or None,
        "columns": int(ds.get("Columns", 0)) or None,
        "bits_allocated": int(ds["BitsAllocated"].value) if "BitsAllocated" in ds else None,
        "bits_stored": int(ds["BitsStored"].value) if "BitsStored" in ds else None,
        "pixel_representation": int(ds.get("PixelRepresentation", 0) or 0),
        "photometric": _str(ds, "PhotometricInterpretation"),
        "presentation_lut_shape": _str(ds, "PresentationLUTShape"),
        "presentation_intent": _str(ds, "PresentationIntentType"),
        "transfer_syntax": str(ts) if ts else None,
        "transfer_syntax_name": ts.name if ts else None,
        "modality": _str(ds, "Modality"),
        "sop_class_uid": _str(ds, "SOPClassUID"),
        "sop_instance_uid": _str(ds, "SOPInstanceUID"),
        "study_instance_uid": _str(ds, "StudyInstanceUID"),
        "series_instance_uid": _str(ds, "SeriesInstanceUID"),
        "series_description": _str(ds, "SeriesDescription"),
        "patient_id": _str(ds, "PatientID"),
        "accession_number": _str(ds, "AccessionNumber"),
        "study_date": _str(ds, "StudyDate"),
        "manufacturer": _str(ds, "Manufacturer"),
        "model": _str(ds, "ManufacturerModelName"),
        "laterality": laterality.upper() if laterality else None,
        "view": _view(ds),
        "image_type": list(ds.ImageType) if "ImageType" in ds else None,
        "window_centers": centers,
        "window_widths": widths,
        "voi_lut_function": (_str(ds, "VOILUTFunction") or "LINEAR").upper(),
        "rescale_slope": float(ds.get("RescaleSlope", 1.0) or 1.0),
        "rescale_intercept": float(ds.get("RescaleIntercept", 0.0) or 0.0),
    }
    seq = ds.get("VOILUTSequence")
    luts = []
    for item in seq or ():
        try:
            luts.append(_lut_from_item(item))
        except (KeyError, ValueError, TypeError):
            continue
    meta["voi_luts"] = luts
    return meta


def read_dicom_header(path: str | os.PathLike, *, warn: bool = True) -> dict[str, Any]:
    """Header metadata of a DICOM file, without reading the pixel data.

    Returns the ``meta`` dict of :func:`read_dicom` minus what needs the pixels, plus
    ``spacing`` and ``spacing_source``.
    """
    path = os.fspath(path)
    ds = _dcmread(path, stop_before_pixels=True)
    meta = _header_meta(ds, path)
    meta["spacing"], meta["spacing_source"] = dicom_spacing(ds, path, warn=warn)
    return meta


def read_spacing(path: str | os.PathLike, *, warn: bool = True):
    """Pixel spacing ``(row, col)`` in mm from a DICOM header, ``None`` when unknown.

    Only the header is read (``stop_before_pixels=True``). Non-DICOM files carry no spacing
    skcalc trusts and give ``None``.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from skcalc.io import read_spacing, write_image_atomic
    >>> path = os.path.join(tempfile.mkdtemp(), "a.png")
    >>> write_image_atomic(path, np.zeros((3, 3), np.uint8))
    >>> read_spacing(path) is None
    True
    """
    path = os.fspath(path)
    if not is_dicom(path):
        if not os.path.isfile(path):
            raise UnreadableImageError(f"{path}: file does not exist")
        return None
    ds = _dcmread(path, stop_before_pixels=True)
    return dicom_spacing(ds, path, warn=warn)[0]


def _lut_from_item(item) -> dict[str, Any]:
    n, first, bits = (int(v) for v in item.LUTDescriptor)
    n = n or 65536
    data = item.LUTData
    if isinstance(data, (bytes, bytearray)):
        data = np.frombuffer(data, dtype="<u2" if bits > 8 else np.uint8)
    data = np.asarray(data, dtype=np.float64).ravel()[:n]
    return {"first": first, "bits": bits, "data": data}


def _modality(arr: np.ndarray, ds, meta: dict[str, Any], stored_range) -> np.ndarray:
    """Apply the modality LUT; return (values, (lo, hi) range of the stored range's image)."""
    lo, hi = stored_range
    seq = ds.get("ModalityLUTSequence")
    if seq:
        lut = _lut_from_item(seq[0])
        out = _apply_lut(arr, lut).astype(np.float32)
        meta["modality_lut_applied"] = "ModalityLUTSequence"
        return out, (float(lut["data"].min()), float(lut["data"].max()))
    slope, intercept = meta["rescale_slope"], meta["rescale_intercept"]
    if slope == 1.0 and intercept == 0.0:
        meta["modality_lut_applied"] = None
        return arr, (lo, hi)
    out = arr.astype(np.float32) * np.float32(slope) + np.float32(intercept)
    meta["modality_lut_applied"] = "RescaleSlope/RescaleIntercept"
    ends = sorted((slope * lo + intercept, slope * hi + intercept))
    return out, (ends[0], ends[1])


def _apply_lut(x: np.ndarray, lut: dict[str, Any]) -> np.ndarray:
    data = lut["data"]
    idx = np.clip(np.rint(x).astype(np.int64) - lut["first"], 0, data.size - 1)
    return data[idx]


def _window(x: np.ndarray, center: float, width: float, function: str) -> np.ndarray:
    """DICOM PS3.3 C.11.2.1.2 windowing to [0, 1]."""
    x = np.asarray(x, dtype=np.float64)
    if function == "SIGMOID":
        return 1.0 / (1.0 + np.exp(-4.0 * (x - center) / width))
    if function == "LINEAR_EXACT":
        return np.clip((x - center) / width + 0.5, 0.0, 1.0)
    # LINEAR: width >= 1 by definition
    width = max(width, 1.0)
    if width == 1.0:
        return (x > center - 0.5).astype(np.float64)
    return np.clip((x - (center - 0.5)) / (width - 1.0) + 0.5, 0.0, 1.0)


def display_image(
    image: np.ndarray, meta: dict[str, Any] | None = None, *, index: int = 0
) -> np.ndarray:
    """Grey levels for display in [0, 1] (1 = bright), from the file's VOI transform.

    Uses, in order: the VOI LUT Sequence item ``index``, the window centre/width pair
    ``index`` with the file's VOI LUT Function (``LINEAR``, ``LINEAR_EXACT`` or ``SIGMOID``),
    else a min-max stretch. ``image`` is what :func:`~skcalc.io.read_mammogram` returned
    with ``meta``: when it was inverted from MONOCHROME1, the VOI transform (defined on the
    original values) is applied to the original values and the result inverted, so the
    display is exactly what a conformant viewer shows. Never used on analysed pixels.

    Examples
    --------
    >>> import numpy as np
    >>> from skcalc.io import display_image
    >>> meta = {"window_centers": [100.0], "window_widths": [101.0], "voi_lut_function": "LINEAR"}
    >>> display_image(np.array([[0, 100, 200]]), meta).round(2)
    array([[0. , 0.5, 1. ]])
    """
    meta = meta or {}
    x = np.asarray(image, dtype=np.float64)
    reflect = meta.get("reflected_about")
    if reflect is not None:
        x = reflect - x
    out = None
    luts = meta.get("voi_luts") or []
    centers, widths = meta.get("window_centers"), meta.get("window_widths")
    if index < len(luts):
        lut = luts[index]
        out = _apply_lut(x, lut) / float(2 ** lut["bits"] - 1)
    elif centers and widths and index < min(len(centers), len(widths)) and widths[index] > 0:
        function = str(meta.get("voi_lut_function") or "LINEAR").upper()
        out = _window(x, centers[index], widths[index], function)
    if out is None:
        lo, hi = float(np.min(x)), float(np.max(x))
        out = (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)
    if reflect is not None:
        out = 1.0 - out
    return out


def read_dicom(path: str | os.PathLike, *, apply_voi_lut: bool = False, warn_spacing: bool = True):
    """Read a single-frame greyscale DICOM mammogram; see the module rules.

    Returns ``(image, spacing, meta)`` like :func:`~skcalc.io.read_mammogram`.
    """
    from pydicom.uid import UID

    path = os.fspath(path)
    ds = _dcmread(path, stop_before_pixels=False)
    if not any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        raise UnreadableImageError(
            f"{path}: DICOM file has no pixel data (truncated file, or not an image object)"
        )
    meta = _header_meta(ds, path)
    ts = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    ts_desc = f"{UID(ts).name} ({ts})" if ts and UID(ts).name != str(ts) else f"{ts}"
    photometric = (meta["photometric"] or "").upper()
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if samples != 1 or photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise UnreadableImageError(
            f"{path}: expected a greyscale mammogram (MONOCHROME1/2, 1 sample per pixel), "
            f"got PhotometricInterpretation={photometric or None!r}, SamplesPerPixel={samples}"
        )
    if frames != 1:
        raise UnreadableImageError(
            f"{path}: expected a single 2-D image, got {frames} frames (tomosynthesis?)"
        )
    try:
        rows, cols = int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)
        bits_allocated = int(ds.get("BitsAllocated", 16) or 16)
    except (TypeError, ValueError) as exc:
        raise UnreadableImageError(f"{path}: invalid Rows/Columns/BitsAllocated ({exc})") from exc
    check_declared_size(path, (rows, cols), max(bits_allocated // 8, 1))
    try:
        arr = ds.pixel_array
    except NotImplementedError as exc:
        raise UnreadableImageError(
            f"{path}: cannot decode pixel data with transfer syntax {ts_desc}: unknown syntax "
            f"or no decoder installed for it ({exc}); pylibjpeg, pylibjpeg-openjpeg, "
            "pylibjpeg-libjpeg and gdcm add the JPEG family"
        ) from exc
    except Exception as exc:  # noqa: BLE001 - decoders report damage with many types
        truncated = "less than expected" in str(exc)
        what = "pixel data is truncated" if truncated else "pixel data could not be decoded"
        raise UnreadableImageError(f"{path}: {what} (transfer syntax {ts_desc}): {exc}") from exc
    arr = np.asarray(arr)
    if arr.ndim != 2:
        raise UnreadableImageError(f"{path}: expected a 2-D image, got shape {arr.shape}")

    bits = meta["bits_stored"] or arr.dtype.itemsize * 8
    signed = meta["pixel_representation"] == 1
    lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    if np.issubdtype(arr.dtype, np.integer) and (arr.min() < lo or arr.max() > hi):
        # Stray bits above BitsStored would wrap around in the inversion below.
        warnings.warn(
            f"{path}: pixel values outside the {bits}-bit stored range were clipped",
            SkcalcWarning,
            stacklevel=3,
        )
        arr = np.clip(arr, lo, hi).astype(arr.dtype)

    lut_shape = (meta["presentation_lut_shape"] or "IDENTITY").upper()
    invert = photometric == "MONOCHROME1" or lut_shape == "INVERSE"
    if photometric == "MONOCHROME2" and lut_shape == "INVERSE":
        warnings.warn(
            f"{path}: MONOCHROME2 with Presentation LUT Shape INVERSE (non-conformant); "
            "the image is displayed inverted, so it is inverted to keep calcifications bright",
            SkcalcWarning,
            stacklevel=3,
        )

    image, (out_lo, out_hi) = _modality(arr, ds, meta, (lo, hi))
    meta["inverted"] = bool(invert)
    meta["reflected_about"] = None
    if invert:
        if image is arr:
            # Integer reflection within the stored range, keeping the stored dtype.
            image = (np.int64(lo + hi) - arr.astype(np.int64)).astype(arr.dtype)
        else:
            image = (np.float32(out_lo + out_hi) - image).astype(np.float32)
        meta["reflected_about"] = float(out_lo + out_hi)
        meta["inversion"] = (
            f"{photometric}/{lut_shape}: reflected within [{out_lo:g}, {out_hi:g}] "
            "so that high attenuation is bright"
        )
    spacing, meta["spacing_source"] = dicom_spacing(ds, path, warn=warn_spacing)
    meta["voi_applied"] = False
    if apply_voi_lut:
        image = display_image(image, meta).astype(np.float32)
        meta["voi_applied"] = True
    meta["dtype"] = str(image.dtype)
    meta["shape"] = tuple(image.shape)
    return image, spacing, meta
