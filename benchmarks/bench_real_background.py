"""Segmentation on real breast tissue: false alarms, recall of inserted calcifications, cost.

Run: ``python benchmarks/bench_real_background.py [--rounds 2] [--plots docs/_static/realdata]``.

Data: the four real FFDM views of ``../shared/realdata/nyu-gmic-sample`` (read-only, never
copied; 12-bit processed PNGs, spacing unknown, assumed 0.07 and 0.1 mm). The left breast
(L-CC, L-MLO) has no finding.

1. **Power-law exponent** beta of each view: radially averaged spectrum of 256 x 256 patches
   fully inside the eroded breast, fitted in 0.1-1 cycles/mm at 0.1 mm.
2. **False alarms**: objects per cm^2 of breast (``(image > 0)`` pixels, as
   ``real_tissue_check.py``) of the default ``HDoGRegSegmenter()`` on L-CC and L-MLO, at
   each spacing (0.07 and 0.1 mm assumed; 0.2 mm: 2 x 2 block averages), plus the other
   operating points, the presets with the filter's table as it is
   (``fp_calibration="filter"``, ``*_filter_calibration``) and the authors' rule for
   reference (and, with ``--compare``, other candidate-filter files in the same run).
   ``--fp-calibration filter`` runs every segmenter of the benchmark that way.
3. **Recall on a real background**: clusters of 8 calcifications (disc-shaped projected
   spheres, ``(1 - r^2)^0.5`` profile, diameter 0.1-1 mm, blurred by a 0.05 mm Gaussian
   PSF) are added to the L-CC and L-MLO images, 12 mm apart, away from the breast edge.
   **Contrast** is set relative to the image's own noise at calcification scale: the
   blurred peak is ``c`` times the noise sd that skcalc measures on the image
   (``meta["segmentation"]["pixel_noise_sd"]``: the robust sd of the finest DoG inside the
   breast, converted to the pixel sd of white noise with the same DoG response; it includes
   the fine tissue texture and the noise correlation of these processed images, so it is
   larger than the first-difference pixel noise, which is also printed), ``c`` in
   {2, 3, 5, 8}: 2-3 is a faint amorphous-like calcification at the noise level of its
   scale, 8 a clearly visible one. The absolute peak contrasts are printed (counts of the
   12-bit image). A calcification is found when a detected object touches its footprint
   (dilated by one pixel). Recall is reported per size and contrast, and pooled. So are the
   objects that are **not** inserted calcifications within 5 mm of a cluster centre (per
   cm^2 of those discs), next to the objects of the untouched image in the same discs: a
   detector that lets tissue near calcifications through (e.g. by trusting the cluster
   context too much) shows here, not in the false alarms of item 2.
4. **Cost**: the whole default segmentation of L-MLO (first call: model loading included)
   and of the synthetic 4096 x 3328 full field, in one process; seconds per megapixel and
   the ratio. Timed in ``--cost-runs`` fresh processes (default 3): the median run's
   figures, and each run's ratio and seconds (``*_each_run``).

Prints ``name: value`` lines and writes ``benchmarks/results/real_background.json``; with
``--plots`` writes detection overlays (PNG) of L-CC and L-MLO at 0.1 mm and a gallery of
6.4 mm crops around every detection.
"""

from __future__ import annotations

import argparse
import os
import resource
import time
import warnings

import numpy as np
from _common import plot_detection_crops, plot_detections, print_results, write_results  # noqa: E402
from PIL import Image
from scipy import ndimage as ndi

HERE = os.path.dirname(os.path.abspath(__file__))
REAL = os.path.join(HERE, "..", "..", "shared", "realdata", "nyu-gmic-sample")
if not os.path.isdir(REAL):
    REAL = "/work/shared/realdata/nyu-gmic-sample"
SIZES = (0.1, 0.2, 0.3, 0.5, 0.8)
CONTRASTS = (2.0, 3.0, 5.0, 8.0)


def read(view):
    return np.asarray(Image.open(os.path.join(REAL, f"0_{view}.png")))


