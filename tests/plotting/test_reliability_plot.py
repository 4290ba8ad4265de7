import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from sklearn.calibration import calibration_curve  # noqa: E402
from sklearn.metrics import brier_score_loss  # noqa: E402

from skcalc.plotting import plot_reliability, reliability_table  # noqa: E402


def test_reliability_table_matches_sklearn_on_non_empty_bins():
    rng = np.random.default_rng(0)
    p = rng.random(200) ** 3
    y = (rng.random(200) < p).astype(int)
    t = reliability_table(y, p, n_bins=5)
    assert t["count"].sum() == 200 and len(t["count"]) == 5
    frac, mean = calibration_curve(y, p, n_bins=5)
    keep = t["count"] > 0
    np.testing.assert_allclose(t["fraction_positive"][keep], frac)
    np.testing.assert_allclose(t["mean_predicted"][keep], mean)


def test_reliability_table_keeps_empty_bins_and_validates():
    t = reliability_table([0, 1], [0.0, 1.0], n_bins=4)
    assert t["count"].tolist() == [1, 0, 0, 1]
    assert np.isnan(t["mean_predicted"][1])
    with pytest.raises(ValueError, match="probabilities"):
        reliability_table([0, 1], [0.2, 1.2])


def test_plot_reliability_curve_brier_and_threshold():
    rng = np.random.default_rng(1)
    p = rng.random(100)
    y = (rng.random(100) < p).astype(int)
    fig, ax = plt.subplots()
    plot_reliability(y, p, n_bins=4, ax=ax, label="model", threshold=0.4)
    t = reliability_table(y, p, n_bins=4)
    np.testing.assert_allclose(ax.lines[0].get_ydata(), t["fraction_positive"])
    labels = ax.get_legend_handles_labels()[1]
    assert labels[0] == f"model (Brier = {brier_score_loss(y, p):.3f})"
    assert "threshold 0.4" in labels
    assert any(lab.startswith(f"prevalence {y.mean():.2f}") for lab in labels)
    plt.close(fig)
