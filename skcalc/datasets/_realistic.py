"""Realistic, highly varied mammogram patches for training and calibrating the FP filter.

:func:`make_training_patch` draws one square patch of breast tissue (about 32 mm side) whose
appearance spans what real mammograms look like, so that a candidate classifier trained on
them generalises to images it has never seen (other scanners, processed or raw, film):

- **anatomical background**: a Gaussian field with a power-law spectrum ``1/f**beta``
  (Burgess et al.), ``beta`` drawn in [2.4, 3.5]: 3.17 CC / 3.30 MLO on digital
  mammograms (Chen, Abbey, Boone et al., Med Phys 2012), 2.47-2.92 on digitised film (Li,
  Giger et al., SPIE 2006); measured by skcalc on the four NYU GMIC sample views (processed
  images) at an assumed 0.1 mm: median 2.54-2.67 (``benchmarks/bench_real_background.py``);
  texture amplitude from nearly flat to strongly textured, plus a clustered lumpy component;
- **linear structures**: vessels, ducts and Cooper's ligaments (curved lines 0.05-1 mm wide,
  bright), and larger round lumps (nodules, lymph nodes; hard negatives);
- **breast edge** (a thinning ramp to air with a bright skin line) and **pectoral muscle**
  (a bright region with a soft edge) on part of the patches;
- **calcifications** 0.1-1 mm (dome profiles from flat to peaked, round to elongated),
  isolated and in clusters, with a peak contrast of 1-20 times the pixel noise before the
  blur (``contrast="detector"``: the blurred peak over the image's noise at calcification
  scale as the detector measures it); faint amorphous-like ones 1-8 on half of the
  patches (0.1-0.5 mm, or up to ``faint_max_mm`` = 1 mm: a calcification's visibility is
  its contrast against the noise *at its own scale*, and on textured tissue the texture at
  0.5-1 mm scales is far stronger than the pixel noise, so large calcifications are not
  always bright to the detector; hazy, low-density deposits of that size are faint in
  absolute terms too); 20-60 times for one in five of the others, so that bright
  calcifications are not mistaken for lines or edges; on 70% of the patches;
- **acquisition**: Gaussian detector blur 0.03-0.12 mm, quantum (signal-dependent) plus
  electronic noise from 3 to 200 counts (12-bit scale; the NYU sample shows about 90-160),
  optionally correlated (resampled images) or with film grain;
- **processing and storage**: unsharp masking (processed "for presentation" images), a
  display transform (identity, log, gamma 0.5-2, window/level clipping), 8/10/12/14/16-bit
  quantisation, and JPEG compression of 8-bit data;
- **digitised screen-film** on a fraction of the patches (``film_fraction``;
  :func:`digitised_film`): the exposure
  through the tissue printed on a film characteristic (H&D) curve, film grain whose
  density sd grows as sqrt(density), the digitiser's aperture blur, optical density stored
  in 8-12 bits as MONOCHROME1 and inverted as a DICOM reader does;
- pixel spacing 0.05-0.2 mm.

Everything is drawn from ``random_state`` (deterministic under a seed).
"""

from __future__ import annotations

import io

import numpy as np
from scipy import ndimage

from ._texture import power_law_texture

__all__ = ["digitised_film", "make_training_patch"]


def _loguniform(rng, lo, hi):
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def _curve_points(rng, H, W, sp, length_mm):
    """Sub-pixel points of a smooth random curve (0.5 px steps)."""
    n = max(4, int(length_mm / sp * 2))
    y, x = rng.uniform(-0.2, 1.2) * H, rng.uniform(-0.2, 1.2) * W
    th = rng.uniform(0, 2 * np.pi)
    curv = rng.normal(0, 0.05) * 0.5 * sp  # radians per mm -> per 0.5 px step
    dth = np.cumsum(rng.normal(0, 0.02, n)) + curv * np.arange(n)
    ys = y + np.cumsum(0.5 * np.sin(th + dth))
    xs = x + np.cumsum(0.5 * np.cos(th + dth))
    ok = (ys >= 0) & (ys < H - 1) & (xs >= 0) & (xs < W - 1)
    return ys[ok], xs[ok]