def beta(view):
    from skcalc.datasets._texture import radial_power_spectrum
    from skcalc.segmentation import delineate_breast, erode_breast

    a = read(view)
    e = erode_breast(delineate_breast(a, spacing=0.1), spacing=0.1, size_mm=12.0)
    out, n = [], 256
    for r in range(0, a.shape[0] - n, n):
        for c in range(0, a.shape[1] - n, n):
            if e[r:r + n, c:c + n].all():
                f, p = radial_power_spectrum(a[r:r + n, c:c + n].astype(float), 0.1)
                ok = (f >= 0.1) & (f <= 1.0)
                out.append(-np.polyfit(np.log(f[ok]), np.log(p[ok]), 1)[0])
    return np.asarray(out)


SEGMENT_KW: dict = {}  # keywords of every segmenter of the run (--fp-calibration)


def segment(a, sp, **kw):
    import skcalc

    roi = skcalc.ROI(a, spacing=sp, meta={"roi_id": "bench"})
    out = skcalc.HDoGRegSegmenter(**{**SEGMENT_KW, **kw}).fit([roi]).transform([roi])[0]
    return np.asarray(out.calcifications), out.meta["segmentation"]


def disc_profile(r2, centre):
    """Projected-sphere profile ``(1 - r^2)^0.5`` and footprint ``r^2 <= 1`` of the squared
    normalised radii ``r2``; a disc that covers no pixel centre keeps pixel ``centre`` (peak
    1)."""
    prof = np.sqrt(np.clip(1 - r2, 0, None))
    foot = r2 <= 1
    if not foot.any():
        foot[centre] = True
        prof[centre] = 1.0
    return prof, foot


def insert(a, sp, noise_counts, rng, combos, breast, centres=None):
    """Add clusters; returns the image and a label image of the inserted footprints (and
    appends each cluster's centre, in pixels, to ``centres`` when given)."""
    img = a.astype(np.float64)
    ref = np.zeros(a.shape, np.int32)
    keys = []
    from skcalc.segmentation import erode_breast

    ok = erode_breast(breast, spacing=sp, size_mm=20.0) & breast
    ok[:int(8 / sp)] = False  # leave the top of MLO (pectoral / labels) a margin
    sites = np.argwhere(ok[::int(12 / sp), ::int(12 / sp)]) * int(12 / sp)
    rng.shuffle(sites)
    psf = 0.05 / sp
    canvas = np.zeros(a.shape)
    H, W = a.shape
    for (cy, cx), (size, con) in zip(sites, combos):
        if centres is not None:
            centres.append((float(cy), float(cx)))
        for _ in range(8):
            y = cy + rng.uniform(-3, 3) / sp
            x = cx + rng.uniform(-3, 3) / sp
            R = size / 2 / sp
            r0, r1 = int(y - R - 3), int(y + R + 4)
            c0, c1 = int(x - R - 3), int(x + R + 4)
            if r0 < 2 or c0 < 2 or r1 > H - 2 or c1 > W - 2 or not breast[int(y), int(x)]:
                continue
            if (ref[r0 - 2:r1 + 2, c0 - 2:c1 + 2] > 0).any():
                continue
            yy, xx = np.mgrid[r0:r1, c0:c1]
            r2 = ((yy - y) ** 2 + (xx - x) ** 2) / max(R, 0.5) ** 2
            prof, foot = disc_profile(r2, (int(round(y)) - r0, int(round(x)) - c0))
            # scale so that the blurred peak is con * noise
            blurred = ndi.gaussian_filter(prof, psf)
            canvas[r0:r1, c0:c1] += prof * (con * noise_counts / max(blurred.max(), 1e-9))
            keys.append((size, con))
            ref[r0:r1, c0:c1][foot] = len(keys)
    img += ndi.gaussian_filter(canvas, psf)
    out = np.clip(np.rint(img), 0, 4095).astype(np.uint16)
    return out, ref, keys


