"""Tests of the per-calcification local features (pyradiomics + regionprops)."""

from __future__ import annotations

import logging
import pickle
import warnings

import numpy as np
import pytest
import SimpleITK as sitk
from sklearn.utils._param_validation import InvalidParameterError

from skcalc import ROI, ROIValidationError, SkcalcWarning
from skcalc.features import (
    LocalFeatureExtractor,
    RadiomicsFallbackWarning,
    _radiomics,
    _radiomics_batched,
)
from skcalc.features._local import LocalFeatureTables, local_feature_names, local_features
from skcalc.features._radiomics import radiomics_feature_names, radiomics_settings
from skcalc.features._regionprops import REGIONPROPS_FEATURES
from skcalc.masks import CalcificationMasks

SPACING = (0.07, 0.07)
BAND = 1.75
TEXTURE = ("glcm", "glrlm", "glszm", "gldm", "ngtdm")


def make_masks(fg, spacing=SPACING, band_width=BAND):
    n = int(fg.max())
    return CalcificationMasks(
        foreground=fg.astype(np.int32),
        spacing=spacing,
        band_width=band_width,
        scales=np.arange(3) * 0.07,
        merge_index=np.zeros((n, n), int),
    )


def make_image(fg, seed=0, shape=None):
    """Smooth 12-bit background, Gaussian-blob calcifications, Poisson-like noise."""
    shape = fg.shape if shape is None else shape
    rng = np.random.default_rng(seed)
    r, c = np.mgrid[: shape[0], : shape[1]]
    img = 1200 + 3 * r + 80 * np.sin(c / 9.0) + rng.normal(0, 25, shape)
    for lab in range(1, int(fg.max()) + 1):
        rr, cc = np.nonzero(fg == lab)
        if rr.size:
            img += 350 * np.exp(-((r - rr.mean()) ** 2 + (c - cc.mean()) ** 2) / 8.0)
    return np.clip(img, 0, 4095).astype(np.uint16)


def three_objects(shape=(60, 64)):
    fg = np.zeros(shape, np.int32)
    r, c = np.mgrid[: shape[0], : shape[1]]
    fg[(r - 18) ** 2 + (c - 20) ** 2 <= 9] = 1  # disk, 29 px
    fg[40:43, 44:48] = 2  # 3 x 4 rectangle
    fg[((r - 42) / 2.0) ** 2 + ((c - 16) / 3.5) ** 2 <= 1] = 3  # ellipse
    return fg


@pytest.fixture(scope="module")
def roi3():
    fg = three_objects()
    return ROI(make_image(fg), spacing=SPACING, masks=make_masks(fg), meta={"roi_id": "three"})


@pytest.fixture(scope="module")
def tables3(roi3):
    return LocalFeatureExtractor().fit_transform([roi3])[0]


# ----------------------------------------------------------------- slow references
def brute_force_band(fg, label, spacing, width):
    """Pixels within ``width`` mm (Euclidean, centre to centre) of object ``label``, no calcs."""
    obj = np.argwhere(fg == label)
    pix = np.argwhere(np.ones(fg.shape, bool))
    diff_mm = (pix[:, None, :] - obj[None, :, :]) * np.asarray(spacing)
    d = np.sqrt((diff_mm**2).sum(-1)).min(1)
    return (d.reshape(fg.shape) <= width) & (fg == 0)


def pyradiomics_execute(image, mask, spacing, classes, volume=False, **bins):
    """pyradiomics' own extractor on the whole, uncropped image (the slow reference)."""
    from radiomics import featureextractor

    settings = radiomics_settings(**bins)
    if volume:
        settings.update(force2D=True, force2Ddimension=0)
        image, mask = image[None], mask[None]
    ex = featureextractor.RadiomicsFeatureExtractor(additionalInfo=False, **settings)
    ex.disableAllFeatures()
    for cls in classes:
        ex.enableFeatureClassByName(cls)
    img = sitk.GetImageFromArray(image)  # raw uint16, as a user would pass it
    img.SetSpacing((spacing[1], spacing[0]) + ((1.0,) if volume else ()))
    msk = sitk.GetImageFromArray(mask.astype(np.uint8))
    msk.CopyInformation(img)
    out = ex.execute(img, msk)
    return np.array([float(out["original_" + n]) for n in radiomics_feature_names(classes)])


