"""Tests of skcalc.masks: disks, exact multi-scale connectivity, MaskBuilder."""

import itertools
import pickle

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import ndimage as ndi
from sklearn.base import clone
from sklearn.utils.estimator_checks import (
    check_get_params_invariance,
    check_no_attributes_set_in_init,
    check_param_validation,
    check_parameters_default_constructible,
)

from skcalc import ROI, ROIValidationError, SkcalcWarning
from skcalc import masks as masks_module
from skcalc.masks import (
    DEFAULT_SCALES,
    CalcificationMasks,
    MaskBuilder,
    build_masks,
    dilate_disk,
    disk_footprint,
    merge_lookup_table,
    multiscale_merge_index,
)


def brief_footprint(r, spacing):
    """Disk footprint written from the definition, independently of skcalc."""
    sy, sx = spacing
    hy = int(r / sy) + 2
    hx = int(r / sx) + 2
    dy, dx = np.mgrid[-hy : hy + 1, -hx : hx + 1]
    # Same 1e-9 relative tolerance as skcalc.masks.DISK_RTOL (points on the circle inside).
    return (dy * sy) ** 2 + (dx * sx) ** 2 <= r**2 * (1 + 1e-9)


def brute_merge_index(labels, spacing, scales):
    """Dilate each object separately on a padded canvas and test pairwise overlap."""
    n = int(labels.max())
    s_count = len(scales)
    out = np.full((n, n), s_count, int)
    np.fill_diagonal(out, 0)
    for k in range(s_count - 1, -1, -1):
        fp = brief_footprint(scales[k], spacing)
        pad = max(fp.shape) + 1
        padded = np.pad(labels, pad)
        dil = [ndi.binary_dilation(padded == i, structure=fp) for i in range(1, n + 1)]
        for i, j in itertools.combinations(range(n), 2):
            if (dil[i] & dil[j]).any():
                out[i, j] = out[j, i] = k
    return out


@st.composite
def label_images(draw):
    h = draw(st.integers(8, 40))
    w = draw(st.integers(8, 40))
    n = draw(st.integers(0, 5))
    lab = np.zeros((h, w), np.int32)
    for i in range(1, n + 1):
        k = draw(st.integers(1, 6))
        for _ in range(k):  # a few random rectangles per object, possibly disconnected
            r0 = draw(st.integers(0, h - 1))
            c0 = draw(st.integers(0, w - 1))
            r1 = min(h, r0 + draw(st.integers(1, 4)))
            c1 = min(w, c0 + draw(st.integers(1, 4)))
            lab[r0:r1, c0:c1] = i
    # Relabel consecutively (later objects may have overwritten earlier ones).
    ids = np.unique(lab[lab > 0])
    lut = np.zeros(n + 1, np.int32)
    lut[ids] = np.arange(1, ids.size + 1)
    return lut[lab]


spacings = st.tuples(st.floats(0.05, 0.2), st.floats(0.05, 0.2)) | st.just((0.07, 0.07))


@st.composite
def scale_lists(draw):
    vals = draw(st.lists(st.floats(0.0, 1.2), min_size=1, max_size=6, unique=True))
    return np.array(sorted(vals))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(labels=label_images(), spacing=spacings, scales=scale_lists())
def test_merge_index_equals_brute_force(labels, spacing, scales):
    got = multiscale_merge_index(labels, spacing, scales)
    assert np.array_equal(got, brute_merge_index(labels, spacing, scales))


def test_merge_index_brute_force_isotropic_exact_distances():
    # Radii exactly on lattice distances (ties in the <= test) at unit and 0.07 mm spacing.
    rng = np.random.default_rng(0)
    for spacing, scales in [((1.0, 1.0), np.arange(8.0)), ((0.07, 0.07), np.arange(9) * 0.07)]:
        lab = np.zeros((30, 30), np.int32)
        for i in range(1, 7):
            r, c = rng.integers(0, 28, 2)
            lab[r : r + rng.integers(1, 3), c : c + rng.integers(1, 3)] = i
        ids = np.unique(lab[lab > 0])
        lut = np.zeros(7, np.int32)
        lut[ids] = np.arange(1, ids.size + 1)
        lab = lut[lab]
        assert np.array_equal(
            multiscale_merge_index(lab, spacing, scales), brute_merge_index(lab, spacing, scales)
        )


