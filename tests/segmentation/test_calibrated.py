"""Calibrated detection, noise estimation, the candidate filter and its operating points."""

import json

import numpy as np
import pytest

from skcalc import ROI
from skcalc.datasets import make_calcification_cohort
from skcalc.datasets._realistic import make_training_patch
from skcalc.metrics import match_objects
from skcalc.segmentation import HDoGRegSegmenter
from skcalc.segmentation._calibrated import (
    FEATURE_NAMES,
    calibrated_candidates,
    candidate_features,
    local_robust_scale,
    stabilise_intensity,
    white_noise_dog_sd,
)
from skcalc.segmentation._combine import segment_calibrated
from skcalc.segmentation._filter import (
    PRESETS,
    CandidateFilter,
    load_default_filter,
    train_candidate_filter,
)
from skcalc.segmentation._operating_point import image_operating_point


# ----------------------------------------------------------------------------- noise
@pytest.mark.parametrize("spacing", [0.05, 0.07, 0.1, 0.2])
@pytest.mark.parametrize("sd", [0.004, 0.02])
def test_pixel_noise_estimate_on_white_noise(spacing, sd):
    rng = np.random.default_rng(1)
    img = 0.4 + rng.normal(0, sd, (600, 600))
    _, info = calibrated_candidates(img, spacing)
    assert info["pixel_noise_sd"] == pytest.approx(sd, rel=0.05)
    assert info["noise_sd"] == pytest.approx(sd * white_noise_dog_sd(0.0826 / spacing, 1.6),
                                             rel=0.05)


def test_noise_estimate_ignores_air_edge_and_follows_local_noise():
    rng = np.random.default_rng(2)
    img = np.full((400, 400), 0.02)
    breast = np.zeros((400, 400), bool)
    breast[:, :300] = True  # air on the right, with a strong edge
    img[breast] = 0.5 + np.linspace(0, 0.2, 300)[None, :].repeat(400, 0)[breast[:, :300]]
    sd = np.where(np.arange(400)[:, None] < 200, 0.005, 0.015) * np.ones((1, 400))
    img = img + rng.normal(0, 1, img.shape) * sd * breast
    _, info = calibrated_candidates(img, 0.1, breast_mask=breast, window_mm=5.0)
    s0 = info["_scales"][0] / white_noise_dog_sd(0.826, 1.6)
    # local scale in the two halves (away from their border)
    assert np.median(s0[20:150, 40:250]) == pytest.approx(0.005, rel=0.1)
    assert np.median(s0[250:380, 40:250]) == pytest.approx(0.015, rel=0.1)


def test_local_robust_scale_is_robust_to_outliers():
    rng = np.random.default_rng(3)
    x = rng.normal(0, 1.0, (300, 300))
    x[rng.random(x.shape) < 0.02] = 50.0  # 2% bright outliers (calcifications, spikes)
    s, g = local_robust_scale(x, None, (60, 60))
    assert g == pytest.approx(1.0, rel=0.1)
    assert s.min() > 0.8 and s.max() < 1.3


def _sublattice_noise(rng, shape, sd=((1.0, 1.15), (1.15, 1.3))):
    """White noise whose sd depends on the pixel's (row, col) parity, as on processed
    mammograms (the NYU views: 7% between sublattices)."""
    x = rng.normal(0, 1, shape)
    for pr in (0, 1):
        for pc in (0, 1):
            x[pr::2, pc::2] *= sd[pr][pc]
    return x


def test_local_robust_scale_does_not_depend_on_where_the_image_starts():
    x = _sublattice_noise(np.random.default_rng(8), (400, 400))
    pooled = 1.482602218505602 * np.median(np.abs(x - np.median(x)))
    g = [local_robust_scale(x[r:, c:], None, (50, 50))[1] for r, c in
         ((0, 0), (1, 0), (0, 1), (1, 1))]
    # one fixed sublattice would give 1.0 or 1.3 depending on the offset
    assert max(g) / min(g) < 1.04
    assert np.mean(g) == pytest.approx(pooled, rel=0.03)