# ----------------------------------------------------------------- names and counts
def test_feature_counts_and_names(roi3, tables3):
    names = local_feature_names()
    assert {k: len(v) for k, v in names.items()} == {
        "fg_radiomics": 18 + 24 + 16 + 16 + 14 + 5 + 9,
        "fg_regionprops": 13,
        "bg_radiomics": 18 + 24 + 16 + 16 + 14 + 5,
    }
    for v in names.values():
        assert len(set(v)) == len(v)
    assert names["fg_radiomics"][:2] == ["shape2D_Elongation", "shape2D_MajorAxisLength"]
    assert names["fg_radiomics"][-1] == "ngtdm_Strength"
    assert names["bg_radiomics"] == names["fg_radiomics"][9:]
    assert "glcm_Idmn" in names["bg_radiomics"] and "firstorder_Kurtosis" in names["bg_radiomics"]
    assert names["fg_regionprops"] == list(REGIONPROPS_FEATURES)

    est = LocalFeatureExtractor().fit([roi3])
    assert est.feature_names_ == names
    assert tables3.feature_names == names
    assert tables3.n_objects == 3 and tables3.roi_id == "three"
    assert list(tables3) == ["fg_radiomics", "fg_regionprops", "bg_radiomics"]
    for k, v in tables3.items():
        assert v.shape == (3, len(names[k])) and v.dtype == np.float64
    np.testing.assert_array_equal(tables3.labels, [1, 2, 3])


def test_feature_set_subset_and_param_validation(roi3):
    t = LocalFeatureExtractor(feature_sets=("bg_radiomics",)).fit_transform([roi3])[0]
    assert list(t) == ["bg_radiomics"]
    t = LocalFeatureExtractor(feature_sets="fg_regionprops").transform([roi3])[0]
    assert list(t) == ["fg_regionprops"]
    with pytest.raises(ValueError, match="feature_sets"):
        LocalFeatureExtractor(feature_sets=("fg_radiomics", "bogus")).fit([roi3])
    with pytest.raises(InvalidParameterError):
        LocalFeatureExtractor(bin_width=0).fit([roi3])
    with pytest.raises(InvalidParameterError):
        LocalFeatureExtractor(min_texture_size=1).transform([roi3])


def test_foreground_sets_build_no_band_and_equal_the_full_run(roi3, tables3, count_calls):
    # A band costs a distance transform per object, and only bg_radiomics reads it.
    from skcalc import masks as masks_module

    calls = count_calls(masks_module, "object_band")
    t = LocalFeatureExtractor(feature_sets=("fg_radiomics", "fg_regionprops")).transform([roi3])
    assert calls == []
    for name in ("fg_radiomics", "fg_regionprops"):
        np.testing.assert_array_equal(t[0][name], tables3[name])  # bit for bit
    frame = t[0].to_frame()
    assert frame.equals(tables3.to_frame()[frame.columns])  # positions and sizes too
    # Same windows with or without the bands (values computed in window coordinates, such
    # as centroids, would otherwise change in the last digit).
    lean = list(roi3.masks.object_windows(bands=False))
    full = list(roi3.masks.object_windows())
    assert [b for *_, b in lean] == [None] * 3 and len(calls) == 3
    assert [(lab, win) for lab, win, *_ in lean] == [(lab, win) for lab, win, *_ in full]
    for (_, _, a, _), (_, _, b, _) in zip(lean, full):
        np.testing.assert_array_equal(a, b)


def test_tags():
    tags = LocalFeatureExtractor().__sklearn_tags__()
    assert tags.requires_fit is False and tags.input_tags.two_d_array is False


