"""Read mammograms from DICOM, PNG, JPEG, TIFF, PGM and NPY files into raw 2-D arrays."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..exceptions import UnreadableImageError
from ._dicom import DICOM_EXTENSIONS as _DICOM_EXT
from ._dicom import is_dicom, read_dicom, read_dicom_header
from ._limits import check_declared_size

__all__ = ["is_dicom", "read_image_shape", "read_mammogram"]

_PNG_EXT = (".png",)
_JPEG_EXT = (".jpg", ".jpeg")
_TIFF_EXT = (".tif", ".tiff")
_PGM_EXT = (".pgm",)
_NPY_EXT = (".npy",)
SUPPORTED_EXTENSIONS = _DICOM_EXT + _PNG_EXT + _JPEG_EXT + _TIFF_EXT + _PGM_EXT + _NPY_EXT


def _kind(path: str) -> str:
    low = path.lower()
    for kind, exts in (
        ("dicom", _DICOM_EXT),
        ("png", _PNG_EXT),
        ("jpeg", _JPEG_EXT),
        ("tiff", _TIFF_EXT),
        ("pgm", _PGM_EXT),
        ("npy", _NPY_EXT),
    ):
        if low.endswith(exts):
            return kind
    if is_dicom(path):
        return "dicom"
    raise UnreadableImageError(
        f"{path}: unsupported file type {os.path.splitext(path)[1] or '(no extension)'!r}; "
        f"supported: {', '.join(SUPPORTED_EXTENSIONS)} or DICOM files with a DICM preamble"
    )


def _to_2d(arr: np.ndarray, path: str, meta: dict[str, Any]) -> np.ndarray:
    """Reduce greyscale-in-disguise (equal RGB channels, opaque alpha) to 2-D, else refuse."""
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim == 3 and arr.shape[2] in (2, 3, 4):
        n_col = 1 if arr.shape[2] == 2 else 3
        colour, alpha = arr[..., :n_col], arr[..., n_col:]
        if alpha.size and not np.all(alpha == alpha.max(initial=0)):
            raise UnreadableImageError(f"{path}: image has a non-opaque alpha channel")
        if not all(np.array_equal(colour[..., 0], colour[..., k]) for k in range(1, n_col)):
            raise UnreadableImageError(
                f"{path}: colour image (shape {arr.shape}); a mammogram must be greyscale"
            )
        if arr.shape[2] != 1:
            meta["converted"] = "identical colour channels reduced to one"
        arr = colour[..., 0]
    if arr.ndim != 2:
        raise UnreadableImageError(f"{path}: expected a 2-D greyscale image, got shape {arr.shape}")
    return arr


def _stored_depth(arr: np.ndarray, container: int | None, meta: dict[str, Any]) -> None:
    """``bits_allocated`` (the file's container) and ``bits_stored`` (the depth the values
    use) of a format whose header does not say how many bits are used: a 16-bit PNG, TIFF
    or array usually holds 12-bit detector data, and dividing those by ``2**16 - 1`` would
    make the authors' DoG threshold 16 times too strict. ``bits_stored`` is what the
    segmentation infers from the same values (:func:`skcalc._units.resolve_bit_depth`), so
    ``read_mammogram`` + ``ROI(..., meta=meta)`` and ``skcalc segment`` scale alike."""
    from .._units import resolve_bit_depth

    meta["bits_allocated"] = container
    # an integer container (the only kind with a depth) always resolves to a depth
    meta["bits_stored"] = None if container is None else min(resolve_bit_depth(arr), container)


def _open_png(path: str, fmt: str = "PNG"):
    """Open a PNG's (or JPEG's) header; the declared size is checked before any pixel is
    decoded."""
    import warnings

    from PIL import Image

    with open(path, "rb") as fh:
        head = fh.read(24)
    if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
        # The IHDR chunk's size, checked before Pillow sees the file.
        width, height = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
        check_declared_size(path, (height, width))
    with warnings.catch_warnings():
        # skcalc's own limit (MAX_IMAGE_PIXELS) applies, with a message naming the file.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            im = Image.open(path, formats=[fmt])
        except Image.DecompressionBombError as exc:
            raise UnreadableImageError(
                f"{path}: the header declares an image larger than Pillow decodes ({exc}); "
                "raise PIL.Image.MAX_IMAGE_PIXELS as well as skcalc.io.MAX_IMAGE_PIXELS"
            ) from exc
    check_declared_size(path, (im.size[1], im.size[0], len(im.getbands())))
    return im


def _read_png(path: str, meta: dict[str, Any]) -> np.ndarray:
    with _open_png(path) as im:
        mode = im.mode
        if mode == "P":
            im = im.convert("RGBA")
        elif mode == "1":
            im = im.convert("L")
        im.load()
        arr = np.asarray(im)
    if mode.startswith("I;16"):
        arr = arr.astype(np.uint16, copy=False)
        bits = 16
    elif mode == "I":
        bits = 32
    else:
        bits = 8
    meta.update(photometric="MONOCHROME2", mode=mode)
    arr = _to_2d(arr, path, meta)
    _stored_depth(arr, bits, meta)
    return arr


#: Largest departure of a JPEG's chroma from grey (128) that is still compression noise.
_JPEG_GREY_CHROMA = 4
_JPEG_WARNED: list[str] = []


def _read_jpeg(path: str, meta: dict[str, Any]) -> np.ndarray:
    """An 8-bit JPEG's luma. A colour JPEG (mammograms exported as RGB) is kept when its
    chroma is grey within compression noise, and refused otherwise (annotations drawn in
    colour, a photograph): its luma would mix the marks into the tissue."""
    with _open_png(path, "JPEG") as im:
        mode = im.mode
        if mode == "RGB":
            # the decoder's own luma and chroma, not a round trip through RGB
            im.draft("YCbCr", im.size)
        elif mode != "L":
            raise UnreadableImageError(
                f"{path}: JPEG in mode {mode!r}; a mammogram must be a greyscale (or grey "
                "RGB) JPEG")
        im.load()
        if im.mode == "RGB":  # not YCbCr-coded (e.g. Adobe RGB): the same transform
            im = im.convert("YCbCr")
        arr = np.asarray(im)
    if arr.ndim == 3:
        chroma = np.abs(arr[..., 1:].astype(np.int16) - 128)
        n_colour = int(np.count_nonzero(chroma.max(axis=2) > _JPEG_GREY_CHROMA))
        if n_colour:
            raise UnreadableImageError(
                f"{path}: colour JPEG ({n_colour} pixels have colour, e.g. annotations "
                "drawn on the image); a mammogram must be greyscale: give the original, or "
                "a greyscale export without marks")
        arr = np.ascontiguousarray(arr[..., 0])
        meta["converted"] = "luma of a grey colour JPEG"
    meta.update(photometric="MONOCHROME2", mode=mode, lossy="JPEG")
    _stored_depth(arr, 8, meta)
    if not _JPEG_WARNED:
        import warnings

        from ..exceptions import SkcalcWarning

        _JPEG_WARNED.append(path)
        warnings.warn(
            f"{path}: JPEG is lossy and 8-bit: its 8x8-block quantisation smooths and "
            "blocks details of a few pixels, which is what calcifications are; prefer the "
            "DICOM (or a 16-bit PNG/TIFF) original when you have it (said once per process)",
            SkcalcWarning, stacklevel=3)
    return arr


def _read_tiff(path: str, meta: dict[str, Any]) -> np.ndarray:
    import tifffile

    with tifffile.TiffFile(path) as tif:
        if not tif.pages:
            raise UnreadableImageError(f"{path}: TIFF file has no image")
        page = tif.pages[0]
        check_declared_size(path, page.shape, page.dtype.itemsize if page.dtype else 1)
        arr = page.asarray()
        photometric = getattr(page.photometric, "name", str(page.photometric))
        bits = int(page.bitspersample)
    meta.update(photometric=photometric)
    arr = _to_2d(arr, path, meta)
    if photometric == "MINISWHITE" and np.issubdtype(arr.dtype, np.unsignedinteger):
        # Same convention as DICOM MONOCHROME1: keep high attenuation bright (reflected
        # within the container, whose depth is then the one the values use).
        meta["bits_allocated"] = meta["bits_stored"] = bits
        arr = (np.uint64(2**bits - 1) - arr.astype(np.uint64)).astype(arr.dtype)
        meta["inverted"] = True
        meta["inversion"] = f"MINISWHITE: {2**bits - 1} - value"
    else:
        _stored_depth(arr, bits, meta)
    return arr


_PGM_TOKEN = re.compile(rb"(?:\s|#[^\n]*\n?)*([^\s#]+)")


def _pgm_header(data: bytes, path: str):
    """Parse ``P2``/``P5`` header; return (magic, width, height, maxval, pixel offset)."""
    pos, tokens = 0, []
    for _ in range(4):
        m = _PGM_TOKEN.match(data, pos)
        if m is None:
            raise UnreadableImageError(f"{path}: truncated or malformed PGM header")
        tokens.append(m.group(1))
        pos = m.end()
    magic = tokens[0]
    if magic not in (b"P2", b"P5"):
        raise UnreadableImageError(f"{path}: not a greyscale PGM (magic {magic!r})")
    try:
        width, height, maxval = (int(t) for t in tokens[1:])
    except ValueError as exc:
        raise UnreadableImageError(f"{path}: malformed PGM header ({exc})") from exc
    if width <= 0 or height <= 0 or not 0 < maxval < 65536:
        raise UnreadableImageError(f"{path}: invalid PGM size {width}x{height}, maxval {maxval}")
    check_declared_size(path, (height, width))
    return magic, width, height, maxval, pos + 1  # one whitespace byte ends the header


def _read_pgm(path: str, meta: dict[str, Any]) -> np.ndarray:
    with open(path, "rb") as fh:
        data = fh.read()
    magic, width, height, maxval, offset = _pgm_header(data, path)
    dtype = np.dtype(np.uint8) if maxval < 256 else np.dtype(">u2")
    n = width * height
    if magic == b"P5":
        need = n * dtype.itemsize
        if len(data) - offset < need:
            raise UnreadableImageError(
                f"{path}: truncated PGM ({len(data) - offset} of {need} pixel bytes)"
            )
        arr = np.frombuffer(data, dtype=dtype, count=n, offset=offset)
    else:
        values = data[offset:].split()
        if len(values) < n:
            raise UnreadableImageError(f"{path}: truncated PGM ({len(values)} of {n} values)")
        arr = np.array([int(v) for v in values[:n]], dtype=dtype)
    arr = arr.reshape(height, width).astype(dtype.newbyteorder("="))
    meta.update(photometric="MONOCHROME2", maxval=maxval)
    # maxval declares the range (4095: 12 bits), but converters write 65535 for any
    # 16-bit data: the depth the values use, within maxval's
    _stored_depth(arr, int(maxval).bit_length(), meta)
    return arr


def _npy_header(path: str) -> tuple[tuple[int, ...], np.dtype, int]:
    """Shape, dtype and data offset of an ``.npy`` file, from its header alone."""
    from numpy.lib import format as npformat

    with open(path, "rb") as fh:
        try:
            version = npformat.read_magic(fh)
            if version == (1, 0):
                shape, _, dtype = npformat.read_array_header_1_0(fh)
            else:
                shape, _, dtype = npformat.read_array_header_2_0(fh)
        except (ValueError, EOFError, SyntaxError, TypeError, KeyError) as exc:
            raise UnreadableImageError(
                f"{path}: not a valid .npy file, the header is damaged or truncated ({exc})"
            ) from exc
        return tuple(int(d) for d in shape), dtype, fh.tell()


def _read_npy(path: str, meta: dict[str, Any]) -> np.ndarray:
    shape, dtype, offset = _npy_header(path)
    if dtype.hasobject:
        raise UnreadableImageError(
            f"{path}: not a plain numeric .npy array (object arrays are refused: it would "
            "need pickle)"
        )
    check_declared_size(path, shape, dtype.itemsize)
    need = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    have = os.path.getsize(path) - offset
    if have < need:
        raise UnreadableImageError(f"{path}: truncated .npy file ({have} of {need} data bytes)")
    try:
        arr = np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc):
            raise UnreadableImageError(
                f"{path}: not a plain numeric .npy array (object arrays are refused: {exc})"
            ) from exc
        raise UnreadableImageError(
            f"{path}: could not read the .npy array, the file may be truncated ({exc})"
        ) from exc
    if not isinstance(arr, np.ndarray):
        raise UnreadableImageError(f"{path}: expected a single array, got {type(arr).__name__}")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise UnreadableImageError(f"{path}: array dtype {arr.dtype} is not numeric")
    bits = arr.dtype.itemsize * 8 if np.issubdtype(arr.dtype, np.integer) else None
    meta.update(photometric="MONOCHROME2")
    if arr.ndim != 2:
        raise UnreadableImageError(f"{path}: expected a 2-D array, got shape {arr.shape}")
    _stored_depth(arr, bits, meta)
    return arr


_READERS = {
    "png": _read_png,
    "jpeg": _read_jpeg,
    "tiff": _read_tiff,
    "pgm": _read_pgm,
    "npy": _read_npy,
}


@contextlib.contextmanager
def _damage_named(path: str, what: str) -> Iterator[None]:
    """Any library error while reading becomes an UnreadableImageError naming the file.

    pydicom, Pillow, tifffile and numpy report truncation and corruption with OSError,
    ValueError, EOFError, SyntaxError, struct/zlib errors, MemoryError, ...
    """
    try:
        yield
    except UnreadableImageError:
        raise
    except Exception as exc:  # noqa: BLE001 - damage shows as any exception type
        raise UnreadableImageError(
            f"{path}: could not read as {what}, the file may be truncated or corrupt "
            f"({type(exc).__name__}: {exc})"
        ) from exc


def read_mammogram(
    path: str | os.PathLike, *, apply_voi_lut: bool = False, warn_spacing: bool = True
):
    """Read a mammogram as a 2-D array of raw stored values.

    Parameters
    ----------
    path : str or path-like
        A DICOM (``.dcm``, ``.dicom``, ``.dic`` or any file with the DICM preamble), PNG
        (8 or 16 bit), JPEG (``.jpg``, ``.jpeg``: 8-bit greyscale, or colour whose channels
        are grey; lossy, so a :class:`~skcalc.exceptions.SkcalcWarning` is given once per
        process), TIFF, PGM (``P2``/``P5``, 8 or 16 bit) or NPY file.
    apply_voi_lut : bool, default=False
        DICOM only: return the display grey levels of the file's VOI transform (window or
        VOI LUT, see :func:`skcalc.io.display_image`) as float32 in [0, 1] instead of the
        analysed values. Never do this for analysis.
    warn_spacing : bool, default=True
        DICOM only: warn when the header's pixel spacing is missing or implausible. Code
        that knows the spacing from elsewhere (a manifest, a dataset loader, a lazy
        :class:`~skcalc.ROI` re-reading its file) turns this off.

    Returns
    -------
    image : ndarray of shape (H, W)
        Stored values, never rescaled, with high attenuation bright: DICOM ``MONOCHROME1``
        and TIFF ``MINISWHITE`` data are reflected within the stored range
        (``2**bits_stored - 1 - value``), and a DICOM modality LUT (Rescale Slope/Intercept
        other than identity) is applied, giving float32. Colour files are refused unless
        all channels are equal (then one channel is kept).
    spacing : (float, float) or None
        Pixel spacing in mm (row, col) from the DICOM header (see
        :func:`skcalc.io.dicom_spacing`); ``None`` for the other formats, whose resolution
        tags skcalc does not trust. An :class:`~skcalc.ROI` built without a spacing assumes
        0.07 mm, so pass the right spacing for non-DICOM files.
    meta : dict
        ``source``, ``format``, ``bits_stored`` (DICOM: BitsStored; other formats, whose
        headers give only the container's depth ``bits_allocated``: the depth the values use,
        as the segmentation infers it, e.g. 12 for 12-bit data in a 16-bit PNG),
        ``photometric``, ``inverted``, ``lossy`` (``"JPEG"`` for a JPEG file) and, for
        DICOM: ``laterality``, ``view``, ``patient_id``, ``study_instance_uid``,
        ``manufacturer``, ``presentation_intent``, ``window_centers``, ``window_widths``,
        ``voi_lut_function``, ``voi_luts``, ``rescale_slope``, ``rescale_intercept``,
        ``transfer_syntax``, ``spacing_source`` and more.

    Raises
    ------
    UnreadableImageError
        Naming the file and the problem: missing file, unsupported type, truncated or
        undecodable data (naming the DICOM transfer syntax), not a 2-D greyscale image, a
        header declaring more than ``skcalc.io.MAX_IMAGE_PIXELS`` pixels (checked before
        anything is allocated). Every failure to read is this error, whatever the library
        underneath raised.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from skcalc.io import read_mammogram, write_image_atomic
    >>> path = os.path.join(tempfile.mkdtemp(), "roi.png")
    >>> write_image_atomic(path, np.array([[0, 1000], [4095, 7]], np.uint16))
    >>> image, spacing, meta = read_mammogram(path)
    >>> image.tolist(), image.dtype, spacing, meta["bits_allocated"], meta["bits_stored"]
    ([[0, 1000], [4095, 7]], dtype('uint16'), None, 16, 12)
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise UnreadableImageError(f"{path}: file does not exist")
    if os.path.isdir(path):
        raise UnreadableImageError(f"{path}: is a directory, not an image file")
    kind = _kind(path)
    if kind == "dicom":
        with _damage_named(path, "DICOM"):
            return read_dicom(path, apply_voi_lut=apply_voi_lut, warn_spacing=warn_spacing)
    meta: dict[str, Any] = {"source": path, "format": kind, "inverted": False}
    with _damage_named(path, kind.upper()):
        image = _READERS[kind](path, meta)
    meta["dtype"] = str(image.dtype)
    meta["shape"] = tuple(image.shape)
    return image, None, meta


