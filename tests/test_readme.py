"""The README's quick tour runs verbatim and prints held-out figures."""

import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.slow
def test_quick_tour_runs_verbatim(capsys):
    text = README.read_text()
    tour = text[text.index("## Quick tour") :]
    code = re.search(r"```python\n(.*?)```", tour, re.S).group(1)
    exec(compile(code, "README quick tour", "exec"), {})
    out = capsys.readouterr().out
    assert "held-out" in out and "roc_auc" in out and "'benign'" in out
