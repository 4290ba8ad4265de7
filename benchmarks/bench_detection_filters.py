"""Which single fine-scale filter best separates small faint calcifications from real tissue?

Run: ``python benchmarks/bench_detection_filters.py [--rounds 2] [--density 2.0]
[--template disc|gauss]``.

A detection-theory check of the candidate stage, not of skcalc's detector itself: on the
real left views of the NYU GMIC sample (no finding) at 0.07 and 0.1 mm assumed, the image is
stabilised (:func:`~skcalc.segmentation._calibrated.stabilise_intensity`, as the detector
does) and filtered by one linear filter; the response is divided by its robust local scale
(:func:`~skcalc.segmentation._calibrated.local_robust_scale`, 5 mm windows, as the detector
does). The threshold is the value that ``--density`` local maxima (3 x 3) per cm^2 of the
eroded breast of the untouched images exceed; the recall of the calcifications inserted as
``bench_real_background.py`` inserts them (same seeds) is the share whose largest response
over the footprint (dilated by one pixel) exceeds it. The filters: the detector's finest
DoG (sigma 0.0826 mm, ratio 1.6), other DoG and Laplacian-of-Gaussian widths in pixels,
Hessian blob strength, and a **prewhitened matched filter** (``pwmf``): the image's own
power spectrum ``P(f)`` (radially averaged periodogram of 128 x 128 Hann-windowed patches
inside the eroded breast) whitens it, and each inserted size's exact template ``T`` (the
blurred disc that ``bench_real_background.insert`` adds) is matched: filter ``T* / P``. It
is the best linear detector of a known template in stationary Gaussian background, so with
one filter per inserted size (``pwmf_<d>mm``, the size known: an oracle) and the maximum of
the normalised responses over sizes (``pwmf_max``, the size unknown; to be compared with
``detector_dogs_max``, the maximum over the detector's three DoG planes) it bounds what any
linear candidate stage can recall here, were the tissue stationary and Gaussian (first
printed: the same comparison on such a synthetic background, ``stationary_*``). A filter
that recalls more at the same density
would be a better candidate stage.

Prints ``name: value`` lines and writes ``benchmarks/results/detection_filters.json``.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings

import numpy as np
from _common import print_results, write_results  # noqa: E402
from scipy import ndimage as ndi

from skcalc.segmentation._calibrated import _MAD_TO_SD

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_real_background as B  # noqa: E402

SIGMA_MM = 0.0826  # the detector's finest Gaussian
RATIO = 1.6
PWMF_SIZES = (0.2, 0.3, 0.5, 0.8)


def _gauss(a, s):
    return ndi.gaussian_filter(a, s, truncate=4.0)


def template(d_mm, sp, kind="disc", n=33):
    """The blurred disc that ``bench_real_background.insert`` adds (peak 1), ``n x n``; with
    ``kind="gauss"`` a Gaussian of sd ``d_mm / 4`` instead (a template that is not the
    inserted profile)."""
    yy, xx = np.mgrid[:n, :n] - n // 2
    if kind == "gauss":
        s = max(d_mm / 4 / sp, 0.5)
        return np.exp(-(yy**2 + xx**2) / (2 * s * s))
    r2 = (yy**2 + xx**2) / max(d_mm / 2 / sp, 0.5) ** 2
    t = ndi.gaussian_filter(B.disc_profile(r2, (n // 2, n // 2))[0], 0.05 / sp)
    return t / t.max()


def power_spectrum(x, inner, n=128):
    """Radially averaged periodogram of ``n x n`` Hann-windowed patches fully inside
    ``inner``, as an isotropic ``n x n`` array (DC excluded: set to the next ring's)."""
    w = np.outer(np.hanning(n), np.hanning(n))
    acc, k = np.zeros((n, n)), 0
    for r in range(0, x.shape[0] - n, n // 2):
        for c in range(0, x.shape[1] - n, n // 2):
            if inner[r:r + n, c:c + n].all():
                p = x[r:r + n, c:c + n]
                acc += np.abs(np.fft.fft2((p - p.mean()) * w)) ** 2
                k += 1
    acc /= max(k, 1)
    f = np.hypot(*np.meshgrid(np.fft.fftfreq(n), np.fft.fftfreq(n), indexing="ij")) * n
    ring = np.rint(f).astype(int)
    prof = np.bincount(ring.ravel(), acc.ravel()) / np.maximum(np.bincount(ring.ravel()), 1)
    prof[0] = prof[1]
    return prof[ring]


def pwmf_bank(x, inner, sp, sizes=PWMF_SIZES, kind="disc", n=128):
    """``{"pwmf_<d>mm": response}``: the prewhitened matched filter of each template
    diameter ``d`` (spatial kernel of ``conj(T) / P`` on the ``n x n`` grid, cropped to
    33 x 33), with the image's power spectrum ``P`` estimated once."""
    from scipy.signal import fftconvolve

    P = power_spectrum(x, inner, n)
    # reflected borders, as the Gaussian filters (zeros would make the image frame an edge)
    padded = np.pad(x, 16, mode="reflect")
    out = {}
    for d in sizes:
        t = np.zeros((n, n))
        t[:33, :33] = template(d, sp, kind)
        t = np.roll(t, (-16, -16), axis=(0, 1))  # template centred on the origin
        h = np.real(np.fft.ifft2(np.conj(np.fft.fft2(t)) / P))
        h = np.fft.fftshift(h)[n // 2 - 16:n // 2 + 17, n // 2 - 16:n // 2 + 17]
        out[f"pwmf_{d:g}mm"] = fftconvolve(padded, h[::-1, ::-1], mode="valid")
    return out


def _robust_z(r):
    med = np.median(r)
    return (r - med) / (_MAD_TO_SD * np.median(np.abs(r - med)))


def stationary_check(sp=0.1, d_mm=0.3, amplitude=0.3, density=2.0, seed=1, kind="disc"):
    """The same comparison on stationary Gaussian background, where the prewhitened matched
    filter is optimal: power-law texture (beta 3, unit sd) plus white noise (sd 0.05), 1024^2
    px at ``sp``; ``d_mm`` templates (``kind``) of peak ``amplitude`` on a 7 mm grid. Returns
    the recall of the detector's DoG and of the matched filter at ``density`` false maxima
    per cm^2."""
    rng = np.random.default_rng(seed)
    n = 1024
    f = np.hypot(*np.meshgrid(np.fft.fftfreq(n), np.fft.fftfreq(n), indexing="ij"))
    f[0, 0] = 1.0
    bg = np.real(np.fft.ifft2(np.fft.fft2(rng.normal(size=(n, n))) * f**-1.5))
    x0 = bg / bg.std() + rng.normal(0, 0.05, (n, n))
    x, t, sites = x0.copy(), template(d_mm, sp, kind), []
    for i in range(40, n - 40, 70):
        for j in range(40, n - 40, 70):
            x[i - 16:i + 17, j - 16:j + 17] += amplitude * t
            sites.append((i, j))
    inner = np.ones((n, n), bool)

    def matched(a):
        return pwmf_bank(a, inner, sp, (d_mm,), kind)[f"pwmf_{d_mm:g}mm"]

    out = {}
    for name, fn in (("detector_dog", filters(sp)["detector_dog"]), ("pwmf", matched)):
        n0, n1 = _robust_z(fn(x0)), _robust_z(fn(x))
        v = np.sort(n0[(n0 == ndi.maximum_filter(n0, 3)) & (n0 > 2)])[::-1]
        thr = v[int(density * n * n * sp * sp / 100)]
        out[f"stationary_{name}_recall"] = float(np.mean(
            [n1[i - 1:i + 2, j - 1:j + 2].max() > thr for i, j in sites]))
    return out


def filters(sp):
    """name -> filter of a float image (sigmas in pixels at spacing ``sp``); the matched
    filters are :func:`pwmf_bank`."""
    s0 = SIGMA_MM / sp
    out = {"detector_dog": lambda a: _gauss(a, s0) - _gauss(a, RATIO * s0)}
    for i in (1, 2):  # the detector's coarser DoG planes
        si = s0 * RATIO**i
        out[f"detector_dog{i}"] = lambda a, si=si: _gauss(a, si) - _gauss(a, RATIO * si)
    for s1, s2 in ((0.6, 1.0), (0.83, 2.0), (1.0, 1.6), (1.0, 3.0)):
        out[f"dog_{s1}_{s2}px"] = lambda a, s1=s1, s2=s2: _gauss(a, s1) - _gauss(a, s2)
    for s in (0.8, 1.2):
        out[f"log_{s}px"] = lambda a, s=s: -ndi.gaussian_laplace(a, s)
    for s in (s0, 1.0, 1.3):
        out[f"hessmin_{s:.2f}px"] = lambda a, s=s: _hessian_min(a, s)
    return out


def _hessian_min(a, s):
    """Blob strength: minus the larger Hessian eigenvalue of the Gaussian-smoothed image
    (positive only where the image curves down in every direction, small on ridges)."""
    hrr = ndi.gaussian_filter(a, s, order=(2, 0), truncate=4.0)
    hcc = ndi.gaussian_filter(a, s, order=(0, 2), truncate=4.0)
    hrc = ndi.gaussian_filter(a, s, order=(1, 1), truncate=4.0)
    return -((hrr + hcc) / 2 + np.sqrt(((hrr - hcc) / 2) ** 2 + hrc**2)) * s * s


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--density", type=float, default=2.0,
                    help="local maxima per cm^2 of real tissue above the threshold")
    ap.add_argument("--template", choices=("disc", "gauss"), default="disc",
                    help="matched filters' templates: the inserted discs or Gaussians (the "
                         "stationary check also inserts them)")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    from skcalc.segmentation import delineate_breast, erode_breast
    from skcalc.segmentation._calibrated import local_robust_scale, stabilise_intensity

    res: dict = stationary_check(density=args.density, kind=args.template)
    for sp in (0.07, 0.1):
        fs = filters(sp)
        neg: dict = {}
        best: dict = {}
        area = 0.0
        for view in ("L-CC", "L-MLO"):
            a = B.read(view)
            breast = delineate_breast(a, spacing=sp)
            inner = erode_breast(breast, spacing=sp, size_mm=45 * 0.07) & breast
            area += inner.sum() * sp * sp / 100
            _, summ = B.segment(a, sp)
            noise = summ["pixel_noise_sd"] * 4095
            images = [(a, None, None)] + [
                r[:3] for r in B.insertion_rounds(a, sp, noise, breast, view, args.rounds)]
            win = (int(round(5 / sp)),) * 2
            for j, (img, ref, keys) in enumerate(images):
                x, _ = stabilise_intensity(img.astype(np.float32), inner, (sp, sp), SIGMA_MM,
                                           RATIO * SIGMA_MM, codes=img)
                x = x.astype(np.float64)
                if j:
                    dil = ndi.grey_dilation(ref, size=(3, 3))
                    sel = dil > 0
                raw = {name: fn(x) for name, fn in fs.items()}
                raw.update(pwmf_bank(x, inner, sp, kind=args.template))
                resp = {}
                for name, r in raw.items():
                    r = r.astype(np.float32)
                    resp[name] = r / local_robust_scale(r, inner, win)[0]
                resp["pwmf_max"] = np.max([v for k, v in resp.items() if k.startswith("pwmf_")],
                                          axis=0)
                resp["detector_dogs_max"] = np.max(
                    [v for k, v in resp.items() if k.startswith("detector_dog")], axis=0)
                for name, n in resp.items():
                    if j == 0:
                        peak = (n == ndi.maximum_filter(n, 3)) & inner & (n > 2)
                        neg.setdefault(name, []).append(n[peak])
                        continue
                    m = np.full(len(keys) + 1, -np.inf)
                    np.maximum.at(m, dil[sel], n[sel])
                    best.setdefault(name, []).extend(
                        (key[0], key[1], m[i + 1]) for i, key in enumerate(keys))
        for name in neg:
            v = np.sort(np.concatenate(neg[name]))[::-1]
            k = int(args.density * area)
            thr = float(v[k]) if k < v.size else 2.0
            b = np.array(best[name])
            hit = b[:, 2] > thr
            big = b[:, 0] >= 0.2
            res[f"{sp}mm_{name}_threshold"] = thr
            res[f"{sp}mm_{name}_recall_ge0.2mm"] = float(hit[big].mean())
            for c in B.CONTRASTS:
                cell = big & (b[:, 1] == c)
                res[f"{sp}mm_{name}_recall_ge0.2mm_c{c:g}"] = float(hit[cell].mean())
    print_results(res)
    write_results(res, "detection_filters")


if __name__ == "__main__":
    main()