def insertion_rounds(a, sp, noise_counts, breast, view, rounds):
    """The benchmarks' inserted clusters: ``rounds`` images with every (size, contrast)
    combination once, seeded by round, spacing and view. Yields ``(img, ref, keys,
    centres)`` as :func:`insert` returns them, with the cluster centres."""
    combos = [(s, c) for s in SIZES for c in CONTRASTS]
    for k in range(rounds):
        rng = np.random.default_rng([k, int(sp * 1000), len(view)])
        order = [combos[i] for i in rng.permutation(len(combos))]
        centres: list = []
        img, ref, keys = insert(a, sp, noise_counts, rng, order, breast, centres)
        yield img, ref, keys, centres


COMPARE: dict = {}  # name -> segmenter keywords of another candidate filter (--compare)


def filter_kw(path):
    """Segmenter keywords of a candidate-filter file (its own detection threshold)."""
    from skcalc.segmentation import CandidateFilter

    f = CandidateFilter.load(path)
    return {"candidate_filter": f, "cnr_threshold": f.meta.get("cnr_threshold", 4.0)}


def found_inserted(lab, ref, n):
    """Whether each of the ``n`` inserted footprints (labels 1..n of ``ref``) touches a
    detected object (dilated by one pixel)."""
    det = ndi.binary_dilation(lab > 0)
    return np.bincount(ref[det], minlength=n + 1)[1:] > 0


def recall(results, rounds, spacings):
    from skcalc.segmentation import delineate_breast

    combos = [(s, c) for s in SIZES for c in CONTRASTS]
    variants = {"": {}, **{f"{n}_": kw for n, kw in COMPARE.items()}}
    for sp in spacings:
        hits = {v: {k: [0, 0] for k in combos} for v in variants}
        near_false = {v: [0, 0] for v in variants}
        near = [0.0]
        for view in ("L-CC", "L-MLO"):
            a = read(view)
            breast = delineate_breast(a, spacing=sp)
            lab0, summ = segment(a, sp)
            noise = summ["pixel_noise_sd"] * 4095
            results[f"pixel_noise_counts_{view}_{sp}"] = noise
            inner = ndi.binary_erosion(breast, iterations=30)
            d = np.diff(a.astype(float), axis=1)[inner[:, 1:] & inner[:, :-1]]
            results[f"diff_pixel_noise_counts_{view}"] = float(
                np.median(np.abs(d - np.median(d))) / 0.6745 / np.sqrt(2))
            # the untouched image's objects (the default's are those segmented above)
            base = {v: lab0 if not kw else segment(a, sp, **kw)[0] for v, kw in variants.items()}
            for img, ref, keys, centres in insertion_rounds(a, sp, noise, breast, view, rounds):
                disc = cluster_discs(a.shape, centres, sp)
                near_ref = ndi.binary_dilation(ref > 0)
                near[0] += disc.sum() * sp * sp / 100
                for v, kw in variants.items():
                    lab, _ = segment(img, sp, **kw)
                    found = found_inserted(lab, ref, len(keys))
                    for key, f in zip(keys, found):
                        hits[v][key][0] += int(f)
                        hits[v][key][1] += 1
                    near_false[v][0] += int(false_objects(lab, near_ref, disc).sum())
                    near_false[v][1] += int(false_objects(base[v], near_ref, disc).sum())
        for v in variants:
            summarise_recall(results, hits[v], sp, v)
            # objects that are not inserted calcifications, in 5 mm discs around the
            # clusters: with the clusters, and the same discs of the untouched image
            results[f"{v}false_objects_per_cm2_near_clusters_{sp}mm"] = near_false[v][0] / near[0]
            results[f"{v}objects_per_cm2_same_discs_untouched_{sp}mm"] = near_false[v][1] / near[0]


def cluster_discs(shape, centres, sp, radius_mm=5.0):
    """Pixels within ``radius_mm`` of a cluster centre."""
    yy, xx = np.ogrid[:shape[0], :shape[1]]
    out = np.zeros(shape, bool)
    r = radius_mm / sp
    for cy, cx in centres:
        r0, r1 = max(int(cy - r), 0), min(int(cy + r) + 2, shape[0])
        c0, c1 = max(int(cx - r), 0), min(int(cx + r) + 2, shape[1])
        out[r0:r1, c0:c1] |= (yy[r0:r1] - cy) ** 2 + (xx[:, c0:c1] - cx) ** 2 <= r * r
    return out


