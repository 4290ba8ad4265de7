import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402
from PIL import Image  # noqa: E402

from skcalc import ROI  # noqa: E402
from skcalc.masks import build_masks  # noqa: E402
from skcalc.metrics import match_objects  # noqa: E402
from skcalc.plotting import (  # noqa: E402
    COLORS,
    object_agreement,
    overlay_rgb,
    plot_roi,
    save_overlay_png,
)


@pytest.fixture
def roi():
    """One detected object, one segmented-only object, one missed reference object."""
    rng = np.random.default_rng(0)
    image = 1000 + 50 * rng.random((100, 120))
    seg = np.zeros((100, 120), np.int32)
    seg[20:24, 20:24] = 1  # matches the reference
    seg[60:63, 80:83] = 2  # no reference here
    ref = np.zeros((100, 120), bool)
    ref[20:24, 21:25] = True
    ref[40:43, 50:53] = True  # missed
    region = np.zeros((100, 120), bool)
    region[5:90, 5:110] = True
    return ROI(image, spacing=0.1, region=region, calcifications=seg, reference=ref,
               meta={"roi_id": "r1"})


def _legend(ax):
    return [t.get_text() for t in ax.get_legend().get_texts()]


def _contour_colors(ax):
    out = set()
    for c in ax.collections:
        ec = c.get_edgecolor()
        if len(ec):
            out.add(to_hex(ec[0]).upper())
    return out


def test_object_agreement_follows_match_objects(roi):
    layers = object_agreement(roi.calcifications, roi.reference, roi.spacing)
    m = match_objects(roi.calcifications, roi.reference, spacing=roi.spacing,
                      fill_small_holes=False)
    assert layers["counts"] == {"detected": m["tp"], "segmented_only": m["fp"],
                                "reference_only": m["fn"]} == {
        "detected": 1, "segmented_only": 1, "reference_only": 1}
    assert layers["detected"][21, 21] and not layers["detected"][61, 81]
    assert layers["segmented_only"][61, 81] and layers["reference_only"][41, 51]
    # without a reference every segmented object is one layer
    assert object_agreement(roi.calcifications, None)["counts"] == {"segmented": 2}


def test_plot_roi_legend_colours_and_counts(roi):
    ax = plot_roi(roi)
    assert _legend(ax) == [
        "segmented + reference (1)", "segmented only (1)", "reference only (missed) (1)",
        "annotated region",
    ]
    colors = _contour_colors(ax)
    for key in ("detected", "segmented_only", "reference_only", "region"):
        assert COLORS[key].upper() in colors
    assert ax.get_title() == "r1: 2 calcifications"
    plt.close(ax.figure)


def test_plot_roi_background_band_layer(roi):
    masked = roi.replace(masks=build_masks(roi.calcifications, roi.spacing, band_width=0.5))
    ax = plot_roi(masked, show_background=True)
    assert "background bands" in _legend(ax)
    overlay = ax.images[1].get_array()
    np.testing.assert_array_equal(overlay[..., 3] > 0, masked.masks.background())
    plt.close(ax.figure)


def test_plot_roi_scale_bar_in_mm(roi):
    ax = plot_roi(roi)
    bars = [a for a in ax.artists if type(a).__name__ == "AnchoredSizeBar"]
    assert len(bars) == 1
    # 120 px at 0.1 mm = 12 mm wide; a fifth is 2.4 mm -> the round 2 mm, i.e. 20 px
    assert bars[0].txt_label.get_text() == "2 mm"
    rect = bars[0].size_bar.get_children()[0]
    assert rect.get_width() == pytest.approx(20.0)
    plt.close(ax.figure)


def test_plot_roi_probability_and_decision(roi):
    ax = plot_roi(roi, proba=0.73, threshold=0.4, y_true=0)
    title = ax.get_title()
    assert "P(actionable) = 0.73 ≥ threshold 0.40: actionable" in title
    assert "truth: benign (wrong)" in title
    assert to_hex(ax.spines["left"].get_edgecolor()).upper() == COLORS["actionable"].upper()
    plt.close(ax.figure)
    ax = plot_roi(roi, proba=0.1, threshold=0.4)
    assert "< threshold 0.40: benign" in ax.get_title()
    assert to_hex(ax.spines["left"].get_edgecolor()).upper() == COLORS["benign"].upper()
    plt.close(ax.figure)


@pytest.mark.parametrize(
    "kw", [{"threshold": 0.4}, {"proba": 1.5}, {"proba": 0.5, "threshold": -1}]
)
def test_plot_roi_rejects_bad_probabilities(roi, kw):
    with pytest.raises(ValueError):
        plot_roi(roi, **kw)


