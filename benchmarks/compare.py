"""Your benchmark figures next to the project's reference figures.

Run a benchmark (it writes ``benchmarks/results/<name>.json``), then
``python benchmarks/compare.py [name ...] [--tol 0.1] [--all]``. For every name (default:
every reference file) the numeric figures of ``benchmarks/reference/<name>.json`` and of
your ``benchmarks/results/<name>.json`` are printed side by side with their ratio; a figure
that differs by more than ``--tol`` (relative) is marked ``*``. Without ``--all`` only the
marked figures and the figures missing on one side are printed. Each file's provenance
(commit, date, machine, load) is printed first: timings depend on the machine and on its
load, quality figures (false alarms, recall, FROC) should not depend on either.

``--update`` copies the results into ``reference/`` (for maintainers, after a release).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys

from _common import REFERENCE_DIR, RESULTS_DIR


def flatten(obj, prefix: str = "") -> dict:
    """``{"a": {"b": [1, 2]}}`` -> ``{"a.b[0]": 1, "a.b[1]": 2}``; numbers only."""
    out = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k != "provenance":
                out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out.update(flatten(v, f"{prefix}[{i}]"))
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        out[prefix] = float(obj)
    return out


def compare(ref: dict, mine: dict, tol: float) -> list[tuple[str, str, str, str, bool]]:
    """Rows ``(key, reference, yours, ratio, differs)`` over the union of numeric keys."""
    a, b = flatten(ref), flatten(mine)
    rows = []
    for key in sorted(set(a) | set(b)):
        x, y = a.get(key), b.get(key)
        if x is None or y is None:
            rows.append((key, _fmt(x), _fmt(y), "", True))
            continue
        if x == y or (math.isnan(x) and math.isnan(y)):
            ratio, differs = 1.0, False
        elif x == 0:
            ratio, differs = math.inf, True
        else:
            ratio = y / x
            differs = not (abs(y - x) <= tol * abs(x))
        rows.append((key, _fmt(x), _fmt(y), f"{ratio:.3g}", differs))
    return rows


def _fmt(v) -> str:
    return "-" if v is None else f"{v:.4g}"


def _load(path: str):
    with open(path) as fh:
        return json.load(fh)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help="benchmark names (default: every reference)")
    ap.add_argument("--tol", type=float, default=0.1, help="relative difference to mark")
    ap.add_argument("--all", action="store_true", help="print every figure")
    ap.add_argument("--update", action="store_true", help="copy results into reference/")
    ap.add_argument("--results", default=RESULTS_DIR, help="folder of your results files")
    args = ap.parse_args()
    names = args.names or sorted(f[:-5] for f in os.listdir(REFERENCE_DIR)
                                 if f.endswith(".json"))
    status = 0
    for name in names:
        ref_path = os.path.join(REFERENCE_DIR, f"{name}.json")
        res_path = os.path.join(args.results, f"{name}.json")
        if args.update:
            if not os.path.exists(res_path):
                print(f"{name}: no results to copy ({res_path})", file=sys.stderr)
                status = 1
                continue
            shutil.copyfile(res_path, ref_path)
            print(f"{name}: reference updated from {res_path}")
            continue
        print(f"== {name}")
        if not os.path.exists(ref_path):
            print(f"   no reference ({ref_path})")
            status = 1
            continue
        if not os.path.exists(res_path):
            command = _load(ref_path).get("provenance", {}).get("command", f"bench_{name}.py")
            print(f"   not run here yet: python benchmarks/{command}")
            continue
        ref, mine = _load(ref_path), _load(res_path)
        for label, d in (("reference", ref), ("yours", mine)):
            p = d.get("provenance", {})
            print(f"   {label:9s}  {p.get('commit', '?')} {p.get('date_utc', '?')}, "
                  f"{p.get('machine', '?')}, load {p.get('load_1min', '?')}: "
                  f"{p.get('command', '?')}")
        rows = compare(ref, mine, args.tol)
        shown = [r for r in rows if args.all or r[4]]
        width = max([len(r[0]) for r in shown] + [6])
        for key, x, y, ratio, differs in shown:
            print(f"   {'*' if differs else ' '} {key:{width}s}  {x:>10s}  {y:>10s}  {ratio:>6s}")
        n_diff = sum(r[4] for r in rows)
        print(f"   {len(rows)} figures, {n_diff} differ by more than {args.tol:.0%} "
              "or are missing on one side")
    return status


if __name__ == "__main__":
    sys.exit(main())