def test_merge_index_blocked_computation(monkeypatch):
    import skcalc.masks as masks

    rng = np.random.default_rng(2)
    lab = np.zeros((60, 60), np.int32)
    for i in range(1, 9):
        r, c = rng.integers(0, 52, 2)
        lab[r : r + rng.integers(2, 8), c : c + rng.integers(2, 8)] = i
    lab = ndi.label(lab > 0, structure=[[0, 1, 0], [1, 1, 1], [0, 1, 0]])[0]
    scales = np.arange(0, 1.3, 0.1)
    full = multiscale_merge_index(lab, (0.1, 0.1), scales)
    monkeypatch.setattr(masks, "_BLOCK", 7)  # a few rows of points per block
    assert np.array_equal(multiscale_merge_index(lab, (0.1, 0.1), scales), full)
    assert np.array_equal(full, brute_merge_index(lab, (0.1, 0.1), scales))


def test_merge_index_known_answers():
    lab = np.zeros((20, 20), np.int32)
    lab[5, 5] = 1
    lab[5, 10] = 2  # 5 px along a row: joined when 2 * floor(r) >= 5, r = 3
    lab[6, 6] = 3  # diagonal neighbour of 1: joined at r = 1 (cross + cross holds (1, 1))
    mi = multiscale_merge_index(lab, (1.0, 1.0), np.arange(7.0))
    assert mi[0, 1] == 3
    assert mi[0, 2] == 1
    assert mi[0, 0] == 0 and np.array_equal(mi, mi.T)
    # Never joined within the scales -> len(scales).
    assert multiscale_merge_index(lab, (1.0, 1.0), [0.0, 0.5])[0, 1] == 2
    # Anisotropic spacing: 5 columns at 0.1 mm = 0.5 mm, joined at 0.3 mm (2*3 columns >= 5).
    mi = multiscale_merge_index(lab, (1.0, 0.1), [0.1, 0.2, 0.3])
    assert mi[0, 1] == 2


def test_merge_index_zero_one_objects_and_types():
    assert multiscale_merge_index(np.zeros((5, 5), int)).shape == (0, 0)
    one = np.zeros((5, 5), int)
    one[2, 2] = 1
    assert multiscale_merge_index(one).tolist() == [[0]]
    with pytest.raises(TypeError):
        multiscale_merge_index(np.zeros((5, 5)))
    with pytest.raises(ValueError, match="increasing"):
        multiscale_merge_index(one, (1, 1), [0.2, 0.1])


def test_lookup_table_is_monotone_and_matches_minkowski_sum():
    spacing, scales = (0.1, 0.07), np.array([0.0, 0.1, 0.25, 0.4])
    t = merge_lookup_table(spacing, scales)
    assert (np.diff(t.astype(int), axis=0) >= 0).all()
    assert (np.diff(t.astype(int), axis=1) >= 0).all()
    for k, r in enumerate(scales):
        fp = brief_footprint(r, spacing)
        dd = ndi.binary_dilation(np.pad(fp, fp.shape[0]), structure=fp)
        cy, cx = dd.shape[0] // 2, dd.shape[1] // 2
        ys, xs = np.nonzero(dd)
        vy, vx = np.abs(ys - cy), np.abs(xs - cx)
        assert (t[vy, vx] <= k).all()
        inside = np.zeros(t.shape, bool)
        inside[vy, vx] = True
        assert (t[~inside] > k).all()


@pytest.mark.parametrize("spacing", [(1.0, 1.0), (0.07, 0.07), (0.1, 0.05)])
@pytest.mark.parametrize("radius", [0.0, 0.06, 0.07, 0.3, 1.0, 2.5])
def test_disk_and_dilation_match_definition(radius, spacing):
    fp = disk_footprint(radius, spacing)
    ref = brief_footprint(radius, spacing)
    # Same set of offsets (reference is a larger centred array).
    ry, rx = (np.array(ref.shape) - np.array(fp.shape)) // 2
    assert np.array_equal(ref[ry : ry + fp.shape[0], rx : rx + fp.shape[1]], fp)
    assert fp.sum() == ref.sum()
    rng = np.random.default_rng(1)
    mask = rng.random((25, 31)) < 0.03
    assert np.array_equal(dilate_disk(mask, radius, spacing), ndi.binary_dilation(mask, ref))


def test_disk_footprint_known():
    assert disk_footprint(0.0).tolist() == [[True]]
    assert disk_footprint(0.9).tolist() == [[True]]
    assert disk_footprint(np.sqrt(2)).sum() == 9
    assert disk_footprint(2.0, (0.07, 0.07)).shape == (57, 57)


def make_roi(calc, region=None, spacing=0.07, rid="r"):
    return ROI(
        np.zeros(calc.shape, np.uint16),
        spacing,
        region=region,
        calcifications=calc,
        meta={"roi_id": rid},
    )