# ----------------------------------------------------------------- regionprops
def test_regionprops_known_answers_rectangle():
    fg = np.zeros((12, 12), np.int32)
    fg[4:7, 3:7] = 1  # 3 rows x 4 cols
    img = np.full((12, 12), 1000, np.uint16)
    img[4:7, 3:7] = np.arange(12).reshape(3, 4) + 2000
    for sr, sc in [(0.07, 0.07), (0.07, 0.05)]:
        t = local_features(img, make_masks(fg, (sr, sc)), feature_sets="fg_regionprops")
        f = dict(zip(REGIONPROPS_FEATURES, t["fg_regionprops"][0]))
        area = 12 * sr * sc
        assert f["area_mm2"] == pytest.approx(area)
        assert f["convex_area_mm2"] == pytest.approx(area)
        assert f["equivalent_diameter_mm"] == pytest.approx(np.sqrt(4 * area / np.pi))
        assert f["extent"] == pytest.approx(1.0) and f["solidity"] == pytest.approx(1.0)
        # second moments of pixel centres: rows 0..2 -> var 2/3, cols 0..3 -> var 5/4
        var_r, var_c = 2 / 3 * sr**2, 5 / 4 * sc**2
        assert f["major_axis_length_mm"] == pytest.approx(4 * np.sqrt(max(var_r, var_c)))
        assert f["minor_axis_length_mm"] == pytest.approx(4 * np.sqrt(min(var_r, var_c)))
        # the major axis lies along the columns at 0.07 mm, along the rows at (0.07, 0.05)
        expected_orientation = np.pi / 2 if var_c > var_r else 0.0
        assert abs(f["orientation_rad"]) == pytest.approx(expected_orientation)
        assert f["intensity_mean"] == pytest.approx(2005.5)
        assert (f["intensity_min"], f["intensity_max"]) == (2000, 2011)
    t = local_features(img, make_masks(fg, (0.1, 0.1)), feature_sets="fg_regionprops")
    # skimage's 4-connected boundary estimate of a 3 x 4 rectangle is 10 px
    assert t["fg_regionprops"][0, 1] == pytest.approx(1.0)


# ----------------------------------------------------------------- radiomics vs pyradiomics
def test_radiomics_equal_pyradiomics_execute_on_whole_image(roi3, tables3):
    fg, img = roi3.masks.foreground, roi3.image
    fg_classes = _radiomics.ALL_RADIOMICS_CLASSES
    bg_classes = fg_classes[1:]
    for i, lab in enumerate(tables3.labels):
        ref_fg = pyradiomics_execute(img, fg == lab, SPACING, fg_classes, bin_width=5)
        band = brute_force_band(fg, lab, SPACING, BAND)
        ref_bg = pyradiomics_execute(img, band, SPACING, bg_classes, bin_width=5)
        assert np.isfinite(ref_fg).sum() > 90 and np.isfinite(ref_bg).all()
        np.testing.assert_allclose(tables3["fg_radiomics"][i], ref_fg, rtol=1e-6, atol=1e-12)
        np.testing.assert_allclose(tables3["bg_radiomics"][i], ref_bg, rtol=1e-6, atol=1e-12)


def test_radiomics_bin_count_and_force2d_volume_reference(roi3):
    fg, img = roi3.masks.foreground, roi3.image
    classes = _radiomics.ALL_RADIOMICS_CLASSES
    t16 = LocalFeatureExtractor(feature_sets="fg_radiomics", bin_count=16).transform([roi3])[0]
    ref = pyradiomics_execute(img, fg == 1, SPACING, classes, bin_count=16)
    np.testing.assert_allclose(t16["fg_radiomics"][0], ref, rtol=1e-6, atol=1e-12)
    # A 2-D image is processed in-plane: same as a (1, H, W) volume with force2D on axis 0.
    t5 = LocalFeatureExtractor(feature_sets="fg_radiomics").transform([roi3])[0]
    ref = pyradiomics_execute(img, fg == 1, SPACING, classes, volume=True, bin_width=5)
    np.testing.assert_allclose(t5["fg_radiomics"][0], ref, rtol=1e-6, atol=1e-12)
    # the bin setting reaches pyradiomics
    glcm = _class_slice(t5.feature_names["fg_radiomics"], "glcm")
    assert not np.allclose(t5["fg_radiomics"][0, glcm], t16["fg_radiomics"][0, glcm])


