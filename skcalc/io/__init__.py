"""Reading mammograms (DICOM, PNG, JPEG, TIFF, PGM, NPY), manifests and writing outputs."""

from ..roi import register_image_reader
from ._dicom import dicom_spacing, display_image, read_dicom_header, read_spacing
from ._limits import MAX_IMAGE_PIXELS
from ._manifest import LABELS, load_manifest, parse_label, region_box
from ._readers import is_dicom, read_image_shape, read_mammogram
from ._writers import (
    clean_stale_temporaries,
    jsonable,
    save_figure_atomic,
    write_image_atomic,
    write_json_atomic,
    write_text_atomic,
)

__all__ = [
    "LABELS",
    "MAX_IMAGE_PIXELS",
    "clean_stale_temporaries",
    "dicom_spacing",
    "display_image",
    "is_dicom",
    "jsonable",
    "load_manifest",
    "parse_label",
    "read_dicom_header",
    "read_image_shape",
    "read_mammogram",
    "read_spacing",
    "region_box",
    "save_figure_atomic",
    "write_image_atomic",
    "write_json_atomic",
    "write_text_atomic",
]


def _read_pixels(path):
    # The record carries its spacing: the file's missing spacing is not news here.
    return read_mammogram(path, warn_spacing=False)[0]


register_image_reader(_read_pixels)
