"""HDoGRegSegmenter: the HDoGReg segmentation stage as a scikit-learn transformer over ROIs."""

from __future__ import annotations

import ctypes
import hashlib
import os
import sys
from numbers import Integral, Real

import numpy as np
from scipy import ndimage as ndi
from sklearn.utils._param_validation import HasMethods, Interval, Options, StrOptions

from .._units import resolve_bit_depth
from ..roi import INVERSION_KEY, ROI, as_roi_list, check_roi
from ..utils._lru import LRUCache
from ..utils._stage import ImageStage
from ._calibrated import filter_cnr_threshold
from ._hdog import hdog_candidates
from ._operating_point import FP_CALIBRATIONS
from ._polarity import orient_breast

#: Coarsest pixel spacing (mm) at which the segmentation was measured (digitised film at
#: 0.2 mm, plus a margin); beyond it a warning says the results are not resolved.
_MAX_MEASURED_SPACING = 0.25

__all__ = ["HDoGRegSegmenter"]


class RegressorWeights:
    """The regression network as plain data: hashable for the cache, cheap to ship.

    A torch module pickles differently each time it is loaded, so it cannot key a cache;
    its architecture settings and parameter arrays can. Workers rebuild the network once
    per process from these arrays.
    """

    def __init__(self, model) -> None:
        self.config = dict(model.config)
        self.state = {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}
        self.refresh_digest()

    def refresh_digest(self) -> None:
        """Set ``digest`` from the settings and arrays (it keys the per-process network cache;
        a loaded model file recomputes it rather than trusting the file's)."""
        h = hashlib.sha1(repr(sorted(dict(self.config).items())).encode())
        for k in sorted(self.state):
            h.update(k.encode())
            h.update(np.ascontiguousarray(self.state[k]).tobytes())
        self.digest = h.hexdigest()

    def model(self):
        """The network in eval mode (built once per process)."""
        net = _NETWORKS.get(self.digest)
        if net is None:
            import torch

            from ._regression import ProximityUNet

            cfg = {k: v for k, v in self.config.items() if k != "arch"}
            net = ProximityUNet(**cfg)
            net.load_state_dict({k: torch.from_numpy(v) for k, v in self.state.items()})
            net = _NETWORKS.setdefault(self.digest, net.eval())
        return net

    def __repr__(self) -> str:
        return f"RegressorWeights({self.config}, digest={self.digest[:10]})"


_NETWORKS: dict = {}