def test_spacing_is_passed_in_row_col_order():
    fg = np.zeros((20, 24), np.int32)
    fg[8:10, 6:12] = 1  # 2 rows x 6 cols
    img = make_image(fg)
    names = local_feature_names()["fg_radiomics"]
    surf = names.index("shape2D_PixelSurface")
    major = names.index("shape2D_MajorAxisLength")
    out = {}
    for sp in [(0.07, 0.07), (0.14, 0.14), (0.1, 0.05), (0.05, 0.1)]:
        t = local_features(
            img, make_masks(fg, sp, 0.5), feature_sets=("fg_radiomics", "fg_regionprops")
        )
        out[sp] = t
        assert t["fg_radiomics"][0, surf] == pytest.approx(12 * sp[0] * sp[1])
        # pyradiomics' and skimage's second-moment major axis agree only if (x, y) is right
        assert t["fg_radiomics"][0, major] == pytest.approx(t["fg_regionprops"][0, 4], rel=1e-6)
    assert out[(0.14, 0.14)]["fg_radiomics"][0, surf] == pytest.approx(
        4 * out[(0.07, 0.07)]["fg_radiomics"][0, surf]
    )
    assert out[(0.1, 0.05)]["fg_radiomics"][0, major] != pytest.approx(
        out[(0.05, 0.1)]["fg_radiomics"][0, major]
    )


# ----------------------------------------------------------------- small objects
def _class_slice(names, cls):
    idx = [i for i, n in enumerate(names) if n.startswith(cls + "_")]
    return slice(idx[0], idx[-1] + 1)


def test_tiny_objects_get_nan_texture_without_exception(capfd):
    fg = np.zeros((40, 50), np.int32)
    fg[10, 10] = 1  # single pixel
    fg[25, 8:20] = 2  # 1-px thick line, 12 px
    fg[10:12, 30:32] = 3  # 2 x 2 block, 4 px: texture (default min_texture_size=4)
    fg[28:31, 34:38] = 4  # 3 x 4, 12 px: full texture
    fg[[33, 34, 35], [10, 11, 12]] = 5  # 3-px diagonal
    fg[[36, 37], [30, 31]] = 6  # 2-px diagonal: pyradiomics returns some NaN itself
    roi = ROI(make_image(fg), spacing=SPACING, masks=make_masks(fg, band_width=0.5))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t = LocalFeatureExtractor().transform([roi])[0]
    names = t.feature_names["fg_radiomics"]
    fr = t["fg_radiomics"]
    assert np.isnan(fr[0]).all()  # pyradiomics refuses single-pixel ROIs
    for row in (1, 4, 5):
        for cls in ("shape2D", "firstorder"):
            assert np.isfinite(fr[row, _class_slice(names, cls)]).sum() >= 8
        for cls in TEXTURE:
            assert np.isnan(fr[row, _class_slice(names, cls)]).all()
    assert np.isfinite(fr[3]).all()
    assert np.isfinite(fr[2, _class_slice(names, "glcm")]).all()
    assert np.isfinite(t["fg_regionprops"]).all()
    assert np.isfinite(t["bg_radiomics"]).all()  # the bands are large
    # the threshold is a parameter
    t2 = LocalFeatureExtractor(min_texture_size=13, feature_sets="fg_radiomics").transform([roi])
    for row in (2, 3):
        assert np.isnan(t2[0]["fg_radiomics"][row, _class_slice(names, "glcm")]).all()
    assert "radiomics" not in capfd.readouterr().err


