"""Which way round an image is (breast brighter or darker than the air), and what the
segmenter does with a dark breast."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from skcalc import ROI
from skcalc.datasets import make_full_field_mammogram
from skcalc.exceptions import SkcalcWarning
from skcalc.roi import bright_image
from skcalc.segmentation import HDoGRegSegmenter, breast_polarity
from skcalc.segmentation._filter import roi_candidates
from skcalc.segmentation._polarity import orient_breast

SP = 0.1


@pytest.fixture(scope="module")
def field():
    """A synthetic 77 x 64 mm field at 0.1 mm (12 bit, breast bright, air dark)."""
    return make_full_field_mammogram((768, 640), spacing=SP, n_clusters=2, random_state=2)


@pytest.fixture(scope="module")
def image(field):
    return np.asarray(field.image)


# ------------------------------------------------------------------ breast_polarity
def test_a_mammogram_its_inversion_and_raw_exposure(image):
    x = image.astype(np.float64)
    assert breast_polarity(image, SP) == "bright"
    assert breast_polarity(4095 - image, SP) == "dark"
    # linear exposure ("for processing"): highest in the air, which saturates
    raw = np.minimum(16383 * np.exp(-x / 2000) * 1.2, 16383)
    assert breast_polarity(raw, SP) == "dark"


def test_without_air_or_structure_it_cannot_tell(image):
    rng = np.random.default_rng(0)
    breast = ndimage.binary_erosion(image > 1000, iterations=80)
    rows, cols = np.nonzero(breast)
    r, c = rows[len(rows) // 2], cols[len(cols) // 2]
    crop = image[r - 60:r + 60, c - 60:c + 60]  # 12 mm inside the breast
    assert breast_polarity(crop, SP) == "unknown"
    assert breast_polarity(rng.normal(size=(500, 500)), SP) == "unknown"
    assert breast_polarity(np.full((300, 300), 7), SP) == "unknown"
    assert breast_polarity(np.zeros((3, 3)), SP) == "unknown"


def test_flat_bright_regions_are_not_taken_for_air(image):
    """A correctly oriented image with a large flat bright region (an implant inside the
    breast, a clear-film or shutter band at the border) is never called dark."""
    implant = image.copy()
    breast = image > 1000
    rows, cols = np.nonzero(breast)
    yy, xx = np.ogrid[: image.shape[0], : image.shape[1]]
    disc = (yy - rows.mean()) ** 2 + (xx - cols.mean()) ** 2 < 180**2
    implant[disc & breast] = 4000
    assert breast_polarity(implant, SP) != "dark"
    for width in (60, 120, 200):
        band = image.copy()
        band[:width] = 4095
        band[-width:] = 4095
        assert breast_polarity(band, SP) != "dark"


@settings(max_examples=12, deadline=None)
@given(gain=st.floats(0.01, 100), offset=st.floats(-5000, 5000), sign=st.sampled_from([1, -1]))
def test_linear_changes_keep_or_swap_the_answer(image, gain, offset, sign):
    x = image.astype(np.float64)
    want = "bright" if sign > 0 else "dark"
    assert breast_polarity(sign * gain * x + offset, SP) == want


def test_bad_arguments(image):
    with pytest.raises(ValueError, match="2-D"):
        breast_polarity(np.zeros(10), SP)
    with pytest.raises(ValueError, match="block_mm"):
        breast_polarity(image, SP, block_mm=0)
    with pytest.raises(ValueError, match="polarity"):
        orient_breast(image, SP, "up")


# -------------------------------------------------------------------- orient_breast
def test_orient_reflects_integers_within_their_bit_depth(image):
    inverted = (4095 - image).astype(np.uint16)
    back, found, top = orient_breast(inverted, SP, "auto", bit_depth=12)
    assert (found, top) == ("dark", 4095)
    assert back.dtype == np.uint16
    np.testing.assert_array_equal(back, image)
    same, found, top = orient_breast(image, SP, "auto", bit_depth=12)
    assert (found, top) == ("bright", None) and same is image
    forced, found, top = orient_breast(image, SP, "dark")
    assert (found, top) == ("dark", image.max())
    np.testing.assert_array_equal(forced, image.max() - image)
    f = image.astype(np.float32)
    back, _, top = orient_breast(f, SP, "dark")
    np.testing.assert_array_equal(back, f.max() - f)
    assert back.dtype == np.float32 and top == float(f.max())
    signed = orient_breast(image.astype(np.int16), SP, "dark", bit_depth=12)[0]
    np.testing.assert_array_equal(signed, 4095 - image.astype(np.int32))


# ------------------------------------------------------------------------ segmenter
def _segment(img, **kw):
    roi = ROI(img, spacing=SP, meta={"roi_id": "view", "bits_stored": 12})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = HDoGRegSegmenter(**kw).fit_transform([roi])[0]
    return out, [w for w in caught if issubclass(w.category, SkcalcWarning)]


@pytest.mark.parametrize("threshold", ["auto", "authors"])
def test_an_inverted_image_is_segmented_as_the_original(image, threshold):
    kw = {"threshold": threshold} if threshold == "auto" else {
        "threshold": threshold, "regressor": None}
    plain, quiet = _segment(image, **kw)
    flipped, said = _segment((4095 - image).astype(np.uint16), **kw)
    assert plain.calcifications.max() > 0
    np.testing.assert_array_equal(flipped.calcifications, plain.calcifications)
    assert plain.meta["segmentation"]["polarity"] == "bright"
    assert plain.meta["segmentation"]["inverted"] is False
    assert flipped.meta["segmentation"]["polarity"] == "dark"
    assert flipped.meta["segmentation"]["inverted"] is True
    assert not quiet
    assert len(said) == 1 and "'view'" in str(said[0].message)
    assert "darker than the air" in str(said[0].message)
    # the record keeps the pixels it was given, and the reflection that makes them bright
    np.testing.assert_array_equal(flipped.image, 4095 - image)
    assert flipped.meta["inversion_top"] == 4095 and "inversion_top" not in plain.meta
    np.testing.assert_array_equal(bright_image(flipped), image)
    # segmenting the record again as given forgets the previous run's reflection
    again, _ = _segment(flipped.image, polarity="bright")
    assert "inversion_top" not in again.meta


def test_polarity_bright_and_dark_are_obeyed_silently(image):
    inverted = (4095 - image).astype(np.uint16)
    plain, _ = _segment(image)
    as_given, said = _segment(inverted, polarity="bright")
    assert not said
    assert as_given.meta["segmentation"]["inverted"] is False
    assert not np.array_equal(as_given.calcifications, plain.calcifications)
    forced, said = _segment(inverted, polarity="dark")
    assert not said
    assert forced.meta["segmentation"]["inverted"] is True
    np.testing.assert_array_equal(forced.calcifications, plain.calcifications)
    with pytest.raises(ValueError, match="polarity"):
        HDoGRegSegmenter(polarity="up").fit([ROI(image, spacing=SP)])


def test_own_images_candidates_are_found_the_segmenters_way(image):
    """fit_candidate_filter's candidates of an inverted image are the original's."""
    plain = ROI(image, spacing=SP, meta={"roi_id": "a", "bits_stored": 12})
    flipped = plain.replace(image=(4095 - image).astype(np.uint16))
    Xa, ya, area_a = roi_candidates(plain, labelled=False)
    Xb, yb, area_b = roi_candidates(flipped, labelled=False)
    assert Xa.shape[0] > 0
    np.testing.assert_array_equal(Xa, Xb)
    assert area_a == area_b


def test_bright_padding_does_not_change_the_objects(image):
    """An image padded with its maximum (a larger frame, a shutter) is segmented as the
    original: the padding is not taken for the breast."""
    plain, _ = _segment(image)
    H, W = image.shape
    padded = np.full((H, W + 300), 4095, np.uint16)
    padded[:, :W] = image
    out, _ = _segment(padded)
    np.testing.assert_array_equal(out.calcifications[:, :W], plain.calcifications)
    assert not out.calcifications[:, W:].any()
    assert out.meta["segmentation"]["breast_area_cm2"] == pytest.approx(
        plain.meta["segmentation"]["breast_area_cm2"])


def test_boxes_of_an_inverted_file_are_its_whole_segmentation(image, tmp_path):
    """Lazy ROIs (path + box) are segmented on their whole file: the file's polarity is
    decided there, not on the box (which has no air)."""
    from PIL import Image

    path = tmp_path / "inverted.png"
    Image.fromarray((4095 - image).astype(np.uint16)).save(path)
    whole, _ = _segment(image)
    box = (200, 456, 100, 356)
    assert whole.calcifications[200:456, 100:356].any()
    roi = ROI(path=path, box=box, spacing=SP, meta={"roi_id": "box", "bits_stored": 12})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = HDoGRegSegmenter().fit_transform([roi])[0]
    assert out.meta["segmentation"]["inverted"] is True
    assert any("'box'" in str(w.message) for w in caught)
    np.testing.assert_array_equal(out.calcifications > 0,
                                  whole.calcifications[200:456, 100:356] > 0)
    assert out.meta["inversion_top"] == 4095
    np.testing.assert_array_equal(bright_image(out), image[200:456, 100:356])


def test_stages_after_the_segmenter_measure_the_pixels_it_segmented(image):
    """Local features, the overlay and the CNN input of an inverted image are the original's:
    they read the pixels through :func:`skcalc.roi.bright_image`."""
    from skcalc import LocalFeatureExtractor, MaskBuilder
    from skcalc.deep import roi_to_array
    from skcalc.plotting import overlay_rgb

    crop = (slice(150, 550), slice(60, 460))  # the field's two clusters, with some air
    plain, _ = _segment(image)
    flipped, _ = _segment((4095 - image).astype(np.uint16))
    rois = [r.replace(image=r.image[crop], calcifications=r.calcifications[crop])
            for r in (plain, flipped)]
    assert rois[0].calcifications.max() >= 5
    masked = MaskBuilder().fit_transform(rois)
    ext = LocalFeatureExtractor(feature_sets=("fg_radiomics", "bg_radiomics"))
    a, b = ext.fit_transform(masked)
    for name in ("fg_radiomics", "bg_radiomics"):
        np.testing.assert_allclose(b[name], a[name], rtol=1e-10, equal_nan=True)
    # without the reflection the features are those of dark calcifications
    as_given = masked[1].replace(meta={"roi_id": "view"})
    c = ext.transform([as_given])[0]
    assert not np.allclose(c["fg_radiomics"], a["fg_radiomics"], equal_nan=True)
    np.testing.assert_array_equal(overlay_rgb(rois[1]), overlay_rgb(rois[0]))
    np.testing.assert_array_equal(roi_to_array(rois[1], input_size=64),
                                  roi_to_array(rois[0], input_size=64))