def _trim_heap() -> None:
    """Give freed heap memory back to the OS after a CNN pass (glibc only).

    The network's CPU kernels leave freed blocks in glibc's arenas: measured, a process
    grew by about 9 MB per ROI (404 MB -> 920 MB over 60 ROIs) and ``malloc_trim`` brought
    it back to 404 MB. Without it a worker's memory is not bounded by one ROI's work, and
    loky restarts workers it takes for leaking.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (e.g. musl)
        pass


def _context_window(
    roi: ROI, context_mm: float
) -> tuple[np.ndarray, tuple[int, int], tuple, bool]:
    """The image to segment, its corner in the source file, where the ROI sits in it, and
    whether that image is the whole file of a boxed ROI.

    A lazy ROI cut from a larger file (``path`` + ``box``) is segmented with ``context_mm``
    of the file's pixels around its box (``np.inf``: the whole file), so that the filters
    and the CNN see what they would see on the whole image; in-memory ROIs are segmented as
    given.
    """
    if not (roi.is_lazy and roi.box is not None and context_mm > 0):
        image = roi.load().image
        origin = (roi.box[0], roi.box[2]) if roi.box is not None else (0, 0)
        return image, origin, (slice(None), slice(None)), False
    from ..io import read_mammogram

    full, _, _ = read_mammogram(roi.path, warn_spacing=False)
    r0, r1, c0, c1 = roi.box
    my, mx = (int(min(np.ceil(context_mm / s), n)) for s, n in zip(roi.spacing, full.shape))
    R0, C0 = max(r0 - my, 0), max(c0 - mx, 0)
    R1, C1 = min(r1 + my, full.shape[0]), min(c1 + mx, full.shape[1])
    inner = (slice(r0 - R0, r1 - R0), slice(c0 - C0, c1 - C0))
    whole = (R0, C0, R1, C1) == (0, 0, *full.shape)
    return full[R0:R1, C0:C1], (R0, C0), inner, whole


def _segment_roi(
    roi: ROI, *, weights: RegressorWeights | None, hdog: dict, context: float,
    calibrated: dict | None = None, polarity: str = "auto", **combine
) -> tuple[np.ndarray, dict]:
    """Label image and summary of one ROI (module level for joblib workers and the cache).

    Only the labels and a small summary are returned (and cached): the record is rebuilt by
    the caller, so a lazy image stays lazy and the cache never stores a copy of the pixels.
    """
    check_roi(roi, load_image=False)
    image, origin, inner, whole_file = _context_window(roi, context)
    key = None
    if whole_file:
        # Several ROIs of one mammogram: the whole file is segmented once per process.
        st = os.stat(roi.path)
        # ctime too: ``cp -p`` can give new content the old size and modification time
        key = (os.path.realpath(roi.path), st.st_size, st.st_mtime_ns, st.st_ino,
               st.st_ctime_ns, tuple(roi.spacing),
               _params_digest(weights, hdog, calibrated, combine, polarity))
        found, hit = _WHOLE_FILES.get(key)
        if found:
            return _cut_box(*hit, inner)
    check_roi(ROI(image, spacing=roi.spacing, meta=roi.meta))
    labels, summary = _segment_image(roi, image, origin, weights=weights, hdog=hdog,
                                     calibrated=calibrated, polarity=polarity, **combine)
    if key is not None:
        # a box's labels are relabelled from the mask: the mask is all the ROIs need
        mask = labels > 0
        mask.flags.writeable = False  # shared by the ROIs of this file
        _WHOLE_FILES.put(key, (mask, summary), weight=mask.nbytes)
    return _cut_box(labels, summary, inner)


#: Whole-file segmentations of this process (object mask, summary), by file state and
#: settings (13.6 MB for a 4096 x 3328 mammogram).
_WHOLE_FILES = LRUCache(max_items=16, max_weight=256 * 2**20)


def _segmented_meta(meta: dict, summary: dict) -> dict:
    """``meta`` with the run's summary and, when the image was inverted, the reflection the
    intensity stages apply (:func:`skcalc.roi.bright_image`); a previous run's is dropped."""
    out = {k: v for k, v in meta.items() if k != INVERSION_KEY}
    out["segmentation"] = summary
    if summary.get(INVERSION_KEY) is not None:
        out[INVERSION_KEY] = summary[INVERSION_KEY]
    return out


def _params_digest(weights, hdog, calibrated, combine, polarity) -> str:
    from joblib import hash as joblib_hash

    cal = None if calibrated is None else {
        **{k: v for k, v in calibrated.items() if k != "filter"},
        "filter": None if calibrated["filter"] is None else calibrated["filter"].digest}
    return joblib_hash((weights, hdog, cal, combine, polarity))


def _cut_box(labels: np.ndarray, summary: dict, inner: tuple) -> tuple[np.ndarray, dict]:
    """The box's labels (4-connected, consecutive) and its summary, from the window's."""
    summary = dict(summary)
    if inner != (slice(None), slice(None)):
        # Objects cut by the box edge keep the part inside; labels are made consecutive.
        labels, _ = ndi.label(labels[inner] > 0)
        labels = labels.astype(np.int32)
    summary["n_objects"] = int(labels.max())
    return labels, summary