def test_candidates_do_not_depend_on_where_the_image_starts():
    x = 0.5 + 0.01 * _sublattice_noise(np.random.default_rng(9), (900, 900))
    n = [calibrated_candidates(x[r:, c:], 0.1, cnr_threshold=3.5)[0].max() for r, c in
         ((0, 0), (1, 0), (0, 1), (1, 1))]
    # measured 1.22 (at k = 3.5 the count moves 11 times as much as the scale estimate,
    # so sampling alone moves it); one fixed sublattice per offset gave 815 / 220 = 3.7
    assert max(n) / min(n) < 1.4


# ------------------------------------------------------------------ scale invariance
def test_detection_is_invariant_to_intensity_scale_and_noise_level():
    rng = np.random.default_rng(4)
    base = rng.normal(0, 1, (300, 300))
    yy, xx = np.mgrid[:300, :300]
    blobs = sum(np.exp(-((yy - r) ** 2 + (xx - c) ** 2) / 3.0) for r, c in
                [(50, 50), (150, 220), (240, 90)])
    a = 0.3 + 0.01 * (base + 8 * blobs)
    b = 0.1 + 0.04 * (base + 8 * blobs)  # 4x the noise and contrast, other offset
    la, ia = calibrated_candidates(a, 0.07)
    lb, ib = calibrated_candidates(b, 0.07)
    np.testing.assert_array_equal(la > 0, lb > 0)
    assert ib["noise_sd"] == pytest.approx(4 * ia["noise_sd"], rel=1e-3)
    for r, c in [(50, 50), (150, 220), (240, 90)]:
        assert la[r, c] > 0


