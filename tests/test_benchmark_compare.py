"""``benchmarks/compare.py``: the figures it puts side by side and what it marks."""

import importlib.util
import json
import math
import os
import subprocess
import sys

import pytest

BENCH = os.path.join(os.path.dirname(__file__), os.pardir, "benchmarks")


@pytest.fixture(scope="module")
def compare_mod():
    sys.path.insert(0, BENCH)
    try:
        spec = importlib.util.spec_from_file_location("bench_compare",
                                                      os.path.join(BENCH, "compare.py"))
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        yield mod
    finally:
        sys.path.remove(BENCH)


def test_flatten_keeps_numbers_only_and_names_their_path(compare_mod):
    d = {"a": {"b": [1, 2.5]}, "ok": True, "name": "x", "provenance": {"load_1min": 3.0},
         "c": None, "n": 4}
    assert compare_mod.flatten(d) == {"a.b[0]": 1.0, "a.b[1]": 2.5, "n": 4.0}


def test_compare_marks_relative_differences_and_missing_figures(compare_mod):
    ref = {"fast": 1.0, "slow": 2.0, "gone": 5.0, "nan": math.nan, "zero": 0.0}
    mine = {"fast": 1.05, "slow": 2.5, "new": 1.0, "nan": math.nan, "zero": 0.0}
    rows = {r[0]: r for r in compare_mod.compare(ref, mine, tol=0.1)}
    assert not rows["fast"][4] and rows["fast"][3] == "1.05"
    assert rows["slow"][4] and rows["slow"][3] == "1.25"
    assert rows["gone"][4] and rows["gone"][2] == "-"
    assert rows["new"][4] and rows["new"][1] == "-"
    assert not rows["nan"][4] and not rows["zero"][4]
    assert compare_mod.compare({"z": 0.0}, {"z": 1.0}, tol=0.1)[0][4]


def test_every_reference_file_has_its_provenance_and_its_script():
    ref_dir = os.path.join(BENCH, "reference")
    names = [f[:-5] for f in os.listdir(ref_dir) if f.endswith(".json")]
    assert names, "benchmarks/reference/ ships no reference figures"
    for name in names:
        with open(os.path.join(ref_dir, f"{name}.json")) as fh:
            prov = json.load(fh)["provenance"]
        assert prov["commit"] and not prov["uncommitted_changes"], name
        script = prov["command"].split()[0]
        assert os.path.exists(os.path.join(BENCH, script)), (name, script)


def test_command_line_prints_the_side_by_side_table(tmp_path):
    with open(os.path.join(BENCH, "reference", "hdog.json")) as fh:
        mine = json.load(fh)
    mine["hdog_seconds"] *= 2.0
    (tmp_path / "hdog.json").write_text(json.dumps(mine))
    cmd = [sys.executable, os.path.join(BENCH, "compare.py"), "--results", str(tmp_path)]
    out = subprocess.run([*cmd, "hdog"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    marked = [line for line in out.stdout.splitlines() if line.strip().startswith("*")]
    assert len(marked) == 1 and "hdog_seconds" in marked[0] and marked[0].split()[-1] == "2"
    assert "reference" in out.stdout and "yours" in out.stdout
    out = subprocess.run([*cmd, "film"], capture_output=True, text=True, timeout=60)
    assert "not run here yet: python benchmarks/bench_film.py --seeds 2" in out.stdout
