"""Test support: small DICOM files built with pydicom (like ``sklearn.utils._testing``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["make_dicom_dataset", "networkx_graph_features", "write_dicom"]

#: Digital Mammography X-Ray Image Storage - For Presentation
MAMMOGRAPHY_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.1.2"


def make_dicom_dataset(
    pixels: np.ndarray,
    photometric: str = "MONOCHROME2",
    bits_stored: int = 12,
    *,
    sop_class: str = MAMMOGRAPHY_SOP_CLASS,
    **attributes: Any,
):
    """An uncompressed (explicit VR little endian) dataset holding ``pixels``.

    ``attributes`` are set as DICOM keywords (``ImagerPixelSpacing=[0.07, 0.07]``, ...).

    Examples
    --------
    >>> import numpy as np
    >>> ds = make_dicom_dataset(np.zeros((2, 3), np.uint16), Modality="MG")
    >>> ds.Rows, ds.Columns, ds.BitsStored, ds.Modality
    (2, 3, 12, 'MG')
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.set_pixel_data(np.asarray(pixels), photometric, bits_stored)
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    return ds


def write_dicom(path: str | os.PathLike, pixels: np.ndarray, *args: Any, **kwargs: Any) -> str:
    """Write :func:`make_dicom_dataset` ``(pixels, *args, **kwargs)`` to ``path``.

    Parent folders are created; returns the path as a string.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    make_dicom_dataset(pixels, *args, **kwargs).save_as(path, enforce_file_format=True)
    return str(path)


def networkx_graph_features(graph) -> np.ndarray:
    """The eight topology features of a networkx graph, computed with networkx.

    The slow reference of :func:`skcalc.features._topology.graph_features` (tests and the
    topology benchmark): eccentricity and diameter per connected component, as networkx
    needs connectivity for them.

    Examples
    --------
    >>> import networkx as nx
    >>> networkx_graph_features(nx.path_graph(3)).tolist()
    [1.0, 1.3333333333333333, 2.0, 1.6666666666666667, 2.0, 0.0, 1.0, 0.0]
    """
    import networkx as nx

    n = graph.number_of_nodes()
    if n == 0:
        return np.zeros(8)
    comps = [graph.subgraph(c) for c in nx.connected_components(graph)]
    ecc: dict = {}
    for c in comps:
        ecc.update(nx.eccentricity(c))
    degs = [d for _, d in graph.degree()]
    return np.array(
        [
            nx.number_connected_components(graph),
            sum(degs) / n,
            max(degs),
            sum(ecc.values()) / n,
            max(nx.diameter(c) for c in comps),
            nx.average_clustering(graph),
            max(len(c) for c in comps) / n,
            nx.number_of_isolates(graph) / n,
        ],
        dtype=float,
    )


def burn_in_text(
    image: np.ndarray, rows, text: str = "L CC", *, value: int = 4095, size_px: int = 40,
    breast_level: float = 1000
) -> np.ndarray:
    """``image`` with ``text`` burned in at ``value`` across the skin line on each of ``rows``.

    Each label starts ``size_px`` pixels inside the breast (pixels above ``breast_level``),
    as an annotation drawn over a mammogram would; Pillow's default font at ``size_px``.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.zeros((100, 200), np.uint16); img[:, :120] = 2000
    >>> out = burn_in_text(img, [30])
    >>> int(out.max()), bool((out[30:75, 80:200] == 4095).any()), img.max()
    (4095, True, np.uint16(2000))
    """
    from PIL import Image, ImageDraw, ImageFont

    breast = np.asarray(image) > breast_level
    canvas = Image.fromarray(np.asarray(image).astype(np.int32)).convert("I")
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=size_px)
    for row in rows:
        skin = int(np.nonzero(breast[row])[0].max())
        draw.text((skin - size_px, row), text, fill=int(value), font=font)
    return np.asarray(canvas).astype(np.asarray(image).dtype)


def add_hot_pixels(
    image: np.ndarray, fraction: float = 1e-4, *, value: int = 4095, random_state=0,
    keep: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``image`` with a random ``fraction`` of its pixels stuck at ``value`` (uncorrected
    detector defects, everywhere on the detector), none where ``keep`` is True; and where.

    Examples
    --------
    >>> import numpy as np
    >>> out, hot = add_hot_pixels(np.zeros((100, 100), np.uint16), 0.01)
    >>> int(hot.sum()), int(out[hot].min()), out.dtype
    (89, 4095, dtype('uint16'))
    """
    image = np.asarray(image)
    hot = np.random.default_rng(random_state).random(image.shape) < fraction
    if keep is not None:
        hot &= ~np.asarray(keep, bool)
    out = image.copy()
    out[hot] = value
    return out, hot