def _blobs_on_texture(seed=4, n=320):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:n, :n]
    # smooth anatomy from dark (fatty) to bright (dense), fine noise, eight blobs
    anatomy = 0.15 + 0.6 * xx / n + 0.05 * np.sin(yy / 17.0)
    sites = [(40 + 80 * (k // 4), 40 + 80 * (k % 4)) for k in range(8)]
    blobs = sum(np.exp(-((yy - r) ** 2 + (xx - c) ** 2) / 3.0) for r, c in sites)
    return np.clip(anatomy + 0.01 * (rng.normal(0, 1, (n, n)) + 7 * blobs), 0, 1), sites


@pytest.mark.parametrize("curve", [lambda x: x**2, lambda x: np.log1p(50 * x) / np.log1p(50),
                                   lambda x: x**0.5])
def test_stabilised_detection_does_not_depend_on_the_display_curve(curve):
    # A monotone display curve scales noise and contrast together by its local slope; the
    # stabilised detector finds the same objects, the plain one loses or gains some.
    img, sites = _blobs_on_texture()
    ref, _ = calibrated_candidates(img, 0.07)
    out, _ = calibrated_candidates(curve(img), 0.07)
    assert all(ref[r, c] > 0 and out[r, c] > 0 for r, c in sites)

    def iou(u, v):
        return ((u > 0) & (v > 0)).sum() / ((u > 0) | (v > 0)).sum()

    assert iou(ref, out) > 0.9
    plain_ref, _ = calibrated_candidates(img, 0.07, stabilise=False)
    plain, _ = calibrated_candidates(curve(img), 0.07, stabilise=False)
    assert iou(plain_ref, plain) < iou(ref, out)  # measured 0.61 / 0.80 / 0.89 vs 0.93-0.96


def test_stabilisation_equalises_signal_dependent_noise():
    # quantum-like noise, sd proportional to sqrt(signal), on a ramp from 0.05 to 0.95
    rng = np.random.default_rng(6)
    v = np.linspace(0.05, 0.95, 400)[None, :].repeat(400, 0)
    img = (v + 0.01 * np.sqrt(v / 0.5) * rng.normal(0, 1, v.shape)).astype(np.float32)
    valid = np.ones(img.shape, bool)
    out, med = stabilise_intensity(img, valid, (0.1, 0.1), 0.0826, 0.0826 * 1.6)
    assert out.dtype == np.float32 and out.shape == img.shape

    def fine_sd(x, cols):
        d = np.diff(x[:, cols], axis=1)
        return np.median(np.abs(d - np.median(d))) * 1.4826

    before = fine_sd(img, slice(20, 80)) / fine_sd(img, slice(320, 380))
    after = fine_sd(out, slice(20, 80)) / fine_sd(out, slice(320, 380))
    assert before < 0.45  # sqrt(0.13 / 0.88)
    assert after == pytest.approx(1.0, abs=0.15)
    assert np.all(np.diff(out[200]) > -0.05)  # monotone up to the noise


def test_stabilisation_is_identity_like_on_stationary_noise():
    rng = np.random.default_rng(7)
    img = (0.4 + 0.02 * rng.normal(0, 1, (300, 300))).astype(np.float32)
    out, _ = stabilise_intensity(img, np.ones(img.shape, bool), (0.07, 0.07), 0.0826, 0.132)
    # an affine map, up to the noise of the estimated noise level function
    r = np.corrcoef(img.ravel(), out.ravel())[0, 1]
    assert r > 0.995


def test_false_alarm_rate_on_white_noise_is_set_by_the_threshold():
    # Independent of the noise level: the same noise at 15 times the level gives the same
    # candidates (up to float32 rounding at the threshold); falls steeply with k.
    z = np.random.default_rng(5).normal(0, 1, (800, 800))
    rates = {}
    for k in (3.0, 4.0):
        labs = []
        for sd in (0.002, 0.03):
            lab, _ = calibrated_candidates(0.5 + sd * z, 0.1, cnr_threshold=k)
            labs.append(lab)
            rates[k, sd] = lab.max() / (800 * 800 * 0.01 / 100)
        assert labs[0].max() == pytest.approx(labs[1].max(), rel=0.01)
        assert np.count_nonzero((labs[0] > 0) != (labs[1] > 0)) <= 0.01 * (labs[0] > 0).sum() + 2
    assert rates[3.0, 0.002] > 5 * rates[4.0, 0.002] > 0
    # documented figure: about 0.7 candidates per cm^2 at k = 4 and 0.1 mm
    assert 0.2 < rates[4.0, 0.002] < 2.0


# ------------------------------------------------------------------------- features
def test_features_are_finite_where_defined_and_one_row_per_object():
    p = make_training_patch(np.random.default_rng(7), size_mm=20.0, spacing=0.07,
                            calcifications=True)
    lab, info = calibrated_candidates(p["image"], 0.07, breast_mask=p["breast"],
                                      bit_depth=p["bits"], erosion_mm=1.0)
    X = candidate_features(lab, info)
    assert X.shape == (lab.max(), len(FEATURE_NAMES))
    must = [FEATURE_NAMES.index(k) for k in ("cnr", "scale_mm", "log_area_mm2", "edge_mm",
                                            "contrast_cnr", "busy")]
    assert np.isfinite(X[:, must]).all()
    assert (X[:, FEATURE_NAMES.index("cnr")] > 4.0).all()


# -------------------------------------------------------------------- operating point
def test_resolve_presets_and_monotone_thresholds():
    f = load_default_filter()
    targets = [5.0, 2.0, 1.0, 0.5, 0.2, 0.1, 0.05]
    thr = [f.resolve(t)[1] for t in targets]
    assert all(a <= b for a, b in zip(thr, thr[1:]))
    for name, value in PRESETS.items():
        assert f.resolve(name) == f.resolve(value)
    with pytest.raises(ValueError, match="operating_point"):
        f.resolve("everything")
    with pytest.raises(ValueError, match="positive"):
        f.resolve(-1.0)


def test_fewer_fp_per_cm2_never_gives_more_detections():
    p = make_training_patch(np.random.default_rng(11), size_mm=30.0, spacing=0.07,
                            calcifications=True)
    roi = ROI(p["image"], spacing=0.07, meta={"roi_id": "p"})
    prev = None
    for op in ("sensitive", 1.0, "balanced", 0.3, "specific", 0.05):
        [out] = HDoGRegSegmenter(operating_point=op).fit_transform([roi])
        cur = out.calcifications > 0
        if prev is not None:
            assert not (cur & ~prev).any()
        prev = cur
        s = out.meta["segmentation"]
        assert s["threshold"] == "auto" and s["operating_point"] == op
        assert s["n_objects"] == out.calcifications.max() <= s["n_candidates"]


def _linear_table(d_ref=4.0):
    """A filter table whose negatives' scores are uniform on [0, 1], ``d_ref`` per cm^2."""
    t = np.linspace(0, 1, 1001)
    return CandidateFilter("", t, d_ref * (1 - t))


@pytest.mark.parametrize("target", [0.2, 0.5, 1.0])
def test_image_calibration_keeps_the_promise_at_any_candidate_density(target):
    f = _linear_table()
    rng = np.random.default_rng(0)
    area = 500.0
    for density in (1.0, 2.0, 4.0, 8.0):
        # tissue candidates ranked by the filter as the calibration's negatives were
        scores = rng.uniform(0, 1, int(density * area))
        op = image_operating_point(f, target, scores, area)
        assert op["fp_calibration"] == "image" and op["fp_per_cm2"] == target
        assert op["candidate_density_per_cm2"] == pytest.approx(density, rel=0.1)
        # exactly: the candidates below the table's top-5% threshold, over the fraction of
        # the table's negatives there (1 - t for this table), shrunk with 10 cm^2 at 4/cm^2
        _, t_tail = f.resolve(4.0 * 0.05)
        below = np.count_nonzero(scores < t_tail) / t_tail
        assert op["candidate_density_per_cm2"] == pytest.approx((below + 40.0) / (area + 10.0),
                                                                rel=1e-9)
        rate = np.count_nonzero(scores >= op["score_threshold"]) / area
        slack = 3 * np.sqrt(target / area)
        assert 0.8 * target - slack <= rate <= 1.2 * target + slack
        # the table alone promises the calibration's density: off by density / 4
        raw = image_operating_point(f, target, scores, area, "filter")
        assert raw["score_threshold"] == f.resolve(target)[1] and raw["fp_scale"] == 1.0
        raw_rate = np.count_nonzero(scores >= raw["score_threshold"]) / area
        assert raw_rate == pytest.approx(target * density / 4, rel=0.2, abs=slack)


def test_image_calibration_is_monotone_and_ignores_likely_calcifications():
    f = _linear_table()
    rng = np.random.default_rng(1)
    scores = rng.uniform(0, 1, 1000)  # 2 per cm^2 on 500 cm^2
    thr = [image_operating_point(f, t, scores, 500.0)["score_threshold"]
           for t in (4.0, 2.0, 1.0, 0.5, 0.2, 0.1, 0.01)]
    assert all(a <= b for a, b in zip(thr, thr[1:]))
    # a cluster of 100 calcifications the filter is sure of hardly moves the threshold
    with_calcs = np.concatenate([scores, np.full(100, 0.999)])
    a = image_operating_point(f, 0.5, scores, 500.0)
    b = image_operating_point(f, 0.5, with_calcs, 500.0)
    assert abs(b["score_threshold"] - a["score_threshold"]) <= 0.01


def test_image_calibration_bounds_and_fallbacks():
    f = _linear_table()
    # a tiny ROI measures little: its density is shrunk towards the calibration's
    small = image_operating_point(f, 0.5, np.zeros(0), 0.5)
    assert small["fp_scale"] == pytest.approx(4.0 * 10.5 / 40.0, rel=1e-6)
    # nothing in a large image, or a flood of candidates: the correction is bounded
    assert image_operating_point(f, 0.5, np.zeros(0), 1000.0)["fp_scale"] == 4.0
    flood = np.random.default_rng(2).uniform(0, 0.9, 100_000)
    assert image_operating_point(f, 0.5, flood, 1000.0)["fp_scale"] == 0.25
    # a hand-made table does not say how many candidates it was counted on
    hand = CandidateFilter("", [0.1, 0.5, 0.9], [3.0, 1.0, 0.2])
    op = image_operating_point(hand, 1.0, np.full(10, 0.3), 100.0)
    assert op["fp_calibration"] == "filter" and op["score_threshold"] == 0.5
    with pytest.raises(ValueError, match="fp_calibration"):
        image_operating_point(f, 0.5, np.zeros(0), 10.0, "synthetic")
    # a table with no negatives at all says nothing about the density either
    empty = CandidateFilter("", [0.0, 0.5], [0.0, 0.0])
    op = image_operating_point(empty, 0.5, np.full(10, 0.3), 100.0)
    assert op["fp_calibration"] == "filter" and op["candidate_density_per_cm2"] is None
    # no breast area: the density is the prior's plus what was counted, over 10 cm^2
    op = image_operating_point(f, 0.5, np.full(20, 0.1), 0.0)
    _, t_tail = f.resolve(0.2)
    assert op["candidate_density_per_cm2"] == pytest.approx((20 / t_tail + 40.0) / 10.0)
    assert image_operating_point(f, 0.5, np.full(20, 0.1), -5.0) == op
    # a coarse table that never keeps fewer than 3 in 4 of its negatives: the count below
    # its last threshold is scaled by at most 2, not by 4
    coarse = CandidateFilter("", [0.0, 0.5], [4.0, 3.0])
    op = image_operating_point(coarse, 0.5, np.full(100, 0.2), 100.0)
    assert op["candidate_density_per_cm2"] == pytest.approx((100 / 0.5 + 40.0) / 110.0)


def test_segmenter_reports_the_image_calibrated_operating_point(monkeypatch):
    from skcalc.segmentation import _operating_point

    p = make_training_patch(np.random.default_rng(11), size_mm=30.0, spacing=0.07,
                            calcifications=True)
    roi = ROI(p["image"], spacing=0.07, meta={"roi_id": "p"})
    f = load_default_filter()
    seen = []
    real = _operating_point.image_operating_point

    def spy(candidate_filter, operating_point, scores, area, fp_calibration="image"):
        seen.append((np.asarray(scores).copy(), area))
        return real(candidate_filter, operating_point, scores, area, fp_calibration)

    monkeypatch.setattr(_operating_point, "image_operating_point", spy)
    [img] = HDoGRegSegmenter().fit_transform([roi])
    # the correction saw every candidate's score and the whole breast of the patch
    [(scores, area)] = seen
    s = img.meta["segmentation"]
    assert scores.size == s["n_candidates"] > 20
    assert area == s["breast_area_cm2"] == pytest.approx(
        p["breast"].sum() * 0.07**2 / 100, rel=0.05)
    assert s["n_objects"] <= np.count_nonzero(scores >= s["score_threshold"])
    expected = real(f, "balanced", scores, area)
    assert s["candidate_density_per_cm2"] == expected["candidate_density_per_cm2"]
    assert s["score_threshold"] == expected["score_threshold"]
    [tab] = HDoGRegSegmenter(fp_calibration="filter").fit_transform([roi])
    si, st = img.meta["segmentation"], tab.meta["segmentation"]
    assert st["fp_calibration"] == "filter" and st["fp_scale"] == 1.0
    assert st["score_threshold"] == f.resolve("balanced")[1]
    assert si["fp_calibration"] == "image" and si["candidate_density_per_cm2"] > 0
    assert si["score_threshold"] == f.resolve(0.5 * si["fp_scale"])[1]
    assert si["n_candidates"] == st["n_candidates"]  # the same candidates, another threshold
    lower = si["score_threshold"] <= st["score_threshold"]
    sub, sup = (tab, img) if lower else (img, tab)
    assert not ((sub.calcifications > 0) & ~(sup.calcifications > 0)).any()


@pytest.fixture(scope="module")
def negative_patches():
    # held-out seeds, never used by training or calibration (seeds [11, k] and [12, k])
    return [make_training_patch(np.random.default_rng([99, k]), calcifications=False)
            for k in range(24)]


@pytest.mark.parametrize("fp_calibration", ["image", "filter"])
@pytest.mark.parametrize("op", ["sensitive", "balanced"])
def test_false_alarms_on_synthetic_texture_match_the_operating_point(negative_patches, op,
                                                                      fp_calibration):
    f = load_default_filter()
    target = PRESETS[op]
    n, area = 0, 0.0
    for p in negative_patches:
        lab, s = segment_calibrated(p["image"], p["spacing"], breast_mask=p["breast"],
                                    candidate_filter=f, operating_point=op, erosion_mm=1.0,
                                    bit_depth=p["bits"], fp_calibration=fp_calibration)
        n += s["n_objects"]
        from skcalc.segmentation import erode_breast

        area += erode_breast(p["breast"], spacing=p["spacing"], size_mm=1.0).sum() * \
            p["spacing"] ** 2 / 100
    rate = n / area
    # the tissue the table was calibrated on: the promise within a factor 1.5 either way,
    # plus one Poisson sd of the promised count (measured: 0.64-0.79 of the promise)
    slack = np.sqrt(target * area) / area
    assert target / 1.5 - slack <= rate <= 1.5 * target + slack


@pytest.mark.parametrize("fp_calibration", ["image", "filter"])
def test_false_alarms_on_pure_noise_stay_within_the_stated_tolerance(fp_calibration):
    # White noise yields about 0.5 candidates per cm^2 at k = 4, whatever its level: fewer
    # than "balanced" promises, so the filter is tested at "specific", where it must remove
    # most of them. Pure-noise maxima look like faint calcifications to the filter, and
    # with the per-image correction (few candidates: the largest correction) the rate is
    # 1.7 times the promise: the documented tolerance is a factor 2.
    f = load_default_filter()
    rates = {}
    for op in ("sensitive", "balanced", "specific"):
        rng = np.random.default_rng(13)
        n = n_cand = 0
        area = 0.0
        for sp in (0.05, 0.1, 0.2):
            img = np.clip(np.rint(2000 + rng.normal(0, 30, (600, 600))), 0, 4095)
            lab, s = segment_calibrated(img.astype(np.uint16), sp, candidate_filter=f,
                                        operating_point=op, fp_calibration=fp_calibration)
            n, n_cand = n + s["n_objects"], n_cand + s["n_candidates"]
            area += s["breast_area_cm2"]
        rates[op] = n / area
        assert n <= n_cand and 0.2 < n_cand / area < 1.0
        slack = np.sqrt(2 * PRESETS[op] * area) / area
        assert rates[op] <= 2 * PRESETS[op] + slack
    assert rates["specific"] < 0.6 * n_cand / area  # the filter did remove candidates
    assert rates["specific"] <= rates["balanced"] <= rates["sensitive"]


# ----------------------------------------------------------------------------- model
def test_training_is_deterministic_and_round_trips_as_json(tmp_path):
    kw = dict(n_train=8, n_calib=4, n_estimators=15, random_state=3)
    a = train_candidate_filter(**kw)
    b = train_candidate_filter(**kw)
    assert a.model_str == b.model_str
    np.testing.assert_array_equal(a.calib_thresholds, b.calib_thresholds)
    np.testing.assert_array_equal(a.calib_fp_per_cm2, b.calib_fp_per_cm2)
    assert np.all(np.diff(a.calib_fp_per_cm2) <= 0)
    c = train_candidate_filter(**{**kw, "random_state": 4})
    assert c.model_str != a.model_str
    path = tmp_path / "f.json"
    a.save(path)
    loaded = CandidateFilter.load(path)
    assert loaded.digest == a.digest
    X = np.random.default_rng(0).normal(size=(5, len(FEATURE_NAMES)))
    np.testing.assert_allclose(loaded.score(X), a.score(X))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "pickle"}))
    with pytest.raises(ValueError, match="not a skcalc candidate-filter"):
        CandidateFilter.load(bad)


