"""The image stages, a grid search and the protocol on a dask cluster equal the serial runs.

ROIs are lazy (images in .npy files): the dask workers read them. The cluster runs in this
process (``processes=False``), so a spy on the image reader can tell whether each read
happened inside a dask worker, and the in-process per-ROI cache is cleared between the
serial and the dask runs so that the dask run computes everything again.
"""

import warnings

import joblib
import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from skcalc import ROI
from skcalc.classification import make_default_lightgbm
from skcalc.exceptions import SkcalcWarning
from skcalc.features import LocalFeatureExtractor, TopologyFeatures
from skcalc.masks import MaskBuilder
from skcalc.model_selection import evaluate_protocol, grid_search
from skcalc.pipeline import make_calcification_pipeline
from skcalc.segmentation import HDoGRegSegmenter
from skcalc.utils._caching import MEMORY_FRONT

distributed = pytest.importorskip("distributed")

# joblib's dask backend forgets scattered-data keys twice when the in-process cluster
# collects them: a harmless KeyError printed from a weakref callback.
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

GRID = {"features__local__bag__n_clusters": [3, 5], "classify__threshold": [0.3, 0.5]}
PROTOCOL_GRID = {"features__local__bag__n_clusters": [3, 5]}


@pytest.fixture(scope="module")
def client():
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as c,
    ):
        yield c


@pytest.fixture(scope="module")
def lazy_cohort(tmp_path_factory):
    from skcalc.datasets import make_calcification_cohort

    rois, y, groups = make_calcification_cohort(n_rois=16, prevalence=0.45, random_state=1)
    folder = tmp_path_factory.mktemp("cohort")
    lazy = []
    for i, r in enumerate(rois):
        path = folder / f"roi{i:03d}.npy"
        np.save(path, np.asarray(r.image))
        lazy.append(ROI(path=path, spacing=r.spacing, region=r.region, meta=r.meta))
    assert all(r.is_lazy for r in lazy)
    return lazy, y, groups


class ReadSpy:
    """Wraps ``skcalc.io.read_mammogram``; records whether each read ran on a dask worker."""

    def __init__(self, read):
        self.read = read
        self.on_worker = []

    def __call__(self, path, **kwargs):
        try:
            distributed.get_worker()
            self.on_worker.append(True)
        except ValueError:
            self.on_worker.append(False)
        return self.read(path, **kwargs)


def _spy(mp):
    import skcalc.io

    spy = ReadSpy(skcalc.io.read_mammogram)
    mp.setattr(skcalc.io, "read_mammogram", spy)
    return spy


def _image_stages(rois, n_jobs):
    seg = HDoGRegSegmenter(n_jobs=n_jobs).fit_transform(rois)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkcalcWarning)
        masked = MaskBuilder(n_jobs=n_jobs).fit_transform(seg)
        local = LocalFeatureExtractor(n_jobs=n_jobs).fit_transform(masked)
        topo = TopologyFeatures(n_jobs=n_jobs).fit_transform(masked)
    return seg, local, topo


def _protocol_runs(rois, y, groups, n_jobs):
    # The per-ROI cache defaults to "auto" (in-process); few trees keep the test fast.
    pipe = make_calcification_pipeline(classifier=make_default_lightgbm(0, n_estimators=20))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        search = grid_search(pipe, rois, y, groups, GRID, cv=3, n_jobs=n_jobs, random_state=0)
        protocol = evaluate_protocol(
            pipe,
            rois,
            y,
            groups,
            PROTOCOL_GRID,
            cv=2,
            n_bootstrap=20,
            n_jobs=n_jobs,
            random_state=0,
        )
    return search, protocol


@pytest.fixture(scope="module")
def serial_runs(lazy_cohort):
    rois, y, groups = lazy_cohort
    MEMORY_FRONT.clear()
    with pytest.MonkeyPatch.context() as mp:
        spy = _spy(mp)
        # One BLAS/OpenMP thread, as inside the workers, so that floating-point reductions
        # run in the same order.
        with threadpool_limits(limits=1):
            stages = _image_stages(rois, n_jobs=1)
            n_stage_reads = len(spy.on_worker)
            search, protocol = _protocol_runs(rois, y, groups, n_jobs=1)
    MEMORY_FRONT.clear()
    assert spy.on_worker and not any(spy.on_worker)
    return stages, search, protocol, n_stage_reads


@pytest.fixture(scope="module")
def dask_runs(client, lazy_cohort, serial_runs):
    rois, y, groups = lazy_cohort
    MEMORY_FRONT.clear()
    out = {}
    with pytest.MonkeyPatch.context() as mp, joblib.parallel_config(backend="dask"):
        spy = _spy(mp)
        # The task stream is collected when its context exits.
        with distributed.get_task_stream(client) as ts:
            out["stages"] = _image_stages(rois, n_jobs=-1)
        out["stage_reads"], out["stage_tasks"] = list(spy.on_worker), len(ts.data)
        with distributed.get_task_stream(client) as ts:
            out["search"], out["protocol"] = _protocol_runs(rois, y, groups, n_jobs=-1)
        out["all_reads"], out["protocol_tasks"] = list(spy.on_worker), len(ts.data)
    MEMORY_FRONT.clear()
    return out


def test_image_stages_on_dask_equal_serial(lazy_cohort, serial_runs, dask_runs):
    rois = lazy_cohort[0]
    (seg1, local1, topo1), _, _, n_reads = serial_runs
    seg2, local2, topo2 = dask_runs["stages"]
    # Every image read happened on a worker (the segmenter and the local features read
    # each ROI's image), as many as in the serial run.
    assert n_reads >= 2 * len(rois)
    assert dask_runs["stage_reads"] == [True] * n_reads
    assert dask_runs["stage_tasks"] >= 4
    for a, b in zip(seg1, seg2):
        assert a.roi_id == b.roi_id and b.is_lazy
        np.testing.assert_array_equal(a.calcifications, b.calcifications)
    for a, b in zip(local1, local2):
        assert a.roi_id == b.roi_id and list(a) == list(b)
        for name in a:
            np.testing.assert_array_equal(a[name], b[name])
    np.testing.assert_array_equal(topo1, topo2)
    assert sum(t.n_objects for t in local1) > len(rois)


def test_grid_search_on_dask_equals_serial(serial_runs, dask_runs):
    _, s1, _, _ = serial_runs
    s2 = dask_runs["search"]
    assert s1.best_params_ == s2.best_params_
    for key, values in s1.cv_results_.items():
        if key.startswith(("mean_test_", "split")) and "test" in key:
            np.testing.assert_array_equal(values, s2.cv_results_[key], err_msg=key)
    assert not np.isnan(s1.cv_results_["mean_test_sensitivity"]).any()
    # The grid search and the protocol re-read the images, on workers only.
    assert len(dask_runs["all_reads"]) > len(dask_runs["stage_reads"])
    assert all(dask_runs["all_reads"])
    assert dask_runs["protocol_tasks"] >= 12


def test_protocol_on_dask_equals_serial(serial_runs, dask_runs):
    _, _, p1, _ = serial_runs
    p2 = dask_runs["protocol"]
    assert p1.best_params == p2.best_params
    np.testing.assert_array_equal(p1.test_index, p2.test_index)
    np.testing.assert_array_equal(p1.y_score, p2.y_score)
    assert p1.report["metrics"]["roc_auc"]["value"] == p2.report["metrics"]["roc_auc"]["value"]
    assert len(p1.y_score) > 0
