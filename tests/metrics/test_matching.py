"""Tests of match_objects (HDoGReg's one-to-one detection matching)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skcalc.metrics import match_objects


def disk(shape, cy, cx, r):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def test_exact_centroid_hit():
    gt = disk((40, 40), 20, 20, 2)
    r = match_objects(gt.copy(), gt)
    assert r == {"tp": 1, "fn": 0, "fp": 0, "n_pred": 1, "n_gt": 1, "matches": [(1, 1)]}


@pytest.mark.parametrize("shift, detected", [(5, True), (6, False)])
def test_distance_threshold_five_vs_six_px(shift, detected):
    gt = np.zeros((40, 40), bool)
    gt[20, 20] = True
    pred = np.zeros((40, 40), bool)
    pred[20, 20 + shift] = True  # in the 14x14 window, no overlap: IoU is 0
    r = match_objects(pred, gt)
    assert r["tp"] == int(detected)
    assert r["fn"] == 1 - int(detected)
    assert r["fp"] == 1 - int(detected)


def test_outside_window_not_found_by_distance():
    # An object 7 px away (just outside [c - 7, c + 7)) is not a candidate at all.
    gt = np.zeros((40, 40), bool)
    gt[20, 20] = True
    pred = np.zeros((40, 40), bool)
    pred[20, 27] = True
    assert match_objects(pred, gt, distance_mm=0.7)["tp"] == 0
    pred2 = np.zeros((40, 40), bool)
    pred2[20, 26] = True
    assert match_objects(pred2, gt, distance_mm=0.7)["tp"] == 1


def test_iou_fallback_for_large_elongated_object():
    gt = np.zeros((60, 80), bool)
    gt[30:33, 10:70] = True  # 3 x 60 line, centroid (31, 39.5)
    pred = np.zeros((60, 80), bool)
    pred[30:33, 30:70] = True  # centroid (31, 49.5): 10 px away, IoU = 120/180
    r = match_objects(pred, gt)
    assert r["tp"] == 1 and r["matches"] == [(1, 1)]
    small = np.zeros((60, 80), bool)
    small[30:33, 55:70] = True  # IoU = 45/180 = 0.25 < 0.3, centroid 22 px away
    assert match_objects(small, gt)["tp"] == 0
    assert match_objects(small, gt, iou_thr=0.25)["tp"] == 1


def test_one_to_one_two_gt_near_one_pred():
    gt = np.zeros((40, 40), bool)
    gt[20, 18] = True
    gt[20, 22] = True
    pred = np.zeros((40, 40), bool)
    pred[20, 20] = True
    r = match_objects(pred, gt)
    assert (r["tp"], r["fn"], r["fp"]) == (1, 1, 0)
    assert r["matches"] == [(1, 1)]  # the first GT in label order takes it


def test_nearest_unmatched_prediction_wins_and_ties_go_to_later_label():
    gt = np.zeros((40, 40), bool)
    gt[20, 20] = True
    pred = np.zeros((40, 40), bool)
    pred[20, 17] = True  # label 1, 3 px
    pred[20, 22] = True  # label 2, 2 px
    assert match_objects(pred, gt)["matches"] == [(1, 2)]
    tie = np.zeros((40, 40), bool)
    tie[18, 20] = True  # label 1, 2 px
    tie[22, 20] = True  # label 2, 2 px
    assert match_objects(tie, gt)["matches"] == [(1, 2)]


def test_fp_counting_and_label_images():
    gt = np.zeros((50, 50), np.int32)
    gt[10:12, 10:12] = 7
    gt[30:32, 30:32] = 3
    pred = np.zeros((50, 50), np.int32)
    pred[10:12, 10:12] = 5
    pred[30:32, 31:33] = 5  # same label, two components: relabelled separately
    pred[45, 5] = 9
    pred[5, 45] = 1
    r = match_objects(pred, gt)
    assert (r["n_gt"], r["n_pred"], r["tp"], r["fn"], r["fp"]) == (2, 4, 2, 0, 2)


def test_touching_labels_are_merged_by_connectivity():
    pred = np.zeros((30, 30), np.int32)
    pred[10, 10:12] = 1
    pred[10, 12:14] = 2  # touches label 1: one object after relabelling
    assert match_objects(pred, np.zeros((30, 30), bool))["n_pred"] == 1
    diag = np.zeros((30, 30), bool)
    diag[10, 10] = diag[11, 11] = True  # 8-connected only: two objects
    assert match_objects(diag, diag, fill_small_holes=False)["n_gt"] == 2


def _ring_with_island(hole):
    pred = np.zeros((60, 60), bool)
    pred[20 : 22 + hole, 20 : 22 + hole] = True
    pred[21 : 21 + hole, 21 : 21 + hole] = False
    pred[21 + hole // 2, 21 + hole // 2] = True  # an island inside the hole
    return pred


@pytest.mark.parametrize("hole, n_filled", [(7, 1), (8, 1), (9, 2)])
def test_small_holes_filled_first(hole, n_filled):
    # hole**2 - 1 background px around the island: 48 and 63 are < 64 and get filled (the
    # island merges into the ring), 80 is not.
    pred = _ring_with_island(hole)
    gt = np.zeros_like(pred)
    assert match_objects(pred, gt)["n_pred"] == n_filled
    assert match_objects(pred, gt, fill_small_holes=False)["n_pred"] == 2


def test_hole_of_exactly_64_px_is_kept():
    from skcalc.metrics._segmentation import _fill_small_holes

    ring = np.zeros((40, 40), bool)
    ring[10:20, 10:20] = True
    ring[11:19, 11:19] = False  # 8 x 8 = 64 px
    np.testing.assert_array_equal(_fill_small_holes(ring), ring)
    ring[11, 11] = True  # 63 px
    assert _fill_small_holes(ring)[11:19, 11:19].all()
    # The border-touching background counts too when it is small (old skimage behaviour).
    tiny = np.ones((5, 5), bool)
    tiny[0, 0] = False
    assert _fill_small_holes(tiny).all()


def test_empty_inputs():
    z = np.zeros((20, 20), bool)
    one = z.copy()
    one[5, 5] = True
    assert match_objects(z, z) == {
        "tp": 0, "fn": 0, "fp": 0, "n_pred": 0, "n_gt": 0, "matches": []
    }
    assert match_objects(one, z)["fp"] == 1
    r = match_objects(z, one, fill_small_holes=False)
    assert (r["fn"], r["n_gt"]) == (1, 1)


def test_validation():
    with pytest.raises(ValueError, match="shape"):
        match_objects(np.zeros((3, 3), bool), np.zeros((3, 4), bool))
    with pytest.raises(ValueError, match="2-D"):
        match_objects(np.zeros(3, bool), np.zeros(3, bool))
    with pytest.raises(TypeError, match="bool"):
        match_objects(np.zeros((3, 3)), np.zeros((3, 3), bool))
    with pytest.raises(ValueError, match="iou_thr"):
        match_objects(np.zeros((3, 3), bool), np.zeros((3, 3), bool), iou_thr=2)


@settings(max_examples=40, deadline=None)
@given(
    cells=st.lists(
        st.tuples(st.integers(0, 7), st.integers(0, 7), st.integers(0, 2), st.integers(-3, 3)),
        max_size=12,
    )
)
def test_properties(cells):
    gt = np.zeros((80, 80), bool)
    pred = np.zeros((80, 80), bool)
    for i, j, r, shift in cells:
        cy, cx = 5 + 10 * i, 5 + 10 * j
        gt |= disk(gt.shape, cy, cx, r)
        if shift != 3:
            pred |= disk(gt.shape, cy, cx + shift, r)
    res = match_objects(pred, gt)
    assert res["tp"] + res["fn"] == res["n_gt"]
    assert res["tp"] + res["fp"] == res["n_pred"]
    gts = [g for g, _ in res["matches"]]
    preds = [p for _, p in res["matches"]]
    assert len(set(gts)) == len(gts) and len(set(preds)) == len(preds)
    # Identical masks match perfectly.
    same = match_objects(gt, gt, fill_small_holes=False)
    assert same["tp"] == same["n_gt"] and same["fp"] == 0


@pytest.mark.parametrize("spacing", [0.05, 0.1, 0.2])
def test_sizes_are_in_mm(spacing):
    # The same physical layout at another pixel size gives the same matches: a prediction
    # 0.3 mm from the reference is detected (<= 0.35 mm), one 0.42 mm away is not.
    scale = 0.07 / spacing
    gt = np.zeros((80, 80), bool)
    gt[40, 40] = True
    for offset_mm, detected in ((0.3, True), (0.42, False)):
        col = 40 + round(offset_mm / spacing)
        if abs((col - 40) * spacing - offset_mm) > 1e-9:
            continue  # not on the grid at this spacing
        pred = np.zeros_like(gt)
        pred[40, col] = True
        assert match_objects(pred, gt, spacing=spacing)["tp"] == int(detected), scale


def test_window_and_holes_scale_with_spacing():
    # At 0.035 mm the 0.98 mm window is 28 px wide; a hole of 100 px (< 0.3136 mm2 = 256 px)
    # is filled, so a ring counts as one object.
    gt = np.zeros((80, 80), bool)
    gt[40, 40] = True
    pred = np.zeros_like(gt)
    pred[40, 50] = True  # 10 px = 0.35 mm: detected at 0.035 mm, outside at 0.07 mm (7 px)
    assert match_objects(pred, gt, spacing=0.035)["tp"] == 1
    assert match_objects(pred, gt, spacing=0.07)["tp"] == 0
    ring = np.zeros((40, 40), bool)
    ring[5:17, 5:17] = True
    ring[6:16, 6:16] = False
    assert match_objects(ring, np.zeros_like(ring), spacing=0.035)["n_pred"] == 1
    assert match_objects(ring, np.zeros_like(ring), spacing=0.07, fill_small_holes=False)[
        "n_pred"] == 1
