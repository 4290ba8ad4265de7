"""Tests of the synthetic cohort and full-field generators."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skcalc import ROI
from skcalc.datasets import make_calcification_cohort, make_full_field_mammogram
from skcalc.datasets._calcifications import footprint
from skcalc.datasets._synthetic import _add_noise, _roi_background
from skcalc.datasets._texture import power_law_texture

FOUR = ndimage.generate_binary_structure(2, 1)


@pytest.fixture(scope="module")
def cohort():
    return make_calcification_cohort(random_state=0)


@pytest.fixture(scope="module")
def mlo():
    return make_full_field_mammogram((1024, 832), view="MLO", laterality="L", random_state=3)


# ----------------------------------------------------------------------------- helpers
def slope_reference(img, spacing, fmin=0.1, fmax=1.0):
    """Slow, independent estimate of beta: plane-detrended, Hann-windowed periodogram,
    averaged in 1-pixel-wide frequency rings, log-log fit over [fmin, fmax]."""
    img = np.asarray(img, float)
    h, w = img.shape
    yy, xx = np.mgrid[:h, :w]
    A = np.column_stack([np.ones(img.size), yy.ravel(), xx.ravel()])
    coef = np.linalg.lstsq(A, img.ravel(), rcond=None)[0]
    img = img - (A @ coef).reshape(h, w)
    win = np.outer(np.hanning(h), np.hanning(w))
    P = np.abs(np.fft.fftshift(np.fft.fft2(img * win))) ** 2
    fy = (np.arange(h) - h // 2) / (h * spacing)
    fx = (np.arange(w) - w // 2) / (w * spacing)
    fr = np.hypot(fy[:, None], fx[None, :])
    df = 1.0 / (max(h, w) * spacing)
    freqs, power = [], []
    for k in range(int(fmin / df), int(fmax / df) + 1):
        ring = (fr >= k * df) & (fr < (k + 1) * df)
        f = (k + 0.5) * df
        if ring.any() and fmin <= f <= fmax:
            freqs.append(f)
            power.append(P[ring].mean())
    return -np.polyfit(np.log(freqs), np.log(power), 1)[0]


def calc_stats(roi):
    """Per calcification: equivalent diameter (mm) and footprint mean minus ring median."""
    lab, n = ndimage.label(roi.reference, FOUR)
    img = roi.image.astype(float)
    out = []
    for i, sl in enumerate(ndimage.find_objects(lab), start=1):
        r0, r1 = max(sl[0].start - 8, 0), sl[0].stop + 8
        c0, c1 = max(sl[1].start - 8, 0), sl[1].stop + 8
        obj = lab[r0:r1, c0:c1] == i
        near = ndimage.binary_dilation(obj, iterations=3)
        ring = ndimage.binary_dilation(obj, iterations=6) & ~near & ~roi.reference[r0:r1, c0:c1]
        area = obj.sum() * roi.spacing[0] * roi.spacing[1]
        contrast = img[r0:r1, c0:c1][obj].mean() - np.median(img[r0:r1, c0:c1][ring])
        out.append((2 * np.sqrt(area / np.pi), contrast))
    return np.array(out).reshape(-1, 2)


# ----------------------------------------------------------------------------- cohort
def test_cohort_types_bit_depth_and_meta(cohort):
    rois, y, groups = cohort
    assert len(rois) == len(y) == len(groups) == 276
    assert set(np.unique(y)) == {0, 1}
    keys = {"roi_id", "patient_id", "exam_id", "image_id", "laterality", "view",
            "bits_stored", "n_calcifications", "distribution"}  # fmt: skip
    for r in rois:
        assert isinstance(r, ROI)
        assert r.image.dtype == np.uint16 and r.image.max() <= 4095
        assert r.meta["bits_stored"] == 12
        assert keys <= set(r.meta)
        assert r.meta["view"] in ("CC", "MLO", "ML", "XCCL") and r.meta["laterality"] in ("L", "R")
        assert r.region.dtype == bool and r.reference.dtype == bool
        assert r.region.shape == r.reference.shape == r.image.shape
        # the region is a disk of 16 mm inside a crop carrying a 2 mm margin
        assert r.image.shape == (286, 286)
        area_mm2 = r.region.sum() * 0.07**2
        assert area_mm2 == pytest.approx(np.pi * 8.0**2, rel=0.02)
        assert not r.region[0].any() and not r.region[:, -1].any()
        assert not (r.reference & ~r.region).any()
    assert len({r.roi_id for r in rois}) == len(rois)


def test_prevalence_and_exam_level_labels(cohort):
    rois, y, groups = cohort
    assert abs(y.mean() - 0.28) <= 0.03
    for g in np.unique(groups):
        assert len(set(y[groups == g])) == 1
    _, y2, g2 = make_calcification_cohort(120, prevalence=0.5, roi_size_mm=3, random_state=1)
    assert abs(y2.mean() - 0.5) <= 0.05
    _, y3, _ = make_calcification_cohort(20, prevalence=0.0, roi_size_mm=3, random_state=1)
    assert not y3.any()


def test_group_structure(cohort):
    rois, y, groups = cohort
    assert all(r.meta["exam_id"] == g for r, g in zip(rois, groups))
    _, per_exam = np.unique(groups, return_counts=True)
    assert per_exam.mean() > 1.5 and per_exam.max() >= 3
    # The paper's structure: 276 ROIs in 248 images of 168 exams, one exam per patient,
    # 76 ROIs actionable (Table 1), labels constant within an exam.
    assert len(rois) == 276
    assert len({r.meta["image_id"] for r in rois}) == 248
    assert len(set(groups)) == 168
    assert len({r.meta["patient_id"] for r in rois}) == 168
    assert y.sum() == 76
    for g in np.unique(groups):
        assert len(set(y[groups == g])) == 1
    # each image id belongs to one exam; an exam has one laterality
    for g in np.unique(groups):
        assert len({r.meta["laterality"] for r, gg in zip(rois, groups) if gg == g}) == 1
    cv = StratifiedGroupKFold(n_splits=5, shuffle=True, random_state=0)
    for train, test in cv.split(np.zeros(len(y)), y, groups):
        assert not set(groups[train]) & set(groups[test])
        assert 0 < y[test].mean() < 1


def test_reference_masks(cohort):
    rois, _, _ = cohort
    nonempty = np.mean([r.reference.any() for r in rois])
    assert nonempty >= 0.95
    counts = []
    for r in rois:
        lab4, n4 = ndimage.label(r.reference, FOUR)
        _, n8 = ndimage.label(r.reference, np.ones((3, 3)))
        assert n4 == n8 == r.meta["n_calcifications"]
        # >= 2 background px between calcifications: the 5x5 neighbourhood of an object
        # pixel holds no other object.
        big = np.where(lab4 > 0, lab4, n4 + 1)
        on = lab4 > 0
        assert (ndimage.maximum_filter(lab4, 5)[on] == lab4[on]).all()
        assert (ndimage.minimum_filter(big, 5)[on] == lab4[on]).all()
        counts.append(n4)
    counts = np.array(counts)
    assert (counts <= 1).sum() >= 2  # some ROIs have almost nothing to segment
    assert np.median(counts) >= 5
    stats = np.vstack([calc_stats(r) for r in rois[:60]])
    d = stats[:, 0]
    assert d.min() >= 0.1 - 1e-9 and d.max() <= 0.6 + 1e-9
    assert np.ptp(d) > 0.2  # a range of sizes, not one size


def test_calcifications_brighter_than_background(cohort):
    rois, _, _ = cohort
    contrast = np.concatenate([calc_stats(r)[:, 1] for r in rois[:60]])
    assert np.mean(contrast > 0) >= 0.97
    assert 30 < np.median(contrast) < 300


def test_background_noise_level(cohort):
    rois, _, _ = cohort
    # high-pass residual of a 4-neighbour Laplacian: dominated by the white noise
    sds = []
    for r in rois[:20]:
        im = r.image.astype(float)
        lap = im[1:-1, 1:-1] - 0.25 * (im[:-2, 1:-1] + im[2:, 1:-1] + im[1:-1, :-2] + im[1:-1, 2:])
        ok = ~ndimage.binary_dilation(r.reference, iterations=6)[1:-1, 1:-1]
        sds.append(lap[ok].std() / np.sqrt(1.25))
    assert 7 < np.median(sds) < 22


@pytest.mark.parametrize("spacing", [0.05, 0.1])
def test_spacing_is_physical(spacing):
    rois, _, _ = make_calcification_cohort(
        12, roi_size_mm=10, margin_mm=1, spacing=spacing, random_state=2
    )
    n = int(round(12 / spacing))
    stats = []
    for r in rois:
        assert r.image.shape == (n, n)
        assert r.spacing == (spacing, spacing)
        assert r.region.sum() * spacing**2 == pytest.approx(np.pi * 25, rel=0.03)
        stats.append(calc_stats(r))
    d = np.vstack(stats)[:, 0]
    assert d.min() >= 0.1 - 1e-9 and d.max() <= 0.6 + 1e-9
    # the same physical sizes at both samplings (median around 0.2-0.3 mm)
    assert 0.15 < np.median(d) < 0.4


def test_determinism():
    a = make_calcification_cohort(6, roi_size_mm=5, random_state=7)
    b = make_calcification_cohort(6, roi_size_mm=5, random_state=7)
    c = make_calcification_cohort(6, roi_size_mm=5, random_state=8)
    for ra, rb in zip(a[0], b[0]):
        np.testing.assert_array_equal(ra.image, rb.image)
        np.testing.assert_array_equal(ra.reference, rb.reference)
        assert ra.meta == rb.meta
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_array_equal(a[2], b[2])
    assert not np.array_equal(a[0][0].image, c[0][0].image)
    # Generators and RandomStates are accepted and reproducible too
    g1 = make_calcification_cohort(2, roi_size_mm=4, random_state=np.random.default_rng(3))
    g2 = make_calcification_cohort(2, roi_size_mm=4, random_state=np.random.default_rng(3))
    np.testing.assert_array_equal(g1[0][1].image, g2[0][1].image)
    r1 = make_calcification_cohort(2, roi_size_mm=4, random_state=np.random.RandomState(3))
    r2 = make_calcification_cohort(2, roi_size_mm=4, random_state=np.random.RandomState(3))
    np.testing.assert_array_equal(r1[0][0].image, r2[0][0].image)


def test_difficulty_sets_the_swap_rate():
    for difficulty in (0.0, 1.0):
        rois, y, _ = make_calcification_cohort(
            150, roi_size_mm=3, margin_mm=0.5, difficulty=difficulty, random_state=4
        )
        swapped = np.mean([(r.meta["appearance"] == "actionable") != bool(t)
                           for r, t in zip(rois, y)])  # fmt: skip
        assert abs(swapped - difficulty / 2) < 0.1


def gt_features(roi):
    lab, n = ndimage.label(roi.reference, FOUR)
    if n == 0:
        return [0, 0, 0, 0, 0]
    idx = range(1, n + 1)
    areas = ndimage.sum_labels(np.ones_like(lab), lab, idx)
    cent = np.array(ndimage.center_of_mass(roi.reference, lab, idx)).reshape(-1, 2)
    corr = abs(np.corrcoef(cent.T)[0, 1]) if n > 2 else 0.0
    dist = np.hypot(*(cent[:, None] - cent[None]).transpose(2, 0, 1))
    mpd = dist[np.triu_indices(n, 1)].mean() if n > 1 else 0.0
    return [n, np.std(areas), corr, mpd, np.mean(areas)]


@pytest.mark.parametrize("difficulty, low, high", [(0.0, 0.9, 1.0), (0.3, 0.62, 0.93)])
def test_classes_overlap_at_default_difficulty(cohort, difficulty, low, high):
    if difficulty == 0.3:  # the default
        rois, y, groups = cohort
    else:
        rois, y, groups = make_calcification_cohort(150, difficulty=difficulty, random_state=0)
    X = np.array([gt_features(r) for r in rois])
    clf = make_pipeline(StandardScaler(), LogisticRegression())
    cv = StratifiedGroupKFold(n_splits=5, shuffle=True, random_state=0)
    p = cross_val_predict(clf, X, y, groups=groups, cv=cv, method="predict_proba")[:, 1]
    assert low <= roc_auc_score(y, p) <= high


def test_power_spectrum_slope_of_background():
    # Measured on the noise-included background (what a detector records without
    # calcifications), over a 40 mm patch so that the per-patch estimate is stable.
    rng = np.random.default_rng(0)
    for spacing in (0.07, 0.1):
        for _ in range(3):
            n = int(round(40 / spacing))
            bg, info = _roi_background(n, spacing, rng)
            _add_noise(bg, rng)
            beta = slope_reference(bg, spacing)
            assert 2.5 <= beta <= 3.5
            assert abs(beta - info["beta"]) < 0.35


def test_power_law_texture_spectrum_and_scaling():
    rng = np.random.default_rng(1)
    for beta in (2.5, 3.0, 3.5):
        t = power_law_texture((256, 256), 0.1, beta, 10.0, rng, f_min=0.0)
        assert abs(slope_reference(t, 0.1, 0.1, 2.0) - beta) < 0.25
    # the PSD at 1 cycle/mm is the requested one, whatever the spacing
    for spacing in (0.05, 0.1):
        t = power_law_texture((512, 512), spacing, 3.0, 10.0, np.random.default_rng(2))
        P = np.abs(np.fft.fft2(t)) ** 2 * spacing**2 / t.size
        f = np.hypot(*np.meshgrid(np.fft.fftfreq(512, spacing), np.fft.fftfreq(512, spacing)))
        ring = (f > 0.9) & (f < 1.1)
        assert np.mean(P[ring] * f[ring] ** 3) == pytest.approx(10.0, rel=0.15)


@settings(max_examples=60, deadline=None)
@given(
    cy=st.floats(0, 1),
    cx=st.floats(0, 1),
    n=st.integers(1, 120),
    aspect=st.floats(1, 3),
    irregularity=st.floats(0, 0.4),
    angle=st.floats(0, np.pi),
)
def test_footprint_is_one_4_connected_object_of_n_pixels(cy, cx, n, aspect, irregularity, angle):
    harmonics = np.array([[0.5, 1.0, 0.3], [0.0, 1.0, 2.0]])
    rr, cc, rad = footprint(np.array([20 + cy, 20 + cx]), n, aspect, irregularity, angle,
                            harmonics)  # fmt: skip
    assert len(rr) == n == len(set(zip(rr, cc)))
    img = np.zeros((60, 60), bool)
    img[rr, cc] = True
    assert ndimage.label(img, FOUR)[1] == 1
    # the first pixel is the one nearest to the sub-pixel centre
    assert (rr[0], cc[0]) == (int(np.floor(20 + cy + 0.5)), int(np.floor(20 + cx + 0.5)))
    # elongated along the requested angle when large enough
    if n >= 40 and aspect > 2 and irregularity < 0.1:
        ev, evec = np.linalg.eigh(np.cov(np.vstack([cc, rr]).astype(float)))
        major = evec[:, 1]
        assert abs(abs(major @ [np.cos(angle), np.sin(angle)])) > 0.8


def test_invalid_parameters():
    with pytest.raises(ValueError):
        make_calcification_cohort(4, difficulty=1.5)
    with pytest.raises(ValueError):
        make_calcification_cohort(0)
    with pytest.raises(ValueError):
        make_full_field_mammogram((256, 208), view="ML")
    with pytest.raises(ValueError):
        make_full_field_mammogram((8, 8))
    with pytest.raises((TypeError, ValueError)):
        make_calcification_cohort(2, random_state="seed")


# ----------------------------------------------------------------------------- full field
def test_full_field_mlo_anatomy(mlo):
    roi = mlo
    img = roi.image.astype(float)
    breast = roi.meta["breast_mask"]
    pec = roi.meta["pectoral_mask"]
    assert roi.image.dtype == np.uint16 and roi.image.max() <= 4095
    assert roi.region is None and roi.meta["bits_stored"] == 12
    assert roi.meta["view"] == "MLO" and roi.meta["laterality"] == "L"
    assert breast.dtype == bool and 0.25 < breast.mean() < 0.85
    # chest wall on the left for a left breast: the breast touches column 0, not the right
    assert breast[:, 0].mean() > 0.8 and not breast[:, -1].any()
    assert img[~breast].mean() < 200 and img[breast].mean() > 1000
    # pectoral muscle: a bright triangle in the chest-wall top corner
    assert pec.any() and pec[0, 0] and not pec[-1, 0]
    rows, cols = np.nonzero(pec)
    assert rows.mean() < 0.35 * pec.shape[0] and cols.mean() < 0.3 * pec.shape[1]
    assert img[pec].mean() > img[breast & ~pec].mean() + 200
    # density rises towards the chest wall
    band = breast[:, :100] & ~pec[:, :100]
    far = breast.copy()
    far[:, : int(np.nonzero(breast.any(0))[0].max() * 0.6)] = False
    assert img[:, :100][band].mean() > img[far].mean()


def test_full_field_reference_and_clusters(mlo):
    roi = mlo
    ref, breast, pec = roi.reference, roi.meta["breast_mask"], roi.meta["pectoral_mask"]
    assert ref.any() and not (ref & ~breast).any() and not (ref & pec).any()
    lab, n = ndimage.label(ref, FOUR)
    assert n == roi.meta["n_calcifications"] == sum(c["n_calcifications"]
                                                    for c in roi.meta["clusters"])  # fmt: skip
    assert {c["appearance"] for c in roi.meta["clusters"]} == {"benign", "actionable"}
    covered = np.zeros_like(ref)
    for c in roi.meta["clusters"]:
        r0, r1, c0, c1 = c["bbox"]
        covered[r0:r1, c0:c1] = True
        assert r0 <= c["centre"][0] + 200 and c["centre"][0] - 200 <= r1
    assert not (ref & ~covered).any()
    contrast = calc_stats(roi)[:, 1]
    assert np.mean(contrast > 0) >= 0.97


def test_full_field_detectable_by_dog():
    """Calibration: HDoG's DoG stage (threshold 0.006 on image/4095) finds the calcifications."""
    from scipy.spatial import cKDTree
    from skimage.feature import blob_dog

    roi = make_full_field_mammogram((1024, 832), view="CC", n_clusters=6, random_state=5)
    blobs = blob_dog(roi.image / 4095.0, min_sigma=1.18, max_sigma=3.1, sigma_ratio=1.6,
                     threshold=0.006, overlap=1.0, exclude_border=False)  # fmt: skip
    lab, n = ndimage.label(roi.reference, FOUR)
    cent = np.array(ndimage.center_of_mass(roi.reference, lab, range(1, n + 1)))
    dist, _ = cKDTree(blobs[:, :2]).query(cent)
    assert np.mean(dist <= 5) >= 0.93
    breast = roi.meta["breast_mask"]
    in_breast = breast[blobs[:, 0].astype(int), blobs[:, 1].astype(int)].sum()
    per_cm2 = in_breast / (breast.sum() * 0.07**2 / 100)
    assert per_cm2 < 20


