"""Bounded cost, refused or flagged value ranges, warnings, and the per-calcification table.

Issues 10.10 (fallback warned, no bare except), 11.3 (many objects), 11.5 (value ranges,
NaN region) and 14.4 (one row per calcification, CSV).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from skcalc import ROI, ROIValidationError
from skcalc.features import (
    DiscretisationWarning,
    LocalFeatureExtractor,
    LocalFeatureTables,
    RadiomicsFallbackWarning,
    _local,
    _radiomics,
    _radiomics_batched,
    local_features,
    local_features_table,
    write_local_features_csv,
)
from skcalc.masks import CalcificationMasks

pytest.importorskip("radiomics")
pd = pytest.importorskip("pandas")

SPACING = (0.07, 0.07)


def make_masks(fg, band_width=0.35):
    n = int(fg.max())
    return CalcificationMasks(
        fg.astype(np.int32), SPACING, band_width, np.zeros(1), np.zeros((n, n), int)
    )


def grid_roi(n_objects, *, roi_id="grid", size=3, seed=0, scale=1.0, dtype=np.float64):
    """``n_objects`` size x size calcifications on a grid, 12-bit-like tissue around them."""
    per_row = int(np.ceil(np.sqrt(n_objects)))
    step = size + 4
    shape = (per_row * step + 8, per_row * step + 8)
    fg = np.zeros(shape, np.int32)
    for k in range(n_objects):
        r, c = 4 + (k // per_row) * step, 4 + (k % per_row) * step
        fg[r : r + size, c : c + size] = k + 1
    rng = np.random.default_rng(seed)
    img = 1200 + 30 * rng.standard_normal(shape) + 250 * (fg > 0)
    img = (img * scale).astype(dtype)
    return ROI(img, spacing=SPACING, masks=make_masks(fg), meta={"roi_id": roi_id})


def no_work(*args, **kwargs):
    raise AssertionError("features were computed before the budget check")


# ------------------------------------------------------------------ 11.3: many objects
def test_too_many_objects_refused_before_any_work(monkeypatch):
    roi = grid_roi(30, roi_id="crowded")
    monkeypatch.setattr(_local, "_features_batch", no_work)
    monkeypatch.setattr(_local, "regionprops_features_batch", no_work)
    with pytest.raises(
        ROIValidationError, match=r"'crowded'.*30 calcifications exceed max_objects=20"
    ):
        LocalFeatureExtractor(max_objects=20).transform([roi])
    with pytest.raises(ROIValidationError, match="crowded"):
        local_features(roi.image, roi.masks, max_objects=29, roi_id="crowded")


def test_default_object_budget_is_documented_and_none_disables():
    assert _local.DEFAULT_MAX_OBJECTS == LocalFeatureExtractor().max_objects == 5000
    roi = grid_roi(6)
    t = LocalFeatureExtractor(max_objects=None, feature_sets="fg_regionprops").transform([roi])
    assert t[0].n_objects == 6


def test_objects_go_through_in_bounded_batches(monkeypatch):
    roi = grid_roi(23, size=3)
    whole = LocalFeatureExtractor().transform([roi])[0]
    seen = []
    real = _local._features_batch

    def spy(images, masks, *args):
        seen.append(len(masks))
        return real(images, masks, *args)

    monkeypatch.setattr(_local, "BATCH_SIZE", 5)
    monkeypatch.setattr(_local, "_features_batch", spy)
    batched = LocalFeatureExtractor().transform([roi])[0]
    assert max(seen) == 5 and sum(seen) == 2 * 23  # fg and bg, 5 objects at a time
    for k in whole:
        np.testing.assert_allclose(batched[k], whole[k], rtol=1e-12, atol=0)
    np.testing.assert_array_equal(batched.labels, whole.labels)


# ------------------------------------------------------------------ 11.5: value ranges
@pytest.mark.parametrize(
    "scale, dtype", [(1e6, np.float64), (10**12, np.int64)], ids=["float-x1e6", "int64-huge"]
)
def test_huge_values_refused_with_the_bin_width_that_fits(monkeypatch, scale, dtype):
    roi = grid_roi(4, roi_id="scaled", scale=scale, dtype=dtype)
    monkeypatch.setattr(_local, "_features_batch", no_work)
    with pytest.raises(ROIValidationError, match=r"'scaled'.*gray levels.*bin_width >= ") as err:
        LocalFeatureExtractor().transform([roi])
    assert "max_gray_levels=256" in str(err.value) and "4 of 4 objects" in str(err.value)
    monkeypatch.undo()
    # the advice works: with the suggested bin width the ROI goes through
    width = float(str(err.value).split("bin_width >= ")[1].split()[0])
    t = LocalFeatureExtractor(bin_width=width).transform([roi])[0]
    assert np.isfinite(t["bg_radiomics"]).all()
    # and bin_count is always within the budget
    t = LocalFeatureExtractor(bin_count=32).transform([roi])[0]
    assert np.isfinite(t["bg_radiomics"]).all()


def test_huge_values_never_build_bin_edges():
    # np.arange over this range would need terabytes: the count is checked first.
    img = np.array([[0.0, 1e15], [5e14, 1.0]])
    mask = np.ones((2, 2), bool)
    with pytest.raises(ROIValidationError, match="bin_width >= "):
        _radiomics.radiomics_features(img, mask, SPACING, classes=["firstorder"])
    f = _radiomics.radiomics_features(
        img, mask, SPACING, classes=["firstorder"], max_gray_levels=None, bin_count=8
    )
    assert np.isfinite(f).sum() > 10


def test_unit_range_float_warns_and_names_the_roi():
    roi = grid_roi(6, roi_id="unit")
    unit = roi.replace(image=roi.image / 4095.0)
    with pytest.warns(DiscretisationWarning, match=r"'unit'.*single gray level.*bin_width") as rec:
        t = LocalFeatureExtractor().transform([unit])[0]
    assert len(rec) == 1  # once per ROI
    names = t.feature_names["bg_radiomics"]
    glcm = [i for i, n in enumerate(names) if n.startswith("glcm_")]
    assert np.unique(t["bg_radiomics"][:, glcm].round(12), axis=0).shape[0] == 1  # constant
    # the suggested width removes the warning and the constant features
    with warnings.catch_warnings():
        warnings.simplefilter("error", DiscretisationWarning)
        good = LocalFeatureExtractor(bin_width=5 / 4095).transform([unit])[0]
    np.testing.assert_allclose(good["bg_radiomics"][:, glcm], t0(roi)["bg_radiomics"][:, glcm])


def t0(roi):
    return LocalFeatureExtractor().transform([roi])[0]


def test_cohort_like_data_does_not_warn():
    roi = grid_roi(12)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        LocalFeatureExtractor().transform([roi])


def test_nan_in_float_region_is_refused():
    roi = grid_roi(3, roi_id="holes")
    region = np.ones(roi.shape)
    region[0, :5] = np.nan
    with pytest.raises(ROIValidationError, match=r"'holes'.*region has 5 NaN"):
        LocalFeatureExtractor().transform([roi.replace(region=region)])
    LocalFeatureExtractor(feature_sets="fg_regionprops").transform(
        [roi.replace(region=np.nan_to_num(region) > 0)]
    )


# ------------------------------------------------------------------ 10.10: fallback
def test_fallback_warning_survives_cache_and_workers(monkeypatch, tmp_path):
    def broken(*args):
        raise ValueError("cannot stack")

    monkeypatch.setitem(_radiomics_batched.BATCHED, "ngtdm", broken)
    roi = grid_roi(4, roi_id="fb")
    est = LocalFeatureExtractor(feature_sets="bg_radiomics", memory=str(tmp_path))
    for _ in range(2):  # computed, then from the cache
        with pytest.warns(RadiomicsFallbackWarning, match=r"'fb'.*ngtdm x4.*cannot stack"):
            est.transform([roi])
    other = roi.replace(meta={"roi_id": "copy"})  # same content: cached result, own id
    with pytest.warns(RadiomicsFallbackWarning, match="'copy'"):
        est.transform([other])


def test_reference_path_equals_batched_path():
    roi = grid_roi(5, size=4)
    crops, objs = [], []
    for _, win, obj, _ in roi.masks.object_windows():
        crops.append(roi.image[win])
        objs.append(obj)
    kw = {"classes": _radiomics.ALL_RADIOMICS_CLASSES}
    fast = _radiomics.radiomics_features_batch(crops, objs, SPACING, **kw)
    ref = _radiomics.radiomics_features_batch(crops, objs, SPACING, batched=False, **kw)
    np.testing.assert_allclose(fast, ref, rtol=1e-9, atol=1e-12)


# ------------------------------------------------------------------ 14.4: the table
def test_to_frame_one_row_per_calcification_with_geometry():
    fg = np.zeros((40, 50), np.int32)
    fg[5:8, 10:14] = 1  # 3 x 4
    fg[20, 30] = 2
    fg[30:33, 5] = 3  # vertical line
    rng = np.random.default_rng(0)
    img = 1000 + 20 * rng.standard_normal(fg.shape) + 400 * (fg > 0)
    sp = (0.1, 0.05)
    masks = CalcificationMasks(fg, sp, 0.5, np.zeros(1), np.zeros((3, 3), int))
    t = local_features(img, masks, roi_id="r7")
    df = t.to_frame()
    assert df.shape == (3, len(_local.GEOMETRY_COLUMNS) + 102 + 13 + 93)
    assert list(df.columns[: len(_local.GEOMETRY_COLUMNS)]) == list(_local.GEOMETRY_COLUMNS)
    assert df["roi_id"].tolist() == ["r7"] * 3 and df["label"].tolist() == [1, 2, 3]
    row = df.iloc[0]
    assert (row.centroid_row_px, row.centroid_col_px) == (6.0, 11.5)
    assert (row.centroid_row_mm, row.centroid_col_mm) == pytest.approx((0.6, 0.575))
    assert [row.bbox_row_min_px, row.bbox_col_min_px, row.bbox_row_max_px, row.bbox_col_max_px] == [
        5,
        10,
        8,
        14,
    ]
    assert row.bbox_row_max_mm == pytest.approx(0.8) and row.bbox_col_max_mm == pytest.approx(0.7)
    assert df["area_px"].tolist() == [12, 1, 3]
    np.testing.assert_allclose(df["area_mm2"], [12 * 0.005, 0.005, 3 * 0.005])
    # features under pyradiomics' batch-mode names, prefixed by the set, same values
    mean = t.feature_names["fg_radiomics"].index("firstorder_Mean")
    np.testing.assert_array_equal(df["fg_original_firstorder_Mean"], t["fg_radiomics"][:, mean])
    names = t.feature_names
    for prefix, key in [
        ("fg_original_", "fg_radiomics"),
        ("rp_", "fg_regionprops"),
        ("bg_original_", "bg_radiomics"),
    ]:
        cols = [prefix + n for n in names[key]]
        np.testing.assert_array_equal(df[cols].to_numpy(), t[key])
    assert df["rp_area_mm2"].tolist() == pytest.approx(df["area_mm2"].tolist())
    surface = df["fg_original_shape2D_PixelSurface"].to_numpy()
    np.testing.assert_allclose(surface[[0, 2]], df["area_mm2"].to_numpy()[[0, 2]])
    assert np.isnan(surface[1])  # single pixel: pyradiomics refuses it
    # the mapping the aggregators read is unchanged
    assert list(t) == ["fg_radiomics", "fg_regionprops", "bg_radiomics"]
    assert isinstance(t, LocalFeatureTables) and t["fg_radiomics"].shape == (3, 102)


def test_local_features_table_and_csv(tmp_path):
    rois = [grid_roi(3, roi_id="a"), grid_roi(0, roi_id="empty"), grid_roi(2, roi_id="b", seed=1)]
    with pytest.warns(UserWarning, match="'empty'"):
        outs = LocalFeatureExtractor().transform(rois)
    df = local_features_table(outs)
    assert df["roi_id"].tolist() == ["a", "a", "a", "b", "b"]
    assert df["label"].tolist() == [1, 2, 3, 1, 2]
    with pytest.warns(UserWarning, match="'empty'"):
        direct = local_features_table(rois, bin_width=5.0)
    pd.testing.assert_frame_equal(direct, df)
    path = tmp_path / "out" / "features.csv"
    write_local_features_csv(outs, path)
    back = pd.read_csv(path)
    assert list(back.columns) == list(df.columns)
    # Shortest round-trip floats: exact on reading back, and no 1.4000000000000001 noise.
    np.testing.assert_array_equal(
        back.select_dtypes("number").to_numpy(), df.select_dtypes("number").to_numpy()
    )
    floats = [c for line in path.read_text().splitlines()[1:] for c in line.split(",")
              if "." in c and c.replace(".", "").replace("-", "").replace("e", "").isdigit()]
    assert floats and all(c == repr(float(c)) for c in floats)
    assert sorted(p.name for p in path.parent.iterdir()) == ["features.csv"]  # no temp left
    with pytest.raises(FileExistsError, match="overwrite"):
        write_local_features_csv(outs, path)
    outs[0].to_csv(path, overwrite=True)
    assert len(pd.read_csv(path)) == 3
    with pytest.raises(TypeError):
        local_features_table([np.zeros((2, 2))])


def test_aggregators_still_accept_the_tables():
    from skcalc.aggregation import BagOfClustersAggregator, MeanStdAggregator

    rois = [grid_roi(5, roi_id=f"r{i}", seed=i) for i in range(4)]
    outs = LocalFeatureExtractor().transform(rois)
    X = MeanStdAggregator().fit_transform(outs)
    assert X.shape[0] == 4
    Xb = BagOfClustersAggregator(n_clusters=2, random_state=0, n_init=1).fit_transform(outs)
    assert Xb.shape == (4, 6)


def test_single_pixel_objects_only_give_nan_radiomics_without_warning():
    fg = np.zeros((30, 30), np.int32)
    fg[5, 5], fg[20, 20] = 1, 2
    rng = np.random.default_rng(0)
    roi = ROI(1000 + 30 * rng.random(fg.shape), spacing=SPACING, masks=make_masks(fg))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t = LocalFeatureExtractor(feature_sets=("fg_radiomics", "fg_regionprops")).transform([roi])
    assert np.isnan(t[0]["fg_radiomics"]).all() and np.isfinite(t[0]["fg_regionprops"]).all()


def test_the_users_radiomics_logger_level_is_left_as_set():
    # issue 14.2: fitting changed the user's radiomics logger level (DEBUG -> ERROR) for good.
    import logging

    import numpy as np

    from skcalc import ROI, LocalFeatureExtractor, MaskBuilder

    logger = logging.getLogger("radiomics")
    old = logger.level
    try:
        logger.setLevel(logging.DEBUG)
        img = np.full((30, 30), 1000, np.uint16)
        lab = np.zeros((30, 30), np.int32)
        img[10:14, 10:14] = 1400
        lab[10:14, 10:14] = 1
        [m] = MaskBuilder().fit_transform([ROI(img, calcifications=lab, spacing=0.1)])
        LocalFeatureExtractor().fit_transform([m])
        assert logger.level == logging.DEBUG
    finally:
        logger.setLevel(old)
