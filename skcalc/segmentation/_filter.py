"""Candidate-level false-positive filter with an operating point in false positives per cm^2.

A gradient-boosted classifier (LightGBM) scores each calibrated HDoG candidate from the
features of :func:`~skcalc.segmentation._calibrated.candidate_features`. It is trained on
synthetic patches only (:func:`skcalc.datasets.make_training_patch`), and the
score threshold of every operating point is calibrated at training time on **held-out**
synthetic patches: ``fp_per_cm2(t)`` = negatives scoring ``>= t`` per cm^2 of breast. The
table is stored with the model, so a user asks for "at most 0.5 false positives per cm^2"
(or a preset) and gets the matching threshold. The table is monotone by construction:
fewer FP/cm^2 never gives a lower threshold, hence never more detections.

The model file is JSON: the LightGBM model string, the feature names and the calibration
arrays. Loading it never unpickles anything.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from ._calibrated import (
    DEFAULT_CNR_THRESHOLD,
    FEATURE_NAMES,
    filter_cnr_threshold,
    filter_stabilise,
)

__all__ = ["CandidateFilter", "PRESETS", "fit_candidate_filter", "load_default_filter",
           "train_candidate_filter"]

#: Named operating points, in expected false positives per cm^2 of breast (synthetic
#: held-out calibration).
PRESETS = {"sensitive": 2.0, "balanced": 0.5, "specific": 0.15}
DEFAULT_FILTER = os.path.join(os.path.dirname(__file__), "weights", "candidate_filter.json")
_CACHE: dict = {}


class CandidateFilter:
    """A trained candidate classifier plus its FP/cm^2 calibration (plain data).

    Parameters
    ----------
    model_str : str
        LightGBM model text (``Booster.model_to_string()``).
    calib_thresholds : array-like
        Score thresholds, increasing.
    calib_fp_per_cm2 : array-like
        Held-out synthetic false positives per cm^2 at each threshold (non-increasing).
    calib_tpr : array-like, optional
        Held-out synthetic sensitivity (candidates covering a calcification) at each threshold.
    feature_names : sequence of str
    meta : dict, optional
        Training settings (seeds, sizes, timings).
    """

    def __init__(self, model_str: str, calib_thresholds, calib_fp_per_cm2, calib_tpr=None,
                 feature_names: Sequence[str] = FEATURE_NAMES, meta: dict | None = None):
        self.model_str = model_str
        self.calib_thresholds = np.asarray(calib_thresholds, float)
        fp = np.asarray(calib_fp_per_cm2, float)
        # enforce monotonicity (non-increasing FP with threshold)
        self.calib_fp_per_cm2 = np.minimum.accumulate(fp)
        self.calib_tpr = None if calib_tpr is None else np.asarray(calib_tpr, float)
        self.feature_names = tuple(feature_names)
        self.meta = dict(meta or {})
        self.refresh_digest()

    def refresh_digest(self) -> None:
        """Set ``digest`` from the model text and calibration (it keys the per-process booster
        cache; a loaded model file recomputes it rather than trusting the file's)."""
        import hashlib

        self.digest = hashlib.sha1(
            (self.model_str + repr(np.asarray(self.calib_thresholds).tolist())
             + repr(np.asarray(self.calib_fp_per_cm2).tolist())).encode()
        ).hexdigest()

    # ----------------------------------------------------------------- model
    def _booster(self):
        b = _CACHE.get(self.digest)
        if b is None:
            import lightgbm as lgb

            b = _CACHE.setdefault(self.digest, lgb.Booster(model_str=self.model_str))
        return b

    def _trees(self):
        key = ("trees", self.digest)
        t = _CACHE.get(key)
        if t is None:
            try:
                t = _TreeEnsemble(self.model_str)
            except ValueError:  # a model this evaluator does not cover: LightGBM itself
                t = False
            t = _CACHE.setdefault(key, t)
        return t

    def score(self, X: np.ndarray) -> np.ndarray:
        """Probability-like score in [0, 1] of each candidate being a calcification.

        Evaluated from the model text with NumPy (the same decisions as LightGBM's
        ``predict``, tested); importing LightGBM costs about a second of CPU per process,
        which the first segmentation in every worker would otherwise pay.
        """
        X = np.asarray(X, np.float64)
        if X.shape[0] == 0:
            return np.zeros(0)
        k = len(self.feature_names)
        if X.shape[1] > k and FEATURE_NAMES[:k] == self.feature_names:
            X = X[:, :k]  # trained on the leading features only (see :meth:`load`)
        if X.shape[1] != k:
            raise ValueError(f"expected {k} features, got {X.shape[1]}")
        trees = self._trees()
        if trees is False:
            return self._booster().predict(X, num_threads=1)
        return trees.predict(X)

    # ------------------------------------------------------- operating point
    def resolve(self, operating_point: str | float) -> tuple[float, float]:
        """``(fp_per_cm2, score_threshold)`` of a preset name or a target FP/cm^2.

        The threshold is the smallest calibrated threshold whose held-out FP/cm^2 is at most
        the target (so the promise holds on the calibration data); targets below the table
        give the largest threshold. Monotone: a smaller target never gives a smaller
        threshold.

        Examples
        --------
        >>> f = CandidateFilter("", [0.1, 0.5, 0.9], [3.0, 1.0, 0.2])
        >>> f.resolve(1.0), f.resolve("specific")
        ((1.0, 0.5), (0.15, 0.9))
        """
        if isinstance(operating_point, str):
            if operating_point not in PRESETS:
                raise ValueError(f"operating_point must be one of {sorted(PRESETS)} or a "
                                 f"positive FP/cm^2, got {operating_point!r}")
            target = PRESETS[operating_point]
        else:
            target = float(operating_point)
            if not (np.isfinite(target) and target > 0):
                raise ValueError(f"fp_per_cm2 must be positive, got {operating_point!r}")
        ok = np.flatnonzero(self.calib_fp_per_cm2 <= target)
        thr = float(self.calib_thresholds[ok[0]]) if ok.size else float(
            self.calib_thresholds[-1])
        return target, thr

    @property
    def reference_density(self) -> float | None:
        """Calibration negatives per cm^2 at the lowest score threshold, i.e. the density
        of the candidates the table was counted on, when the table starts at threshold 0
        (as :func:`train_candidate_filter` and :func:`fit_candidate_filter` write it);
        None for a hand-made table."""
        if self.calib_thresholds.size and self.calib_thresholds[0] <= 0:
            return float(self.calib_fp_per_cm2[0])
        return None

    # -------------------------------------------------------------------- io
    def to_json(self) -> str:
        return json.dumps({
            "format": "skcalc-candidate-filter/1",
            "model_str": self.model_str,
            "feature_names": list(self.feature_names),
            "calib_thresholds": self.calib_thresholds.tolist(),
            "calib_fp_per_cm2": self.calib_fp_per_cm2.tolist(),
            "calib_tpr": None if self.calib_tpr is None else self.calib_tpr.tolist(),
            "meta": self.meta,
        })

    def save(self, path: str | os.PathLike) -> None:
        """Write the model as JSON (atomically: temporary file, then rename)."""
        tmp = f"{os.fspath(path)}.tmp"
        with open(tmp, "w") as fh:
            fh.write(self.to_json())
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> CandidateFilter:
        """Read a model written by :meth:`save` (JSON; nothing is unpickled)."""
        with open(path) as fh:
            d = json.load(fh)
        if d.get("format") != "skcalc-candidate-filter/1":
            raise ValueError(f"{os.fspath(path)!r} is not a skcalc candidate-filter file")
        names = tuple(d["feature_names"])
        # a filter trained before features were appended uses the leading columns
        if not names or FEATURE_NAMES[: len(names)] != names:
            raise ValueError(f"{os.fspath(path)!r} was trained on other features")
        return cls(d["model_str"], d["calib_thresholds"], d["calib_fp_per_cm2"],
                   d.get("calib_tpr"), d["feature_names"], d.get("meta"))

    def __repr__(self) -> str:
        return f"CandidateFilter(digest={self.digest[:10]})"


class _TreeEnsemble:
    """A LightGBM binary model (numerical splits only) evaluated with NumPy.

    Follows LightGBM's ``NumericalDecision``: a NaN is 0 unless the split's missing type is
    NaN; a missing value (NaN, or zero for missing type Zero) goes to the default side;
    otherwise ``x <= threshold`` goes left. The raw score is the sum of the leaves, mapped by
    the sigmoid of the objective. All trees advance together, one level per step.
    """

    def __init__(self, model_str: str):
        head, _, body = model_str.partition("\nTree=")
        opts = dict(line.split("=", 1) for line in head.splitlines() if "=" in line)
        obj = opts.get("objective", "").split()
        if opts.get("num_class", "1") != "1" or not obj or obj[0] != "binary":
            raise ValueError("not a binary LightGBM model")
        self.sigmoid = float(dict(o.split(":") for o in obj[1:] if ":" in o).get("sigmoid", 1))
        feat, thr, dec, left, right, leaves, start = [], [], [], [], [], [], []
        n_int = n_leaf = 0
        for block in ("Tree=" + body).split("\nTree="):
            if not block.strip() or "leaf_value=" not in block:
                continue
            kv = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
            if kv.get("num_cat", "0") != "0":
                raise ValueError("categorical splits")
            lv = np.array(kv["leaf_value"].split(), float)
            n_l = int(kv["num_leaves"])
            if n_l == 1:
                start.append(-(n_leaf + 1))
            else:
                def child(v, n_int=n_int, n_leaf=n_leaf):
                    # internal nodes: global index; leaves: -(global leaf index + 1)
                    c = np.array(v.split(), np.int64)
                    return np.where(c >= 0, c + n_int, -(~c + n_leaf) - 1)

                feat.append(np.array(kv["split_feature"].split(), np.int64))
                thr.append(np.array(kv["threshold"].split(), float))
                dec.append(np.array(kv["decision_type"].split(), np.int64))
                left.append(child(kv["left_child"]))
                right.append(child(kv["right_child"]))
                start.append(n_int)
                n_int += n_l - 1
            leaves.append(lv)
            n_leaf += lv.size
            if "end of trees" in block:
                break
        if not start:
            raise ValueError("no trees")
        cat = np.concatenate if feat else (lambda _: np.zeros(0))
        self.feat = cat(feat).astype(np.int64)
        self.thr = cat(thr).astype(float)
        dec = cat(dec).astype(np.int64)
        if np.any(dec & 1):
            raise ValueError("categorical splits")
        self.default_left = (dec & 2) > 0
        self.missing = (dec >> 2) & 3
        # Where a NaN goes at each node: the default side when missing values are NaN or
        # zero (a NaN is read as 0, and 0 is "missing" for type Zero); otherwise NaN is
        # read as 0 and compared with the threshold.
        self.nan_left = np.where(self.missing > 0, self.default_left, 0.0 <= self.thr)
        self.zero_missing = bool(np.any(self.missing == 1))
        self.left = cat(left).astype(np.int32)  # narrow indices: less traffic per level
        self.right = cat(right).astype(np.int32)
        self.leaf = np.concatenate(leaves)
        self.start = np.array(start, np.int32)

    def predict(self, X: np.ndarray) -> np.ndarray:
        X = np.ascontiguousarray(X, np.float64)
        n, n_feat = X.shape
        n_trees = self.start.size
        # one (candidate, tree) pair per slot; only the pairs still at an inner node are
        # carried to the next level, so each level costs what is left of the forest
        node = np.tile(self.start, n)
        row = np.repeat(np.arange(n, dtype=np.int64) * n_feat, n_trees)
        flat = X.ravel()
        active = np.flatnonzero(node >= 0)
        while active.size:
            nd = node[active]
            f = flat[row[active] + self.feat[nd]]
            go_left = f <= self.thr[nd]
            nan = np.isnan(f)
            if nan.any():
                go_left[nan] = self.nan_left[nd[nan]]
            if self.zero_missing:
                z = (self.missing[nd] == 1) & (np.abs(f) <= 1e-35)
                go_left[z] = self.default_left[nd[z]]
            nxt = np.where(go_left, self.left[nd], self.right[nd])
            node[active] = nxt
            active = active[nxt >= 0]
        raw = self.leaf[-node - 1].reshape(n, n_trees).sum(axis=1)
        return 1.0 / (1.0 + np.exp(-self.sigmoid * raw))


def load_default_filter() -> CandidateFilter:
    """The packaged filter (trained by ``scripts/train_candidate_filter.py``)."""
    f = _CACHE.get("default")
    if f is None:
        f = _CACHE.setdefault("default", CandidateFilter.load(DEFAULT_FILTER))
    return f


# ------------------------------------------------------------------------ training
def patch_candidates(patch: dict, *, cnr_threshold: float, window_mm: float = 5.0,
                     stabilise: bool = True):
    """Candidates, features and labels (1 = covers a calcification) of one training patch."""
    from ._calibrated import calibrated_candidates, candidate_features

    lab, info = calibrated_candidates(
        patch["image"], patch["spacing"], breast_mask=patch["breast"],
        cnr_threshold=cnr_threshold, window_mm=window_mm, bit_depth=patch["bits"],
        erosion_mm=1.0, stabilise=stabilise)
    X = candidate_features(lab, info)
    n = X.shape[0]
    ref = patch["reference"]
    hit = np.bincount(lab[ref], minlength=n + 1)[1:] > 0 if n else np.zeros(0, bool)
    sp = patch["spacing"]
    from ._breast import erode_breast

    area = float(erode_breast(patch["breast"], spacing=sp, size_mm=1.0).sum()) * sp * sp / 100
    return X, hit.astype(np.int8), area


def _patches(seed: int, n: int, cnr_threshold: float, stabilise: bool = True, **generator):
    from ..datasets._realistic import make_training_patch

    Xs, ys, areas, groups, with_calc = [], [], [], [], []
    for k in range(n):
        rng = np.random.default_rng([seed, k])
        p = make_training_patch(rng, **generator)
        X, y, a = patch_candidates(p, cnr_threshold=cnr_threshold, stabilise=stabilise)
        Xs.append(X)
        ys.append(y)
        areas.append(a)
        groups.append(np.full(len(y), k))
        with_calc.append(bool(p["params"]["has_calc"]))
    return (np.concatenate(Xs), np.concatenate(ys), np.asarray(areas), np.concatenate(groups),
            np.asarray(with_calc, bool))


def train_candidate_filter(
    n_train: int = 300,
    n_calib: int = 150,
    *,
    cnr_threshold: float = DEFAULT_CNR_THRESHOLD,
    random_state: int = 0,
    n_estimators: int = 300,
    num_threads: int = 1,
    verbose: bool = False,
    film_fraction: float = 0.0,
    contrast: str = "pixel",
    faint_max_mm: float = 0.5,
    calib_negatives: str = "all",
    stabilise: bool = True,
    clump_fraction: float = 0.0,
) -> CandidateFilter:
    """Train the candidate classifier on synthetic patches and calibrate its operating points.

    ``n_train`` patches (seeds ``[random_state, k]``) train a LightGBM classifier
    (deterministic mode, ``num_threads`` threads); ``n_calib`` other patches (seeds
    ``[random_state + 1, k]``) give the held-out FP/cm^2 and sensitivity of every score
    threshold. The result depends only on the arguments (``deterministic=True``).
    ``film_fraction``, ``contrast``, ``faint_max_mm`` and ``clump_fraction`` are passed to
    :func:`~skcalc.datasets.make_training_patch`. ``stabilise`` is the detector's
    intensity stabilisation (:func:`~skcalc.segmentation._calibrated.calibrated_candidates`),
    recorded in the meta so that the segmenter detects as the filter was trained.

    ``calib_negatives="free"`` counts the false positives of the calibration on the
    calibration patches without calcifications only (per cm^2 of their breast): the
    operating point then promises false objects per cm^2 of tissue **without a finding**.
    ``"all"`` also counts the non-calcification candidates of patches with calcifications,
    which include candidates the calcifications themselves cause (the halo of sharpening
    around bright ones, fragments next to a calcification, tissue candidates whose cluster
    context is raised by nearby calcifications); it promises a lower rate than tissue
    without a finding then shows.

    Returns
    -------
    CandidateFilter
    """
    import time

    import lightgbm as lgb

    t0 = time.perf_counter()
    gen = {"film_fraction": float(film_fraction), "contrast": contrast,
           "faint_max_mm": float(faint_max_mm)}
    if clump_fraction:  # absent: the stream of filters trained before clumps
        gen["clump_fraction"] = float(clump_fraction)
    if calib_negatives not in ("all", "free"):
        raise ValueError(f"calib_negatives must be 'all' or 'free', got {calib_negatives!r}")
    X, y, _, _, _ = _patches(int(random_state) * 2 + 11, n_train, cnr_threshold,
                             bool(stabilise), **gen)
    Xc, yc, area_c, gc, calc_c = _patches(int(random_state) * 2 + 12, n_calib, cnr_threshold,
                                          bool(stabilise), **gen)
    t1 = time.perf_counter()
    if verbose:
        print(f"train candidates {len(y)} ({y.sum()} pos), calib {len(yc)} ({yc.sum()} pos), "
              f"generation {t1 - t0:.0f} s")
    params = _lgb_params(random_state, num_threads)
    booster = lgb.train(params, lgb.Dataset(X, y, feature_name=list(FEATURE_NAMES)),
                        num_boost_round=int(n_estimators))
    model_str = booster.model_to_string()
    sc = booster.predict(Xc, num_threads=1)
    neg = yc == 0
    area = float(area_c.sum())
    if calib_negatives == "free":
        if calc_c.all():
            raise ValueError("calib_negatives='free': no calibration patch without "
                             "calcifications; raise n_calib")
        neg &= ~calc_c[gc]
        area = float(area_c[~calc_c].sum())
    thr, fp, tpr = _calibration_table(sc[neg], sc[yc == 1], area)
    meta = {"n_train": n_train, "n_calib": n_calib, "cnr_threshold": cnr_threshold,
            "random_state": int(random_state), "n_estimators": int(n_estimators),
            "train_candidates": int(len(y)), "train_positives": int(y.sum()),
            "calib_candidates": int(len(yc)), "calib_positives": int(yc.sum()),
            "calib_breast_cm2": area, "seconds": round(time.perf_counter() - t0, 1)}
    if calib_negatives != "all":
        meta.update(calib_negatives=calib_negatives, calib_patches_free=int((~calc_c).sum()))
    meta.update(gen)
    meta["stabilise"] = bool(stabilise)
    return CandidateFilter(model_str, thr, fp, tpr, FEATURE_NAMES, meta)


#: Generator settings of :func:`train_candidate_filter` recorded in a filter's meta.
_GENERATOR = ("film_fraction", "contrast", "faint_max_mm", "clump_fraction")


def _lgb_params(random_state: int, num_threads: int) -> dict:
    return dict(objective="binary", learning_rate=0.05, num_leaves=31, min_child_samples=20,
                subsample=0.8, subsample_freq=1, colsample_bytree=0.8, reg_lambda=1.0,
                seed=int(random_state), deterministic=True, force_row_wise=True,
                num_threads=int(num_threads), verbose=-1)


def _calibration_table(neg_scores, pos_scores, area_cm2: float):
    """Thresholds with the held-out FP/cm^2 and TPR of each (a few hundred rows)."""
    neg = np.sort(np.asarray(neg_scores, float))
    pos = np.sort(np.asarray(pos_scores, float))
    thr = np.unique(np.concatenate([np.linspace(0, 1, 1001), neg]))
    fp = (neg.size - np.searchsorted(neg, thr, side="left")) / max(area_cm2, 1e-12)
    tpr = (pos.size - np.searchsorted(pos, thr, side="left")) / max(pos.size, 1)
    # keep the table small: thresholds where FP/cm^2 changes noticeably
    keep = np.unique(np.concatenate([
        np.searchsorted(-fp, -np.geomspace(max(fp.max(), 1e-3), 1e-3, 400), side="left"),
        [0, len(thr) - 1]]))
    keep = keep[keep < len(thr)]
    return thr[keep], fp[keep], tpr[keep]


def filter_summary(f: CandidateFilter) -> dict[str, Any]:
    """Held-out FP/cm^2 and TPR at each preset (for reports)."""
    out = {}
    for name in PRESETS:
        target, t = f.resolve(name)
        i = int(np.searchsorted(f.calib_thresholds, t))
        out[name] = {"fp_per_cm2": target, "threshold": t,
                     "calib_tpr": None if f.calib_tpr is None else float(f.calib_tpr[i])}
    return out


# ------------------------------------------------------------- the user's own images
def roi_candidates(
    roi,
    annotation=None,
    *,
    cnr_threshold: float | None = None,
    window_mm: float = 5.0,
    erosion_mm: float = 45 * 0.07,
    point_tolerance_mm: float = 0.3,
    labelled: bool = True,
    stabilise: bool = True,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Candidates of one ROI exactly as the default segmenter finds them, with labels.

    Returns the features (:data:`FEATURE_NAMES`), the labels (1: the candidate touches an
    annotated calcification; every candidate is 0 when ``annotation`` is None and the ROI
    has no ``reference``) and the area in cm^2 where candidates can occur (the breast eroded
    by ``erosion_mm``). ``labelled=False``: every candidate is a negative. ``stabilise``: the
    detector's intensity stabilisation (as the filter to be trained or recalibrated).
    ``cnr_threshold=None``: the packaged filter's (:func:`filter_cnr_threshold`).
    """
    from scipy import ndimage as ndi

    from ._breast import erode_breast, on_artificial_outlines
    from ._calibrated import candidate_features
    from ._combine import _coarse_breast, artefact_free_candidates

    if cnr_threshold is None:
        cnr_threshold = filter_cnr_threshold(load_default_filter())
    from ._polarity import orient_breast

    roi = roi.load()
    image, sp = np.asarray(roi.image), tuple(roi.spacing)
    name = roi.roi_id
    try:
        # as HDoGRegSegmenter(polarity="auto"): a breast darker than its air is inverted
        image = orient_breast(image, sp, "auto", roi.meta.get("bits_stored"))[0]
        breast = _coarse_breast(image, sp)
        image, lab, info = artefact_free_candidates(
            image, sp, breast, cnr_threshold=cnr_threshold, window_mm=window_mm,
            erosion_mm=erosion_mm, bit_depth=roi.meta.get("bits_stored"),
            stabilise=stabilise)[:3]
    except (ValueError, TypeError) as exc:
        raise type(exc)(f"ROI {name!r}: {exc}") from exc
    X = candidate_features(lab, info)
    n = X.shape[0]
    area = float(erode_breast(breast, spacing=sp, size_mm=erosion_mm).sum()) * sp[0] * sp[1] / 100
    # as the segmenter: candidates on an artificial outline (a plateau at the maximum, a
    # region of one value) are not candidates
    real = ~on_artificial_outlines(image, lab, sp, breast)[1:]
    if annotation is None and labelled:
        annotation = roi.reference
    y = np.zeros(n, np.int8)
    if annotation is None or not labelled or n == 0:
        return X[real], y[real], area
    ann = np.asarray(annotation)
    if ann.ndim == 2 and ann.shape == image.shape and ann.dtype != object and (
            ann.dtype == bool or ann.shape[1] != 2):
        ref = ndi.binary_dilation(ann != 0)  # a one-pixel tolerance on the outline
        y[:] = np.bincount(lab[ref], minlength=n + 1)[1:] > 0
        return X[real], y[real], area
    pts = np.asarray(ann, float).reshape(-1, 2) if ann.size else np.zeros((0, 2))
    if pts.shape[1] != 2 or not np.isfinite(pts).all():
        raise ValueError(f"ROI {name!r}: annotation must be a mask of the image's shape "
                         f"{image.shape} or (row, col) points, got shape {ann.shape}")
    inside = ((pts[:, 0] >= 0) & (pts[:, 0] < image.shape[0])
              & (pts[:, 1] >= 0) & (pts[:, 1] < image.shape[1]))
    if not inside.all():
        raise ValueError(f"ROI {name!r}: {int((~inside).sum())} annotation point(s) lie "
                         f"outside the {image.shape} image")
    # a point marks the candidate covering it or any candidate pixel within the tolerance
    dist, (ir, ic) = ndi.distance_transform_edt(lab == 0, sampling=sp, return_indices=True)
    r, c = np.rint(pts[:, 0]).astype(int), np.rint(pts[:, 1]).astype(int)
    near = dist[r, c] <= point_tolerance_mm
    hit = lab[ir[r[near], c[near]], ic[r[near], c[near]]]
    y[hit[hit > 0] - 1] = 1
    return X[real], y[real], area


def fit_candidate_filter(
    rois: Sequence,
    normal_rois: Sequence,
    *,
    annotations: Sequence | None = None,
    mode: str = "train",
    base: CandidateFilter | str | None = "default",
    synthetic_patches: int = 0,
    cnr_threshold: float | None = None,
    window_mm: float = 5.0,
    breast_erosion: float = 45 * 0.07,
    point_tolerance_mm: float = 0.3,
    n_estimators: int = 300,
    cv: int = 3,
    random_state: int = 0,
    num_threads: int = 1,
) -> CandidateFilter:
    """Train or recalibrate the candidate filter on your own annotated images.

    The candidates of every image are found exactly as :class:`HDoGRegSegmenter` finds them
    (calibrated detection at ``cnr_threshold``); each gets the features of the packaged
    filter and a label. Calcification-free tissue (``normal_rois``) calibrates the
    operating points: the FP/cm^2 of a score threshold is the number of its candidates
    scoring at or above it per cm^2 of (eroded) breast, so "balanced" (0.5 FP/cm^2) means
    0.5 on *your* normal tissue. With ``mode="train"`` these scores are **out of fold**
    (``cv`` folds over the images: each image is scored by a model that did not see it).

    Parameters
    ----------
    rois : sequence of ROI
        Images with calcifications, annotated by their ``reference`` masks or by
        ``annotations``. May be empty with ``mode="recalibrate"``.
    normal_rois : sequence of ROI
        Breast tissue without calcifications (at least one image): negatives, and the
        FP/cm^2 calibration.
    annotations : sequence, optional
        One per ROI of ``rois``: a mask of the image's shape (nonzero = calcification) or
        an ``(n, 2)`` array of ``(row, col)`` points (a candidate within
        ``point_tolerance_mm`` of a point is a calcification). Default: ``roi.reference``.
    mode : {"train", "recalibrate"}, default="train"
        ``"train"``: fit a new LightGBM model on your candidates (plus ``synthetic_patches``
        training patches of the packaged filter's generator), continuing the boosting of
        ``base`` when given. ``"recalibrate"``: keep ``base``'s model and only measure its
        operating points on your images (needs little data: a few normal images).
    base : CandidateFilter, "default" or None, default="default"
        Model to continue from (``"train"``) or to recalibrate (required then).
    synthetic_patches : int, default=0
        Synthetic training patches added to your data (``"train"``), e.g. a few hundred
        when you have few annotated images; drawn as the packaged filter's training
        patches (same generator settings and seeds).
    cnr_threshold : float, optional
        Candidate threshold of the detection. Default: the one ``base`` was trained with
        (without ``base``: the packaged filter's), which is also what
        ``HDoGRegSegmenter(candidate_filter=f)`` then detects with.
    window_mm, breast_erosion
        The segmenter's detection settings (use the values you will segment with).
    point_tolerance_mm : float, default=0.3
        Distance from a point annotation to a candidate's pixels that still counts as a hit.
    n_estimators : int, default=300
        Boosting rounds (added to ``base``'s when continuing).
    cv : int, default=3
        Folds (over images) for the out-of-fold calibration of ``"train"``.
    random_state : int, default=0
        Seed (training is deterministic under it).
    num_threads : int, default=1

    Returns
    -------
    CandidateFilter
        Use it as ``HDoGRegSegmenter(candidate_filter=f)``; ``f.save(path)`` writes it.

    Examples
    --------
    >>> import numpy as np
    >>> from skcalc import ROI
    >>> from skcalc.datasets import make_training_patch
    >>> def roi(k, calc):
    ...     p = make_training_patch(np.random.default_rng(k), size_mm=16, spacing=0.1,
    ...                             calcifications=calc)
    ...     return ROI(p["image"], spacing=0.1, reference=p["reference"],
    ...                meta={"roi_id": f"r{k}", "bits_stored": p["bits"]})
    >>> f = fit_candidate_filter([roi(k, True) for k in range(4)],
    ...                          [roi(k, False) for k in range(4, 8)], n_estimators=20)
    >>> f.meta["mode"], f.resolve("balanced")[0]
    ('train', 0.5)
    """
    import time

    import lightgbm as lgb

    if mode not in ("train", "recalibrate"):
        raise ValueError(f"mode must be 'train' or 'recalibrate', got {mode!r}")
    rois, normal_rois = list(rois), list(normal_rois)
    if not normal_rois:
        raise ValueError("normal_rois: at least one calcification-free image is needed to "
                         "calibrate the FP/cm^2 operating points")
    if annotations is not None and len(annotations) != len(rois):
        raise ValueError(f"annotations: {len(annotations)} given for {len(rois)} ROIs")
    if isinstance(base, str):
        if base != "default":
            base = CandidateFilter.load(base)
        else:
            base = load_default_filter()
    if mode == "recalibrate" and base is None:
        raise ValueError("mode='recalibrate' needs a base filter")
    t0 = time.perf_counter()
    # the detector as the base filter was trained (a new filter: as the packaged one)
    ref = base if base is not None else load_default_filter()
    stabilise = filter_stabilise(ref)
    cnr_threshold = filter_cnr_threshold(ref, cnr_threshold)
    kw = dict(cnr_threshold=cnr_threshold, window_mm=window_mm, erosion_mm=breast_erosion,
              point_tolerance_mm=point_tolerance_mm, stabilise=stabilise)
    Xs, ys, gs, areas = [], [], [], []
    for i, roi in enumerate(rois):
        ann = None if annotations is None else annotations[i]
        if ann is None and roi.reference is None:
            raise ValueError(f"ROI {roi.roi_id!r} has no reference mask and no annotation")
        X, y, _ = roi_candidates(roi, ann, **kw)
        Xs.append(X)
        ys.append(y)
        gs.append(np.full(len(y), i))
    n_pos = int(sum(int(y.sum()) for y in ys))
    for j, roi in enumerate(normal_rois):
        X, _, a = roi_candidates(roi, None, labelled=False, **kw)  # all negatives
        Xs.append(X)
        ys.append(np.zeros(len(X), np.int8))
        gs.append(np.full(len(X), len(rois) + j))
        areas.append(a)
    X_all = np.concatenate(Xs) if Xs else np.zeros((0, len(FEATURE_NAMES)), np.float32)
    y_all = np.concatenate(ys) if ys else np.zeros(0, np.int8)
    g_all = np.concatenate(gs) if gs else np.zeros(0, int)
    is_normal = g_all >= len(rois)
    normal_area = float(sum(areas))
    meta = {"mode": mode, "n_rois": len(rois), "n_normal_rois": len(normal_rois),
            "cnr_threshold": float(cnr_threshold), "random_state": int(random_state),
            "candidates": int(len(y_all)), "positives": n_pos,
            "calib_breast_cm2": normal_area, "base": None if base is None else base.digest,
            "stabilise": stabilise}
    if mode == "recalibrate":
        sc = base.score(X_all)
        thr, fp, tpr = _calibration_table(sc[is_normal], sc[y_all == 1], normal_area)
        meta["seconds"] = round(time.perf_counter() - t0, 1)
        return CandidateFilter(base.model_str, thr, fp, tpr if n_pos else None,
                               FEATURE_NAMES, {**base.meta, "cnr_threshold": float(cnr_threshold),
                                               "recalibration": meta})
    if n_pos == 0:
        raise ValueError("no candidate touches an annotated calcification: check the "
                         "annotations (masks of the image's shape, or (row, col) points) and "
                         "the spacing")
    if synthetic_patches:
        # the training stream of the packaged filter (its generator settings are in its meta)
        packaged = load_default_filter().meta
        gen = {k: packaged[k] for k in _GENERATOR if k in packaged}
        Xp, yp, _, _, _ = _patches(int(random_state) * 2 + 11, int(synthetic_patches),
                                   cnr_threshold, stabilise, **gen)
    else:
        Xp, yp = np.zeros((0, len(FEATURE_NAMES)), np.float32), np.zeros(0, np.int8)
    params = _lgb_params(random_state, num_threads)
    init = None if base is None else lgb.Booster(model_str=base.model_str)

    def fit(sel):
        data = lgb.Dataset(np.concatenate([X_all[sel], Xp]), np.concatenate([y_all[sel], yp]),
                           feature_name=list(FEATURE_NAMES))
        # continuing from ``base`` keeps its trees and adds n_estimators more
        return lgb.train(params, data, num_boost_round=int(n_estimators), init_model=init)

    # Out-of-fold scores: annotated and normal images are dealt to the folds separately
    # (seeded order), so that every training fold holds annotated images when there are two.
    n_folds = max(int(cv), 2)
    rng = np.random.default_rng(random_state)
    fold_of = np.zeros(len(rois) + len(normal_rois), int)
    for idx in (np.arange(len(rois)), len(rois) + np.arange(len(normal_rois))):
        fold_of[rng.permutation(idx)] = np.arange(idx.size) % n_folds
    fold = fold_of[g_all]
    booster = fit(np.ones(len(y_all), bool))
    oof = np.zeros(len(y_all))
    in_sample = 0
    for k in range(n_folds):
        test = fold == k
        if not test.any():
            continue
        if (~test).any() and (np.concatenate([y_all[~test], yp]) == 1).any():
            oof[test] = fit(~test).predict(X_all[test], num_threads=1)
        else:  # a single annotated image: its fold is scored in sample (optimistic)
            oof[test] = booster.predict(X_all[test], num_threads=1)
            in_sample += int(test.sum())
    model_str = booster.model_to_string()
    thr, fp, tpr = _calibration_table(oof[is_normal], oof[y_all == 1], normal_area)
    meta.update(n_estimators=int(n_estimators), synthetic_patches=int(synthetic_patches),
                cv=n_folds, in_sample_scores=in_sample, seconds=round(time.perf_counter() - t0, 1))
    return CandidateFilter(model_str, thr, fp, tpr, FEATURE_NAMES, meta)

