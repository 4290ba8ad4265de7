"""Training / recalibrating the candidate filter on a user's own annotated images."""

import numpy as np
import pytest
from scipy import ndimage as ndi

from skcalc import ROI
from skcalc.datasets._realistic import make_training_patch
from skcalc.segmentation import HDoGRegSegmenter
from skcalc.segmentation._calibrated import FEATURE_NAMES
from skcalc.segmentation._filter import (
    CandidateFilter,
    fit_candidate_filter,
    load_default_filter,
    roi_candidates,
)


def _roi(seed, calc, size_mm=16.0, sp=0.1):
    p = make_training_patch(np.random.default_rng([123, seed]), size_mm=size_mm, spacing=sp,
                            calcifications=calc)
    return ROI(p["image"], spacing=sp, reference=p["reference"] if calc else None,
               meta={"roi_id": f"p{seed}", "bits_stored": p["bits"]})


@pytest.fixture(scope="module")
def data():
    pos = [_roi(k, True) for k in range(6)]
    neg = [_roi(100 + k, False) for k in range(6)]
    return pos, neg


def test_points_and_masks_label_the_same_candidates(data):
    pos, _ = data
    n_same = n_all = 0
    for roi in pos:
        lab, n = ndi.label(roi.reference)
        pts = np.array(ndi.center_of_mass(roi.reference, lab, range(1, n + 1))).reshape(-1, 2)
        _, y_mask, _ = roi_candidates(roi)
        _, y_pts, _ = roi_candidates(roi, pts)
        n_same += int((y_mask == y_pts).sum())
        n_all += y_mask.size
        assert y_pts.sum() <= y_mask.sum() + 1  # a point never marks more than its object
    assert n_all > 0 and n_same / n_all > 0.95


def test_recalibration_keeps_the_model_and_its_promise_on_the_calibration_images(data):
    pos, neg = data
    base = load_default_filter()
    f = fit_candidate_filter(pos, neg, mode="recalibrate")
    assert f.model_str == base.model_str
    assert np.all(np.diff(f.calib_fp_per_cm2) <= 0)
    # on the normal images themselves, the kept candidates per cm^2 are at most the target
    X = np.concatenate([roi_candidates(r, labelled=False)[0] for r in neg])
    area = sum(roi_candidates(r, labelled=False)[2] for r in neg)
    for target in (2.0, 0.5):
        _, thr = f.resolve(target)
        rate = (f.score(X) >= thr).sum() / area
        # the table is counted on these images: the promise holds, and two more candidates
        # would break it (a table counted on the wrong area or other images would not be
        # that tight)
        assert target - 2 / area < rate <= target


def test_training_is_deterministic_usable_and_round_trips(data, tmp_path):
    pos, neg = data
    kw = dict(base=None, n_estimators=30, random_state=1)
    a = fit_candidate_filter(pos, neg, **kw)
    b = fit_candidate_filter(pos, neg, **kw)
    assert a.model_str == b.model_str and a.meta["mode"] == "train"
    np.testing.assert_array_equal(a.calib_thresholds, b.calib_thresholds)
    assert a.meta["positives"] > 0 and a.meta["in_sample_scores"] == 0
    path = tmp_path / "mine.json"
    a.save(path)
    seg = HDoGRegSegmenter(candidate_filter=str(path), operating_point="sensitive",
                           fp_calibration="filter")
    out = seg.fit_transform([pos[0]])[0]
    # the file's model and table are the ones applied, not the packaged filter's
    assert seg.candidate_filter_.digest == a.digest != load_default_filter().digest
    s = out.meta["segmentation"]
    assert s["operating_point"] == "sensitive"
    assert s["score_threshold"] == a.resolve("sensitive")[1]
    assert CandidateFilter.load(path).digest == a.digest
    # the trained model ranks held-out calcification candidates above tissue candidates
    Xt, yt = [], []
    for k in range(6, 10):
        X, y, _ = roi_candidates(_roi(k, True))
        Xt.append(X)
        yt.append(y)
    X, y = np.concatenate(Xt), np.concatenate(yt)
    s = a.score(X)
    assert y.sum() > 0 and s[y == 1].mean() > s[y == 0].mean()


def test_continuing_from_the_packaged_filter_adds_trees(data):
    pos, neg = data
    f = fit_candidate_filter(pos[:3], neg[:3], n_estimators=10, cv=2)
    assert f.model_str.count("Tree=") == load_default_filter().model_str.count("Tree=") + 10