def test_full_field_cc_right_and_spacing():
    roi = make_full_field_mammogram((512, 416), spacing=0.14, view="CC", laterality="R",
                                    n_clusters=2, random_state=0)  # fmt: skip
    breast = roi.meta["breast_mask"]
    assert roi.meta["pectoral_mask"] is None and roi.spacing == (0.14, 0.14)
    assert breast[:, -1].mean() > 0.5 and not breast[:, 0].any()
    assert not (roi.reference & ~breast).any()
    d = calc_stats(roi)[:, 0]
    assert len(d) >= 5 and d.min() >= 0.1 - 1e-9 and d.max() <= 0.6 + 1e-9


def test_full_field_determinism():
    a = make_full_field_mammogram((256, 208), spacing=0.2, n_clusters=1, random_state=1)
    b = make_full_field_mammogram((256, 208), spacing=0.2, n_clusters=1, random_state=1)
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.reference, b.reference)


@pytest.mark.slow
def test_full_field_default_shape():
    roi = make_full_field_mammogram(random_state=0)
    assert roi.image.shape == (4096, 3328) and roi.image.dtype == np.uint16
    assert len(roi.meta["clusters"]) == 8
    assert roi.reference.any()


def test_rois_of_one_image_pool_back_into_the_image(cohort):
    from skcalc.samples import pool_by_image

    rois, y, groups = cohort
    images, y_img, g_img = pool_by_image(rois, y, groups)
    assert len(images) == 248 and len(set(g_img)) == 168
    multi = [im for im in images if len(im.meta["pooled_roi_ids"]) > 1]
    assert multi, "some images hold several ROIs"
    im = multi[0]
    parts = [r for r in rois if r.meta["image_id"] == im.meta["image_id"]]
    for r in parts:
        r0, r1, c0, c1 = r.box
        np.testing.assert_array_equal(im.image[r0:r1, c0:c1], r.image)
        np.testing.assert_array_equal(im.region[r0:r1, c0:c1], r.region_mask)
    assert im.reference.sum() == sum(r.reference.sum() for r in parts)


def test_full_field_too_small_for_clusters_has_none():
    # A 512 x 512 field has no breast point >= 15 mm from the skin: no cluster fits, and
    # the generator says so with an empty list rather than failing.
    roi = make_full_field_mammogram((512, 512), view="CC", n_clusters=2, random_state=3)
    assert roi.meta["clusters"] == [] and roi.meta["n_calcifications"] == 0
    assert not roi.reference.any()