def test_plot_roi_own_figure_keeps_title_and_legend_inside(roi):
    ax = plot_roi(roi, proba=0.73, threshold=0.4, y_true=1)
    fig = ax.figure
    fig.canvas.draw()
    box = fig.bbox
    for artist in (ax.title, ax.get_legend()):
        ext = artist.get_window_extent()
        assert ext.y1 <= box.y1 - 2 and ext.y0 >= box.y0 and ext.x0 >= box.x0
    plt.close(fig)


def test_overlay_rgb_native_grid_rings_and_scale_bar(roi):
    rgb = overlay_rgb(roi)
    assert rgb.shape == roi.image.shape + (3,) and rgb.dtype == np.uint8
    grey = overlay_rgb(roi, show_calcifications=False, show_reference=False,
                       show_region=False, scale_bar=False)
    # object pixels keep their grey value; the ring just outside carries the colour
    np.testing.assert_array_equal(rgb[21, 21], grey[21, 21])
    assert grey[21, 21, 0] == grey[21, 21, 1] == grey[21, 21, 2]

    def hexof(p):
        return "#" + "".join(f"{int(v):02X}" for v in p)

    assert hexof(rgb[19, 21]) == COLORS["detected"].upper()  # above the detected object
    assert hexof(rgb[59, 81]) == COLORS["segmented_only"].upper()
    assert hexof(rgb[39, 51]) == COLORS["reference_only"].upper()
    region_edge = [hexof(rgb[5, c]) for c in range(5, 110)]
    n_yellow = sum(h == COLORS["region"].upper() for h in region_edge)
    assert 0.3 * len(region_edge) < n_yellow < 0.7 * len(region_edge)  # dashed
    # scale bar: 2 mm = 20 px of white in the lower-right corner
    bar = np.any(rgb != overlay_rgb(roi, scale_bar=False), axis=2)
    white = bar & np.all(rgb == 255, axis=2)
    rows = np.flatnonzero(white.any(axis=1))
    assert rows.min() > 80
    cols = np.flatnonzero(white[rows[0]])
    assert cols.max() - cols.min() + 1 == 20 and cols.min() > 90
    assert np.all(rgb[rows[0], cols.min() : cols.max() + 1] == 255)


def test_save_overlay_png(tmp_path, roi):
    path = tmp_path / "o.png"
    text = save_overlay_png(path, roi, proba=0.2, threshold=0.4)
    with Image.open(path) as im:
        assert im.size == (120, 100) and im.mode == "RGB"
        info = dict(im.text)
        assert im.info["dpi"][0] == pytest.approx(254.0, rel=1e-3)
        np.testing.assert_array_equal(np.asarray(im), overlay_rgb(roi))
    assert info == text
    assert "segmented only (1): #E69F00 outline" in info["skcalc:legend"]
    assert info["skcalc:scale_bar"].startswith("2 mm")
    assert info["skcalc:decision"] == "P(actionable) = 0.20 < threshold 0.40: benign"
    with pytest.raises(FileExistsError):
        save_overlay_png(path, roi)
    save_overlay_png(path, roi, overwrite=True)
    with pytest.raises(ValueError, match="PNG"):
        save_overlay_png(tmp_path / "o.jpg", roi)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.png"]  # no temporary left


def test_plot_roi_fills_objects_when_there_are_thousands():
    seg = np.zeros((200, 200), np.int32)
    seg[::4, ::4] = np.arange(1, 50 * 50 + 1).reshape(50, 50)  # 2500 one-pixel objects
    roi = ROI(np.random.default_rng(0).random((200, 200)), spacing=0.1, calcifications=seg)
    ax = plot_roi(roi)
    assert _legend(ax) == ["segmented (2500, filled)"]
    assert not ax.collections  # no contour
    filled = ax.images[1].get_array()
    np.testing.assert_array_equal(filled[..., 3] > 0, seg > 0)
    plt.close(ax.figure)


def test_plot_roi_legend_inside_on_a_figure_without_layout_engine(roi):
    fig, ax = plt.subplots(figsize=(5, 5))  # as callers that make their own figure
    plot_roi(roi, ax=ax)
    fig.canvas.draw()
    leg = ax.get_legend().get_window_extent()
    assert ax.get_window_extent().contains(leg.x0 + 1, leg.y0 + 1)
    assert fig.bbox.contains(leg.x0, leg.y0) and fig.bbox.contains(leg.x1, leg.y1)
    plt.close(fig)
