"""Anatomical background texture: Gaussian random fields with a power-law spectrum.

Mammographic anatomical background has a power spectrum ``P(f) = c / f**beta`` (Burgess,
Jacobson & Judy, Med Phys 2001) with ``beta`` about 3.17 (CC) and 3.30 (MLO) on digital
mammograms (Chen, Abbey, Boone et al., Med Phys 2012).
"""

from __future__ import annotations

import numpy as np
import scipy.fft

__all__ = ["power_law_texture", "radial_power_spectrum"]


def power_law_texture(
    shape: tuple[int, int],
    spacing: float,
    beta: float,
    psd_at_1: float,
    rng: np.random.Generator,
    *,
    f_min: float = 0.02,
    anisotropy: float = 1.0,
    angle: float = 0.0,
    workers: int = 1,
) -> np.ndarray:
    """Zero-mean Gaussian random field with a ``1/f**beta`` power spectrum, in float32.

    Parameters
    ----------
    shape : (int, int)
        Output shape in pixels.
    spacing : float
        Pixel spacing in mm; frequencies are in cycles/mm, so the physical texture does not
        depend on the sampling.
    beta : float
        Power-law exponent (about 3 for mammograms).
    psd_at_1 : float
        Power spectral density at 1 cycle/mm, in (output units)^2 mm^2.
    rng : numpy.random.Generator
        Source of the white noise.
    f_min : float, default=0.02
        Low-frequency roll-off in cycles/mm: the spectrum is
        ``psd_at_1 * (f**2 + f_min**2)**(-beta/2)``, which keeps the variance finite; it
        hardly affects the 0.1-1 cycles/mm band.
    anisotropy : float, default=1.0
        Ratio of correlation lengths along ``angle`` and across it (> 1 elongates the
        structure along ``angle``, mimicking ducts running towards the nipple).
    angle : float, default=0.0
        Orientation of the elongation in radians (0 = along the columns).
    workers : int, default=1
        Threads for ``scipy.fft``.

    Returns
    -------
    ndarray of float32, shape ``shape``
        The field; its periodogram equals the target spectrum in expectation.

    Examples
    --------
    >>> import numpy as np
    >>> t = power_law_texture((64, 64), 0.07, 3.0, 10.0, np.random.default_rng(0))
    >>> t.shape, t.dtype
    ((64, 64), dtype('float32'))
    """
    fy = np.fft.fftfreq(shape[0], d=spacing).astype(np.float32)[:, None]
    fx = np.fft.rfftfreq(shape[1], d=spacing).astype(np.float32)[None, :]
    c, s = np.float32(np.cos(angle)), np.float32(np.sin(angle))
    a = np.float32(np.sqrt(anisotropy))
    # Stretching the frequency axis across the preferred direction elongates the structures
    # along it; a rotation of frequency coordinates keeps the Hermitian symmetry of rfft.
    u = (c * fx + s * fy) * a
    v = (c * fy - s * fx) / a
    f2 = u * u
    f2 += v * v
    f2 += np.float32(f_min * f_min)
    del u, v
    f2[0, 0] = 1.0  # the mean is set to zero below; avoids 0**-x with f_min=0
    # White noise of unit variance has periodogram spacing**2; scale it to P(f).
    amp = f2 ** np.float32(-beta / 4.0)
    amp *= np.float32(np.sqrt(psd_at_1) / spacing)
    amp[0, 0] = 0.0
    del f2
    white = rng.standard_normal(shape, dtype=np.float32)
    spec = scipy.fft.rfft2(white, workers=workers)
    del white
    spec *= amp
    del amp
    out = scipy.fft.irfft2(spec, s=shape, workers=workers)
    return out.astype(np.float32, copy=False)


def radial_power_spectrum(
    image: np.ndarray, spacing: float, *, n_bins: int = 30
) -> tuple[np.ndarray, np.ndarray]:
    """Radially averaged power spectrum of a detrended, Hann-windowed patch.

    Parameters
    ----------
    image : ndarray of shape (H, W)
        The patch.
    spacing : float
        Pixel spacing in mm.
    n_bins : int, default=30
        Number of logarithmic frequency bins between the lowest frequency and Nyquist.

    Returns
    -------
    freqs : ndarray
        Bin-centre frequencies in cycles/mm (empty bins dropped).
    power : ndarray
        Mean periodogram in each bin.

    Examples
    --------
    >>> import numpy as np
    >>> t = power_law_texture((128, 128), 0.07, 3.0, 10.0, np.random.default_rng(0))
    >>> f, p = radial_power_spectrum(t, 0.07)
    >>> bool(p[0] > p[-1])
    True
    """
    img = np.asarray(image, dtype=np.float64)
    h, w = img.shape
    yy, xx = np.mgrid[:h, :w]
    # A plane fit removes the smooth density gradient whose edge jump would leak as 1/f**2.
    A = np.column_stack([np.ones(img.size), yy.ravel(), xx.ravel()])
    coef, *_ = np.linalg.lstsq(A, img.ravel(), rcond=None)
    img = img - (A @ coef).reshape(h, w)
    win = np.outer(np.hanning(h), np.hanning(w))
    spec = np.abs(np.fft.fft2(img * win)) ** 2 * spacing**2 / np.sum(win**2)
    fy = np.fft.fftfreq(h, d=spacing)[:, None]
    fx = np.fft.fftfreq(w, d=spacing)[None, :]
    fr = np.hypot(fy, fx).ravel()
    edges = np.geomspace(1.0 / (max(h, w) * spacing), 0.5 / spacing, n_bins + 1)
    idx = np.digitize(fr, edges) - 1
    ok = (idx >= 0) & (idx < n_bins)
    sums = np.bincount(idx[ok], weights=spec.ravel()[ok], minlength=n_bins)
    counts = np.bincount(idx[ok], minlength=n_bins)
    keep = counts > 0
    centres = np.sqrt(edges[:-1] * edges[1:])
    return centres[keep], sums[keep] / counts[keep]