def _splat(canvas, ys, xs, w):
    """Bilinear deposit of weight ``w`` at sub-pixel points."""
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    fy, fx = ys - y0, xs - x0
    for dy, dx, ww in ((0, 0, (1 - fy) * (1 - fx)), (1, 0, fy * (1 - fx)),
                       (0, 1, (1 - fy) * fx), (1, 1, fy * fx)):
        np.add.at(canvas, (y0 + dy, x0 + dx), w * ww)


def _lines(rng, H, W, sp, tex_sd, noise_sd):
    out = np.zeros((H, W), np.float32)
    n = int(rng.poisson(5))
    for _ in range(n):
        width_mm = _loguniform(rng, 0.05, 1.0)  # Gaussian sigma of the cross-section
        s_px = max(width_mm / sp, 0.5)
        amp = _loguniform(rng, 0.3, 3.0) * max(tex_sd, noise_sd) * rng.choice([1.0, 1.0, -0.5])
        ys, xs = _curve_points(rng, H, W, sp, rng.uniform(5, 60))
        if ys.size == 0:
            continue
        c = np.zeros((H, W), np.float32)
        _splat(c, ys, xs, 0.5)
        c = ndimage.gaussian_filter(c, s_px, truncate=3.0)
        out += c * np.float32(amp * np.sqrt(2 * np.pi) * s_px)
    return out


