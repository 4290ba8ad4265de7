"""Every gallery example runs as written (so that the user guide's examples stay true)."""

import pathlib
import runpy

import matplotlib
import pytest

EXAMPLES = sorted((pathlib.Path(__file__).resolve().parents[1] / "examples").glob("plot_*.py"))
SLOW = {"plot_quickstart.py", "plot_grid_search_k_threshold.py"}  # 10-20 s each


def test_the_gallery_has_the_user_guide_examples():
    names = {p.name for p in EXAMPLES}
    assert {"plot_manifest_features.py", "plot_dicom_vendors.py",
            "plot_operating_point.py", "plot_quickstart.py"} <= names  # fmt: skip


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize(
    "path",
    [pytest.param(p, id=p.name, marks=[pytest.mark.slow] * (p.name in SLOW)) for p in EXAMPLES],
)
def test_example_runs(path, tmp_path, monkeypatch, capsys):
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    monkeypatch.chdir(tmp_path)  # an example writes only where it says (temporary folders)
    monkeypatch.setattr(plt, "show", lambda *a, **k: None)
    plt.close("all")
    runpy.run_path(str(path), run_name="__main__")  # examples assert what they claim
    assert plt.get_fignums(), "every gallery example draws a figure"
    assert capsys.readouterr().out  # and prints its figures
    plt.close("all")
    assert list(tmp_path.iterdir()) == []