def test_bad_input_is_named(data):
    pos, neg = data
    with pytest.raises(ValueError, match="calcification-free"):
        fit_candidate_filter(pos, [])
    with pytest.raises(ValueError, match="'p0'.*outside"):
        fit_candidate_filter(pos[:1], neg, annotations=[np.array([[1e4, 3.0]])])
    with pytest.raises(ValueError, match="'p100' has no reference"):
        fit_candidate_filter(neg[:1], neg)
    with pytest.raises(ValueError, match="mode"):
        fit_candidate_filter(pos, neg, mode="fine")
    with pytest.raises(ValueError, match="annotations: 1 given for 6"):
        fit_candidate_filter(pos, neg, annotations=[None])


def test_the_documented_example_runs(tmp_path, monkeypatch):
    import pathlib
    import re

    rst = (pathlib.Path(__file__).parents[2] / "docs" / "segmentation.rst").read_text()
    section = rst.split("Training the filter on your own images")[1]
    code = re.search(r"\.\. code-block:: python\n\n((?:    .*\n|\n)+)", section).group(1)
    monkeypatch.chdir(tmp_path)
    ns: dict = {}
    exec(compile("\n".join(line[4:] for line in code.splitlines()), "segmentation.rst", "exec"),
         ns)
    assert (tmp_path / "my_candidate_filter.json").is_file()
    assert ns["mine"].meta["positives"] > 0 and ns["by_points"].meta["positives"] > 0
    assert ns["recal"].model_str == load_default_filter().model_str


def test_numpy_tree_evaluation_equals_lightgbm():
    import lightgbm as lgb

    from skcalc.segmentation._filter import _TreeEnsemble

    rng = np.random.default_rng(0)
    X = rng.normal(0, 3, (3000, len(FEATURE_NAMES)))
    X[rng.random(X.shape) < 0.1] = np.nan  # missing values take the default side
    X[rng.random(X.shape) < 0.05] = 0.0
    f = load_default_filter()
    ref = lgb.Booster(model_str=f.model_str).predict(X, num_threads=1)
    np.testing.assert_allclose(_TreeEnsemble(f.model_str).predict(X), ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(f.score(X), ref, rtol=0, atol=1e-12)
    # a model trained here (other trees, single-leaf trees possible) as well
    y = (np.nan_to_num(X[:, 0]) + rng.normal(0, 1, len(X)) > 0).astype(int)
    b = lgb.train({"objective": "binary", "verbose": -1, "num_leaves": 7, "seed": 0},
                  lgb.Dataset(X, y), num_boost_round=40)
    np.testing.assert_allclose(_TreeEnsemble(b.model_to_string()).predict(X),
                               b.predict(X), rtol=0, atol=1e-12)


def test_a_filter_trained_at_another_threshold_is_used_at_that_threshold(data, recwarn):
    pos, neg = data
    f = fit_candidate_filter(pos[:3], neg[:3], base=None, cnr_threshold=3.0,
                             n_estimators=10, cv=2)
    assert f.meta["cnr_threshold"] == 3.0
    # recalibrating it measures its candidates at 3.0 too, unless told otherwise
    X3 = np.concatenate([roi_candidates(r, labelled=False, cnr_threshold=3.0)[0] for r in neg])
    X4 = np.concatenate([roi_candidates(r, labelled=False)[0] for r in neg])
    assert len(X3) > len(X4)
    r = fit_candidate_filter([], neg, mode="recalibrate", base=f)
    assert r.meta["cnr_threshold"] == 3.0 and r.meta["recalibration"]["candidates"] == len(X3)
    # the segmenter detects as the filter was trained, and says so, without a warning
    out = HDoGRegSegmenter(candidate_filter=f, operating_point="sensitive").fit_transform(
        [pos[0]])[0]
    assert out.meta["segmentation"]["cnr_threshold"] == 3.0
    assert not [w for w in recwarn if "cnr_threshold" in str(w.message)]
    packaged = HDoGRegSegmenter().fit_transform([pos[0]])[0]
    assert packaged.meta["segmentation"]["cnr_threshold"] == 4.0
    with pytest.warns(UserWarning, match="calibrated with cnr_threshold=3.0"):
        HDoGRegSegmenter(candidate_filter=f, cnr_threshold=4.0).fit([pos[0]])
