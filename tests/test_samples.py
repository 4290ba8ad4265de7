"""Images as the unit of analysis (pooling) and the paper's exclusions."""

import numpy as np
import pytest

from skcalc import ROI, LocalFeatureExtractor, MaskBuilder
from skcalc.aggregation import BagOfClustersAggregator
from skcalc.samples import pool_by_image


def _blobs(shape, centres, value=3000):
    img = np.full(shape, 1000, np.uint16)
    lab = np.zeros(shape, np.int32)
    for k, (r, c) in enumerate(centres, start=1):
        img[r - 1 : r + 2, c - 1 : c + 2] = value
        lab[r - 1 : r + 2, c - 1 : c + 2] = k
    return img, lab


def _two_roi_image():
    img, lab = _blobs((40, 80), [(10, 10), (25, 30), (12, 50), (30, 60), (20, 70)])
    a = ROI(img[:, :40], calcifications=lab[:, :40], box=(0, 40, 0, 40), spacing=0.1,
            meta={"roi_id": "a", "image_id": "I1", "exam_id": "E1"})
    b = ROI(img[:, 40:], calcifications=lab[:, 40:], box=(0, 40, 40, 80), spacing=0.1,
            meta={"roi_id": "b", "image_id": "I1", "exam_id": "E1"})
    return a, b, img


def test_image_with_two_rois_is_one_sample_counting_the_objects_of_both():
    a, b, img = _two_roi_image()
    c_img, c_lab = _blobs((40, 40), [(20, 20), (10, 30)])
    c = ROI(c_img, calcifications=c_lab, spacing=0.1, meta={"roi_id": "c", "image_id": "I2"})
    images, y, groups = pool_by_image([a, b, c], y=[0, 1, 0], groups=["E1", "E1", "E2"])
    assert [im.roi_id for im in images] == ["I1", "I2"]
    assert y.tolist() == [1, 0] and groups.tolist() == ["E1", "E2"]
    np.testing.assert_array_equal(images[0].image, img)
    # The ROIs' labels are carried, kept distinct (a has 2 objects, b 3).
    assert set(np.unique(images[0].calcifications)) == {0, 1, 2, 3, 4, 5}
    masked = MaskBuilder().fit_transform(images)
    assert [m.masks.n_objects for m in masked] == [5, 2]
    tables = LocalFeatureExtractor(feature_sets=("fg_regionprops",)).fit_transform(masked)
    bag = BagOfClustersAggregator(n_clusters=2, random_state=0).fit(tables)
    hist = bag.transform(tables)
    # One histogram per image; its fractions count the objects of both ROIs (5 objects).
    assert hist.shape[0] == 2
    counts = hist[0, :2] * 5
    np.testing.assert_allclose(counts, np.round(counts))
    assert np.round(counts).sum() == 5


def test_lazy_rois_of_one_file_pool_into_a_lazy_union_box(tmp_path):
    img = np.arange(30 * 50, dtype=np.uint16).reshape(30, 50)
    path = tmp_path / "im.npy"
    np.save(path, img)
    region = np.zeros((10, 10), bool)
    region[2:8, 2:8] = True
    a = ROI(path=path, box=(0, 10, 0, 10), region=region, spacing=0.1, meta={"roi_id": "a"})
    b = ROI(path=path, box=(15, 25, 30, 40), region=region, spacing=0.1, meta={"roi_id": "b"})
    [im], _, _ = pool_by_image([a, b])
    assert im.is_lazy and im.box == (0, 25, 0, 40)
    np.testing.assert_array_equal(im.image, img[:25, :40])
    assert im.region.sum() == 72 and im.region[17, 32] and not im.region[12, 12]


def test_pooling_refuses_what_it_cannot_do():
    a, b, _ = _two_roi_image()
    with pytest.raises(ValueError, match="different exams"):
        pool_by_image([a, b], groups=["E1", "E2"])
    no_box = ROI(np.zeros((5, 5)), spacing=0.1, meta={"roi_id": "x", "image_id": "I1"})
    with pytest.raises(ValueError, match="'x' has no box"):
        pool_by_image([a, no_box])
    # one ROI segmented inverted, the other as given: their pixels do not go together
    flipped = a.replace(meta={**a.meta, "inversion_top": 4095})
    with pytest.raises(ValueError, match="'I1'.*inverted some of the ROIs"):
        pool_by_image([flipped, b])
    both = [flipped, b.replace(meta={**b.meta, "inversion_top": 4095})]
    [im], _, _ = pool_by_image(both)
    assert im.meta["inversion_top"] == 4095


def test_paper_exclusions_count_what_was_dropped_per_class():
    from imblearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    from skcalc.model_selection import paper_exclusions

    rois, y = [], []
    for k, (n_obj, label) in enumerate([(0, 0), (1, 1), (1, 0), (3, 0), (2, 1), (0, 1)]):
        img, lab = _blobs((40, 40), [(8 + 10 * i, 8 + 10 * i) for i in range(n_obj)])
        rois.append(ROI(img, calcifications=lab, spacing=0.1, meta={"roi_id": f"r{k}"}))
        y.append(label)
    # A pipeline whose segmenter keeps the given calcifications.
    pipe = Pipeline([("segment", FunctionTransformer()), ("masks", MaskBuilder())])
    keep, summary = paper_exclusions(pipe, rois, y)
    assert keep.tolist() == [False, False, False, True, True, False]
    assert summary["n_input"] == 6 and summary["n_excluded"] == 4
    assert summary["excluded_roi_ids"] == ["r0", "r1", "r2", "r5"]
    assert summary["excluded_per_class"] == {"0": 2, "1": 2}
    assert summary["excluded_per_reason"]["no segmented object"] == {"0": 1, "1": 1}
    assert summary["excluded_per_reason"]["fewer than min_objects"] == {"0": 1, "1": 1}


def test_protocol_on_images_reports_the_papers_table_1():
    from skcalc.datasets import make_calcification_cohort
    from skcalc.model_selection import evaluate_protocol
    from skcalc.pipeline import make_calcification_pipeline, paper_param_grid

    rois, y, groups = make_calcification_cohort(n_rois=40, roi_size_mm=8, random_state=2)
    pipe = make_calcification_pipeline(n_clusters=3)
    res = evaluate_protocol(pipe, rois, y, groups, paper_param_grid("quick"), cv=2,
                            n_bootstrap=10, unit="image", exclude=False)  # fmt: skip
    n_images = len({r.meta["image_id"] for r in rois})
    t = res.split
    assert t["unit"] == "image" and t["n_rois"] == 40
    samples = sum(t[s][c]["samples"] for s in ("train", "test") for c in ("benign", "actionable"))
    rois_total = sum(t[s][c]["rois"] for s in ("train", "test") for c in ("benign", "actionable"))
    assert samples == n_images and rois_total == 40
    assert len(res.y_test) == t["test"]["benign"]["samples"] + t["test"]["actionable"]["samples"]
