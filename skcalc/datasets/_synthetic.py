"""Synthetic mammography: the embedded default data of skcalc.

Two generators, both in physical units (mm) so that any pixel spacing just works:

- :func:`make_calcification_cohort`: a cohort of ROI crops with amorphous calcification
  clusters, exam and patient structure, binary labels (1 = actionable) and ground truth.
- :func:`make_full_field_mammogram`: one whole breast image (CC or MLO) with inserted
  clusters and ground truth.

The image model follows published facts (see ``Notes`` of each function): a Hologic
Selenia-like detector (0.07 mm pixels, 12-bit stored values), a power-law anatomical
background, quantum plus electronic noise, a Gaussian detector blur, and BI-RADS (5th ed.)
distribution descriptors for the clusters.
"""

from __future__ import annotations

import numbers
import os

import numpy as np
import scipy.fft
from scipy import ndimage
from sklearn.utils._param_validation import Interval, StrOptions, validate_params

from ..roi import ROI
from ._calcifications import draw_cluster_spec, place_cluster
from ._texture import power_law_texture

__all__ = ["make_calcification_cohort", "make_full_field_mammogram"]

MAX_VALUE = 4095  # 12-bit stored values
# Noise model of the linear "for processing" signal: quantum noise with a variance
# proportional to the signal, plus an electronic floor (counts). At 1200-3000 counts this
# gives a noise sd of about 9-14 counts.
QUANTUM_GAIN = 0.06
ELECTRONIC_SD = 4.0
AIR_LEVEL = 60.0


def _as_generator(random_state) -> np.random.Generator:
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(0, 2**31 - 1, size=4))
    if random_state is None or isinstance(random_state, numbers.Integral):
        return np.random.default_rng(random_state)
    raise TypeError(f"random_state must be None, an int, a RandomState or a Generator, "
                    f"got {type(random_state).__name__}")  # fmt: skip