def test_calibration_on_calcification_free_patches_only():
    kw = dict(n_train=8, n_calib=10, n_estimators=15, random_state=3, contrast="detector",
              faint_max_mm=1.0)
    a = train_candidate_filter(**kw)
    f = train_candidate_filter(**kw, calib_negatives="free")
    assert f.model_str == a.model_str  # only the FP/cm^2 table differs
    n_free = f.meta["calib_patches_free"]
    assert 0 < n_free < 10
    assert f.meta["contrast"] == "detector" and f.meta["faint_max_mm"] == 1.0
    # the table's area is the breast of the calcification-free patches only
    from skcalc.segmentation._filter import _patches

    _, _, areas, _, with_calc = _patches(3 * 2 + 12, 10, 4.0, contrast="detector",
                                         faint_max_mm=1.0, film_fraction=0.0)
    assert f.meta["calib_breast_cm2"] == pytest.approx(areas[~with_calc].sum())
    assert a.meta["calib_breast_cm2"] == pytest.approx(areas.sum())
    with pytest.raises(ValueError, match="calib_negatives"):
        train_candidate_filter(n_train=2, n_calib=2, n_estimators=2, calib_negatives="some")


def test_default_segmenter_finds_cohort_calcifications():
    rois, _, _ = make_calcification_cohort(n_rois=4, random_state=5)
    seg = HDoGRegSegmenter().fit(rois)
    assert seg.operating_point_["fp_per_cm2"] == PRESETS["balanced"]
    tp = n = fp = n_cand = 0
    area = 0.0
    for roi, out in zip(rois, seg.transform(rois)):
        m = match_objects(out.calcifications, roi.reference, spacing=roi.spacing)
        tp, n, fp = tp + m["tp"], n + m["n_gt"], fp + m["fp"]
        s = out.meta["segmentation"]
        area, n_cand = area + s["breast_area_cm2"], n_cand + s["n_candidates"]
    assert tp >= 0.8 * n
    # and not by keeping every candidate: false objects within the promise (measured: 5 on
    # 16 cm^2 of these clustered ROIs, of 10 candidates that are not calcifications)
    assert fp <= PRESETS["balanced"] * area and fp < n_cand - tp