def read_image_shape(path: str | os.PathLike) -> tuple[int, int]:
    """``(rows, cols)`` of an image file from its header, without decoding the pixels."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise UnreadableImageError(f"{path}: file does not exist")
    kind = _kind(path)
    try:
        if kind == "dicom":
            meta = read_dicom_header(path, warn=False)
            if not meta["rows"] or not meta["columns"]:
                raise UnreadableImageError(f"{path}: DICOM header has no Rows/Columns")
            check_declared_size(path, (meta["rows"], meta["columns"]))
            return meta["rows"], meta["columns"]
        if kind in ("png", "jpeg"):
            with _open_png(path, kind.upper()) as im:
                shape = (im.size[1], im.size[0])
        elif kind == "tiff":
            import tifffile

            with tifffile.TiffFile(path) as tif:
                if not tif.pages:
                    raise UnreadableImageError(f"{path}: TIFF file has no image")
                shape = tif.pages[0].shape
        elif kind == "pgm":
            with open(path, "rb") as fh:
                _, width, height, _, _ = _pgm_header(fh.read(256), path)
            return height, width
        else:
            shape = _npy_header(path)[0]
    except UnreadableImageError:
        raise
    except Exception as exc:  # noqa: BLE001 - libraries report damage with many types
        raise UnreadableImageError(
            f"{path}: could not read the image header ({type(exc).__name__}: {exc})"
        ) from exc
    check_declared_size(path, shape)
    shape = tuple(shape[1:]) if len(shape) == 3 and shape[0] == 1 else tuple(shape)
    if len(shape) == 3 and shape[2] in (2, 3, 4):
        shape = shape[:2]
    if len(shape) != 2:
        raise UnreadableImageError(f"{path}: expected a 2-D image, got shape {shape}")
    return int(shape[0]), int(shape[1])
