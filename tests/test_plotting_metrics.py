import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import roc_curve  # noqa: E402

from skcalc.plotting import plot_confusion_matrix, plot_roc  # noqa: E402


def test_plot_roc_line_is_roc_curve_and_operating_point():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 30)
    s = rng.random(30) + 0.3 * y
    fig, ax = plt.subplots()
    assert plot_roc(y, s, ax=ax, label="bag", threshold=0.5) is ax
    fpr, tpr, _ = roc_curve(y, s)
    np.testing.assert_allclose(ax.lines[0].get_xdata(), fpr)
    np.testing.assert_allclose(ax.lines[0].get_ydata(), tpr)
    point = ax.collections[0].get_offsets()[0]
    pred = s >= 0.5
    np.testing.assert_allclose(point, [pred[y == 0].mean(), pred[y == 1].mean()])
    assert ax.get_legend_handles_labels()[1][0].startswith("bag (AUC = ")
    plt.close(fig)


def test_plot_confusion_matrix_counts():
    y_true = [0] * 43 + [1] * 17
    y_pred = [0] * 15 + [1] * 28 + [1] * 17
    fig, ax = plt.subplots()
    plot_confusion_matrix(y_true, y_pred, ax=ax)
    assert ax.images[0].get_array().tolist() == [[15, 28], [0, 17]]
    assert sorted(t.get_text() for t in ax.texts) == ["0", "15", "17", "28"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["benign", "actionable"]
    plt.close(fig)
