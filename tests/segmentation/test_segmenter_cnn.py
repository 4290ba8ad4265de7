"""HDoGRegSegmenter with its regression CNN: defaults, combining, crops, training."""

import warnings

import numpy as np
import pytest
import torch

from skcalc import ROI
from skcalc.datasets import make_calcification_cohort, make_full_field_mammogram
from skcalc.metrics import match_objects
from skcalc.segmentation import HDoGRegSegmenter
from skcalc.segmentation._regression import ProximityUNet, load_default_weights, save_weights
from skcalc.segmentation._segmenter import RegressorWeights


@pytest.fixture(scope="module")
def cohort_rois():
    rois, _, _ = make_calcification_cohort(n_rois=4, random_state=5)
    return rois


AUTHORS = {"threshold": "authors"}


def test_default_uses_no_cnn_and_authors_rule_uses_packaged_weights(cohort_rois):
    assert HDoGRegSegmenter().fit(cohort_rois).regressor_ is None
    seg = HDoGRegSegmenter(**AUTHORS).fit(cohort_rois)
    assert isinstance(seg.regressor_, RegressorWeights)
    assert seg.regressor_.digest == RegressorWeights(load_default_weights()).digest
    hdog = HDoGRegSegmenter(regressor=None, **AUTHORS).fit_transform(cohort_rois)
    full = seg.transform(cohort_rois)
    for a, b, roi in zip(hdog, full, cohort_rois):
        kept = b.calcifications > 0
        # every kept pixel is a candidate pixel: the CNN only selects HDoG objects
        assert not (kept & (a.calcifications == 0)).any()
        # and it still finds the reference calcifications
        m = match_objects(b.calcifications, roi.reference)
        assert m["tp"] >= 0.9 * m["n_gt"]


def test_combine_hdog_equals_candidates_and_stricter_settings_keep_a_subset(cohort_rois):
    hdog = HDoGRegSegmenter(regressor=None, **AUTHORS).fit_transform(cohort_rois)
    via_mode = HDoGRegSegmenter(combine="hdog", **AUTHORS).fit_transform(cohort_rois)
    for a, b in zip(hdog, via_mode):
        np.testing.assert_array_equal(a.calcifications > 0, b.calcifications > 0)
    loose = HDoGRegSegmenter(**AUTHORS).fit_transform(cohort_rois)
    strict = HDoGRegSegmenter(cnn_threshold=0.9, combine_overlap=0.9,
                              **AUTHORS).fit_transform(cohort_rois)
    for a, b in zip(loose, strict):
        assert not ((b.calcifications > 0) & (a.calcifications == 0)).any()
    # a network that never fires keeps no candidate in "overlap" mode
    silent = ProximityUNet()
    with torch.no_grad():
        for prm in silent.parameters():
            prm.zero_()
        silent.head.bias.fill_(-50.0)
    none_kept = HDoGRegSegmenter(regressor=silent, **AUTHORS).fit_transform(cohort_rois)
    assert all(r.calcifications.max() == 0 for r in none_kept)
    all_kept = HDoGRegSegmenter(regressor=silent, combine="hdog",
                                **AUTHORS).fit_transform(cohort_rois)
    assert sum(r.calcifications.max() for r in all_kept) > 0


def test_weights_file_network_and_fitted_segmenter_are_equivalent(cohort_rois, tmp_path):
    net = load_default_weights()
    path = tmp_path / "w.pt"
    save_weights(net, path)
    ref = HDoGRegSegmenter(**AUTHORS).fit(cohort_rois)
    for reg in (str(path), net, ref):
        seg = HDoGRegSegmenter(regressor=reg, **AUTHORS).fit(cohort_rois)
        assert seg.regressor_.digest == ref.regressor_.digest
    a = ref.transform(cohort_rois[:1])[0].calcifications
    b = HDoGRegSegmenter(regressor=ref, **AUTHORS).fit_transform(
        cohort_rois[:1])[0].calcifications
    np.testing.assert_array_equal(a, b)