def _lumpy(rng, H, W, sp, tex_sd, noise_sd):
    """Clustered lumpy background (Bochud, Abbey & Eckstein 1999): many small bright and dark
    lumps (0.5-2.4 mm FWHM) with heavy-tailed amplitudes, clustered around random centres; the
    blobby fibroglandular structure that makes the hard negatives of real tissue."""
    out = np.zeros((H, W), np.float32)
    area_cm2 = H * W * sp * sp / 100
    density = _loguniform(rng, 5, 200)  # lumps per cm^2
    n = int(rng.poisson(density * area_cm2))
    if n == 0:
        return out
    n_cl = max(1, n // int(rng.integers(3, 20)))
    cy, cx = rng.uniform(0, H, n_cl), rng.uniform(0, W, n_cl)
    k = rng.integers(0, n_cl, n)
    spread = rng.uniform(0.5, 4.0) / sp
    ys = np.clip(cy[k] + rng.normal(0, spread, n), 0, H - 1.001)
    xs = np.clip(cx[k] + rng.normal(0, spread, n), 0, W - 1.001)
    amp = rng.lognormal(0, 0.7, n) * rng.choice([1.0, 1.0, -1.0], n)
    amp *= _loguniform(rng, 0.3, 3.0) * max(tex_sd, noise_sd)
    sig = np.exp(rng.uniform(np.log(0.2), np.log(1.0), n)) / sp  # px
    edges = np.quantile(sig, [0, 1 / 3, 2 / 3, 1])
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (sig >= lo) & (sig <= hi)
        if not sel.any():
            continue
        s_px = max(float(np.median(sig[sel])), 0.5)
        c = np.zeros((H, W), np.float32)
        _splat(c, ys[sel], xs[sel], amp[sel] * 2 * np.pi * s_px**2)
        out += ndimage.gaussian_filter(c, s_px, truncate=3.0)
    return out


def _lumps(rng, H, W, sp, tex_sd, noise_sd):
    out = np.zeros((H, W), np.float32)
    for _ in range(int(rng.poisson(2))):
        s_px = _loguniform(rng, 0.4, 3.0) / sp
        c = np.zeros((H, W), np.float32)
        c[rng.integers(H), rng.integers(W)] = 1.0
        c = ndimage.gaussian_filter(c, (s_px * rng.uniform(0.6, 1.4), s_px), truncate=3.0)
        c /= max(c.max(), 1e-12)
        out += c * np.float32(_loguniform(rng, 0.5, 4.0) * max(tex_sd, noise_sd))
    return out


def _contrast(rng, faint):
    """A calcification's drawn contrast (see :func:`_calcifications`)."""
    if faint:
        return _loguniform(rng, 1.0, 8.0)
    if rng.random() < 0.2:
        return _loguniform(rng, 20.0, 60.0)
    return _loguniform(rng, 1.0, 20.0)


def _place(signal, ref, prof, foot, iy, ix, R, cnr, noise_sd, psf):
    """Add one profile (``2R + 1`` square centred on ``iy, ix``) at contrast ``cnr``: peak
    ``cnr * noise_sd`` before the blur (``psf=None``), else blurred by ``psf`` on its own
    window and scaled to a blurred peak of ``cnr``. False when it does not fit."""
    H, W = signal.shape
    if psf is None:
        sl = (slice(iy - R, iy + R + 1), slice(ix - R, ix + R + 1))
        signal[sl] = np.maximum(signal[sl], (prof * cnr * noise_sd).astype(np.float32))
        ref[sl] |= foot
        return True
    m = int(np.ceil(3 * psf)) + 1
    if not (R + m <= iy < H - R - m and R + m <= ix < W - R - m):
        return False
    big = np.pad(prof, m)
    blurred = ndimage.gaussian_filter(big, psf, truncate=3.0)
    blurred *= cnr / max(float(blurred.max()), 1e-12)
    sl = (slice(iy - R - m, iy + R + m + 1), slice(ix - R - m, ix + R + m + 1))
    signal[sl] += blurred.astype(np.float32)
    ref[iy - R: iy + R + 1, ix - R: ix + R + 1] |= foot
    return True


def _clump(rng, cy, cx, sp, radius_mm):
    """Profile, footprint and half-width of a clump: 3-8 specks of 0.1-0.4 mm within
    ``radius_mm``, touching or merging as the specks of a real cluster do (the profile is
    their maximum)."""
    n = int(rng.integers(3, 9))
    offs = rng.uniform(-1, 1, (n, 2)) * radius_mm / sp
    diam = np.exp(rng.uniform(np.log(0.1), np.log(0.4), n))
    R = int(np.ceil(radius_mm / sp + diam.max() / 2 / sp)) + 2
    iy, ix = int(round(cy)), int(round(cx))
    yy, xx = np.mgrid[-R: R + 1, -R: R + 1].astype(np.float64)
    yy -= cy - iy
    xx -= cx - ix
    prof = np.zeros_like(yy)
    for (dy, dx), d in zip(offs, diam):
        r2 = ((yy - dy) ** 2 + (xx - dx) ** 2) / max(d / 2 / sp, 0.5) ** 2
        prof = np.maximum(prof, np.clip(1 - r2, 0, None) ** rng.uniform(0.3, 1.5)
                          * rng.uniform(0.5, 1.0))
    foot = prof > 0
    if not foot.any():
        foot[R, R] = True
        prof[R, R] = 1.0
    return prof / prof.max(), foot, R, iy, ix


def _calcifications(rng, H, W, sp, noise_sd, allowed, psf=None, faint_max_mm=0.5,
                    clump_fraction=0.0):
    """Calcifications and their footprint mask.

    ``psf=None`` ("pixel" contrast): thickness-like profiles before the blur, peak
    ``cnr * noise_sd``. Otherwise ("detector" contrast): each profile blurred by ``psf`` on
    its own window and scaled so that its blurred peak is ``cnr`` (the caller multiplies by
    the image's noise at calcification scale). ``faint_max_mm``: the largest diameter on a
    faint (amorphous-like) patch. ``clump_fraction``: the probability that a cluster also
    holds a clump (:func:`_clump`; 0 draws nothing, the stream of filters trained before
    clumps). Returns the signal, the footprints and whether the patch is faint."""
    signal = np.zeros((H, W), np.float32)
    ref = np.zeros((H, W), bool)
    centres, clumps = [], []
    for _ in range(int(rng.integers(1, 4))):  # clusters
        cy, cx = rng.uniform(0.15, 0.85) * H, rng.uniform(0.15, 0.85) * W
        rad = rng.uniform(1.5, 7.0) / sp
        for _ in range(int(rng.integers(1, 21))):
            centres.append((cy + rng.normal(0, rad / 2), cx + rng.normal(0, rad / 2)))
        if clump_fraction > 0 and rng.random() < clump_fraction:
            clumps.append((cy + rng.normal(0, rad / 4), cx + rng.normal(0, rad / 4)))
    for _ in range(int(rng.poisson(4))):  # isolated
        centres.append((rng.uniform(0, H), rng.uniform(0, W)))
    faint = rng.random() < 0.5  # amorphous-like patch: faint, small, hazy
    for cy, cx in centres:
        d_mm = _loguniform(rng, 0.1, faint_max_mm if faint else 1.0)
        a = d_mm / 2 / sp  # semi-axis in px
        asp = rng.uniform(1.0, 2.5)
        th = rng.uniform(0, np.pi)
        ra, rb = a * np.sqrt(asp), a / np.sqrt(asp)
        R = int(np.ceil(max(ra, 1.0))) + 1
        iy, ix = int(round(cy)), int(round(cx))
        if not (R <= iy < H - R and R <= ix < W - R) or not allowed[iy, ix]:
            continue
        if ref[iy - R - 2: iy + R + 3, ix - R - 2: ix + R + 3].any():
            continue
        yy, xx = np.mgrid[-R: R + 1, -R: R + 1].astype(np.float64)
        yy -= cy - iy
        xx -= cx - ix
        u = (np.cos(th) * xx + np.sin(th) * yy) / max(ra, 0.5)
        v = (np.cos(th) * yy - np.sin(th) * xx) / max(rb, 0.5)
        r2 = u * u + v * v
        prof = np.clip(1 - r2, 0, None) ** rng.uniform(0.3, 1.5)
        foot = r2 <= 1
        if not foot.any():
            foot[R, R] = True
            prof[R, R] = 1.0
        # One in five of the others 20-60x: on textured real tissue a clearly visible
        # calcification reaches a DoG CNR of 20-50, which the filter must not take for a
        # line or an edge. "detector" contrast: the blurred peak in units of the image's
        # noise at calcification scale (a contrast in pre-blur pixel noise leaves many small
        # calcifications invisible after the PSF, few training positives near the limit).
        _place(signal, ref, prof, foot, iy, ix, R, _contrast(rng, faint), noise_sd, psf)
    for cy, cx in clumps:
        # merged specks make one irregular object of 1-2 mm (a real cluster's brightest
        # calcifications often do), which the filter must not take for a vessel segment
        prof, foot, R, iy, ix = _clump(rng, cy, cx, sp, rng.uniform(0.2, 0.8))
        cnr = _contrast(rng, faint)
        if not (R <= iy < H - R and R <= ix < W - R) or not allowed[iy, ix]:
            continue
        if ref[iy - R: iy + R + 1, ix - R: ix + R + 1].any():
            continue
        _place(signal, ref, prof, foot, iy, ix, R, cnr, noise_sd, psf)
    return signal, ref, faint


def digitised_film(
    x: np.ndarray,
    random_state: int | np.random.Generator | None = None,
    *,
    block: int = 1,
    bits: int | None = None,
    params: dict | None = None,
) -> tuple[np.ndarray, int]:
    """Print an attenuation image on screen-film and digitise it (as a reader returns it).

    ``x`` (bright = more attenuation, any scale; rescaled by its 0.5 / 99.9 percentiles)
    becomes log exposure ``-L x`` with a film latitude ``L`` of 1-1.6 decades across that
    range. The film's characteristic (H&D) curve is a logistic in log exposure from a base
    + fog density 0.15-0.25 to a maximum 3.4-4.2, with a maximum gradient (film gamma) of
    2.5-4 (mammography films), the exposure placed so that the median tissue lies in the
    upper-middle of the curve (dense tissue drops into the toe, fat and skin into the
    shoulder: contrast is compressed at both ends). Film grain adds density noise of sd
    ``g sqrt(D)`` (Selwyn granularity), g 0.004-0.03, correlated over 0.3-0.8 px. The
    digitiser blurs by its aperture (0.3-0.6 px), averages ``block x block`` pixels (a
    coarser sampling grid, e.g. 0.2 mm from a 0.1 mm image), adds a little electronic
    noise and stores the density linearly over 0-4.2 OD in ``bits`` bits (8, 10 or 12,
    drawn when None), i.e. MONOCHROME1 (high value = dark); the returned array is inverted
    as a DICOM reader does, so calcifications are bright.

    Parameters
    ----------
    x : ndarray of shape (H, W)
        Attenuation-like image (calcifications and dense tissue bright).
    random_state : int, numpy.random.Generator or None, default=None
        Seed or generator of the film's and digitiser's draws.
    block : int, default=1
        Digitiser sampling factor: the output has ``H // block`` x ``W // block`` pixels.
    bits : int, optional
        Stored bits (8, 10 or 12 drawn when None).
    params : dict, optional
        Updated with the drawn settings.

    Returns
    -------
    image : ndarray of uint8 or uint16
    bits : int

    Examples
    --------
    >>> import numpy as np
    >>> x = np.zeros((64, 64)); x[30:33, 30:33] = 1.0
    >>> img, bits = digitised_film(x, np.random.default_rng(0), block=2, bits=12)
    >>> img.shape, bits, bool(img[15, 15] > np.median(img))
    ((32, 32), 12, True)
    """
    rng = np.random.default_rng(random_state)
    x = np.asarray(x, np.float64)
    lo, hi = np.percentile(x, [0.5, 99.9])
    x = (x - lo) / max(hi - lo, 1e-12)
    latitude = rng.uniform(1.0, 1.6)
    log_e = -latitude * x
    d_min, d_max = rng.uniform(0.15, 0.25), rng.uniform(3.4, 4.2)
    gamma = rng.uniform(2.5, 4.0)
    slope = 4 * gamma / (d_max - d_min)  # the logistic's maximum gradient is gamma
    e0 = float(np.median(log_e)) - rng.uniform(0.0, 0.4)
    density = d_min + (d_max - d_min) / (1 + np.exp(-slope * (log_e - e0)))
    g = _loguniform(rng, 0.004, 0.03)
    grain = rng.standard_normal(x.shape)
    grain = ndimage.gaussian_filter(grain, rng.uniform(0.3, 0.8))
    grain /= max(float(grain.std()), 1e-12)
    density += g * np.sqrt(density) * grain
    density = ndimage.gaussian_filter(density, rng.uniform(0.3, 0.6))
    b = int(block)
    if b > 1:
        H, W = (density.shape[0] // b) * b, (density.shape[1] // b) * b
        density = density[:H, :W].reshape(H // b, b, W // b, b).mean(axis=(1, 3))
    density += rng.normal(0, 0.002, density.shape)
    bits = int(rng.choice([8, 10, 12])) if bits is None else int(bits)
    top = 2**bits - 1
    stored = np.clip(np.rint(density / 4.2 * top), 0, top)  # MONOCHROME1: dark = high
    img = top - stored  # the reader's inversion
    if params is not None:
        params.update(film_latitude=latitude, film_gamma=gamma, film_grain=g,
                      film_d_max=d_max, film_bits=bits)
    return img.astype(np.uint8 if bits <= 8 else np.uint16), bits


def _noise_at_calcification_scale(signal: np.ndarray, sp: float, breast: np.ndarray) -> float:
    """Robust sd of the finest DoG of the detector over the breast, as white-noise pixel sd
    (the ``pixel_noise_sd`` of the segmentation summary, in the signal's units)."""
    from ..segmentation._calibrated import local_robust_scale, white_noise_dog_sd
    from ..segmentation._hdog import hdog_sigmas

    s0, s1 = hdog_sigmas(0.0826, 0.217, 1.6)[:2]
    d = (ndimage.gaussian_filter(signal, s0 / sp, truncate=4.0)
         - ndimage.gaussian_filter(signal, s1 / sp, truncate=4.0)) / (s1 / s0 - 1)
    inner = ndimage.binary_erosion(breast, iterations=max(1, int(1 / sp)))
    _, g = local_robust_scale(d, inner if inner.any() else None,
                              (int(5 / sp), int(5 / sp)))
    return g / white_noise_dog_sd(s0 / sp, s1 / s0)


def make_training_patch(random_state: int | np.random.Generator | None = None, *,
                        size_mm: float = 32.0, spacing: float | None = None,
                        calcifications: bool | None = None, film_fraction: float = 0.0,
                        contrast: str = "pixel", faint_max_mm: float = 0.5,
                        clump_fraction: float = 0.0) -> dict:
    """Draw one varied mammogram patch with its calcification footprints.

    The patch model (background texture, linear structures, breast edge and pectoral
    muscle, calcifications, acquisition, processing, storage, film) is the one the packaged
    candidate filter was trained on; it is described in :doc:`/segmentation` ("The
    candidate filter and the operating point"). Use it to retrain the filter
    (``scripts/train_candidate_filter.py``), to recalibrate its table, or to test a
    detector on images whose truth is known.

    Parameters
    ----------
    random_state : int, numpy.random.Generator or None, default=None
        Seed or generator; every draw comes from it (deterministic under a seed).
    size_mm : float, default=32.0
        Side of the square patch in mm.
    spacing : float, optional
        Pixel spacing in mm; drawn log-uniformly in [0.05, 0.2] when None.
    calcifications : bool, optional
        Whether calcifications are inserted (drawn with probability 0.7 when None).
    film_fraction : float, default=0.0
        Probability that the patch is digitised screen-film (:func:`digitised_film`)
        instead of a digital detector's output. 0 draws nothing (the packaged filter's
        training stream).
    contrast : {"pixel", "detector"}, default="pixel"
        Unit of the calcifications' drawn contrast: the pre-blur pixel noise (the packaged
        filter's training) or the blurred peak over the image's noise at calcification
        scale as the detector measures it.
    faint_max_mm : float, default=0.5
        Largest diameter (mm) of the calcifications of a faint, amorphous-like patch
        (``params["faint"]``); up to 1.0 also draws large faint ones.
    clump_fraction : float, default=0.0
        Probability that a cluster also holds a clump: 3-8 specks of 0.1-0.4 mm within
        0.2-0.8 mm, touching or merging into one irregular object. 0 draws nothing (the
        stream of filters trained without clumps).

    Returns
    -------
    dict
        ``image`` (uint16 or uint8, calcifications bright), ``spacing`` (mm), ``bits``,
        ``reference`` (bool footprints of the calcifications), ``breast`` (bool),
        ``params`` (the drawn settings).

    Examples
    --------
    >>> import numpy as np
    >>> p = make_training_patch(np.random.default_rng(0), size_mm=8.0, spacing=0.1)
    >>> p["image"].shape, p["reference"].shape
    ((80, 80), (80, 80))
    """
    rng = np.random.default_rng(random_state)
    sp = float(spacing) if spacing is not None else _loguniform(rng, 0.05, 0.2)
    n = int(round(size_mm / sp))
    H = W = n
    level = rng.uniform(400, 3000)
    noise_sd = _loguniform(rng, 3.0, 200.0)
    tex_sd = noise_sd * _loguniform(rng, 0.2, 8.0)
    beta = rng.uniform(2.4, 3.5)
    tex = power_law_texture((H, W), sp, beta, 1.0, rng, anisotropy=rng.uniform(1.0, 1.6),
                            angle=rng.uniform(0, np.pi))
    tex *= np.float32(tex_sd / max(float(tex.std()), 1e-9))
    signal = np.full((H, W), level, np.float32) + tex
    del tex
    signal += _lines(rng, H, W, sp, tex_sd, noise_sd)
    signal += _lumps(rng, H, W, sp, tex_sd, noise_sd)
    if rng.random() < 0.7:
        signal += _lumpy(rng, H, W, sp, tex_sd, noise_sd)

    yy, xx = np.mgrid[:H, :W].astype(np.float32)
    breast = np.ones((H, W), bool)
    params = {"spacing": sp, "beta": beta, "noise_sd": noise_sd, "tex_sd": tex_sd}
    if rng.random() < 0.3:  # breast edge: thinning to air, bright skin line
        th = rng.uniform(0, 2 * np.pi)
        off = rng.uniform(0.2, 0.8) * n
        d = ((yy - H / 2) * np.sin(th) + (xx - W / 2) * np.cos(th)) * sp + (off - n / 2) * sp
        d += (rng.normal(0, 0.002) * ((yy * np.cos(th) - xx * np.sin(th)) * sp) ** 2)
        ramp = np.clip(d / rng.uniform(3, 12), 0, 1)
        thick = np.sqrt(1 - (1 - ramp) ** 2)
        air = level * rng.uniform(0.0, 0.1)
        signal = air + (signal - air) * thick
        skin = np.exp(-((d - 0.3) / rng.uniform(0.3, 1.0)) ** 2) * (d > 0)
        signal += skin.astype(np.float32) * level * rng.uniform(0.02, 0.15)
        breast = d > 0
        params["edge"] = True
    if rng.random() < 0.35:  # pectoral muscle (or a dense-tissue border)
        th = rng.uniform(0, 2 * np.pi)
        d = ((yy - H / 2) * np.sin(th) + (xx - W / 2) * np.cos(th)) * sp + rng.uniform(-8, 8)
        soft = 1 / (1 + np.exp(-np.clip(d / rng.uniform(0.3, 2.0), -50, 50)))
        signal += (soft * level * rng.uniform(0.1, 0.6)).astype(np.float32)
        params["pectoral"] = True
    del yy, xx
    has_calc = (rng.random() < 0.7) if calcifications is None else bool(calcifications)
    reference = np.zeros((H, W), bool)
    if contrast not in ("pixel", "detector"):
        raise ValueError(f"contrast must be 'pixel' or 'detector', got {contrast!r}")
    if not 0.1 <= faint_max_mm <= 1.0:
        raise ValueError(f"faint_max_mm must be in [0.1, 1.0] mm, got {faint_max_mm!r}")
    if not 0.0 <= clump_fraction <= 1.0:
        raise ValueError(f"clump_fraction must be in [0, 1], got {clump_fraction!r}")
    calc = None
    detector = contrast == "detector"
    # The PSF is drawn before the calcifications for "detector" contrast (they are blurred
    # with it) and after them for "pixel" contrast: the packaged filter's random streams.
    if detector:
        psf = rng.uniform(0.03, 0.12) / sp
    if has_calc:
        allowed = ndimage.binary_erosion(breast, iterations=max(1, int(3 / sp)))
        calc, reference, params["faint"] = _calcifications(
            rng, H, W, sp, noise_sd, allowed, psf if detector else None, faint_max_mm,
            clump_fraction)
        if not detector:  # pre-blur profiles: part of the signal the PSF blurs below
            signal += calc
            calc = None
    if not detector:
        psf = rng.uniform(0.03, 0.12) / sp
    signal = ndimage.gaussian_filter(signal, psf)
    # noise: quantum (variance ~ signal) + electronic, possibly correlated
    q = rng.uniform(0.3, 1.0)
    var = (q * noise_sd**2) * np.maximum(signal, 1.0) / level + (1 - q) * noise_sd**2
    white = rng.standard_normal((H, W)).astype(np.float32)
    if rng.random() < 0.5:  # resampled / correlated noise, or film grain
        white = ndimage.gaussian_filter(white, rng.uniform(0.4, 1.2))
        white /= max(float(white.std()), 1e-9)
    signal = signal + white * np.sqrt(var).astype(np.float32)
    del white, var
    if calc is not None:
        # the image's noise at calcification scale, as the detector measures it
        signal += calc * np.float32(_noise_at_calcification_scale(signal, sp, breast))
    if film_fraction > 0 and rng.random() < film_fraction:  # digitised screen-film
        img, bits = digitised_film(signal, rng, params=params)
        params.update(mode="film", bits=bits, psf_px=float(psf), has_calc=has_calc)
        return {"image": img, "spacing": sp, "bits": bits, "reference": reference,
                "breast": breast, "params": params}
    if rng.random() < 0.4:  # processed image: unsharp masking
        s = rng.uniform(1.0, 6.0) / sp
        signal = signal + rng.uniform(0.3, 1.5) * (signal - ndimage.gaussian_filter(signal, s))
    # display transform to [0, 1]
    lo, hi = np.percentile(signal[breast], [0.5, 99.9]) if breast.any() else (0, 1)
    lo = min(lo, float(signal.min()))
    x = (signal - lo) / max(hi - lo, 1e-6)
    mode = rng.choice(["linear", "log", "gamma", "window"])
    if mode == "log":
        x = np.log1p(np.clip(x, 0, None) * 20) / np.log1p(20 * max(float(x.max()), 1e-6))
    elif mode == "gamma":
        x = np.clip(x, 0, None) ** rng.uniform(0.5, 2.0)
    elif mode == "window":
        a, b = rng.uniform(-0.1, 0.3), rng.uniform(0.8, 1.1)
        x = (x - a) / (b - a)
    x = np.clip(x / max(float(x.max()), 1e-6), 0, 1)
    bits = int(rng.choice([8, 10, 12, 12, 14, 16]))
    img = np.rint(x * (2**bits - 1))
    if bits == 8:
        img = img.astype(np.uint8)
        if rng.random() < 0.5:
            from PIL import Image

            buf = io.BytesIO()
            Image.fromarray(img).save(buf, format="JPEG", quality=int(rng.integers(70, 96)))
            img = np.asarray(Image.open(io.BytesIO(buf.getvalue())))
            params["jpeg"] = True
    else:
        img = img.astype(np.uint16)
    params.update(mode=str(mode), bits=bits, psf_px=float(psf), has_calc=has_calc)
    return {"image": img, "spacing": sp, "bits": bits, "reference": reference,
            "breast": breast, "params": params}
