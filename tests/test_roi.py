import pickle

import numpy as np
import pytest

from skcalc import ROI, ROIValidationError
from skcalc.roi import as_roi_list, bright_image, check_roi, reflect


def _roi(**kw):
    kw.setdefault("meta", {"roi_id": "case-7"})
    return ROI(np.arange(20, dtype=np.uint16).reshape(4, 5), **kw)


def test_scalar_spacing_becomes_pair_and_replace_keeps_other_fields():
    roi = _roi(spacing=0.05)
    assert roi.spacing == (0.05, 0.05)
    lab = np.zeros((4, 5), np.int32)
    new = roi.replace(calcifications=lab)
    assert new is not roi and roi.calcifications is None
    assert new.spacing == (0.05, 0.05) and new.roi_id == "case-7"
    np.testing.assert_array_equal(new.image, roi.image)


def test_records_are_immutable_and_do_not_touch_caller_arrays():
    img = np.zeros((4, 5))
    roi = ROI(img)
    with pytest.raises(AttributeError):
        roi.spacing = (1, 1)
    assert img.flags.writeable
    with pytest.raises(ValueError):
        roi.image[0, 0] = 1


def test_pickle_round_trip():
    roi = _roi(region=np.ones((4, 5), bool))
    back = pickle.loads(pickle.dumps(roi))
    np.testing.assert_array_equal(back.image, roi.image)
    assert back.roi_id == roi.roi_id and back.region.all()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"image": np.zeros(5)}, "must be 2-D"),
        ({"image": np.zeros((0, 3))}, "empty"),
        ({"image": np.array([[0.0, np.nan]])}, "NaN or infinite"),
        ({"image": np.zeros((2, 2)), "spacing": (0.07, 0)}, "spacing"),
        ({"image": np.zeros((2, 2)), "spacing": (0.07, -1)}, "spacing"),
        ({"image": np.zeros((2, 2)), "region": np.ones((3, 3), bool)}, "region has shape"),
        ({"image": np.zeros((2, 2)), "reference": np.ones((2, 3), bool)}, "reference"),
        ({"image": np.zeros((2, 2)), "region": np.zeros((2, 2), bool)}, "region mask is empty"),
        ({"image": np.zeros((2, 2)), "region": np.array([[1.0, np.nan], [0, 0]])}, "NaN"),
    ],
)
def test_validation_errors_name_the_roi(kwargs, message):
    # Bad spacings are refused when the record is built, the rest when it is checked.
    with pytest.raises(ROIValidationError, match=f"'bad-roi'.*{message}"):
        check_roi(ROI(meta={"roi_id": "bad-roi"}, **kwargs))


@pytest.mark.parametrize("spacing", [5.0, 70, (0.07, 7.0), 0.001])
def test_implausible_spacing_is_refused_before_any_work(spacing):
    with pytest.raises(ROIValidationError, match="'r'.*plausible range"):
        ROI(np.zeros((4, 4)), spacing=spacing, meta={"roi_id": "r"})


def test_plausible_spacing_widens_the_range_inside_the_block_only():
    from skcalc import plausible_spacing

    with plausible_spacing(0.01, 10):
        assert ROI(np.zeros((4, 4)), spacing=5.0).spacing == (5.0, 5.0)
    with pytest.raises(ROIValidationError):
        ROI(np.zeros((4, 4)), spacing=5.0)


def test_record_owns_its_arrays():
    # A record never follows later changes to the caller's arrays, and never changes them.
    img = np.zeros((4, 4), np.uint16)
    lab = np.zeros((4, 4), np.int32)
    roi = ROI(img, calcifications=lab)
    img[0, 0] = 9
    lab[1, 1] = 2
    assert roi.image[0, 0] == 0 and roi.calcifications[1, 1] == 0
    assert img.flags.writeable and lab.flags.writeable
    assert not roi.image.flags.writeable
    # Arrays that are already frozen are shared, not copied again.
    assert roi.replace(meta={"roi_id": "x"}).image is roi.image


def test_missing_required_field_is_named():
    with pytest.raises(ROIValidationError, match="case-7.*calcifications"):
        check_roi(_roi(), require=("calcifications",))


def test_lazy_roi_reads_its_box_on_access(tmp_path):
    img = np.arange(100, dtype=np.uint16).reshape(10, 10)
    path = tmp_path / "img.npy"
    np.save(path, img)
    roi = ROI(path=path, box=(2, 5, 3, 7), spacing=0.1)
    assert roi.is_lazy and roi.shape == (3, 4)
    np.testing.assert_array_equal(roi.image, img[2:5, 3:7])
    loaded = roi.load()
    assert not loaded.is_lazy
    np.testing.assert_array_equal(loaded.image, img[2:5, 3:7])
    # replace() keeps a lazy record lazy (the image is not read into the new record)
    assert roi.replace(meta={"roi_id": "x"}).is_lazy