def _add_noise(signal: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Quantum (variance proportional to the signal) plus electronic noise; in place."""
    sd = np.maximum(signal, 0.0)
    sd *= np.float32(QUANTUM_GAIN)
    sd += np.float32(ELECTRONIC_SD**2)
    np.sqrt(sd, out=sd)
    sd *= rng.standard_normal(signal.shape, dtype=np.float32)
    signal += sd
    return signal


def _to_12bit(signal: np.ndarray) -> np.ndarray:
    np.clip(signal, 0, MAX_VALUE, out=signal)
    np.rint(signal, out=signal)
    return signal.astype(np.uint16)


# --------------------------------------------------------------------------- cohort
# The paper's cohort: 276 ROIs in 248 images of 168 exams, 76 ROIs actionable (Table 1).
PAPER_ROIS, PAPER_IMAGES, PAPER_EXAMS, PAPER_ACTIONABLE = 276, 248, 168, 76
# Views an exam may hold (diagnostic exams add exaggerated views to CC and MLO).
VIEWS = ("CC", "MLO", "ML", "XCCL")
MAX_ROIS_PER_IMAGE = 3


def _spread(n_items: int, n_bins: int, cap: int, rng: np.random.Generator) -> list[int]:
    """``n_items`` spread over ``n_bins`` bins, at least 1 and at most ``cap`` each."""
    sizes = [1] * n_bins
    for _ in range(n_items - n_bins):
        open_ = [b for b in range(n_bins) if sizes[b] < cap]
        sizes[open_[int(rng.integers(len(open_)))]] += 1
    return sizes


def _exam_structure(
    n_rois: int, n_images: int, n_exams: int, prevalence: float, rng: np.random.Generator
):
    """Images per exam, ROIs per image, exam labels and patients.

    Labels are per exam (the paper omitted exams with several pathology results), filled
    greedily in random order until the ROI-level count of actionable ROIs reaches the
    prevalence. Each patient has one exam, as in the paper (168 exams of 168 patients).
    """
    images_per_exam = _spread(n_images, n_exams, len(VIEWS), rng)
    rois_per_image = _spread(n_rois, n_images, MAX_ROIS_PER_IMAGE, rng)
    exams, k = [], 0
    for m in images_per_exam:
        exams.append(rois_per_image[k : k + m])
        k += m
    target = int(round(prevalence * n_rois))
    labels = np.zeros(n_exams, int)
    n_pos = 0
    for e in rng.permutation(n_exams):
        if n_pos + sum(exams[e]) <= target:
            labels[e] = 1
            n_pos += sum(exams[e])
    return exams, labels


def _roi_background(n: int, spacing: float, rng: np.random.Generator, width: int | None = None):
    """Noise-free anatomical background of an n x width crop (float32 counts), parameters.

    Power-law texture plus a smooth density variation (plane and curvature) on a tissue
    level. Noise is added after the calcifications, since its variance follows the signal.
    """
    # Generated on a larger field and cropped so that the crop is not periodic (the FFT
    # field is).
    w = n if width is None else width
    big = scipy.fft.next_fast_len(int(round(n * 1.5)), real=True)
    big_w = scipy.fft.next_fast_len(int(round(w * 1.5)), real=True)
    beta = rng.uniform(2.8, 3.3)
    # psd_at_1 >= 6 counts^2 mm^2 keeps the anatomy >= 8x above the quantum noise
    # (about 0.7 counts^2 mm^2 at 0.07 mm) over 0.1-1 cycles/mm, where beta is measured.
    psd_at_1 = float(np.exp(rng.uniform(np.log(6.0), np.log(18.0))))
    tex = power_law_texture(
        (big, big_w), spacing, beta, psd_at_1, rng,
        anisotropy=rng.uniform(1.0, 1.5), angle=rng.normal(0, 0.4),
    )  # fmt: skip
    o, ow = (big - n) // 2, (big_w - w) // 2
    signal = tex[o : o + n, ow : ow + w].copy()
    level = rng.uniform(1300.0, 2800.0)
    yy, xx = np.mgrid[:n, :w].astype(np.float32)
    yy = (yy - n / 2) * np.float32(spacing)
    xx = (xx - w / 2) * np.float32(spacing)
    g = rng.normal(0, 6.0, 2)  # counts per mm
    q = rng.normal(0, 0.4)  # counts per mm^2
    signal += np.float32(level) + g[0] * yy + g[1] * xx + np.float32(q) * (yy * yy + xx * xx)
    return signal, {"beta": float(beta), "psd_at_1": psd_at_1, "tissue_level": float(level)}


def _make_image(
    label: int,
    metas: list[dict],
    roi_size_mm: float,
    margin_mm: float,
    spacing: float,
    difficulty: float,
    psf_sigma_mm: float,
    rng: np.random.Generator,
) -> list[ROI]:
    """The ROIs of one image: square crops side by side in one image strip.

    Each ROI is an ``n x n`` crop (region disk of ``roi_size_mm`` plus the margin) of a
    strip ``n x (k n)`` holding one cluster per ROI on a common background; ``box`` gives its
    position in the strip, so :func:`skcalc.samples.pool_by_image` rebuilds the strip.
    """
    n = int(round((roi_size_mm + 2 * margin_mm) / spacing))
    k = len(metas)
    signal, bg_info = _roi_background(n, spacing, rng, width=k * n)
    yy, xx = (np.mgrid[:n, :n].astype(np.float32) - n / 2) * np.float32(spacing)
    disk = (yy * yy + xx * xx) <= (roi_size_mm / 2) ** 2
    inner = (yy * yy + xx * xx) <= (roi_size_mm / 2 - 0.4) ** 2
    reference = np.zeros((n, k * n), bool)
    drawn = []
    for j in range(k):
        allowed = np.zeros((n, k * n), bool)
        allowed[:, j * n : (j + 1) * n] = inner
        # Class overlap: with probability difficulty/2 the cluster is drawn from the other
        # class's distribution (difficulty=1 makes the image independent of the label).
        swap = rng.random() < difficulty / 2
        appearance = "actionable" if (label == 1) != swap else "benign"
        spec = draw_cluster_spec(appearance, roi_size_mm / 2 - 0.5, rng)
        centre = (n / 2 + rng.normal(0, 1.0 / spacing),
                  j * n + n / 2 + rng.normal(0, 1.0 / spacing))  # fmt: skip
        placed = place_cluster(
            signal, reference, allowed, centre, spec, spacing, psf_sigma_mm, rng
        )
        drawn.append((spec, appearance, placed))
    _add_noise(signal, rng)
    image = _to_12bit(signal)
    rois = []
    for j, (meta, (spec, appearance, placed)) in enumerate(zip(metas, drawn)):
        meta = dict(meta)
        meta.update(
            bits_stored=12,
            n_calcifications=len(placed),
            distribution=spec.distribution,
            appearance=appearance,
            spacing=float(spacing),
            **bg_info,
        )
        cols = slice(j * n, (j + 1) * n)
        rois.append(ROI(image[:, cols], spacing=spacing, region=disk,
                        reference=reference[:, cols], meta=meta,
                        box=(0, n, j * n, (j + 1) * n)))  # fmt: skip
    return rois


@validate_params(
    {
        "n_rois": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_images": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "n_exams": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "prevalence": [Interval(numbers.Real, 0, 1, closed="both")],
        "roi_size_mm": [Interval(numbers.Real, 2, None, closed="left")],
        "margin_mm": [Interval(numbers.Real, 0, None, closed="left")],
        "spacing": [Interval(numbers.Real, 0.01, 0.3, closed="both")],
        "difficulty": [Interval(numbers.Real, 0, 1, closed="both")],
        "psf_sigma_mm": [Interval(numbers.Real, 0, 0.5, closed="both")],
        "random_state": ["random_state", np.random.Generator],
    },
    prefer_skip_nested_validation=True,
)
def make_calcification_cohort(
    n_rois: int = PAPER_ROIS,
    prevalence: float = PAPER_ACTIONABLE / PAPER_ROIS,
    *,
    n_images: int | None = None,
    n_exams: int | None = None,
    roi_size_mm: float = 16.0,
    margin_mm: float = 2.0,
    spacing: float = 0.07,
    difficulty: float = 0.3,
    psf_sigma_mm: float = 0.07,
    random_state=None,
) -> tuple[list[ROI], np.ndarray, np.ndarray]:
    """Make a synthetic cohort of mammogram ROIs with amorphous calcification clusters.

    Each ROI is a square crop of ``roi_size_mm + 2 * margin_mm`` mm holding a disk-shaped
    annotated ``region`` of diameter ``roi_size_mm`` with one cluster inside it. The cohort
    has the paper's structure by default: 276 ROIs in 248 images of 168 exams (one exam per
    patient), 76 ROIs actionable; some images hold several ROIs (1-3, side by side in one
    image strip: ``roi.box`` is the ROI's position in it, so
    :func:`skcalc.samples.pool_by_image` rebuilds the image), and exams hold several images
    (views CC, MLO, ML, XCCL of one breast). The label is set per exam (the paper omitted
    exams with several pathology results), so all ROIs of an exam share it.

    Parameters
    ----------
    n_rois : int, default=276
        Number of ROIs (the paper's cohort size).
    prevalence : float, default=76/276
        Target fraction of actionable ROIs (the paper: 76 of 276). Labels are set per exam,
        so the realised fraction can differ by a few ROIs.
    n_images, n_exams : int, optional
        Number of images and exams; by default in the paper's proportions (248 and 168 for
        276 ROIs, scaled for other sizes).
    roi_size_mm : float, default=16.0
        Diameter of the annotated region, in mm.
    margin_mm : float, default=2.0
        Context margin around the region, in mm, so that filters see the surroundings.
    spacing : float, default=0.07
        Pixel spacing in mm (Hologic Selenia: 0.07 mm). All sizes are physical, so a cohort
        at 0.05 or 0.1 mm holds the same anatomy and calcifications at another sampling.
    difficulty : float in [0, 1], default=0.3
        Class overlap. Each ROI's cluster parameters are drawn from the *other* class's
        distribution with probability ``difficulty / 2`` (recorded in
        ``meta["appearance"]``). At 0 the classes differ only by their (already
        overlapping) parameter distributions; at 1 the images carry no information on the
        label. Measured held-out ROC AUC of a classifier on ground-truth cluster features
        (count, std and mean of area, centroid x/y correlation, mean pairwise distance,
        mean contrast, eccentricity; 5-fold StratifiedGroupKFold, 276 ROIs, 3 seeds):
        about 0.99 at 0, 0.78-0.81 at the default 0.3, 0.76 at 0.4, 0.56 at 1 (the paper
        reached 0.73 on real data).
    psf_sigma_mm : float, default=0.07
        Standard deviation of the Gaussian detector point-spread function, in mm.
    random_state : int, RandomState, Generator or None, default=None
        Seed for reproducible output.

    Returns
    -------
    rois : list of ROI
        uint16 images (values 0..4095) with ``region``, ``reference`` (bool ground-truth
        mask, one 4-connected component per calcification, at least 2 px between
        calcifications) and ``meta`` (``roi_id``, ``patient_id``, ``exam_id``, ``image_id``,
        ``laterality``, ``view``, ``bits_stored``, ``n_calcifications``, ``distribution``,
        ``appearance`` (the class whose distribution was used), ``beta``, ``spacing``).
    y : ndarray of int, shape (n_rois,)
        1 for actionable (high-risk or malignant), 0 for benign.
    groups : ndarray of str, shape (n_rois,)
        Exam ids, for grouped cross-validation.

    Notes
    -----
    Image model, per ROI (all counts in 12-bit detector units, brighter = more attenuating,
    MONOCHROME2 after reading):

    - Detector: Hologic Selenia full-field digital mammography, 0.07 mm pixels, 12-bit
      (Marathe et al., Data Collection).
    - Anatomical background: a Gaussian random field with power spectrum ``c / f**beta``
      (Burgess et al., Med Phys 2001), ``beta`` drawn in [2.8, 3.3] around the values
      measured on digital mammograms, 3.17 (CC) and 3.30 (MLO) (Chen, Abbey, Boone et al.,
      Med Phys 2012), mildly anisotropic (structure oriented towards the nipple), plus a
      smooth density gradient on a 1300-2800 count tissue level. The spectrum is generated on
      a 1.5x larger field and cropped, so the crop is not periodic. The anatomy dominates
      the noise over 0.1-1 cycles/mm, where ``beta`` is measured.
    - Noise: quantum noise with variance proportional to the signal plus an electronic
      floor (sd about 9-14 counts).
    - Calcifications: amorphous (BI-RADS 5th ed.), 0.1-0.6 mm equivalent diameter, a dome
      thickness profile over the footprint, blurred by the Gaussian PSF and a little haze,
      peak contrast mostly 60-300 counts above the local background. Benign-appearing
      clusters are ``diffuse``, ``regional`` or loosely ``grouped`` with uniform, round
      objects; actionable-appearing clusters are ``grouped``, ``linear`` or ``segmental``
      with heterogeneous sizes and elongated, irregular shapes. About 7 % of ROIs hold only
      one or two calcifications.

    Examples
    --------
    >>> from skcalc.datasets import make_calcification_cohort
    >>> rois, y, groups = make_calcification_cohort(4, roi_size_mm=4, random_state=0)
    >>> len(rois), rois[0].image.dtype, rois[0].meta["bits_stored"]
    (4, dtype('uint16'), 12)
    >>> rois[0].reference.shape == rois[0].image.shape
    True
    """
    rng = _as_generator(random_state)
    if n_images is None:
        n_images = max(1, int(round(n_rois * PAPER_IMAGES / PAPER_ROIS)))
    if n_exams is None:
        n_exams = max(1, int(round(n_rois * PAPER_EXAMS / PAPER_ROIS)))
    n_images = min(n_images, n_rois)
    n_exams = min(n_exams, n_images)
    if n_images > len(VIEWS) * n_exams or n_rois > MAX_ROIS_PER_IMAGE * n_images:
        raise ValueError(
            f"cannot place {n_rois} ROIs in {n_images} images of {n_exams} exams (at most "
            f"{MAX_ROIS_PER_IMAGE} ROIs per image and {len(VIEWS)} images per exam)"
        )
    exams, labels = _exam_structure(n_rois, n_images, n_exams, prevalence, rng)
    rois: list[ROI] = []
    y: list[int] = []
    groups: list[str] = []
    for e, (images, label) in enumerate(zip(exams, labels)):
        exam_id = f"E{e:04d}"
        laterality = "L" if rng.random() < 0.5 else "R"
        for v, n_in_image in enumerate(images):
            image_id = f"{exam_id}-{laterality}{VIEWS[v]}"
            metas = [
                {
                    "roi_id": f"{image_id}-{k}",
                    "patient_id": f"P{e:04d}",
                    "exam_id": exam_id,
                    "image_id": image_id,
                    "laterality": laterality,
                    "view": VIEWS[v],
                }
                for k in range(n_in_image)
            ]
            rois.extend(_make_image(int(label), metas, roi_size_mm, margin_mm, spacing,
                                    difficulty, psf_sigma_mm, rng))  # fmt: skip
            y.extend([int(label)] * n_in_image)
            groups.extend([exam_id] * n_in_image)
    return rois, np.asarray(y, dtype=int), np.asarray(groups)


# --------------------------------------------------------------------------- full field
def _upsample(coarse: np.ndarray, factor: int, shape: tuple[int, int]) -> np.ndarray:
    # grid_mode aligns coarse cell centres with the centres of the pixel blocks they cover.
    out = ndimage.zoom(coarse.astype(np.float32), factor, order=1, grid_mode=True, mode="nearest")
    return out[: shape[0], : shape[1]]


@validate_params(
    {
        "shape": [tuple, list],
        "spacing": [Interval(numbers.Real, 0.01, 0.3, closed="both")],
        "view": [StrOptions({"CC", "MLO"})],
        "laterality": [StrOptions({"L", "R"})],
        "n_clusters": [Interval(numbers.Integral, 0, None, closed="left")],
        "psf_sigma_mm": [Interval(numbers.Real, 0, 0.5, closed="both")],
        "random_state": ["random_state", np.random.Generator],
    },
    prefer_skip_nested_validation=True,
)
def make_full_field_mammogram(
    shape: tuple[int, int] = (4096, 3328),
    spacing: float = 0.07,
    view: str = "MLO",
    laterality: str = "L",
    n_clusters: int = 8,
    *,
    psf_sigma_mm: float = 0.07,
    random_state=None,
) -> ROI:
    """Make a whole synthetic mammogram with inserted calcification clusters.

    A breast on an air background: an elliptic outline with a thinning edge and a skin
    line, a density gradient towards the chest wall, a power-law anatomical texture, the
    pectoral muscle (a bright triangle in the chest-wall top corner) on MLO, and clusters of
    amorphous calcifications, half benign-appearing and half actionable-appearing, with
    their ground truth. Left breasts have the chest wall on the left image edge, right
    breasts on the right edge.

    Parameters
    ----------
    shape : (int, int), default=(4096, 3328)
        Image shape in pixels (Hologic Selenia 24x29 cm detector: 4096 x 3328).
    spacing : float, default=0.07
        Pixel spacing in mm. Anatomy and calcifications have physical sizes, so a
        smaller ``shape`` at the same spacing shows a smaller breast.
    view : {"MLO", "CC"}, default="MLO"
        Mammographic view; MLO adds the pectoral muscle and uses ``beta = 3.30``,
        CC ``beta = 3.17`` (Chen, Abbey, Boone et al., Med Phys 2012).
    laterality : {"L", "R"}, default="L"
        Breast side (sets the chest-wall edge).
    n_clusters : int, default=8
        Number of clusters to insert (fewer when the breast has no room left).
    psf_sigma_mm : float, default=0.07
        Standard deviation of the Gaussian detector PSF, in mm.
    random_state : int, RandomState, Generator or None, default=None
        Seed for reproducible output.

    Returns
    -------
    ROI
        uint16 image (0..4095), ``region=None``, ``reference`` (bool mask of every inserted
        calcification) and ``meta`` with ``breast_mask`` (bool: the breast, pectoral muscle
        included, for false positives per cm^2), ``pectoral_mask`` (bool, or None on CC),
        ``clusters`` (list of dicts: ``centre`` and ``bbox`` ``(row0, row1, col0, col1)`` in
        px, ``distribution``, ``appearance``, ``n_calcifications``), ``bits_stored=12``,
        ``view``, ``laterality``, ``image_id``, ``roi_id``.

    Notes
    -----
    The breast, texture, noise and calcification models are those of
    :func:`make_calcification_cohort` (Hologic Selenia 0.07 mm 12-bit detector; Burgess
    power-law background; BI-RADS 5th ed. distributions), with the tissue level falling
    to the air level over the last ~12 mm towards the skin where the compressed breast
    thins. Air is dark (about 60 counts), the breast brighter, calcifications brighter
    still. The calcification contrast (mostly 60-300 counts above the background, noise sd
    about 9-14 counts) is calibrated so that a scale-normalised DoG detector at threshold
    0.006 on the image divided by 4095 (HDoGReg's defaults) finds nearly all of them.

    Examples
    --------
    >>> from skcalc.datasets import make_full_field_mammogram
    >>> roi = make_full_field_mammogram((256, 208), spacing=0.3, n_clusters=1, random_state=0)
    >>> roi.image.shape, roi.meta["view"], bool(roi.meta["breast_mask"].any())
    ((256, 208), 'MLO', True)
    """
    if len(shape) != 2 or not all(isinstance(s, numbers.Integral) and s >= 16 for s in shape):
        raise ValueError(f"shape must be two integers >= 16, got {shape!r}")
    rng = _as_generator(random_state)
    H, W = (int(s) for s in shape)
    workers = min(2, os.cpu_count() or 1)

    # Coarse geometry (about 0.5 mm cells), upsampled: cheap and smooth.
    ds = max(1, int(round(0.5 / spacing)))
    h, w = -(-H // ds), -(-W // ds)
    cs = ds * spacing  # coarse cell size in mm
    yc, xc = np.mgrid[:h, :w].astype(np.float64)
    yc = (yc + 0.5) * cs
    xc = (xc + 0.5) * cs
    Hmm, Wmm = H * spacing, W * spacing
    mlo = view == "MLO"
    cy = Hmm * (rng.uniform(0.5, 0.56) if mlo else rng.uniform(0.45, 0.55))
    ay = Hmm * (rng.uniform(0.44, 0.48) if mlo else rng.uniform(0.36, 0.43))
    ax = Wmm * rng.uniform(0.62, 0.78)
    th = np.arctan2((yc - cy) / ay, xc / ax)
    lobes = 1 + sum(rng.normal(0, 0.02) * np.cos(k * th + rng.uniform(0, 6.3)) for k in (2, 3, 5))
    level = np.hypot((yc - cy) / ay, xc / ax) / lobes - 1.0  # < 0 inside the outline
    if mlo:
        # Pectoral muscle: a slightly convex triangle from the top of the chest wall.
        pw = Wmm * rng.uniform(0.25, 0.38)
        ph = Hmm * rng.uniform(0.4, 0.55)
        pec_level = (xc / pw) ** rng.uniform(1.0, 1.3) + yc / ph - 1.0
        level = np.minimum(level, pec_level * 0.5)
    inside = level < 0
    dist = ndimage.distance_transform_edt(inside) * cs  # mm to the skin (chest wall excluded)

    breast = _upsample(level, ds, (H, W)) < 0
    d = _upsample(dist, ds, (H, W))
    # Compressed-breast edge: thickness falls like a circle arc over the last edge_mm.
    edge_mm = rng.uniform(9.0, 14.0)
    thick = np.clip(d / np.float32(edge_mm), 0, 1)
    thick = np.sqrt(1 - (1 - thick) ** 2, dtype=np.float32)
    thick[~breast] = 0
    skin = np.exp(-((d / np.float32(0.7)) ** 2), dtype=np.float32)
    skin[~breast] = 0
    del d

    # Tissue: base level, density rising towards the chest wall, smooth lumps, pectoral.
    base = rng.uniform(1300.0, 1800.0)
    dens = rng.uniform(400.0, 800.0) * np.exp(-xc / rng.uniform(35.0, 60.0))
    lumps = ndimage.gaussian_filter(rng.standard_normal((h, w)), 12.0 / cs)
    lumps *= rng.uniform(120.0, 250.0) / max(lumps.std(), 1e-9)
    tissue_coarse = base + dens + lumps
    pectoral = None
    if mlo:
        pec_soft = 1.0 / (1.0 + np.exp(np.clip(pec_level * 60.0, -50, 50)))
        tissue_coarse = tissue_coarse + rng.uniform(500.0, 800.0) * pec_soft
        pectoral = _upsample(pec_level, ds, (H, W)) < 0
        pectoral &= breast
    signal = _upsample(tissue_coarse, ds, (H, W))
    beta = (3.30 if mlo else 3.17) + rng.normal(0, 0.05)
    tex = power_law_texture(
        (H, W), spacing, beta, float(np.exp(rng.uniform(np.log(6.0), np.log(15.0)))), rng,
        anisotropy=1.4, angle=rng.normal(0, 0.2), workers=workers,
    )  # fmt: skip
    signal += tex
    del tex
    signal *= thick
    del thick
    signal += np.float32(AIR_LEVEL)
    skin *= np.float32(rng.uniform(40.0, 80.0))
    signal += skin
    del skin

    # Clusters: inside the breast, >= 8 mm from the skin, outside the pectoral muscle.
    reference = np.zeros((H, W), bool)
    radius_mm = 7.0
    ok_coarse = inside & (dist > radius_mm + 8.0)
    if mlo:
        ok_coarse &= pec_level > 0.15
    allowed = breast.copy()
    if pectoral is not None:
        allowed &= ~pectoral
    cand = np.argwhere(ok_coarse)
    clusters: list[dict] = []
    centres: list[np.ndarray] = []
    for i in range(n_clusters):
        if len(cand) == 0:  # a breast too small for a cluster this far from the skin
            break
        for _ in range(50):
            cyx = (cand[rng.integers(len(cand))] + rng.random(2)) * ds
            if all(np.hypot(*(cyx - c)) * spacing > 2 * radius_mm + 2 for c in centres):
                break
        else:
            cyx = None
        if cyx is None:
            break
        appearance = "benign" if i % 2 == 0 else "actionable"
        spec = draw_cluster_spec(appearance, radius_mm, rng)
        spec.n = max(spec.n, 5)  # every inserted cluster is a visible target
        placed = place_cluster(signal, reference, allowed, tuple(cyx), spec, spacing,
                               psf_sigma_mm, rng)  # fmt: skip
        centres.append(cyx)
        if not placed:
            continue
        cent = np.array([p["centroid"] for p in placed])
        r0, c0 = np.floor(cent.min(0)).astype(int) - 5
        r1, c1 = np.ceil(cent.max(0)).astype(int) + 6
        clusters.append(
            {
                "centre": (float(cyx[0]), float(cyx[1])),
                "bbox": (max(int(r0), 0), min(int(r1), H), max(int(c0), 0), min(int(c1), W)),
                "distribution": spec.distribution,
                "appearance": appearance,
                "n_calcifications": len(placed),
            }
        )
    _add_noise(signal, rng)
    image = _to_12bit(signal)
    del signal
    if laterality == "R":
        image = image[:, ::-1].copy()
        reference = reference[:, ::-1].copy()
        breast = breast[:, ::-1].copy()
        if pectoral is not None:
            pectoral = pectoral[:, ::-1].copy()
        for c in clusters:
            c["centre"] = (c["centre"][0], W - 1 - c["centre"][1])
            r0, r1, c0, c1 = c["bbox"]
            c["bbox"] = (r0, r1, W - c1, W - c0)
    image_id = f"synthetic-{laterality}{view}"
    meta = {
        "roi_id": image_id,
        "image_id": image_id,
        "patient_id": "synthetic",
        "exam_id": "synthetic",
        "laterality": laterality,
        "view": view,
        "bits_stored": 12,
        "breast_mask": breast,
        "pectoral_mask": pectoral,
        "clusters": clusters,
        "n_calcifications": int(sum(c["n_calcifications"] for c in clusters)),
        "beta": float(beta),
    }
    return ROI(image, spacing=spacing, region=None, reference=reference, meta=meta)