def _segment_image(
    roi: ROI, image: np.ndarray, origin: tuple[int, int], *,
    weights: RegressorWeights | None, hdog: dict, calibrated: dict | None,
    polarity: str = "auto", **combine
) -> tuple[np.ndarray, dict]:
    """Labels and summary of ``image`` (the ROI's pixels, with their context or the whole
    file) by the configured branch; ``origin``: its corner in the source file."""
    summary: dict = {"threshold": hdog.get("threshold")}
    try:
        image, found, top = orient_breast(image, roi.spacing, polarity,
                                               hdog.get("bit_depth"))
        if calibrated is not None:
            from ._combine import segment_calibrated

            labels, summary = segment_calibrated(
                image,
                roi.spacing,
                cnr_threshold=calibrated["cnr_threshold"],
                window_mm=calibrated["window_mm"],
                candidate_filter=calibrated["filter"],
                operating_point=calibrated["operating_point"],
                fp_calibration=calibrated["fp_calibration"],
                erosion_mm=calibrated["erosion_mm"],
                hdog_params={k: v for k, v in hdog.items() if k not in ("bit_depth", "threshold")},
                bit_depth=hdog.get("bit_depth"),
                model=None if weights is None else weights.model(),
                origin=origin,
                **{k: combine[k] for k in ("cnn_threshold", "overlap") if k in combine},
            )
            if weights is not None:
                _trim_heap()
        elif weights is None:
            labels = hdog_candidates(image, roi.spacing, **hdog)
        else:
            from ._combine import segment_hdogreg

            # Tiles of the network are laid on the source image's grid (origin), so the
            # result inside a crop equals that of the whole-image pass.
            labels = segment_hdogreg(
                image,
                roi.spacing,
                model=weights.model(),
                bit_depth=hdog.get("bit_depth"),
                origin=origin,
                hdog_params={k: v for k, v in hdog.items() if k != "bit_depth"},
                **combine,
            )
            _trim_heap()
    except (ValueError, TypeError) as exc:
        raise type(exc)(f"ROI {roi.roi_id!r}: {exc}") from exc
    summary.update(polarity=found, inverted=top is not None)
    if top is not None:
        summary[INVERSION_KEY] = top
    return labels, summary


