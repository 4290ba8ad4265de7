"""Candidate-level false-positive filter with an operating point in false positives per cm^2.

A gradient-boosted classifier (LightGBM) scores each calibrated HDoG candidate from the
features of :func:`~skcalc.segmentation._calibrated.candidate_features`. It is trained on
synthetic patches only (:func:`skcalc.datasets._realistic.make_training_patch`), and the
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

from ._calibrated import FEATURE_NAMES

__all__ = ["CandidateFilter", "PRESETS", "load_default_filter", "train_candidate_filter"]

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

    def score(self, X: np.ndarray) -> np.ndarray:
        """Probability-like score in [0, 1] of each candidate being a calcification."""
        X = np.asarray(X, np.float64)
        if X.shape[0] == 0:
            return np.zeros(0)
        if X.shape[1] != len(self.feature_names):
            raise ValueError(f"expected {len(self.feature_names)} features, got {X.shape[1]}")
        return self._booster().predict(X, num_threads=1)

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
        if tuple(d["feature_names"]) != FEATURE_NAMES:
            raise ValueError(f"{os.fspath(path)!r} was trained on other features")
        return cls(d["model_str"], d["calib_thresholds"], d["calib_fp_per_cm2"],
                   d.get("calib_tpr"), d["feature_names"], d.get("meta"))

    def __repr__(self) -> str:
        return f"CandidateFilter(digest={self.digest[:10]})"


def load_default_filter() -> CandidateFilter:
    """The packaged filter (trained by ``scripts/train_candidate_filter.py``)."""
    f = _CACHE.get("default")
    if f is None:
        f = _CACHE.setdefault("default", CandidateFilter.load(DEFAULT_FILTER))
    return f


# ------------------------------------------------------------------------ training
def patch_candidates(patch: dict, *, cnr_threshold: float, window_mm: float = 5.0):
    """Candidates, features and labels (1 = covers a calcification) of one training patch."""
    from ._calibrated import calibrated_candidates, candidate_features

    lab, info = calibrated_candidates(
        patch["image"], patch["spacing"], breast_mask=patch["breast"],
        cnr_threshold=cnr_threshold, window_mm=window_mm, bit_depth=patch["bits"],
        erosion_mm=1.0)
    X = candidate_features(lab, info)
    n = X.shape[0]
    ref = patch["reference"]
    hit = np.bincount(lab[ref], minlength=n + 1)[1:] > 0 if n else np.zeros(0, bool)
    sp = patch["spacing"]
    from ._breast import erode_breast

    area = float(erode_breast(patch["breast"], spacing=sp, size_mm=1.0).sum()) * sp * sp / 100
    return X, hit.astype(np.int8), area


def _patches(seed: int, n: int, cnr_threshold: float):
    from ..datasets._realistic import make_training_patch

    Xs, ys, areas, groups = [], [], [], []
    for k in range(n):
        rng = np.random.default_rng([seed, k])
        p = make_training_patch(rng)
        X, y, a = patch_candidates(p, cnr_threshold=cnr_threshold)
        Xs.append(X)
        ys.append(y)
        areas.append(a)
        groups.append(np.full(len(y), k))
    return np.concatenate(Xs), np.concatenate(ys), np.asarray(areas), np.concatenate(groups)


def train_candidate_filter(
    n_train: int = 300,
    n_calib: int = 150,
    *,
    cnr_threshold: float = 4.0,
    random_state: int = 0,
    n_estimators: int = 300,
    num_threads: int = 1,
    verbose: bool = False,
) -> CandidateFilter:
    """Train the candidate classifier on synthetic patches and calibrate its operating points.

    ``n_train`` patches (seeds ``[random_state, k]``) train a LightGBM classifier
    (deterministic mode, ``num_threads`` threads); ``n_calib`` other patches (seeds
    ``[random_state + 1, k]``) give the held-out FP/cm^2 and sensitivity of every score
    threshold. The result depends only on the arguments (``deterministic=True``).

    Returns
    -------
    CandidateFilter
    """
    import time

    import lightgbm as lgb

    t0 = time.perf_counter()
    X, y, _, _ = _patches(int(random_state) * 2 + 11, n_train, cnr_threshold)
    Xc, yc, area_c, _ = _patches(int(random_state) * 2 + 12, n_calib, cnr_threshold)
    t1 = time.perf_counter()
    if verbose:
        print(f"train candidates {len(y)} ({y.sum()} pos), calib {len(yc)} ({yc.sum()} pos), "
              f"generation {t1 - t0:.0f} s")
    params = dict(objective="binary", learning_rate=0.05, num_leaves=31, min_child_samples=20,
                  subsample=0.8, subsample_freq=1, colsample_bytree=0.8, reg_lambda=1.0,
                  seed=int(random_state), deterministic=True, force_row_wise=True,
                  num_threads=int(num_threads), verbose=-1)
    booster = lgb.train(params, lgb.Dataset(X, y, feature_name=list(FEATURE_NAMES)),
                        num_boost_round=int(n_estimators))
    model_str = booster.model_to_string()
    sc = booster.predict(Xc, num_threads=1)
    neg = np.sort(sc[yc == 0])
    pos = np.sort(sc[yc == 1])
    thr = np.unique(np.concatenate([np.linspace(0, 1, 1001), neg]))
    area = float(area_c.sum())
    fp = (neg.size - np.searchsorted(neg, thr, side="left")) / area
    tpr = (pos.size - np.searchsorted(pos, thr, side="left")) / max(pos.size, 1)
    # keep the table small: thresholds where FP/cm^2 changes noticeably
    keep = np.unique(np.concatenate([
        np.searchsorted(-fp, -np.geomspace(max(fp.max(), 1e-3), 1e-3, 400), side="left"),
        [0, len(thr) - 1]]))
    keep = keep[keep < len(thr)]
    meta = {"n_train": n_train, "n_calib": n_calib, "cnr_threshold": cnr_threshold,
            "random_state": int(random_state), "n_estimators": int(n_estimators),
            "train_candidates": int(len(y)), "train_positives": int(y.sum()),
            "calib_candidates": int(len(yc)), "calib_positives": int(yc.sum()),
            "calib_breast_cm2": area, "seconds": round(time.perf_counter() - t0, 1)}
    return CandidateFilter(model_str, thr[keep], fp[keep], tpr[keep], FEATURE_NAMES, meta)


def filter_summary(f: CandidateFilter) -> dict[str, Any]:
    """Held-out FP/cm^2 and TPR at each preset (for reports)."""
    out = {}
    for name in PRESETS:
        target, t = f.resolve(name)
        i = int(np.searchsorted(f.calib_thresholds, t))
        out[name] = {"fp_per_cm2": target, "threshold": t,
                     "calib_tpr": None if f.calib_tpr is None else float(f.calib_tpr[i])}
    return out