def false_objects(lab, near_ref, disc, n=None):
    """Per object of ``lab`` (``n`` objects; default its maximum): whether it touches no
    inserted footprint (``near_ref``: the footprints dilated by one pixel) and has a pixel
    in ``disc``."""
    n = int(lab.max()) if n is None else int(n)
    touch = np.bincount(lab[near_ref], minlength=n + 1)[1:] > 0
    inside = np.bincount(lab[disc], minlength=n + 1)[1:] > 0
    return inside & ~touch


def summarise_recall(results, hits, sp, prefix=""):
    r = prefix + "recall"
    for (s, c), (h, n) in hits.items():
        results[f"{r}_{sp}mm_d{s}_c{c:g}"] = h / max(n, 1)
        if not prefix:
            results[f"n_inserted_{sp}mm_d{s}_c{c:g}"] = n
    for s in SIZES:
        h = sum(hits[(s, c)][0] for c in CONTRASTS)
        n = sum(hits[(s, c)][1] for c in CONTRASTS)
        results[f"{r}_{sp}mm_d{s}"] = h / max(n, 1)
    for c in CONTRASTS:
        h = sum(hits[(s, c)][0] for s in SIZES if s >= 0.2)
        n = sum(hits[(s, c)][1] for s in SIZES if s >= 0.2)
        results[f"{r}_{sp}mm_c{c:g}_ge0.2mm"] = h / max(n, 1)
    h = sum(v[0] for (s, _), v in hits.items() if s >= 0.2)
    n = sum(v[1] for (s, _), v in hits.items() if s >= 0.2)
    results[f"{r}_{sp}mm_ge0.2mm"] = h / max(n, 1)
    h = sum(v[0] for (s, c), v in hits.items() if s >= 0.2 and c >= 3)
    n = sum(v[1] for (s, c), v in hits.items() if s >= 0.2 and c >= 3)
    results[f"{r}_{sp}mm_ge0.2mm_c>=3"] = h / max(n, 1)