class HDoGRegSegmenter(ImageStage):
    """Segment individual microcalcifications with HDoGReg (Marasinou et al.).

    Transforms a list of :class:`~skcalc.ROI` into new ROIs whose ``calcifications`` field is
    the label image of the detected objects (0 = background, 4-connectivity), and whose
    ``meta["segmentation"]`` summarises the run (threshold rule, noise estimate, operating
    point, score threshold, numbers of candidates and objects, breast area).

    **Default (``threshold="auto"``): detection calibrated by the image itself.** The
    intensities are first mapped through the image's own variance-stabilising transform (the
    fine-scale noise made equal at every intensity, so that a gamma, log or window display
    curve, film's H&D curve or quantum noise do not change what is found); the DoG peak
    threshold is then ``cnr_threshold`` robust local standard deviations of each DoG plane
    (MAD in ``noise_window`` mm windows of the eroded breast), so the false-alarm rate does
    not depend on the scanner, processing or bit depth; candidates keep the authors' Hessian
    shapes. A candidate classifier (``candidate_filter``, LightGBM on
    intensity-invariant per-candidate features, trained on varied synthetic patches only)
    keeps the candidates scoring above the threshold of ``operating_point``: expected false
    positives per cm^2 of breast, calibrated on held-out synthetic negatives and stored with
    the model, and corrected for each image's own density of candidates
    (``fp_calibration``). On the real NYU GMIC left-breast views this gives 0.40-0.83
    objects per cm^2 at "balanced" (0.5; 0.07 and 0.1 mm assumed) where the authors' rule
    gives 156-242 (``docs/segmentation.rst``).

    **``threshold="authors"``** (or a number) runs the authors' pipeline unchanged: the
    absolute DoG threshold 0.006 on the [0, 1] image (identical to their code), then the
    regression CNN (``regressor="auto"`` uses the packaged network in that case). The two
    branches of HDoGReg, with the authors' defaults:

    1. Hessian difference-of-Gaussians candidates
       (:func:`~skcalc.segmentation.hdog_candidates`);
    2. a regression CNN whose output is high near calcifications
       (:func:`~skcalc.segmentation.predict_proximity`), thresholded at ``cnn_threshold``
       and combined with the candidates inside the eroded breast
       (:func:`~skcalc.segmentation.combine`; ``"overlap"`` keeps whole candidate objects
       with more than ``combine_overlap`` of their pixels above the threshold).

    Parameters
    ----------
    min_sigma, max_sigma : float, default=0.0826, 0.217
        Smallest and largest Gaussian scale, in mm (1.18 and 3.1 px at 0.07 mm).
    sigma_ratio : float, default=1.6
        Ratio between consecutive Gaussian scales.
    threshold : "auto", "authors" or float, default="auto"
        ``"auto"``: peak threshold ``cnr_threshold`` in local robust standard deviations of
        the DoG, followed by the candidate filter. ``"authors"``: the authors' absolute DoG
        threshold 0.006 on the image scaled to [0, 1] by its bit depth (their exact rule); a
        float: that absolute threshold.
    cnr_threshold : float or None, default=None
        Candidate threshold of ``threshold="auto"``, in robust local standard deviations of
        each DoG plane. None: the value the candidate filter was trained with (its FP/cm^2
        operating points hold only there; 4.0 for the packaged filter and without a filter;
        on white noise about 0.7 peaks per cm^2 at 0.1 mm; chosen by measurement, see
        ``docs/segmentation.rst``).
    noise_window : float, default=5.0
        Side in mm of the windows of the robust local scale (``threshold="auto"``).
    candidate_filter : "default", None, str, path or CandidateFilter, default="default"
        The candidate classifier of ``threshold="auto"``: the packaged model
        (``scripts/train_candidate_filter.py``), None (keep every calibrated candidate),
        a JSON model file written by ``CandidateFilter.save`` or a ``CandidateFilter``.
    operating_point : {"sensitive", "balanced", "specific"} or float, default="balanced"
        Expected false positives per cm^2 of breast of the filter (presets: 2.0, 0.5 and
        0.15), calibrated on held-out synthetic negatives; a smaller value never gives more
        detections.
    fp_calibration : {"image", "filter"}, default="image"
        How the operating point's score threshold is set. ``"image"``: from the filter's
        table, corrected for the density of candidates of the image itself (an image whose
        tissue gives twice the calibration's candidates per cm^2 gets the threshold of half
        the rate), so that the FP/cm^2 promise holds on images unlike the calibration's;
        ``"filter"``: the table's threshold as it is (skcalc's behaviour before December
        2026). See :func:`~skcalc.segmentation.image_operating_point`.
    polarity : {"auto", "bright", "dark"}, default="auto"
        Which way round the image is. skcalc looks for bright calcifications on a bright
        breast; a raw ("for processing") image, or ``MONOCHROME1`` pixels read without their
        inversion (a PNG export, another reader), has the breast darker than the air.
        ``"auto"``: :func:`~skcalc.segmentation.breast_polarity` decides from the image
        (textured breast, flat air; crops without air are taken as given) and a dark
        breast is inverted before segmentation, with a :class:`~skcalc.exceptions.SkcalcWarning`;
        ``"bright"``: as given; ``"dark"``: always inverted. ``meta["segmentation"]``
        records ``polarity`` and ``inverted``. Both branches (the authors' rule too).
    overlap : float, default=1.0
        Blob pruning overlap; >= 1 disables pruning (the authors' setting; < 1 is not
        implemented).
    hessian_thr : float or None, default=1.4
        Hessian shape threshold; ``None`` keeps negative-definite pixels only.
    bit_depth : int or None, default=None
        Bits per pixel for the [0, 1] scaling. ``None`` uses ``roi.meta["bits_stored"]`` when
        present, else infers it from the image (see :func:`~skcalc.segmentation.hdog_candidates`).
    regressor : "auto", "default", None, str, path, ProximityUNet or HDoGRegSegmenter, \
default="auto"
        The regression CNN. ``"auto"``: the packaged weights with the authors' threshold,
        none with ``threshold="auto"`` (the candidate filter replaces it: the packaged CNN,
        trained on skcalc's synthetic images only, removed about 2% of the false positives
        on real tissue at 13x the cost). ``"default"``: the packaged weights (trained on
        skcalc's synthetic mammograms by ``scripts/train_default_weights.py``); ``None``: no
        CNN (HDoG candidates only with the authors' threshold);
        a path: a weights file written by :func:`~skcalc.segmentation.save_weights` (loaded
        with ``torch.load(weights_only=True)``); a network; or a fitted segmenter, whose
        network is reused.
    combine : {"overlap", "multiply", "cnn", "hdog"}, default="overlap"
        How the branches are combined (the authors' ``hybrid_approach`` modes).
    cnn_threshold : float, default=10**-3.5
        Threshold on the CNN output (proximity scale; the authors' value).
    combine_overlap : float, default=0.3
        Fraction of a candidate's pixels that must exceed the threshold (``"overlap"``).
    breast_erosion : float, default=3.15
        Side in mm of the square eroding the breast mask (45 px at 0.07 mm).
    context : "auto" or float, default="auto"
        Margin in mm of the source image read around a lazy ROI's box (``path`` + ``box``)
        for segmentation; ``np.inf`` segments the whole file and keeps the box, 0 the box
        alone. ``"auto"``: the whole file for the default calibrated detector, 6 mm with
        ``threshold="authors"``. As in the paper ("HDoGReg ... on the entire 2D FFDM"), a
        ROI's objects are then the whole mammogram's objects in its box:

        - the authors' rule and CNN see 64 px at most (the largest HDoG filter about 20 px
          at 0.07 mm), so 6 mm of margin gives exactly the whole image's result;
        - the calibrated detector estimates its intensity stabilisation, noise scale and
          operating point over the whole breast, so no margin does: on the real sample
          views, 30-50 mm boxes segmented with 6 mm kept 84 of the whole images' 255
          objects in them (and found 53 others). The whole file costs one whole-image
          segmentation (0.8 s for a 2730 x 981 view, 3.5 s for 4096 x 3328), done once
          per file for the ROIs of one mammogram in a process.
    train_regressor : bool, default=False
        Train the CNN in :meth:`fit` on ROIs that carry ``reference`` masks, starting from
        scratch (see :func:`~skcalc.segmentation.train_regressor`).
    training_params : dict, optional
        Keyword arguments of :func:`~skcalc.segmentation.train_regressor` (epochs, patch
        and crop sizes, learning rate, patience, ...).
    random_state : int or None, default=0
        Seed of the training.
    memory : None, str, joblib.Memory or InProcessMemory, default=None
        Per-ROI cache of the results (keyed on image content and parameters).
    n_jobs : int or None, default=None
        Number of ROIs processed in parallel (joblib semantics).

    Attributes
    ----------
    n_rois_seen_ : int
        Number of ROIs passed to :meth:`fit`.
    candidate_filter_ : CandidateFilter or None
        The classifier used with ``threshold="auto"``.
    operating_point_ : dict or None
        ``{"operating_point", "fp_per_cm2", "score_threshold", "fp_calibration"}`` resolved
        at fit time; ``score_threshold`` is the calibration table's, before the per-image
        correction of ``fp_calibration="image"`` (each image's threshold is in its
        ``meta["segmentation"]``).
    regressor_ : RegressorWeights or None
        The network used by :meth:`transform` (None: candidates only).
    training_history_ : list of dict
        Per-epoch loss and validation IoU, when ``train_regressor=True``.

    Examples
    --------
    >>> import numpy as np
    >>> from skcalc import ROI
    >>> from skcalc.segmentation import HDoGRegSegmenter
    >>> rng = np.random.default_rng(0)
    >>> yy, xx = np.mgrid[:64, :64]
    >>> blob = 0.05 * np.exp(-((yy - 30) ** 2 + (xx - 24) ** 2) / (2 * 1.5**2))
    >>> img = 0.3 + blob + rng.normal(0, 0.004, (64, 64))
    >>> roi = ROI(img, spacing=0.07, meta={"roi_id": "a"})
    >>> [out] = HDoGRegSegmenter().fit_transform([roi])
    >>> int(out.calcifications.max()), out.meta["segmentation"]["operating_point"]
    (1, 'balanced')
    >>> [authors] = HDoGRegSegmenter(threshold="authors", regressor=None).fit_transform([roi])
    >>> int(authors.calcifications.max())
    1
    """

    _parameter_constraints: dict = {
        "min_sigma": [Interval(Real, 0, None, closed="neither")],
        "max_sigma": [Interval(Real, 0, None, closed="neither")],
        "sigma_ratio": [Interval(Real, 1, None, closed="neither")],
        "threshold": [Interval(Real, 0, None, closed="left"), StrOptions({"auto", "authors"})],
        "cnr_threshold": [Interval(Real, 0, None, closed="left"), None],
        "noise_window": [Interval(Real, 0, None, closed="neither")],
        "candidate_filter": "no_validation",
        "fp_calibration": [StrOptions(set(FP_CALIBRATIONS))],
        "polarity": [StrOptions({"auto", "bright", "dark"})],
        "operating_point": [StrOptions({"sensitive", "balanced", "specific"}),
                            Interval(Real, 0, None, closed="neither")],
        "overlap": [Interval(Real, 0, None, closed="left")],
        "hessian_thr": [Interval(Real, 0, None, closed="left"), None],
        "bit_depth": [Interval(Integral, 1, 32, closed="both"), None],
        "regressor": "no_validation",
        "combine": [StrOptions({"overlap", "multiply", "cnn", "hdog"})],
        "cnn_threshold": [Interval(Real, 0, 1, closed="both")],
        "combine_overlap": [Interval(Real, 0, 1, closed="left")],
        "breast_erosion": [Interval(Real, 0, None, closed="left")],
        "context": [Interval(Real, 0, None, closed="left"), Options(Real, {np.inf}),
                    StrOptions({"auto"})],
        "train_regressor": ["boolean"],
        "training_params": [dict, None],
        "random_state": ["random_state"],
        "memory": [None, str, HasMethods(["cache"])],
        "n_jobs": [Integral, None],
    }

    def __init__(
        self,
        min_sigma=0.0826,
        max_sigma=0.217,
        sigma_ratio=1.6,
        threshold="auto",
        overlap=1.0,
        hessian_thr=1.4,
        bit_depth=None,
        regressor="auto",
        combine="overlap",
        cnn_threshold=10**-3.5,
        combine_overlap=0.3,
        breast_erosion=45 * 0.07,
        context="auto",
        train_regressor=False,
        training_params=None,
        random_state=0,
        memory=None,
        n_jobs=None,
        cnr_threshold=None,
        noise_window=5.0,
        candidate_filter="default",
        operating_point="balanced",
        fp_calibration="image",
        polarity="auto",
    ):
        self.min_sigma = min_sigma
        self.max_sigma = max_sigma
        self.sigma_ratio = sigma_ratio
        self.threshold = threshold
        self.overlap = overlap
        self.hessian_thr = hessian_thr
        self.bit_depth = bit_depth
        self.regressor = regressor
        self.combine = combine
        self.cnn_threshold = cnn_threshold
        self.combine_overlap = combine_overlap
        self.breast_erosion = breast_erosion
        self.context = context
        self.train_regressor = train_regressor
        self.training_params = training_params
        self.random_state = random_state
        self.memory = memory
        self.n_jobs = n_jobs
        self.cnr_threshold = cnr_threshold
        self.noise_window = noise_window
        self.candidate_filter = candidate_filter
        self.operating_point = operating_point
        self.fp_calibration = fp_calibration
        self.polarity = polarity

    def _auto(self) -> bool:
        return isinstance(self.threshold, str) and self.threshold == "auto"

    def _context_mm(self) -> float:
        if isinstance(self.context, str):  # "auto"
            return float(np.inf) if self._auto() else 6.0
        return float(self.context)

    def _abs_threshold(self) -> float:
        if isinstance(self.threshold, str):
            return 0.006  # "authors" (and the unused value of "auto")
        return float(self.threshold)

    def _resolve_filter(self):
        from ._filter import CandidateFilter, load_default_filter

        f = self.candidate_filter
        if f is None or not self._auto():
            return None
        if isinstance(f, CandidateFilter):
            return f
        if isinstance(f, str) and f == "default":
            return load_default_filter()
        if isinstance(f, (str, os.PathLike)):
            if not os.path.isfile(f):
                raise ValueError(f"candidate_filter: no model file {os.fspath(f)!r}")
            return CandidateFilter.load(f)
        raise TypeError("candidate_filter must be 'default', None, a model file path or a "
                        f"CandidateFilter; got {type(f).__name__}")

    def _check_settings(self) -> None:
        if self.max_sigma < self.min_sigma:
            raise ValueError(
                f"max_sigma ({self.max_sigma!r}) must be >= min_sigma ({self.min_sigma!r})"
            )
        if self.overlap < 1:
            raise NotImplementedError(
                "blob pruning (overlap < 1) is not implemented; use overlap >= 1"
            )

    def _resolve_regressor(self) -> RegressorWeights | None:
        reg = self.regressor
        if isinstance(reg, str) and reg == "auto":
            reg = None if self._auto() else "default"
        if reg is None:
            return None
        if isinstance(reg, HDoGRegSegmenter):
            if not hasattr(reg, "regressor_"):
                raise ValueError("regressor: the given HDoGRegSegmenter is not fitted")
            return reg.regressor_
        if isinstance(reg, RegressorWeights):
            return reg
        from ._regression import ProximityUNet, load_default_weights, load_weights

        if isinstance(reg, str) and reg == "default":
            return RegressorWeights(load_default_weights())
        if isinstance(reg, (str, os.PathLike)):
            if not os.path.isfile(reg):
                raise ValueError(
                    f"regressor: no weights file {os.fspath(reg)!r} (expected 'default', None, "
                    "a weights file, a ProximityUNet or a fitted HDoGRegSegmenter)"
                )
            return RegressorWeights(load_weights(reg))
        if isinstance(reg, ProximityUNet):
            return RegressorWeights(reg)
        raise TypeError(
            "regressor must be 'default', None, a weights file path, a ProximityUNet or a "
            f"fitted HDoGRegSegmenter; got {type(reg).__name__}"
        )

    _stage = "segment"
    _one = staticmethod(_segment_roi)
    _depends_on = ("image",)

    def _fit_rois(self, rois):
        """Resolve the regression network (or train it when ``train_regressor=True``) and
        the candidate filter's operating point. With ``train_regressor=True`` every ROI must
        carry a ``reference`` mask."""
        self._check_settings()
        if self.train_regressor:
            rois = as_roi_list(rois, require=("reference",))
        self.n_rois_seen_ = len(rois)
        if self.train_regressor:
            from ._regression import train_regressor

            params = dict(self.training_params or {})
            params.setdefault("random_state", self.random_state)
            model, history = train_regressor(rois, **params)
            self.regressor_ = RegressorWeights(model)
            self.training_history_ = history
        else:
            self.regressor_ = self._resolve_regressor()
        self.candidate_filter_ = self._resolve_filter()
        self.operating_point_ = None
        trained_k = (self.candidate_filter_.meta.get("cnr_threshold")
                     if self.candidate_filter_ is not None else None)
        if (trained_k is not None and self.cnr_threshold is not None
                and not np.isclose(trained_k, self.cnr_threshold)):
            import warnings

            warnings.warn(
                f"the candidate filter was calibrated with cnr_threshold={trained_k}; with "
                f"cnr_threshold={self.cnr_threshold} its FP/cm^2 operating points are not "
                "calibrated (lower values give more false positives than promised)",
                UserWarning, stacklevel=2)
        if self.candidate_filter_ is not None:
            target, thr = self.candidate_filter_.resolve(self.operating_point)
            self.operating_point_ = {"operating_point": self.operating_point,
                                     "fp_per_cm2": target, "score_threshold": thr,
                                     "fp_calibration": self.fp_calibration}

    def _params(self, rois):
        self._check_settings()
        # Stateless use (transform without fit) resolves the network on the fly.
        weights = self.regressor_ if hasattr(self, "regressor_") else self._resolve_regressor()
        hdog = {
            "min_sigma": self.min_sigma,
            "max_sigma": self.max_sigma,
            "sigma_ratio": self.sigma_ratio,
            "threshold": self._abs_threshold(),
            "overlap": self.overlap,
            "hessian_thr": self.hessian_thr,
        }
        combine = {}
        calibrated = None
        if self._auto():
            filt = (self.candidate_filter_ if hasattr(self, "candidate_filter_")
                    else self._resolve_filter())
            if filt is not None:
                filt.resolve(self.operating_point)  # validate early
            calibrated = {
                "cnr_threshold": filter_cnr_threshold(filt, self.cnr_threshold),
                "window_mm": float(self.noise_window),
                "filter": filt,
                "operating_point": self.operating_point,
                "fp_calibration": self.fp_calibration,
                "erosion_mm": float(self.breast_erosion),
            }
            hdog["threshold"] = "auto"
        if weights is not None:
            combine = {
                "mode": self.combine,
                "cnn_threshold": float(self.cnn_threshold),
                "overlap": float(self.combine_overlap),
                "erosion_mm": float(self.breast_erosion),
            }
        return {
            "weights": weights,
            "hdog": hdog,
            "context": self._context_mm(),
            "calibrated": calibrated,
            "polarity": self.polarity,
            **combine,
        }

    def _together(self, roi, params):
        # The ROIs of one file share its whole-file segmentation (_WHOLE_FILES), which is
        # per process: in one parallel task it is computed once, not once per worker.
        if roi.is_lazy and roi.box is not None and np.isinf(params["context"]):
            return os.path.realpath(roi.path)
        return None

    def _map(self, rois, params):
        coarse = [r for r in rois if max(r.spacing) > _MAX_MEASURED_SPACING]
        if coarse:
            import warnings

            from ..exceptions import SkcalcWarning

            sp = max(coarse[0].spacing)
            warnings.warn(
                f"ROI {coarse[0].roi_id!r} ({len(coarse)} of {len(rois)} ROIs): pixels of "
                f"{sp:g} mm; the finest DoG scale ({self.min_sigma:g} mm) is "
                f"{self.min_sigma / sp:.2f} px there, too small to resolve calcifications; "
                f"the segmentation is measured at 0.05-{_MAX_MEASURED_SPACING:g} mm",
                SkcalcWarning, stacklevel=3)
        # The bit depth is a parameter of the per-ROI call (so it is part of the cache key):
        # ROIs are grouped by the depth they resolve to.
        groups: dict = {}
        for i, roi in enumerate(rois):
            groups.setdefault(self._roi_bit_depth(roi), []).append(i)
        out: list = [None] * len(rois)
        for bit_depth, positions in groups.items():
            group = {**params, "hdog": {**params["hdog"], "bit_depth": bit_depth}}
            results = super()._map([rois[i] for i in positions], group)
            for i, result in zip(positions, results):
                out[i] = result
        return out

    def _assemble(self, rois, results):
        """New records with ``calcifications`` (int32 labels) and ``meta["segmentation"]``."""
        flipped = [roi.roi_id for roi, (_, summary) in zip(rois, results)
                   if summary.get("inverted") and self.polarity == "auto"]
        if flipped:
            import warnings

            from ..exceptions import SkcalcWarning

            others = f" and {len(flipped) - 1} other ROIs" if len(flipped) > 1 else ""
            warnings.warn(
                f"ROI {flipped[0]!r}{others}: the breast is darker than the air around it, "
                "as in raw 'for processing' data or MONOCHROME1 pixels read without their "
                "inversion; the image was inverted before segmentation "
                "(meta['segmentation']['inverted']). polarity='bright' segments it as given, "
                "polarity='dark' inverts it without this warning",
                SkcalcWarning, stacklevel=3)
        return [
            roi.replace(calcifications=labels, meta=_segmented_meta(roi.meta, summary))
            for roi, (labels, summary) in zip(rois, results)
        ]

    def _roi_bit_depth(self, roi: ROI) -> int | None:
        # The parameter, else the header's depth carried by the reader; None lets the one
        # resolver infer it from the pixels, the same number for both branches.
        declared = self.bit_depth if self.bit_depth is not None else roi.meta.get("bits_stored")
        if declared is None:
            return None
        try:
            return resolve_bit_depth(None, declared)
        except ValueError as exc:
            raise ValueError(f"ROI {roi.roi_id!r}: meta['bits_stored']: {exc}") from None
