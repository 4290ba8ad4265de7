"""The unit of analysis: images (the paper's) or ROIs, and the paper's exclusions.

Marathe et al. analyse **images**: all annotated ROIs of one image are pooled, so that the
k-means histogram counts the objects of every ROI of the image, the topology and handcrafted
features are computed over the image's ROIs ("within ROIs of each image"), and the image is
labelled actionable if any of its ROIs is (276 ROIs in 248 images of 168 exams; the held-out
set is "60 images"). :func:`pool_by_image` turns a list of ROIs into one record per image, so
that the same estimators, ``GridSearchCV`` and nested CV run unchanged on images; ROI-level
analysis is simply not pooling.

The paper also drops ROIs that overlap no segmented object and images with 0 or 1 segmented
objects (Data Preparation; Discussion, second limitation):
:func:`skcalc.model_selection.paper_exclusions`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .roi import INVERSION_KEY, ROI, as_roi_list

__all__ = ["pool_by_image"]


def _image_key(roi: ROI) -> str:
    return str(roi.meta.get("image_id") or roi.path or roi.roi_id)


def _place(canvas: np.ndarray, crop: np.ndarray | None, at: tuple[int, int]) -> None:
    if crop is not None:
        r, c = at
        view = canvas[r : r + crop.shape[0], c : c + crop.shape[1]]
        if canvas.dtype == bool:
            view |= crop.astype(bool)
        else:
            view[...] = crop


def _pool_group(rois: list[ROI], image_id: str) -> ROI:
    """One record holding the union of the ROIs' boxes of one image."""
    if len(rois) == 1:
        roi = rois[0]
        return roi.replace(meta={**roi.meta, "roi_id": image_id, "image_id": image_id,
                                 "pooled_roi_ids": [roi.roi_id]})  # fmt: skip
    ids = [r.roi_id for r in rois]
    if any(r.box is None for r in rois):
        missing = next(r.roi_id for r in rois if r.box is None)
        raise ValueError(
            f"image {image_id!r}: ROI {missing!r} has no box (its position in the image), so "
            f"the ROIs {ids} cannot be pooled; give each ROI box=(row0, row1, col0, col1)"
        )
    tops = {repr(r.meta.get(INVERSION_KEY)) for r in rois}
    if len(tops) > 1:
        raise ValueError(
            f"image {image_id!r}: the segmenter inverted some of the ROIs {ids} and not others "
            f"(meta[{INVERSION_KEY!r}]: {sorted(tops)}), so their pixels cannot be pooled; "
            "segment the whole file (ROIs with path and box) or pool before segmenting"
        )
    spacing = rois[0].spacing
    for r in rois[1:]:
        if r.spacing != spacing:
            raise ValueError(
                f"image {image_id!r}: ROIs {rois[0].roi_id!r} and {r.roi_id!r} have different "
                f"spacings {spacing} and {r.spacing}"
            )
    r0 = min(r.box[0] for r in rois)
    r1 = max(r.box[1] for r in rois)
    c0 = min(r.box[2] for r in rois)
    c1 = max(r.box[3] for r in rois)
    shape = (r1 - r0, c1 - c0)
    at = [(r.box[0] - r0, r.box[2] - c0) for r in rois]
    region = np.zeros(shape, bool)
    for r, a in zip(rois, at):
        _place(region, r.region_mask, a)
    reference = None
    refs = [r.reference for r in rois]  # a lazy reference is rasterised on each access
    if all(m is not None for m in refs):
        reference = np.zeros(shape, bool)
        for m, a in zip(refs, at):
            _place(reference, m, a)
    calcifications = None
    if all(r.calcifications is not None for r in rois):
        # Labels stay distinct across ROIs: each ROI's labels are offset past the previous.
        calcifications = np.zeros(shape, np.int32)
        offset = 0
        for r, a in zip(rois, at):
            ids, lab = np.unique(np.asarray(r.calcifications), return_inverse=True)
            lab = lab.reshape(r.shape).astype(np.int32)
            if ids[0] != 0:  # no background in this ROI: labels start at 1
                lab += 1
            _place(calcifications, np.where(lab > 0, lab + offset, 0), a)
            offset += int(lab.max(initial=0))
    meta = {k: v for k, v in rois[0].meta.items() if all(r.meta.get(k) == v for r in rois)}
    meta.update(roi_id=image_id, image_id=image_id, pooled_roi_ids=ids)
    paths = {r.path for r in rois}
    if all(r.is_lazy for r in rois) and len(paths) == 1:
        # Read from the file on use, like the ROIs themselves.
        return ROI(path=rois[0].path, box=(r0, r1, c0, c1), spacing=spacing, region=region,
                   reference=reference, calcifications=calcifications,
                   meta=meta)  # fmt: skip
    images = [r.image for r in rois]
    dtype = np.result_type(*images)
    covered = np.zeros(shape, bool)
    canvas = np.zeros(shape, dtype)
    for img, a in zip(images, at):
        _place(canvas, img, a)
        _place(covered, np.ones(img.shape, bool), a)
    if not covered.all():
        # Pixels between the crops are unknown: a flat fill keeps filters quiet there, and
        # nothing is analysed outside the annotated regions.
        canvas[~covered] = np.median(canvas[covered]).astype(dtype)
    return ROI(canvas, spacing=spacing, region=region, reference=reference,
               calcifications=calcifications, meta=meta, box=(r0, r1, c0, c1))  # fmt: skip