def test_pyradiomics_error_becomes_nan_with_debug_log_and_one_warning(monkeypatch, caplog, roi3):
    from skcalc.features import _radiomics_reference

    real = _radiomics_reference.feature_class

    class Broken:
        def __init__(self, *args, **kwargs):
            raise IndexError("boom")

    def broken_stack(*args):
        raise IndexError("cannot stack")

    # the batched path fails on glszm (-> reference path), and so does pyradiomics' own class
    monkeypatch.setitem(_radiomics_batched.BATCHED, "glszm", broken_stack)
    monkeypatch.setattr(
        _radiomics_reference,
        "feature_class",
        lambda name: Broken if name == "glszm" else real(name),
    )
    with caplog.at_level(logging.DEBUG, logger="skcalc.features"):
        with pytest.warns(RadiomicsFallbackWarning) as record:
            t = LocalFeatureExtractor(feature_sets="bg_radiomics").transform([roi3])[0]
    assert len(record) == 1  # once per ROI, not per object
    msg = str(record[0].message)
    assert "'three'" in msg and "glszm x3" in msg and "cannot stack" in msg and "boom" in msg
    names = t.feature_names["bg_radiomics"]
    assert np.isnan(t["bg_radiomics"][:, _class_slice(names, "glszm")]).all()
    assert np.isfinite(t["bg_radiomics"][:, _class_slice(names, "glcm")]).all()
    assert "glszm failed" in caplog.text and "boom" in caplog.text


# ----------------------------------------------------------------- 0 / 1 objects
def test_zero_and_one_object_rois():
    fg0 = np.zeros((30, 30), np.int32)
    roi0 = ROI(make_image(fg0), masks=make_masks(fg0), meta={"roi_id": "empty"})
    fg1 = np.zeros((30, 30), np.int32)
    fg1[12:16, 12:17] = 1
    roi1 = ROI(make_image(fg1), masks=make_masks(fg1), meta={"roi_id": "one"})
    est = LocalFeatureExtractor().fit([roi0, roi1])
    with pytest.warns(SkcalcWarning, match="'empty'"):
        t0, t1 = est.transform([roi0, roi1])
    d = {k: len(v) for k, v in est.feature_names_.items()}
    assert {k: v.shape for k, v in t0.items()} == {k: (0, n) for k, n in d.items()}
    assert {k: v.shape for k, v in t1.items()} == {k: (1, n) for k, n in d.items()}
    assert t0.n_objects == 0 and t1.n_objects == 1
    assert np.isfinite(t1["fg_regionprops"]).all() and np.isfinite(t1["bg_radiomics"]).all()


# ----------------------------------------------------------------- background band
def test_band_excludes_other_calcifications():
    fg = np.zeros((40, 40), np.int32)
    fg[18:21, 14:17] = 1
    fg[18:21, 20:23] = 2  # 3 px away from object 1, inside its band
    img = make_image(fg)
    img[fg > 0] = 4000  # calcifications far brighter than any tissue pixel
    roi = ROI(img, masks=make_masks(fg, band_width=0.5))
    t = LocalFeatureExtractor(feature_sets="bg_radiomics").transform([roi])[0]
    names = t.feature_names["bg_radiomics"]
    for i, lab in enumerate((1, 2)):
        band = brute_force_band(fg, lab, SPACING, 0.5)
        assert band.sum() > 50
        row = dict(zip(names, t["bg_radiomics"][i]))
        assert row["firstorder_Maximum"] == img[band].max() < 4000
        assert row["firstorder_Mean"] == pytest.approx(img[band].mean(), rel=1e-12)


# ----------------------------------------------------------------- estimator plumbing
def test_n_jobs_and_memory_give_identical_results(roi3, tables3, tmp_path):
    fg = np.zeros((40, 40), np.int32)
    fg[10:14, 10:15] = 1
    fg[25:28, 20:25] = 2
    other = ROI(make_image(fg, seed=3), masks=make_masks(fg, band_width=0.5))
    est = LocalFeatureExtractor(feature_sets=("fg_radiomics", "fg_regionprops"))
    serial = est.set_params(n_jobs=1).transform([roi3, other])
    parallel = est.set_params(n_jobs=2).transform([roi3, other])
    cached = est.set_params(n_jobs=1, memory=str(tmp_path)).transform([roi3, other])
    cached2 = est.transform([roi3, other])
    for a, b, c, d in zip(serial, parallel, cached, cached2):
        assert a.roi_id == b.roi_id == c.roi_id == d.roi_id
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])
            np.testing.assert_array_equal(a[k], c[k])
            np.testing.assert_array_equal(a[k], d[k])
    np.testing.assert_array_equal(serial[0]["fg_radiomics"], tables3["fg_radiomics"])