def test_build_masks_region_overlap_relabel_and_min_size():
    calc = np.zeros((12, 12), np.int32)
    calc[1, 8:11] = 9  # component partly in the region: kept whole
    calc[6:8, 2:4] = 3  # inside
    calc[10, 10] = 4  # outside
    calc[0, 0] = 1  # inside but tiny
    region = np.zeros((12, 12), bool)
    region[:9, :9] = True
    m = build_masks(calc, (0.1, 0.1), region=region, scales=[0.0, 0.1])
    assert m.n_objects == 3
    assert m.foreground[0, 0] == 1 and m.foreground[1, 10] == 2 and m.foreground[7, 3] == 3
    assert m.foreground[10, 10] == 0
    assert (m.foreground[1, 8:11] == 2).all()
    m2 = build_masks(calc, (0.1, 0.1), region=region, scales=[0.0], min_size=0.02)
    assert m2.n_objects == 2  # the one-pixel object (0.01 mm2) dropped
    # Touching segmented objects are one 4-connected object; diagonal ones stay apart.
    calc2 = np.zeros((5, 5), np.int32)
    calc2[1, 1], calc2[1, 2], calc2[2, 3] = 1, 2, 3
    m3 = build_masks(calc2, 1.0, scales=[0.0, 1.0])
    assert m3.n_objects == 2 and m3.merge_index[0, 1] == 1


def test_dilated_equals_union_of_object_dilations():
    calc = np.zeros((40, 40), np.int32)
    calc[5:7, 5:7] = 1
    calc[20, 30] = 2
    calc[35, 2:5] = 3
    m = build_masks(calc, (0.1, 0.07), scales=[0.0, 0.2, 0.5])
    for k, r in enumerate(m.scales):
        ref = ndi.binary_dilation(calc > 0, brief_footprint(r, (0.1, 0.07)))
        assert np.array_equal(m.dilated(k), ref)
    assert np.array_equal(m.dilated(0), calc > 0)


def scattered_objects():
    calc = np.zeros((40, 50), np.int32)
    calc[5:7, 5:7] = 1
    calc[5, 10] = 2
    calc[20, 30:33] = 3
    calc[35, 2] = 4
    calc[36:38, 45:48] = 5
    return calc


def test_merge_index_is_computed_on_first_access_only(count_calls):
    calls = count_calls(masks_module, "multiscale_merge_index")
    calc, spacing, scales = scattered_objects(), (0.1, 0.07), [0.0, 0.2, 0.5, 1.0]
    m = build_masks(calc, spacing, scales=scales)
    # What a per-object table uses does not need the pairwise connectivity.
    assert m.n_objects == 5 and "n_objects=5" in repr(m)
    assert len(list(m.object_windows())) == 5
    assert calls == []
    want = brute_merge_index(m.foreground, spacing, scales)
    assert np.array_equal(m.merge_index, want) and m.merge_index.dtype == np.int32
    assert m.merge_index is m.merge_index and len(calls) == 1  # once, then kept
    assert not m.merge_index.flags.writeable
    assert np.array_equal(m.adjacency(1), (want <= 1) & ~np.eye(5, dtype=bool))
    with pytest.raises(AttributeError):
        m.merge_index = want
    with pytest.raises(AttributeError):
        m.foreground = calc


def test_lazy_merge_index_pickles_and_hashes_like_a_given_one(count_calls):
    calls = count_calls(masks_module, "multiscale_merge_index")
    calc, spacing, scales = scattered_objects(), (0.07, 0.07), [0.0, 0.14, 0.7]
    lazy = build_masks(calc, spacing, scales=scales)
    assert calls == []
    # A pickled record (a worker's result, an on-disk cache entry) carries the matrix: it is
    # computed once, where the record was built, never again where it is read back.
    back = pickle.loads(pickle.dumps(lazy))
    assert len(calls) == 1
    assert np.array_equal(back.merge_index, lazy.merge_index) and len(calls) == 1
    given = CalcificationMasks(
        lazy.foreground, lazy.spacing, lazy.band_width, lazy.scales,
        multiscale_merge_index(lazy.foreground, spacing, scales),
    )  # fmt: skip
    assert given.content_hash() == build_masks(calc, spacing, scales=scales).content_hash()
    assert given.content_hash() == back.content_hash() == lazy.content_hash()
    # a given matrix is kept as given (never recomputed), whatever the foreground says
    fake = CalcificationMasks(calc, spacing, 1.0, scales, np.zeros((2, 2), int))
    assert fake.n_objects == 2 and fake.merge_index.tolist() == [[0, 0], [0, 0]]