def pool_by_image(
    rois: Sequence[ROI], y: Sequence | None = None, groups: Sequence | None = None
) -> tuple[list[ROI], np.ndarray | None, np.ndarray | None]:
    """Pool the ROIs of each image into one sample (the paper's unit of analysis).

    ROIs belong to the same image when they share ``meta["image_id"]`` (else the source path,
    else they stay alone). The pooled record covers the union of the ROIs' boxes (their
    positions in the image, ``roi.box``): its ``region`` is the union of the annotated
    regions, so every stage (segmentation, masks, local features, topology) sees the objects
    of all the image's ROIs together. A lazy ROI set from one file stays lazy.

    Parameters
    ----------
    rois : list of ROI
    y : array-like of shape (n_rois,), optional
        ROI labels; an image is actionable (1) if any of its ROIs is.
    groups : array-like of shape (n_rois,), optional
        Exam ids; the ROIs of one image must share one.

    Returns
    -------
    images : list of ROI
        One record per image, in order of first appearance; ``meta["pooled_roi_ids"]`` lists
        the ROIs it holds.
    y_images, groups_images : ndarray or None

    Examples
    --------
    >>> import numpy as np
    >>> from skcalc import ROI
    >>> img = np.zeros((10, 20), np.uint16)
    >>> a = ROI(img[:, :10], box=(0, 10, 0, 10), meta={"roi_id": "a", "image_id": "I"})
    >>> b = ROI(img[:, 10:], box=(0, 10, 10, 20), meta={"roi_id": "b", "image_id": "I"})
    >>> images, y_img, g_img = pool_by_image([a, b], y=[0, 1], groups=["E1", "E1"])
    >>> len(images), images[0].shape, y_img.tolist(), images[0].meta["pooled_roi_ids"]
    (1, (10, 20), [1], ['a', 'b'])
    """
    rois = as_roi_list(rois)
    n = len(rois)
    if y is not None and len(y) != n:
        raise ValueError(f"y has {len(y)} labels for {n} ROIs")
    if groups is not None and len(groups) != n:
        raise ValueError(f"groups has {len(groups)} entries for {n} ROIs")
    order: dict[str, list[int]] = {}
    for i, r in enumerate(rois):
        order.setdefault(_image_key(r), []).append(i)
    images, y_out, g_out = [], [], []
    for image_id, idx in order.items():
        images.append(_pool_group([rois[i] for i in idx], image_id))
        if y is not None:
            y_out.append(max(int(y[i]) for i in idx))
        if groups is not None:
            exams = {groups[i] for i in idx}
            if len(exams) != 1:
                raise ValueError(
                    f"image {image_id!r}: its ROIs belong to different exams {sorted(exams)}"
                )
            g_out.append(groups[idx[0]])
    return (
        images,
        None if y is None else np.asarray(y_out, dtype=int),
        None if groups is None else np.asarray(g_out),
    )