def at_spacing(a, sp):
    """The image at ``sp`` mm: as stored up to 0.1 mm; 0.2 mm by 2 x 2 block averages of the
    0.1 mm image (a coarser detector or digitiser grid)."""
    if sp <= 0.1 + 1e-9:
        return a
    f = int(round(sp / 0.1))
    H, W = (a.shape[0] // f) * f, (a.shape[1] // f) * f
    return np.rint(a[:H, :W].reshape(H // f, f, W // f, f).mean(axis=(1, 3))).astype(a.dtype)


#: The default segmenter's labels of (view, spacing), kept by false_alarms for
#: densest_windows (each view is segmented once per run).
DEFAULT_LABELS: dict = {}


def false_alarms(results, spacings, plots):
    for view in ("L-CC", "L-MLO"):
        a0 = read(view)
        for sp in spacings:
            a = at_spacing(a0, sp)
            area = (a > 0).sum() * sp**2 / 100
            for name, kw in (("default", {}), ("sensitive", {"operating_point": "sensitive"}),
                             ("specific", {"operating_point": "specific"}),
                             *[(f"{op}_filter_calibration",
                                {"operating_point": op, "fp_calibration": "filter"})
                               for op in ("balanced", "sensitive", "specific")
                               if "fp_calibration" not in SEGMENT_KW],
                             ("no_filter", {"candidate_filter": None}),
                             ("authors_hdog", {"threshold": "authors", "regressor": None}),
                             *[(f"{n}_{op}", {**kw, "operating_point": op})
                               for n, kw in COMPARE.items()
                               for op in ("balanced", "sensitive", "specific")],
                             *[(f"{n}_no_filter", {**kw, "candidate_filter": None})
                               for n, kw in COMPARE.items()]):
                t = time.perf_counter()
                lab, summ = segment(a, sp, **kw)
                results[f"objects_per_cm2_{view}_{sp}_{name}"] = int(lab.max()) / area
                if name == "default":
                    DEFAULT_LABELS[view, sp] = lab
                    results[f"seconds_{view}_{sp}"] = time.perf_counter() - t
                    results[f"noise_sd_{view}_{sp}"] = summ["noise_sd"]
                    results[f"score_threshold_{view}_{sp}"] = summ["score_threshold"]
                    if plots and sp == 0.1:
                        title = f"{view}, {sp} mm assumed: {int(lab.max())} objects"
                        plot_detections(a, lab, title,
                                        os.path.join(plots, f"real_detections_{view}.png"),
                                        height_in=10.0, vmin=0, vmax=4095)
                        plot_detection_crops(
                            a, lab, f"{title} (6.4 mm crops, each stretched)",
                            os.path.join(plots, f"real_detection_crops_{view}.png"))


def densest_windows(results, spacings, plots, window_mm=10.0):
    """Objects of the default segmenter per ``window_mm`` square, on all four views as they
    are: the densest window inside the breast eroded by 5 mm, and the 99th percentile.

    The right breast holds GMIC's benign finding (its masks are in another frame, so they are
    not used here); the left views have none. With ``plots``, a crop of each right view's
    densest window with the objects' outlines.
    """
    from scipy import ndimage as ndi

    from skcalc.segmentation import delineate_breast, erode_breast

    crops = []
    for sp in spacings:
        for view in ("L-CC", "L-MLO", "R-CC", "R-MLO"):
            a = at_spacing(read(view), sp)
            lab = DEFAULT_LABELS[view, sp] if (view, sp) in DEFAULT_LABELS else segment(a, sp)[0]
            n = int(lab.max())
            count = np.zeros(a.shape)
            if n:
                cen = np.rint(ndi.center_of_mass(lab > 0, lab, range(1, n + 1))).astype(int)
                np.add.at(count, (cen[:, 0], cen[:, 1]), 1)
            w = int(round(window_mm / sp))
            per = ndi.uniform_filter(count, w, mode="constant") * w * w
            inner = erode_breast(delineate_breast(a, spacing=sp), spacing=sp, size_mm=5.0)
            vals = np.rint(per[inner])
            where = np.unravel_index(np.argmax(np.where(inner, per, -1)), per.shape)
            key = f"{view}_{sp}mm"
            results[f"densest_{window_mm:g}mm_window_objects_{key}"] = int(vals.max())
            results[f"densest_{window_mm:g}mm_window_row_col_{key}"] = [int(where[0]),
                                                                        int(where[1])]
            results[f"p99_{window_mm:g}mm_window_objects_{key}"] = float(np.percentile(vals, 99))
            if plots and view.startswith("R"):
                crops.append((f"{view}, {sp} mm: {int(vals.max())} objects in "
                              f"{window_mm:g} mm", a, lab, where, w))
    if plots and crops:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from skimage.segmentation import find_boundaries

        fig, axes = plt.subplots(2, len(crops), figsize=(2.6 * len(crops), 5.4), dpi=90)
        for j, (title, a, lab, (r, c), w) in enumerate(crops):
            r0, c0 = max(r - w, 0), max(c - w, 0)
            box = (slice(r0, r + w), slice(c0, c + w))
            img = a[box].astype(float)
            lo, hi = np.percentile(img, [1, 99.9])
            edge = find_boundaries(lab[box] > 0)
            over = np.zeros(img.shape + (4,))
            over[edge] = (1, 0, 0, 1)
            for i in (0, 1):
                axes[i, j].imshow(img, cmap="gray", vmin=lo, vmax=hi)
                axes[i, j].axis("off")
            axes[1, j].imshow(over, interpolation="nearest")
            axes[0, j].set_title(title, fontsize=7)
        fig.tight_layout()
        os.makedirs(plots, exist_ok=True)
        path = os.path.join(plots, "real_densest_windows.png")
        fig.savefig(path)
        plt.close(fig)
        print("wrote", path)


def plot_recall(results, outdir):
    """Recall heat maps (size x contrast) at each spacing, from the results dict."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2), dpi=90)
    for ax, sp in zip(axes, (0.07, 0.1)):
        m = np.array([[results.get(f"recall_{sp}mm_d{s}_c{c:g}", np.nan) for c in CONTRASTS]
                      for s in SIZES])
        ax.imshow(m, vmin=0, vmax=1, cmap="viridis", origin="lower")
        for i in range(len(SIZES)):
            for j in range(len(CONTRASTS)):
                ax.text(j, i, f"{m[i, j]:.2f}", ha="center", va="center", fontsize=8,
                        color="w" if m[i, j] < 0.6 else "k")
        ax.set_xticks(range(len(CONTRASTS)), [f"{c:g}" for c in CONTRASTS])
        ax.set_yticks(range(len(SIZES)), [f"{s}" for s in SIZES])
        ax.set_xlabel("peak contrast / image noise at calcification scale")
        ax.set_ylabel("diameter (mm)")
        ax.set_title(f"recall, real L-CC + L-MLO, {sp} mm", fontsize=9)
    fig.tight_layout()
    path = os.path.join(outdir, "real_recall.png")
    fig.savefig(path)
    plt.close(fig)
    print("wrote", path)


def plot_inserted(outdir, sp=0.1):
    """One inserted cluster per contrast on L-CC with the default detections (crops)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from skcalc.segmentation import delineate_breast

    a = read("L-CC")
    breast = delineate_breast(a, spacing=sp)
    _, summ = segment(a, sp)
    rng = np.random.default_rng(5)
    combos = [(0.3, c) for c in CONTRASTS]
    img, ref, keys = insert(a, sp, summ["pixel_noise_sd"] * 4095, rng, combos, breast)
    lab, _ = segment(img, sp)
    fig, axes = plt.subplots(2, len(CONTRASTS), figsize=(2.2 * len(CONTRASTS), 4.6), dpi=90)
    for j, c in enumerate(CONTRASTS):
        ids = [k + 1 for k, key in enumerate(keys) if key == (0.3, c)]
        if not ids:
            continue
        rr, cc = np.nonzero(np.isin(ref, ids))
        r0 = int(np.clip(rr.mean() - 40, 0, a.shape[0] - 80))
        c0 = int(np.clip(cc.mean() - 40, 0, a.shape[1] - 80))
        win = (slice(r0, r0 + 80), slice(c0, c0 + 80))
        for ax in axes[:, j]:
            ax.imshow(img[win], cmap="gray", interpolation="nearest")
            ax.axis("off")
        sub = ref[win]
        for k in ids:
            yy, xx = np.nonzero(sub == k)
            if yy.size:
                axes[1, j].scatter(xx.mean(), yy.mean(), s=90, facecolors="none",
                                   edgecolors="c", lw=0.8)
        dl = lab[win]
        n = int(dl.max())
        if n:
            for cy, cx in ndi.center_of_mass(dl > 0, dl, np.unique(dl[dl > 0])):
                axes[1, j].scatter(cx, cy, s=30, marker="+", c="r", lw=1.0)
        axes[0, j].set_title(f"0.3 mm, contrast {c:g}x", fontsize=8)
    fig.suptitle("8 mm crops of real L-CC (0.1 mm) with inserted clusters; bottom: inserted "
                 "(cyan circles), detected (red +)", fontsize=9)
    fig.tight_layout()
    path = os.path.join(outdir, "real_inserted_examples.png")
    fig.savefig(path)
    plt.close(fig)
    print("wrote", path)


def cost(results):
    # scikit-learn's import (~1 s CPU) is not the segmentation's cost: done before the clock
    import skcalc.segmentation._segmenter  # noqa: F401
    from skcalc.datasets import make_full_field_mammogram

    a = read("L-MLO")
    t, c = time.perf_counter(), time.process_time()
    segment(a, 0.1)  # first call: packaged model loading included
    t_mlo, c_mlo = time.perf_counter() - t, time.process_time() - c
    ff = make_full_field_mammogram((4096, 3328), spacing=0.07, random_state=0)
    t, c = time.perf_counter(), time.process_time()
    segment(ff.image, 0.07)
    t_ff, c_ff = time.perf_counter() - t, time.process_time() - c
    results["cost_L-MLO_cpu_seconds"] = c_mlo
    results["cost_full_field_cpu_seconds"] = c_ff
    results["cost_cpu_ratio_per_pixel_L-MLO_vs_full_field"] = (
        (c_mlo / a.size) / (c_ff / ff.image.size))
    results["cost_L-MLO_seconds"] = t_mlo
    results["cost_full_field_seconds"] = t_ff
    results["cost_L-MLO_s_per_mpx"] = t_mlo / (a.size / 1e6)
    results["cost_full_field_s_per_mpx"] = t_ff / (ff.image.size / 1e6)
    results["cost_ratio_per_pixel_L-MLO_vs_full_field"] = (
        results["cost_L-MLO_s_per_mpx"] / results["cost_full_field_s_per_mpx"])
    results["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cost_runs(results, n):
    """:func:`cost` in ``n`` fresh processes (each first call is a process's first): the run
    with the median ratio gives the figures, and every run's ratio is listed, because one
    sub-second L-MLO call varies by 10-20 % with the machine's state (page faults of the
    first allocations, frequency after load)."""
    if n == 1:
        cost(results)
        return
    import json
    import subprocess
    import sys

    runs = []
    for _ in range(n):
        out = subprocess.run([sys.executable, os.path.abspath(__file__), "--cost-json"],
                             capture_output=True, text=True, check=True).stdout
        runs.append(json.loads(out.strip().splitlines()[-1]))
    ratio = "cost_ratio_per_pixel_L-MLO_vs_full_field"
    runs.sort(key=lambda r: r[ratio])
    results.update(runs[len(runs) // 2])
    results["cost_runs"] = n
    for key in (ratio, "cost_L-MLO_seconds", "cost_full_field_seconds"):
        results[f"{key}_each_run"] = [round(r[key], 3) for r in runs]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--plots", default=None, help="directory for the overlay PNGs")
    ap.add_argument("--skip-recall", action="store_true")
    ap.add_argument("--compare", default="",
                    help="NAME=PATH[,NAME=PATH]: other candidate-filter files measured in the "
                         "same run (their detection threshold from the file)")
    ap.add_argument("--skip-cost", action="store_true")
    ap.add_argument("--fp-calibration", choices=("image", "filter"), default=None,
                    help="the segmenters' fp_calibration (default: the segmenter's)")
    ap.add_argument("--cost-only", action="store_true")
    ap.add_argument("--cost-runs", type=int, default=3,
                    help="fresh processes timing the cost (the median run is reported)")
    ap.add_argument("--cost-json", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--plots-only", action="store_true",
                    help="only redraw the figures (recall from the last results JSON)")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    if args.fp_calibration:
        SEGMENT_KW["fp_calibration"] = args.fp_calibration
    if args.plots_only:
        import json

        from _common import RESULTS_DIR

        with open(os.path.join(RESULTS_DIR, "real_background.json")) as fh:
            plot_recall(json.load(fh), args.plots or ".")
        plot_inserted(args.plots or ".")
        return
    for item in filter(None, args.compare.split(",")):
        name, path = item.split("=", 1)
        COMPARE[name] = filter_kw(path)
    results: dict = {}
    if args.cost_json:  # one of cost_runs's processes
        import json

        cost(results)
        print(json.dumps(results))
        return
    if not args.skip_cost:
        cost_runs(results, args.cost_runs)
    if args.cost_only:
        print_results(results)
        return
    for view in ("L-CC", "L-MLO", "R-CC", "R-MLO"):
        b = beta(view)
        results[f"beta_{view}_median"] = float(np.median(b))
        results[f"beta_{view}_n_patches"] = int(b.size)
    false_alarms(results, (0.07, 0.1, 0.2), args.plots)
    densest_windows(results, (0.07, 0.1), args.plots)
    if not args.skip_recall:
        recall(results, args.rounds, (0.07, 0.1))
        if args.plots:
            plot_recall(results, args.plots)
            plot_inserted(args.plots)
    print_results(results)
    write_results(results, "real_background")


if __name__ == "__main__":
    main()