def test_bounded_hole_filling_equals_binary_fill_holes():
    from scipy import ndimage

    from skcalc.segmentation._combine import _fill_holes

    rng = np.random.default_rng(17)
    for _ in range(30):
        m = rng.random((50, 61)) < rng.uniform(0.2, 0.7)
        m[: rng.integers(0, 10)] = False
        np.testing.assert_array_equal(_fill_holes(m), ndimage.binary_fill_holes(m))


def test_default_segmenter_does_not_import_torch():
    import subprocess
    import sys

    code = ("import sys, numpy as np, skcalc\n"
            "r = skcalc.ROI(np.full((64, 64), 900, np.uint16), spacing=0.1, meta={'roi_id': 'a'})\n"
            "skcalc.HDoGRegSegmenter().fit_transform([r])\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip().endswith("False")


def test_changing_the_detection_threshold_warns_that_the_calibration_is_lost():
    roi = ROI(np.full((40, 40), 900, np.uint16), spacing=0.1, meta={"roi_id": "a"})
    with pytest.warns(UserWarning, match="calibrated with cnr_threshold"):
        HDoGRegSegmenter(cnr_threshold=3.0).fit([roi])


def test_extra_scales_continue_the_authors_stack_without_changing_it():
    from skcalc.segmentation._hdog import hdog_sigmas

    rng = np.random.default_rng(19)
    img = 0.4 + rng.normal(0, 0.01, (200, 200))
    _, i0 = calibrated_candidates(img, 0.07, extra_scales=0)
    _, i2 = calibrated_candidates(img, 0.07, extra_scales=2)
    authors = hdog_sigmas(0.0826, 0.217, 1.6)
    np.testing.assert_allclose(i0["_sigmas_mm"], authors)
    np.testing.assert_allclose(i2["_sigmas_mm"][: len(authors)], authors)
    np.testing.assert_allclose(i2["_sigmas_mm"][len(authors):],
                               authors[-1] * 1.6 ** np.arange(1, 3))
    for a, b in zip(i0["_norms"], i2["_norms"]):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="extra_scales"):
        calibrated_candidates(img, 0.07, extra_scales=-1)