def test_inputs_not_mutated_and_tables_picklable(roi3, tables3):
    img, fg = roi3.image.copy(), roi3.masks.foreground.copy()
    LocalFeatureExtractor(feature_sets="fg_regionprops").transform([roi3])
    np.testing.assert_array_equal(roi3.image, img)
    np.testing.assert_array_equal(roi3.masks.foreground, fg)
    back = pickle.loads(pickle.dumps(tables3))
    assert isinstance(back, LocalFeatureTables) and back.roi_id == "three"
    assert back.feature_names == tables3.feature_names
    for k in tables3:
        np.testing.assert_array_equal(back[k], tables3[k])


def test_errors_name_the_roi(roi3):
    bare = ROI(np.ones((10, 10), np.uint16), meta={"roi_id": "no-masks"})
    with pytest.raises(ROIValidationError, match="'no-masks'.*masks"):
        LocalFeatureExtractor().fit([bare])
    with pytest.raises(ROIValidationError, match="'no-masks'.*masks"):
        LocalFeatureExtractor().transform([roi3, bare])
    wrong = roi3.replace(image=np.ones((10, 10), np.uint16), meta={"roi_id": "bad-shape"})
    with pytest.raises(ROIValidationError, match="'bad-shape'.*shape"):
        LocalFeatureExtractor().transform([wrong])
    with pytest.raises(TypeError):
        LocalFeatureExtractor().transform(roi3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        LocalFeatureExtractor(feature_sets="fg_regionprops").transform([roi3])


# ----------------------------------------------------------------- stacked (batched) path
def random_objects(seed, n_objects=14, shape=(48, 48)):
    """Random-walk blobs of 1-60 px on a noisy image, plus the edge cases of the NaN policy."""
    rng = np.random.default_rng(seed)
    img = 1200 + 40 * rng.standard_normal(shape) + 200 * rng.random(shape)
    masks = []
    for _ in range(n_objects):
        m = np.zeros(shape, bool)
        r, c = rng.integers(8, shape[0] - 8, 2)
        for _ in range(int(rng.integers(1, 60))):
            m[r, c] = True
            r = int(np.clip(r + rng.integers(-1, 2), 0, shape[0] - 1))
            c = int(np.clip(c + rng.integers(-1, 2), 0, shape[1] - 1))
        masks.append(m)
    flat = np.zeros(shape, bool)
    flat[5:9, 5:9] = True  # one gray level only: MCC = 1 (pyradiomics' flat-region rule)
    img[flat] = 1500
    line = np.zeros(shape, bool)
    line[40, 10:30] = True  # texture NaN by policy
    single = np.zeros(shape, bool)
    single[2, 40] = True  # all NaN
    diag = np.zeros(shape, bool)
    diag[[30, 31], [40, 41]] = True  # pyradiomics itself returns some NaN
    return img, masks + [flat, line, single, diag]


@pytest.mark.parametrize("seed, bins", [(0, {"bin_width": 5}), (1, {"bin_count": 12})])
def test_batch_equals_pyradiomics_execute_per_object(seed, bins):
    img, masks = random_objects(seed)
    classes = _radiomics.ALL_RADIOMICS_CLASSES
    names = radiomics_feature_names(classes)
    texture = np.array([n.split("_")[0] in TEXTURE for n in names])
    got = _radiomics.radiomics_features_batch([img] * len(masks), masks, SPACING, **bins)
    assert got.shape == (len(masks), len(names))
    n_texture = 0
    for row, m in zip(got, masks):
        if m.sum() < 2:
            assert np.isnan(row).all()
            continue
        ref = pyradiomics_execute(img, m, SPACING, classes, **bins)
        if not _radiomics_batched.has_2x2_block(m):
            assert np.isnan(row[texture]).all()
            row, ref = row[~texture], ref[~texture]
        else:
            n_texture += 1
        np.testing.assert_allclose(row, ref, rtol=1e-9, atol=1e-12)
    assert n_texture >= 8
    glcm_mcc = names.index("glcm_MCC")
    assert got[len(masks) - 4, glcm_mcc] == 1.0  # the flat object


def test_batch_equals_one_by_one_and_chunking(monkeypatch):
    img, masks = random_objects(2)
    kw = {"classes": _radiomics.ALL_RADIOMICS_CLASSES[1:]}
    stacked = _radiomics.radiomics_features_batch([img] * len(masks), masks, SPACING, **kw)
    alone = np.array([_radiomics.radiomics_features(img, m, SPACING, **kw) for m in masks])
    np.testing.assert_allclose(stacked, alone, rtol=1e-9, atol=1e-12)
    # Tiny memory budget: every stack is cut into several chunks; same values.
    monkeypatch.setattr(_radiomics_batched, "_MAX_CELLS", 2000)
    objs = [_radiomics_batched.prepare(img, m, radiomics_settings(), 4) for m in masks]
    rows = [k for k, o in enumerate(objs) if o is not None]
    chunks = _radiomics_batched.chunk_rows(rows, objs)
    assert len(chunks) > 2 and sorted(k for c in chunks for k in c) == rows
    chunked = _radiomics.radiomics_features_batch([img] * len(masks), masks, SPACING, **kw)
    np.testing.assert_allclose(chunked, stacked, rtol=1e-9, atol=1e-12)


def test_glcm_matrices_bit_identical_to_pyradiomics():
    """The bincount GLCM of every object equals pyradiomics' own _calculateMatrix exactly."""
    from radiomics.glcm import RadiomicsGLCM

    img, masks = random_objects(4)
    settings = radiomics_settings()
    objs = [_radiomics_batched.prepare(img, m, settings, 4) for m in masks]
    objs = [o for o in objs if o is not None and o.texture_ok]
    assert len(objs) >= 8
    P, values = _radiomics_batched.glcm_matrices(objs)
    for k, o in enumerate(objs):
        inst = _radiomics_batched._instance(
            RadiomicsGLCM,
            settings,
            imageArray=o.binned,
            maskArray=o.mask,
            coefficients={"grayLevels": o.gray_levels, "Ng": o.ng},
        )
        ref = inst._calculateMatrix()[0]
        n = o.gray_levels.size
        np.testing.assert_array_equal(P[k, :, :n, :n], ref.transpose((2, 0, 1)))
        assert not P[k, :, n:].any() and not P[k, :, :, n:].any()
        np.testing.assert_array_equal(values[k, :n], o.gray_levels)


def test_batch_falls_back_to_per_object_on_failure(monkeypatch):
    img, masks = random_objects(3, n_objects=5)
    masks = masks[:5]
    ref = _radiomics.radiomics_features_batch([img] * 5, masks, SPACING, classes=["glrlm"])

    def broken(*args):
        raise ValueError("cannot stack")

    monkeypatch.setitem(_radiomics_batched.BATCHED, "glrlm", broken)
    with pytest.warns(RadiomicsFallbackWarning, match="'r5'.*glrlm x4.*cannot stack") as rec:
        got = _radiomics.radiomics_features_batch(
            [img] * 5, masks, SPACING, classes=["glrlm"], roi_id="r5"
        )
    assert len(rec) == 1
    np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-12)
    # an exception that is not a data problem is never swallowed

    def bug(*args):
        raise TypeError("a bug")

    monkeypatch.setitem(_radiomics_batched.BATCHED, "glrlm", bug)
    with pytest.raises(TypeError, match="a bug"):
        _radiomics.radiomics_features_batch([img] * 5, masks, SPACING, classes=["glrlm"])
    assert np.isfinite(got).sum() > 0
    with pytest.raises(ValueError, match="2 images but 1 masks"):
        _radiomics.radiomics_features_batch([img, img], masks[:1], SPACING)
