"""Tests of the three handcrafted global features."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage as ndi

from skcalc.features import handcrafted_features


def reference(lab, spacing):
    ids = [i for i in np.unique(lab) if i > 0]
    areas = [np.sum(lab == i) * spacing[0] * spacing[1] for i in ids]
    cents = [np.array(ndi.center_of_mass(lab == i)) * spacing for i in ids]
    if len(ids) < 2:
        return [float(np.std(areas)) if ids else 0.0, 0.0, 0.0]
    ys, xs = np.array(cents).T
    corr = 0.0 if xs.std() == 0 or ys.std() == 0 else np.corrcoef(xs, ys)[0, 1]
    dists = [np.hypot(*(a - b)) for a, b in itertools.combinations(cents, 2)]
    return [np.std(areas), corr, np.mean(dists)]


@settings(max_examples=50, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(0, 6),
    spacing=st.tuples(st.floats(0.05, 0.2), st.floats(0.05, 0.2)),
)
def test_equals_reference(seed, n, spacing):
    rng = np.random.default_rng(seed)
    lab = np.zeros((30, 30), np.int32)
    for i in range(1, n + 1):
        r, c = rng.integers(0, 27, 2)
        lab[r : r + rng.integers(1, 4), c : c + rng.integers(1, 4)] = i
    np.testing.assert_allclose(
        handcrafted_features(lab, spacing), reference(lab, spacing), rtol=1e-10, atol=1e-12
    )


def test_known_answers_and_conventions():
    lab = np.zeros((10, 10), int)
    assert handcrafted_features(lab, 0.1).tolist() == [0.0, 0.0, 0.0]
    lab[2, 2:4] = 5
    assert handcrafted_features(lab, 0.1).tolist() == [0.0, 0.0, 0.0]
    lab[2, 7] = 9  # same row: y does not vary, correlation defined as 0
    f = handcrafted_features(lab, (0.1, 0.2))
    assert f[0] == pytest.approx(np.std([0.04, 0.02]))
    assert f[1] == 0.0
    assert f[2] == pytest.approx((7 - 2.5) * 0.2)
    anti = np.zeros((10, 10), int)
    anti[0, 9], anti[5, 4], anti[9, 0] = 1, 2, 3  # anti-diagonal: x up, row down
    assert handcrafted_features(anti, 0.07)[1] == pytest.approx(-1.0)
    with pytest.raises(TypeError):
        handcrafted_features(np.zeros((3, 3)), 0.1)
