"""Tests of HDoGRegSegmenter, the scikit-learn wrapper of the HDoG candidate stage."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.utils import estimator_checks as ec

from skcalc import ROI
from skcalc.exceptions import ROIValidationError
from skcalc.segmentation import HDoGRegSegmenter, hdog_candidates


def _blobs(seed, shape=(64, 72), n=6):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    img = 0.3 + rng.normal(0, 0.003, shape)
    for _ in range(n):
        cy, cx = rng.uniform(4, shape[0] - 4), rng.uniform(4, shape[1] - 4)
        img += rng.uniform(0.04, 0.1) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 4.0)
    return img


@pytest.fixture
def rois():
    out = []
    for i in range(3):
        img12 = np.round(_blobs(i) * 4095).astype(np.uint16)
        out.append(ROI(img12, spacing=0.07 + 0.01 * i, meta={"roi_id": f"r{i}"}))
    return out


AUTHORS = {"threshold": "authors", "regressor": None}


def test_transform_equals_function_and_keeps_inputs(rois):
    before = [r.image.copy() for r in rois]
    seg = HDoGRegSegmenter(**AUTHORS)
    assert seg.fit(rois) is seg
    assert seg.n_rois_seen_ == 3
    out = seg.transform(rois)
    assert isinstance(out, list) and len(out) == 3
    for r, o, b in zip(rois, out, before):
        assert o is not r
        assert r.calcifications is None
        np.testing.assert_array_equal(r.image, b)
        assert {k: v for k, v in o.meta.items() if k != "segmentation"} == r.meta
        assert o.meta["segmentation"]["threshold"] == 0.006
        assert o.spacing == r.spacing
        np.testing.assert_array_equal(o.calcifications, hdog_candidates(r.image, r.spacing))
        assert o.calcifications.max() >= 3


def test_parameters_are_passed(rois):
    seg = HDoGRegSegmenter(threshold=0.02, hessian_thr=None, min_sigma=0.1, max_sigma=0.3,
                           regressor=None)
    out = seg.fit_transform(rois)
    kw = dict(threshold=0.02, hessian_thr=None, min_sigma=0.1, max_sigma=0.3)
    for r, o in zip(rois, out):
        np.testing.assert_array_equal(o.calcifications, hdog_candidates(r.image, r.spacing, **kw))


def test_bits_stored_from_meta(rois):
    roi = rois[0]
    as16 = roi.replace(meta={"roi_id": "x", "bits_stored": 16})
    [o12] = HDoGRegSegmenter(**AUTHORS).transform([roi])
    [o16] = HDoGRegSegmenter(**AUTHORS).transform([as16])
    np.testing.assert_array_equal(o16.calcifications, hdog_candidates(roi.image, bit_depth=16))
    assert (o16.calcifications > 0).sum() < (o12.calcifications > 0).sum()
    # An explicit parameter wins over the metadata.
    [o] = HDoGRegSegmenter(bit_depth=12, **AUTHORS).transform([as16])
    np.testing.assert_array_equal(o.calcifications, o12.calcifications)
    bad = roi.replace(meta={"roi_id": "bad-bits", "bits_stored": "many"})
    with pytest.raises(ValueError, match="bad-bits"):
        HDoGRegSegmenter(**AUTHORS).transform([bad])


def test_mixed_bit_depths_keep_order(rois):
    mixed = [rois[0].replace(meta={"roi_id": "a", "bits_stored": 16}), rois[1], rois[2]]
    out = HDoGRegSegmenter(**AUTHORS).transform(mixed)
    assert [o.roi_id for o in out] == ["a", "r1", "r2"]
    np.testing.assert_array_equal(
        out[0].calcifications, hdog_candidates(rois[0].image, rois[0].spacing, bit_depth=16)
    )


def test_parallel_and_cache_give_the_same_result(rois, tmp_path):
    ref = HDoGRegSegmenter().transform(rois)
    par = HDoGRegSegmenter(n_jobs=2).transform(rois)
    cached = HDoGRegSegmenter(memory=str(tmp_path)).transform(rois)
    again = HDoGRegSegmenter(memory=str(tmp_path)).transform(rois)
    assert again[0].meta["segmentation"] == ref[0].meta["segmentation"]
    for a, b, c, d in zip(ref, par, cached, again):
        np.testing.assert_array_equal(a.calcifications, b.calcifications)
        np.testing.assert_array_equal(a.calcifications, c.calcifications)
        np.testing.assert_array_equal(a.calcifications, d.calcifications)
    assert any(tmp_path.rglob("*.pkl"))
    # Another threshold is another cache entry, not a stale hit.
    other = HDoGRegSegmenter(threshold=0.03, regressor=None,
                             memory=str(tmp_path)).transform(rois)
    for r, o in zip(rois, other):
        np.testing.assert_array_equal(
            o.calcifications, hdog_candidates(r.image, r.spacing, threshold=0.03)
        )


def test_bad_regressor_values_are_named(rois):
    with pytest.raises(ValueError, match="no weights file 'cnn'"):
        HDoGRegSegmenter(regressor="cnn").fit(rois)
    with pytest.raises(TypeError, match="regressor must be"):
        HDoGRegSegmenter(regressor=object()).transform(rois)
    with pytest.raises(ValueError, match="not fitted"):
        HDoGRegSegmenter(regressor=HDoGRegSegmenter()).fit(rois)


def test_bad_parameters(rois):
    with pytest.raises(ValueError, match="threshold"):
        HDoGRegSegmenter(threshold=-1).fit(rois)
    with pytest.raises(ValueError, match="threshold"):
        HDoGRegSegmenter(threshold="loose").fit(rois)
    with pytest.raises(ValueError, match="operating_point"):
        HDoGRegSegmenter(operating_point="lax").fit(rois)
    with pytest.raises(ValueError, match="operating_point"):
        HDoGRegSegmenter(operating_point=0.0).fit(rois)
    with pytest.raises(ValueError, match="fp_calibration"):
        HDoGRegSegmenter(fp_calibration="synthetic").fit(rois)
    with pytest.raises(ValueError, match="no model file"):
        HDoGRegSegmenter(candidate_filter="nope.json").fit(rois)
    with pytest.raises(ValueError, match="max_sigma"):
        HDoGRegSegmenter(min_sigma=0.3, max_sigma=0.1).fit(rois)
    with pytest.raises(NotImplementedError, match="overlap"):
        HDoGRegSegmenter(overlap=0.5).fit(rois)
    with pytest.raises(ValueError, match="bit_depth"):
        HDoGRegSegmenter(bit_depth=0).transform(rois)


def test_bad_input_names_the_roi(rois):
    nan_img = rois[0].image.astype(float)
    nan_img[3, 3] = np.nan
    bad = ROI(nan_img, meta={"roi_id": "has-nan"})
    with pytest.raises(ROIValidationError, match="has-nan"):
        HDoGRegSegmenter().transform([rois[1], bad])
    tiny = ROI(np.zeros((1, 5)), meta={"roi_id": "tiny"})
    with pytest.raises(ValueError, match="tiny"):
        HDoGRegSegmenter().transform([tiny])
    with pytest.raises(TypeError):
        HDoGRegSegmenter().fit(np.zeros((4, 4)))
    with pytest.raises(TypeError):
        HDoGRegSegmenter().transform(rois[0])
    with pytest.raises(ValueError, match="empty"):
        HDoGRegSegmenter().fit([])


def test_roi_without_candidates(rois):
    flat = ROI(np.full((30, 30), 1000, np.uint16), meta={"roi_id": "flat"})
    [o] = HDoGRegSegmenter().transform([flat])
    assert o.calcifications.shape == (30, 30) and not o.calcifications.any()


def test_lazy_roi_stays_lazy(tmp_path, rois):
    import tifffile

    path = tmp_path / "img.tif"
    tifffile.imwrite(path, rois[0].image)
    lazy = ROI(path=path, spacing=rois[0].spacing, meta={"roi_id": "lazy"})
    [o] = HDoGRegSegmenter(**AUTHORS).transform([lazy])
    assert o.is_lazy
    np.testing.assert_array_equal(
        o.calcifications, hdog_candidates(rois[0].image, rois[0].spacing)
    )


def test_tags_and_data_free_estimator_checks():
    seg = HDoGRegSegmenter()
    tags = seg.__sklearn_tags__()
    assert tags.input_tags.two_d_array is False
    assert tags.requires_fit is False
    name = type(seg).__name__
    ec.check_no_attributes_set_in_init(name, seg)
    ec.check_parameters_default_constructible(name, seg)
    ec.check_get_params_invariance(name, seg)
    ec.check_set_params(name, seg)
    ec.check_estimator_repr(name, seg)
    ec.check_estimator_cloneable(name, seg)
    assert clone(seg).get_params() == seg.get_params()


def test_coarse_pixels_are_warned_about():
    import warnings

    from skcalc.exceptions import SkcalcWarning

    img = np.random.default_rng(0).normal(2000, 30, (64, 64)).astype(np.uint16)
    seg = HDoGRegSegmenter()
    with pytest.warns(SkcalcWarning, match=r"'coarse' \(1 of 2 ROIs\): pixels of 0.5 mm"):
        seg.fit_transform([ROI(img, spacing=0.2, meta={"roi_id": "film"}),
                           ROI(img, spacing=0.5, meta={"roi_id": "coarse"})])
    with warnings.catch_warnings():
        warnings.simplefilter("error", SkcalcWarning)
        seg.fit_transform([ROI(img, spacing=0.2, meta={"roi_id": "film"})])
