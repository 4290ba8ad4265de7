"""Amorphous calcification clusters: BI-RADS distributions, footprints and rendering.

Everything is drawn in mm and converted to pixels with the spacing, so that the same
cluster has the same physical size at 0.05, 0.07 or 0.1 mm.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

# BI-RADS (5th ed.) distribution descriptors, least to most suspicious, and how often each
# appearance class uses them. Benign disease spreads calcifications over a large volume;
# grouped/linear/segmental arrangements suggest a duct and raise suspicion.
BENIGN_DISTRIBUTIONS = {"diffuse": 0.4, "regional": 0.35, "grouped": 0.25}
ACTIONABLE_DISTRIBUTIONS = {"grouped": 0.35, "linear": 0.3, "segmental": 0.35}

MIN_DIAMETER_MM = 0.1
MAX_DIAMETER_MM = 0.6
MIN_CONTRAST = 75.0
MAX_CONTRAST = 350.0


@dataclass
class ClusterSpec:
    """Parameters of one cluster, drawn from one appearance class."""

    appearance: str  # "benign" or "actionable"
    distribution: str
    n: int
    radius_mm: float  # points are kept within this distance of the centre
    size_median_mm: float
    size_log_sd: float
    aspect_max: float
    irregularity: float
    contrast_median: float
    contrast_log_sd: float
    haze_mm: float
    layout: dict = field(default_factory=dict)


def draw_cluster_spec(appearance: str, radius_mm: float, rng: np.random.Generator) -> ClusterSpec:
    """Draw cluster parameters for an appearance class (``'benign'`` or ``'actionable'``)."""
    benign = appearance == "benign"
    table = BENIGN_DISTRIBUTIONS if benign else ACTIONABLE_DISTRIBUTIONS
    names = list(table)
    distribution = names[rng.choice(len(names), p=np.array(list(table.values())))]
    # Real ROIs sometimes hold only one or two visible calcifications.
    if rng.random() < 0.07:
        n = int(rng.integers(1, 3))
    elif benign:
        n = 3 + int(rng.poisson(7))
    else:
        n = 4 + int(rng.poisson(10))
    if benign:
        # Uniform, round objects: small spread of sizes and contrasts.
        spec = ClusterSpec(
            appearance, distribution, n, radius_mm,
            size_median_mm=rng.uniform(0.15, 0.32), size_log_sd=0.12,
            aspect_max=1.25, irregularity=rng.uniform(0.0, 0.08),
            contrast_median=float(np.exp(rng.uniform(np.log(100), np.log(210)))),
            contrast_log_sd=0.15, haze_mm=rng.uniform(0.0, 0.04),
        )  # fmt: skip
    else:
        # Pleomorphic tendency: heterogeneous sizes, elongated and irregular shapes.
        spec = ClusterSpec(
            appearance, distribution, n, radius_mm,
            size_median_mm=rng.uniform(0.15, 0.35), size_log_sd=0.4,
            aspect_max=rng.uniform(1.5, 2.6), irregularity=rng.uniform(0.05, 0.3),
            contrast_median=float(np.exp(rng.uniform(np.log(105), np.log(230)))),
            contrast_log_sd=0.35, haze_mm=rng.uniform(0.0, 0.04),
        )  # fmt: skip
    spec.layout = _draw_layout(distribution, radius_mm, rng)
    return spec


def _draw_layout(distribution: str, radius_mm: float, rng: np.random.Generator) -> dict:
    R = radius_mm
    if distribution == "diffuse":
        return {"kind": "disk", "radius": R}
    if distribution == "regional":
        return {
            "kind": "ellipse", "a": R, "b": R * rng.uniform(0.45, 0.8),
            "angle": rng.uniform(0, np.pi),
        }  # fmt: skip
    if distribution == "grouped":
        sd = rng.uniform(1.0, 2.2)
        off = rng.normal(0, 0.15 * R, 2)
        return {"kind": "gauss", "sd": sd, "offset": off}
    if distribution == "linear":
        theta = rng.uniform(0, np.pi)
        length = 2 * R * rng.uniform(0.55, 0.95)
        return {
            "kind": "segments",
            "segments": [(-0.5 * length, theta, length)],
            "jitter": rng.uniform(0.12, 0.3),
            "bend": rng.normal(0, 0.02),
        }
    if distribution == "segmental":
        # A duct with branches fanning out from it (a segment of a lobe).
        theta = rng.uniform(0, 2 * np.pi)
        trunk = 2 * R * rng.uniform(0.5, 0.8)
        segs = [(-0.5 * trunk, theta, trunk)]
        for _ in range(int(rng.integers(2, 4))):
            t0 = rng.uniform(-0.3, 0.5) * trunk
            ang = theta + rng.choice([-1, 1]) * rng.uniform(0.35, 0.8)
            segs.append((t0, ang, R * rng.uniform(0.3, 0.6), theta))
        return {"kind": "segments", "segments": segs, "jitter": rng.uniform(0.15, 0.35),
                "bend": 0.0}  # fmt: skip
    raise ValueError(f"unknown distribution {distribution!r}")


def sample_point(layout: dict, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """One calcification position (dy, dx) in mm from the cluster centre, and the local
    direction of the duct (radians, NaN when the layout has none)."""
    kind = layout["kind"]
    if kind == "disk":
        r = layout["radius"] * np.sqrt(rng.random())
        a = rng.uniform(0, 2 * np.pi)
        return np.array([r * np.sin(a), r * np.cos(a)]), np.nan
    if kind == "ellipse":
        r = np.sqrt(rng.random())
        a = rng.uniform(0, 2 * np.pi)
        u, v = layout["a"] * r * np.cos(a), layout["b"] * r * np.sin(a)
        c, s = np.cos(layout["angle"]), np.sin(layout["angle"])
        return np.array([s * u + c * v, c * u - s * v]), np.nan
    if kind == "gauss":
        return layout["offset"] + rng.normal(0, layout["sd"], 2), np.nan
    segs = layout["segments"]
    lengths = np.array([s[2] for s in segs])
    k = rng.choice(len(segs), p=lengths / lengths.sum())
    seg = segs[k]
    t = rng.uniform(0, seg[2])
    if k == 0:
        start, theta = seg[0], seg[1]
        along = start + t
        perp = rng.normal(0, layout["jitter"]) + layout["bend"] * along**2
        d = np.array([np.sin(theta), np.cos(theta)])
        n = np.array([np.cos(theta), -np.sin(theta)])
        return along * d + perp * n, theta
    t0, theta, _, trunk_theta = seg
    base = t0 * np.array([np.sin(trunk_theta), np.cos(trunk_theta)])
    d = np.array([np.sin(theta), np.cos(theta)])
    n = np.array([np.cos(theta), -np.sin(theta)])
    return base + t * d + rng.normal(0, layout["jitter"]) * n, theta


def footprint(
    centre: np.ndarray,
    n_pixels: int,
    aspect: float,
    irregularity: float,
    angle: float,
    harmonics: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixels of one calcification: a 4-connected set of exactly ``n_pixels`` pixels.

    Grows from the pixel nearest to the sub-pixel ``centre`` by adding, among the 4-neighbours
    of the set, the one with the smallest normalised (elliptic, lobulated) radius; this gives
    the geometric shape at pixel resolution and guarantees one 4-connected label.

    Returns the rows and cols of the pixels (in flood order) and their normalised radius
    (for the dome profile).
    """
    # Scalar maths: this runs once per candidate pixel, where numpy call overhead dominates.
    a = math.sqrt(aspect)
    ca, sa = math.cos(angle), math.sin(angle)
    cy0, cx0 = float(centre[0]), float(centre[1])
    (a2, a3, a4), (p2, p3, p4) = (tuple(float(v) for v in row) for row in harmonics)

    def radius(r: int, c: int) -> float:
        dy, dx = r - cy0, c - cx0
        u = (ca * dx + sa * dy) / a
        v = (ca * dy - sa * dx) * a
        th = math.atan2(v, u)
        lobes = 1.0 + irregularity * (
            a2 * math.cos(2 * th + p2) + a3 * math.cos(3 * th + p3) + a4 * math.cos(4 * th + p4)
        )
        return math.hypot(u, v) / max(lobes, 0.3)

    start = (int(np.floor(centre[0] + 0.5)), int(np.floor(centre[1] + 0.5)))
    seen = {start}
    heap = [(radius(*start), start)]
    rows, cols, rads = [], [], []
    while heap and len(rows) < n_pixels:
        rad, (r, c) = heapq.heappop(heap)
        rows.append(r)
        cols.append(c)
        rads.append(rad)
        for nb in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
            if nb not in seen:
                seen.add(nb)
                heapq.heappush(heap, (radius(*nb), nb))
    return np.array(rows), np.array(cols), np.array(rads)