def test_mask_builder_transform():
    calc = np.zeros((30, 30), np.int32)
    calc[3, 3] = 1
    calc[3, 8] = 2
    calc[25, 25] = 3
    region = np.zeros((30, 30), bool)
    region[:15, :15] = True
    rois = [make_roi(calc, region, rid="a"), make_roi(calc, None, 0.1, rid="b")]
    mb = MaskBuilder(scales=[0.0, 0.07, 0.14, 0.21])
    out = mb.fit_transform(rois)
    assert rois[0].masks is None  # inputs untouched
    assert [r.roi_id for r in out] == ["a", "b"]
    ma, mb_ = out[0].masks, out[1].masks
    assert isinstance(ma, CalcificationMasks)
    assert ma.n_objects == 2 and mb_.n_objects == 3
    assert ma.merge_index[0, 1] == 3  # 5 px apart: 2 * 3 px >= 5
    assert mb_.merge_index[0, 1] == 4  # 0.1 mm pixels: radius 0.21 mm covers 2 px only
    assert ma.band_width == 1.75 and ma.spacing == (0.07, 0.07)
    np.testing.assert_array_equal(mb.scales_, [0.0, 0.07, 0.14, 0.21])
    assert np.allclose(MaskBuilder().fit(rois).scales_, DEFAULT_SCALES)


def test_mask_builder_errors_and_warnings(tmp_path):
    no_calc = ROI(np.zeros((5, 5)), meta={"roi_id": "nocalc"})
    with pytest.raises(ROIValidationError, match="nocalc.*calcifications"):
        MaskBuilder().transform([no_calc])
    bad = make_roi(np.zeros((5, 5), float), rid="floaty")
    with pytest.raises(ROIValidationError, match="floaty.*integer"):
        MaskBuilder().transform([bad])
    with pytest.raises(ValueError, match="increasing"):
        MaskBuilder(scales=[0.1, 0.0]).transform([make_roi(np.zeros((5, 5), int))])
    with pytest.warns(SkcalcWarning, match="no calcification"):
        out = MaskBuilder().transform([make_roi(np.zeros((5, 5), int), rid="empty")])
    assert out[0].masks.n_objects == 0 and out[0].masks.merge_index.shape == (0, 0)


def test_mask_builder_memory_cache(tmp_path):
    calc = np.zeros((20, 20), np.int32)
    calc[2, 2] = 1
    calc[10, 12] = 2
    roi = make_roi(calc)
    mb = MaskBuilder(memory=str(tmp_path), scales=[0.0, 0.5])
    a = mb.transform([roi])[0].masks
    b = mb.transform([roi])[0].masks
    assert np.array_equal(a.merge_index, b.merge_index)
    assert np.array_equal(a.foreground, b.foreground)
    assert any(tmp_path.rglob("*.pkl"))
    # Changing a parameter changes the result (the key includes the parameters).
    c = MaskBuilder(memory=str(tmp_path), scales=[0.0, 0.7]).transform([roi])[0].masks
    assert c.scales.tolist() == [0.0, 0.7]


def test_mask_builder_parallel_same_result():
    from joblib import parallel_config

    rng = np.random.default_rng(5)
    rois = []
    for k in range(3):
        calc = np.zeros((40, 40), np.int32)
        for i in range(1, 6):
            r, c = rng.integers(0, 38, 2)
            calc[r : r + 2, c : c + 2] = i
        rois.append(make_roi(calc, rid=f"p{k}"))
    serial = MaskBuilder(scales=[0.0, 0.3, 0.6]).transform(rois)
    with parallel_config(backend="threading"):
        par = MaskBuilder(scales=[0.0, 0.3, 0.6], n_jobs=2).transform(rois)
    for a, b in zip(serial, par):
        assert a.roi_id == b.roi_id
        assert np.array_equal(a.masks.merge_index, b.masks.merge_index)


def test_mask_builder_sklearn_conventions():
    est = MaskBuilder()
    check_no_attributes_set_in_init("MaskBuilder", est)
    check_parameters_default_constructible("MaskBuilder", est)
    check_get_params_invariance("MaskBuilder", est)
    check_param_validation("MaskBuilder", est)
    tags = est.__sklearn_tags__()
    assert not tags.input_tags.two_d_array and not tags.requires_fit
    assert pickle.loads(pickle.dumps(clone(est))).get_params() == est.get_params()