def test_roi_without_image_or_path_is_refused():
    with pytest.raises(ValueError, match="needs an image or a path"):
        ROI(meta={"roi_id": "empty"})


def test_as_roi_list_refuses_arrays_and_single_records():
    with pytest.raises(TypeError, match="list of skcalc.ROI"):
        as_roi_list(np.zeros((3, 4, 4)))
    with pytest.raises(TypeError, match="single ROI"):
        as_roi_list(_roi())
    with pytest.raises(ValueError, match="at least one"):
        as_roi_list([])
    assert len(as_roi_list((_roi(), _roi()))) == 2


class _Dots:
    """A lazy reference as loaders give one: a shape, and a mask made on each call."""

    def __init__(self, shape, dots):
        self.shape, self.dots, self.calls = shape, dots, 0

    def materialise(self):
        self.calls += 1
        mask = np.zeros(self.shape, bool)
        mask[tuple(np.transpose(self.dots))] = True
        return mask


def test_lazy_reference_is_rasterised_on_each_access_only():
    src = _Dots((4, 5), [(1, 2), (3, 4)])
    roi = _roi(reference=src)
    # shape, validation, repr, replace and pickling all go without the mask
    assert roi.shape == (4, 5) and "reference" in repr(roi)
    check_roi(roi, require=("reference",))
    new = roi.replace(meta={"roi_id": "x"})
    assert new._reference is src
    back = pickle.loads(pickle.dumps(roi))
    assert isinstance(back._reference, _Dots) and back._reference.calls == 0
    assert src.calls == 0
    # each access rasterises anew; nothing is kept in the record
    expected = src.materialise()
    for r in (roi, new, back):
        np.testing.assert_array_equal(r.reference, expected)
        assert not r.reference.flags.writeable
    assert src.calls == 1 + 2 * 2 and not isinstance(roi._reference, np.ndarray)


def test_lazy_reference_hashes_as_its_mask():
    src = _Dots((4, 5), [(1, 2)])
    fields = ("image", "region", "calcifications", "reference", "masks")
    eager = _roi(reference=src.materialise())
    assert _roi(reference=src).content_hash(fields) == eager.content_hash(fields)
    other = _roi(reference=_Dots((4, 5), [(1, 3)]))
    assert other.content_hash(fields) != eager.content_hash(fields)


def test_lazy_reference_of_another_shape_is_refused(tmp_path):
    src = _Dots((4, 6), [(1, 2)])
    with pytest.raises(ROIValidationError, match=r"'case-7'.*reference has shape \(4, 6\)"):
        check_roi(_roi(reference=src))
    # a lazy image with a box is checked without reading it or rasterising the mask
    lazy = ROI(path=tmp_path / "absent.npy", box=(0, 4, 0, 5), reference=src)
    with pytest.raises(ROIValidationError, match=r"reference has shape \(4, 6\), image has"):
        check_roi(lazy, load_image=False)
    assert src.calls == 0


def test_lazy_reference_making_another_shape_is_refused_on_access():
    class Liar(_Dots):
        def materialise(self):
            return np.zeros((2, 2), bool)

    roi = _roi(reference=Liar((4, 5), []))
    check_roi(roi)  # the declared shape agrees ...
    with pytest.raises(ROIValidationError, match=r"'case-7'.*shape \(2, 2\), not \(4, 5\)"):
        _ = roi.reference  # ... the mask made on access does not


def test_bright_image_reflects_what_the_segmenter_inverted():
    roi = _roi()
    assert bright_image(roi) is roi.image
    flipped = roi.replace(meta={"roi_id": "case-7", "inversion_top": 4095})
    np.testing.assert_array_equal(bright_image(flipped), 4095 - roi.image)
    assert bright_image(flipped).dtype == np.uint16
    f = roi.replace(image=roi.image.astype(np.float32) / 7,
                    meta={"inversion_top": 3.5})
    np.testing.assert_allclose(bright_image(f), np.float32(3.5) - f.image)
    assert bright_image(f).dtype == np.float32
    signed = reflect(np.array([-5, 0, 7], np.int16), 4095)
    assert signed.tolist() == [4100, 4095, 4088] and signed.dtype == np.int32


def test_the_inversion_keys_caches_only_when_there_is_one():
    roi = _roi()
    assert roi.content_hash(("image", "inversion")) == roi.content_hash(("image",))
    flipped = roi.replace(meta={"roi_id": "other", "inversion_top": 4095})
    assert flipped.content_hash(("image",)) == roi.content_hash(("image",))
    assert flipped.content_hash(("image", "inversion")) != roi.content_hash(("image",))
    other = roi.replace(meta={"inversion_top": 65535})
    assert other.content_hash(("inversion",)) != flipped.content_hash(("inversion",))