def place_cluster(
    signal: np.ndarray,
    reference: np.ndarray,
    allowed: np.ndarray,
    centre_px: tuple[float, float],
    spec: ClusterSpec,
    spacing: float,
    psf_sigma_mm: float,
    rng: np.random.Generator,
    *,
    min_gap_px: int = 2,
) -> list[dict]:
    """Insert one cluster into ``signal`` (in place) and mark it in ``reference``.

    Each calcification's footprint must lie in ``allowed`` and keep ``min_gap_px`` background
    pixels from every calcification already in ``reference``. Its thickness profile (a dome
    over the footprint) is blurred by the detector PSF plus a little haze and scaled so that
    the blurred peak equals the drawn contrast (counts above the local background).

    Returns one dict per inserted calcification (centroid px, diameter mm, contrast).
    """
    H, W = signal.shape
    px_area = spacing * spacing
    n_min = int(np.ceil(np.pi * (MIN_DIAMETER_MM / 2) ** 2 / px_area - 1e-9))
    n_max = int(np.floor(np.pi * (MAX_DIAMETER_MM / 2) ** 2 / px_area + 1e-9))
    n_min = max(n_min, 1)
    if n_max < n_min:
        raise ValueError(
            f"spacing {spacing} mm is too coarse to draw calcifications of "
            f"{MIN_DIAMETER_MM}-{MAX_DIAMETER_MM} mm"
        )
    gap = min_gap_px
    placed: list[dict] = []
    attempts = 0
    while len(placed) < spec.n and attempts < 25 * spec.n + 20:
        attempts += 1
        p, duct = sample_point(spec.layout, rng)
        if np.hypot(*p) > spec.radius_mm:
            continue
        cy = centre_px[0] + p[0] / spacing
        cx = centre_px[1] + p[1] / spacing
        iy, ix = int(round(cy)), int(round(cx))
        if not (0 <= iy < H and 0 <= ix < W) or not allowed[iy, ix]:
            continue
        near = reference[max(iy - gap - 1, 0) : iy + gap + 2, max(ix - gap - 1, 0) : ix + gap + 2]
        if near.any():
            continue  # cheap early rejection before growing the footprint
        d_mm = spec.size_median_mm * np.exp(rng.normal(0, spec.size_log_sd))
        d_mm = float(np.clip(d_mm, MIN_DIAMETER_MM, MAX_DIAMETER_MM))
        n_pix = int(np.clip(round(np.pi * (d_mm / 2) ** 2 / px_area), n_min, n_max))
        aspect = rng.uniform(1.0, spec.aspect_max)
        if np.isfinite(duct) and rng.random() < 0.7:
            angle = -duct + rng.normal(0, 0.3)  # elongated along the duct
        else:
            angle = rng.uniform(0, np.pi)
        harmonics = np.stack([rng.uniform(0.3, 1.0, 3), rng.uniform(0, 2 * np.pi, 3)])
        rr, cc, rad = footprint(
            np.array([cy, cx]), n_pix, aspect, spec.irregularity, angle, harmonics
        )
        m = gap + 1
        r0, r1, c0, c1 = rr.min(), rr.max() + 1, cc.min(), cc.max() + 1
        if r0 - m < 0 or c0 - m < 0 or r1 + m > H or c1 + m > W:
            continue
        if not allowed[rr, cc].all():
            continue
        if reference[r0 - gap : r1 + gap, c0 - gap : c1 + gap].any():
            # Exact test: dilate the footprint by the gap (Chebyshev) and look for contacts.
            patch = np.zeros((r1 - r0 + 2 * gap, c1 - c0 + 2 * gap), bool)
            patch[rr - r0 + gap, cc - c0 + gap] = True
            patch = ndimage.binary_dilation(patch, np.ones((2 * gap + 1, 2 * gap + 1), bool))
            if (patch & reference[r0 - gap : r1 + gap, c0 - gap : c1 + gap]).any():
                continue
        contrast = spec.contrast_median * np.exp(rng.normal(0, spec.contrast_log_sd))
        contrast = float(np.clip(contrast, MIN_CONTRAST, MAX_CONTRAST))
        sigma_px = np.hypot(psf_sigma_mm, rng.uniform(0, spec.haze_mm)) / spacing
        mb = int(np.ceil(4 * sigma_px)) + 1
        b0, b1 = max(r0 - mb, 0), min(r1 + mb, H)
        d0, d1 = max(c0 - mb, 0), min(c1 + mb, W)
        prof = np.zeros((b1 - b0, d1 - d0), np.float32)
        # Dome-shaped thickness: thicker at the centre, hazy towards the edge.
        rmax = rad.max() + 0.5
        prof[rr - b0, cc - d0] = np.sqrt(np.clip(1.0 - (rad / (rmax + 0.5)) ** 2, 0.1, 1.0))
        prof = ndimage.gaussian_filter(prof, sigma_px, mode="constant")
        prof *= np.float32(contrast / prof.max())
        signal[b0:b1, d0:d1] += prof
        reference[rr, cc] = True
        placed.append(
            {
                "centroid": (float(rr.mean()), float(cc.mean())),
                "diameter_mm": float(2 * np.sqrt(n_pix * px_area / np.pi)),
                "contrast": contrast,
            }
        )
    return placed