def test_lazy_crop_with_margin_equals_whole_image_inside_region(tmp_path):
    ff = make_full_field_mammogram(shape=(768, 640), random_state=3)
    path = tmp_path / "ff.npy"
    np.save(path, ff.image)
    whole = HDoGRegSegmenter(n_jobs=1, **AUTHORS).fit_transform(
        [ROI(path=path, spacing=ff.spacing)])[0]
    assert whole.calcifications.max() > 0
    cl = ff.meta["clusters"][0]
    cy, cx = (int(v) for v in cl["centre"])
    margin, half = 96, 40
    r0, c0 = max(cy - half - margin, 0), max(cx - half - margin, 0)
    r1, c1 = min(cy + half + margin, 768), min(cx + half + margin, 640)
    crop = ROI(path=path, box=(r0, r1, c0, c1), spacing=ff.spacing)
    got = HDoGRegSegmenter(**AUTHORS).fit_transform([crop])[0].calcifications > 0
    want = whole.calcifications[r0:r1, c0:c1] > 0
    inner = (slice(cy - half - r0, cy + half - r0), slice(cx - half - c0, cx + half - c0))
    np.testing.assert_array_equal(got[inner], want[inner])


def test_fit_trains_the_regressor_on_reference_masks(cohort_rois):
    seg = HDoGRegSegmenter(
        threshold="authors",
        train_regressor=True,
        training_params=dict(
            epochs=2, patch_size=64, crop_size=32, batch_size=4, verbose=False, patience=5
        ),
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        seg.fit(cohort_rois)
    assert isinstance(seg.regressor_.model(), ProximityUNet)
    assert len(seg.training_history_) >= 1
    out = seg.transform(cohort_rois[:1])
    assert out[0].calcifications.shape == cohort_rois[0].shape
    # deterministic under random_state
    again = HDoGRegSegmenter(**seg.get_params()).fit(cohort_rois)
    assert again.regressor_.digest == seg.regressor_.digest


def test_training_needs_reference_masks(cohort_rois):
    bare = [r.replace(reference=None) for r in cohort_rois]
    with pytest.raises(ValueError, match="reference"):
        HDoGRegSegmenter(train_regressor=True).fit(bare)


@pytest.mark.parametrize("regressor", ["default", None])
def test_lazy_box_is_segmented_with_context_like_the_whole_image(tmp_path, regressor):
    ff = make_full_field_mammogram(shape=(768, 640), random_state=4)
    path = tmp_path / "ff.npy"
    np.save(path, ff.image)
    seg = HDoGRegSegmenter(regressor=regressor, **AUTHORS)
    whole = seg.fit_transform([ROI(path=path, spacing=ff.spacing)])[0].calcifications > 0
    n_diff_without_context = 0
    for cl in ff.meta["clusters"][:2]:
        cy, cx = (int(v) for v in cl["centre"])
        # box edges through the cluster, where the filters' view of the edge matters
        box = (cy, cy + 60, cx, cx + 60)
        roi = ROI(path=path, box=box, spacing=ff.spacing, meta={"roi_id": "box"})
        want = whole[box[0] : box[1], box[2] : box[3]]
        got = seg.transform([roi])[0].calcifications
        assert got.shape == want.shape
        np.testing.assert_array_equal(got > 0, want)
        bare = HDoGRegSegmenter(regressor=regressor, context=0,
                                **AUTHORS).fit_transform([roi])[0]
        n_diff_without_context += int(((bare.calcifications > 0) != want).sum())
    # the context is what makes them equal: the box alone differs at its edges
    assert n_diff_without_context > 0


@pytest.mark.parametrize("context", ["auto", np.inf])
def test_the_calibrated_detector_segments_a_boxed_roi_on_its_whole_file(tmp_path, context):
    # the calibrated default estimates its statistics from what it is given: only the
    # whole file reproduces the whole image's objects inside a box, which the default does
    ff = make_full_field_mammogram(shape=(768, 640), random_state=4)
    path = tmp_path / "ff.npy"
    np.save(path, ff.image)
    seg = HDoGRegSegmenter().fit([ROI(path=path, spacing=ff.spacing)])
    [whole] = seg.transform([ROI(path=path, spacing=ff.spacing)])
    cy, cx = (int(v) for v in ff.meta["clusters"][0]["centre"])
    box = (cy - 40, cy + 40, cx - 40, cx + 40)
    roi = ROI(path=path, box=box, spacing=ff.spacing, meta={"roi_id": "box"})
    [got] = HDoGRegSegmenter(context=context).fit_transform([roi])
    want = whole.calcifications[box[0] : box[1], box[2] : box[3]] > 0
    assert want.any()
    np.testing.assert_array_equal(got.calcifications > 0, want)
    a, b = got.meta["segmentation"], whole.meta["segmentation"]
    for key in ("noise_sd", "breast_area_cm2", "candidate_density_per_cm2", "score_threshold"):
        assert a[key] == b[key]  # the whole image's statistics, not the box's
    # a margin is not the whole image: its statistics are the window's
    [near] = HDoGRegSegmenter(context=6.0).fit_transform([roi])
    assert near.meta["segmentation"]["noise_sd"] != b["noise_sd"]


def test_the_rois_of_one_file_share_one_whole_file_segmentation(tmp_path, count_calls):
    import skcalc.segmentation._segmenter as seg_mod

    ff = make_full_field_mammogram(shape=(512, 448), random_state=5)
    path = tmp_path / "ff.npy"
    np.save(path, ff.image)
    calls = count_calls(seg_mod, "_segment_image")  # (roi, image, origin) each
    seg_mod._WHOLE_FILES.clear()
    boxes = [(0, 100, 0, 100), (200, 300, 100, 250), (400, 512, 300, 448)]
    rois = [ROI(path=path, box=b, spacing=ff.spacing, meta={"roi_id": f"r{i}"})
            for i, b in enumerate(boxes)]
    out = HDoGRegSegmenter(n_jobs=1).fit_transform(rois)
    assert [c[1].shape for c in calls] == [(512, 448)]
    [whole] = HDoGRegSegmenter().fit_transform([ROI(ff.image, spacing=ff.spacing)])
    for r, b in zip(out, boxes):
        assert r.calcifications.shape == (b[1] - b[0], b[3] - b[2])
        np.testing.assert_array_equal(r.calcifications > 0,
                                      whole.calcifications[b[0]:b[1], b[2]:b[3]] > 0)
    # a changed file is segmented again, not served from the cache
    n_calls = len(calls)
    np.save(path, ff.image[::-1].copy())
    HDoGRegSegmenter().fit_transform(rois[:1])
    assert len(calls) == n_calls + 1


def test_parallel_workers_get_the_rois_of_one_file_together(tmp_path):
    # _WHOLE_FILES is per process: the boxes of one file go to one worker (one task), so
    # that each file is segmented once, not once per worker that gets one of its boxes.
    ff = make_full_field_mammogram(shape=(384, 320), random_state=6)
    a, b = tmp_path / "a.npy", tmp_path / "b.npy"
    np.save(a, ff.image)
    np.save(b, ff.image[::-1].copy())
    (tmp_path / "link.npy").symlink_to(a)
    boxes = [(0, 100, 0, 100), (150, 250, 100, 220), (280, 384, 200, 320)]
    rois = [ROI(path=p, box=bx, spacing=ff.spacing, meta={"roi_id": f"{p.stem}{i}"})
            for p in (a, b, tmp_path / "link.npy") for i, bx in enumerate(boxes)]
    seg = HDoGRegSegmenter(n_jobs=2).fit(rois)
    params = seg._params(rois)
    keys = [seg._together(r, params) for r in rois]
    assert keys == [str(a.resolve())] * 3 + [str(b.resolve())] * 3 + [str(a.resolve())] * 3
    memory_roi = ROI(ff.image[:100, :100], spacing=ff.spacing)
    assert seg._together(memory_roi, params) is None  # nothing to share
    near = HDoGRegSegmenter(context=6.0).fit(rois)  # a window per ROI: nothing shared
    assert near._together(rois[0], near._params(rois)) is None
    parallel = seg.transform(rois)
    serial = HDoGRegSegmenter(n_jobs=1).fit_transform(rois)
    for p, s in zip(parallel, serial):
        np.testing.assert_array_equal(p.calcifications, s.calcifications)
        assert p.meta["segmentation"] == s.meta["segmentation"]