@pytest.mark.parametrize("spacing", [0.07, 0.1])
def test_bright_calcifications_are_kept(spacing):
    # Brighter must never be harder: 0.3 mm discs (blurred by 0.05 mm) whose peak is 8-40
    # times the pixel noise are all kept at the default operating point.
    from scipy import ndimage

    rng = np.random.default_rng(23)
    n = int(round(30 / spacing))
    noise = 40.0
    yy, xx = np.mgrid[:n, :n]
    r_px = 0.15 / spacing

    def disc(y, x):
        return np.sqrt(np.clip(1 - ((yy - y) ** 2 + (xx - x) ** 2) / r_px**2, 0, None))

    unit = ndimage.gaussian_filter(disc(n // 2, n // 2), 0.05 / spacing).max()
    canvas = np.zeros((n, n))
    centres = []
    for k, c in enumerate((8.0, 12.0, 20.0, 40.0)):
        for j in range(3):
            y, x = (4 + 6 * k) / spacing, (6 + 8 * j) / spacing
            canvas += disc(y, x) * c * noise / unit
            centres.append((int(round(y)), int(round(x))))
    img = 2000 + rng.normal(0, noise, (n, n)) + ndimage.gaussian_filter(canvas, 0.05 / spacing)
    img = np.clip(np.rint(img), 0, 4095).astype(np.uint16)
    lab, _ = segment_calibrated(img, spacing, candidate_filter=load_default_filter(),
                                bit_depth=12)
    near = ndimage.binary_dilation(lab > 0)
    assert all(near[r, c] for r, c in centres)


def test_threaded_gaussians_give_the_same_candidates_as_one_thread(monkeypatch):
    # a > 1 Mpx image, so the Gaussian planes really are computed on several threads
    import skcalc.utils._parallel as par

    patch = make_training_patch(np.random.default_rng([7, 1]), size_mm=110.0, spacing=0.1)
    img = patch["image"]
    assert img.size >= 1 << 20
    threads = []
    real = par.inner_threads
    monkeypatch.setattr(par, "inner_threads", lambda n: threads.append(real(n)) or real(n))
    lab_t, info_t = calibrated_candidates(img, 0.1, breast_mask=patch["breast"])
    monkeypatch.setattr(par, "inner_threads", lambda n: threads.append(1) or 1)
    lab_1, info_1 = calibrated_candidates(img, 0.1, breast_mask=patch["breast"])
    assert threads[:2] == [real(2), real(4)] and threads[2:] == [1, 1]
    np.testing.assert_array_equal(lab_t, lab_1)
    for key in ("cnr", "peak_row", "peak_col", "noise_sd", "pixel_noise_sd", "n_peaks"):
        np.testing.assert_array_equal(info_t[key], info_1[key])
    for a, b in zip(info_t["_norms"], info_1["_norms"]):
        np.testing.assert_array_equal(a, b)


def test_wide_hessian_tells_a_line_from_a_blob():
    from skcalc.segmentation._calibrated import _wide_hessian

    sp = (0.1, 0.1)
    yy, xx = np.mgrid[:200, :200] * 0.1
    line = np.exp(-((xx - 10.0) ** 2) / (2 * 0.5**2)).astype(np.float32)  # bright ridge
    blob = np.exp(-((xx - 10.0) ** 2 + (yy - 10.0) ** 2) / (2 * 0.5**2)).astype(np.float32)
    at = np.array([100]), np.array([100])
    r_line, b_line = _wide_hessian(line, sp, 0.5, *at)
    r_blob, b_blob = _wide_hessian(blob, sp, 0.5, *at)
    assert abs(r_line[0]) < 0.05 and r_blob[0] == pytest.approx(1.0, abs=0.05)
    assert b_line[0] < 0 and b_blob[0] < 0  # bright structures
    # sigma^2 times the second derivative at the ridge of the line (width s = 0.5 mm)
    # smoothed at sigma = 0.5 mm: -sigma^2 s / (s^2 + sigma^2)^1.5
    assert b_line[0] == pytest.approx(-0.25 * 0.5 / 0.5**1.5, rel=0.05)
    # scale-invariant in intensity up to the sign: a dark line
    r_dark, b_dark = _wide_hessian(-line, sp, 0.5, *at)
    assert r_dark[0] == pytest.approx(r_line[0], abs=1e-6)
    assert b_dark[0] == pytest.approx(-b_line[0])


def test_a_filter_trained_on_the_leading_features_still_loads_and_scores(tmp_path):
    import lightgbm as lgb

    # a filter from before the wide-Hessian features: a model on the first k columns only
    k = FEATURE_NAMES.index("hess_ratio_05mm")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, len(FEATURE_NAMES)))
    y = (X[:, 0] + X[:, k - 1] > 0).astype(int)
    booster = lgb.train({"objective": "binary", "verbose": -1, "num_leaves": 4},
                        lgb.Dataset(X[:, :k], y, feature_name=list(FEATURE_NAMES[:k])), 10)
    old = CandidateFilter(booster.model_to_string(), [0.9, 0.5], [0.1, 1.0], [0.5, 0.9],
                          FEATURE_NAMES[:k], {"cnr_threshold": 4.0})
    path = tmp_path / "old.json"
    old.save(path)
    loaded = CandidateFilter.load(path)
    np.testing.assert_allclose(loaded.score(X), booster.predict(X[:, :k]), rtol=1e-12)
    d = json.loads(path.read_text())
    d["feature_names"] = ["not_a_feature", *d["feature_names"][1:]]
    path.write_text(json.dumps(d))
    with pytest.raises(ValueError, match="other features"):
        CandidateFilter.load(path)
