"""Atomic writers: a temporary file in the target folder, then ``os.replace``.

A reader never sees a half-written file, and an interrupted run leaves the previous
version (or nothing) in place. Parent folders are created when missing.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "atomic_path",
    "clean_stale_temporaries",
    "json_default",
    "jsonable",
    "save_figure_atomic",
    "write_image_atomic",
    "write_json_atomic",
    "write_text_atomic",
]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _temp_prefix(target: Path) -> str:
    return f".{target.name}."


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists, owned by someone else
    return True


def clean_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Remove the temporary files that interrupted writes of ``path`` left behind.

    An atomic write goes through ``.<name>.<pid>.<random>.tmp<suffix>`` next to ``path``;
    a process killed before the rename leaves it there. Files of that pattern whose
    process no longer runs are removed (those of a running writer are kept), as are the
    pid-less temporaries of earlier skcalc versions. Returns the removed paths.

    Examples
    --------
    >>> import os, tempfile
    >>> from pathlib import Path
    >>> from skcalc.io import clean_stale_temporaries
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / ".out.csv.999999999.abcd.tmp.csv").write_text("half")
    >>> [p.name for p in clean_stale_temporaries(folder / "out.csv")]
    ['.out.csv.999999999.abcd.tmp.csv']
    """
    target = Path(os.fspath(path))
    prefix, suffix = _temp_prefix(target), ".tmp" + target.suffix
    removed = []
    try:
        entries = list(os.scandir(target.parent))
    except OSError:
        return removed
    for entry in entries:
        name = entry.name
        if not (name.startswith(prefix) and name.endswith(suffix)):
            continue
        middle = name[len(prefix) : len(name) - len(suffix)]
        pid_text, _, rest = middle.partition(".")
        if rest and pid_text.isdigit():
            if _pid_alive(int(pid_text)):
                continue
        elif "." in middle:
            continue  # not one of ours
        try:
            if entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            pass
    return removed


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path next to ``path``; move it over ``path`` on success.

    The temporary file is named ``.<name>.<pid>.<random>.tmp<suffix>``; leftovers of
    killed writers are removed by :func:`clean_stale_temporaries` on the next write.
    """
    target = Path(os.fspath(path))
    target.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_temporaries(target)
    fd, tmp = tempfile.mkstemp(
        dir=target.parent,
        prefix=f"{_temp_prefix(target)}{os.getpid()}.",
        suffix=".tmp" + target.suffix,
    )
    os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        # mkstemp creates 0600 files; give the result the permissions of a normal file.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_text_atomic(path: str | os.PathLike, text: str, *, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically.

    Examples
    --------
    >>> import tempfile, os
    >>> from skcalc.io import write_text_atomic
    >>> path = os.path.join(tempfile.mkdtemp(), "notes.txt")
    >>> write_text_atomic(path, "K=15, t=0.4")
    >>> open(path).read()
    'K=15, t=0.4'
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    with atomic_path(path) as tmp, open(tmp, "w", encoding=encoding, newline="") as fh:
        fh.write(text)


def json_default(obj: Any) -> Any:
    """``json.dumps(default=...)`` for numpy scalars and arrays and paths."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    raise TypeError(f"object of type {type(obj).__name__} is not JSON serialisable")


def jsonable(obj: Any) -> Any:
    """``obj`` with its nested numpy scalars and arrays as plain Python (JSON) values.

    Dictionary keys become strings and tuples become lists, so that the result equals what
    reading its JSON back gives.

    Examples
    --------
    >>> import numpy as np
    >>> from skcalc.io import jsonable
    >>> jsonable({"K": np.int64(15), 2: (np.float32(0.5), np.arange(2))})
    {'K': 15, '2': [0.5, [0, 1]]}
    """
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return obj


def write_json_atomic(path: str | os.PathLike, obj: Any, *, indent: int | None = 2) -> None:
    """Write ``obj`` as JSON atomically; numpy scalars/arrays and paths are converted.

    Examples
    --------
    >>> import json, tempfile, os
    >>> import numpy as np
    >>> from skcalc.io import write_json_atomic
    >>> path = os.path.join(tempfile.mkdtemp(), "report.json")
    >>> write_json_atomic(path, {"auc": np.float64(0.75), "cm": np.eye(2, dtype=int)})
    >>> json.load(open(path))
    {'auc': 0.75, 'cm': [[1, 0], [0, 1]]}
    """
    text = json.dumps(obj, indent=indent, default=json_default, sort_keys=False)
    write_text_atomic(path, text + "\n")


def _png_array(array: np.ndarray, path: str) -> np.ndarray:
    if array.dtype == bool:
        # 0/255 so that masks are visible in any viewer; readers treat non-zero as True.
        return array.astype(np.uint8) * np.uint8(255)
    if array.dtype in (np.uint8, np.uint16):
        return array
    if np.issubdtype(array.dtype, np.integer):
        lo, hi = (int(array.min()), int(array.max())) if array.size else (0, 0)
        if lo >= 0 and hi <= 65535:
            return array.astype(np.uint16)
        raise ValueError(
            f"{path}: PNG holds 0..65535; array values span {lo}..{hi} (use .npy or .tif)"
        )
    raise ValueError(
        f"{path}: PNG holds unsigned 8/16-bit integers, got dtype {array.dtype} "
        "(use .npy or .tif to keep floats)"
    )


def write_image_atomic(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write a 2-D image atomically; the format follows the extension.

    ``.png``: uint8 (8-bit), uint16 or other non-negative integers up to 65535 (16-bit),
    bool (0/255, 8-bit); floats are refused. ``.npy``: any numeric array, exactly.
    ``.tif``/``.tiff``: any numeric array, through tifffile.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from skcalc.io import read_mammogram, write_image_atomic
    >>> path = os.path.join(tempfile.mkdtemp(), "a.npy")
    >>> write_image_atomic(path, np.array([[0.5, 2.0]]))
    >>> read_mammogram(path)[0]
    array([[0.5, 2. ]])
    """
    spath = os.fspath(path)
    array = np.asarray(array)
    if array.ndim != 2:
        raise ValueError(f"{spath}: expected a 2-D image, got shape {array.shape}")
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise TypeError(f"{spath}: image dtype {array.dtype} is not numeric")
    ext = os.path.splitext(spath)[1].lower()
    if ext == ".png":
        from PIL import Image

        data = _png_array(array, spath)
        with atomic_path(spath) as tmp:
            Image.fromarray(np.ascontiguousarray(data)).save(tmp, format="PNG")
    elif ext == ".npy":
        with atomic_path(spath) as tmp, open(tmp, "wb") as fh:
            np.save(fh, array, allow_pickle=False)
    elif ext in (".tif", ".tiff"):
        import tifffile

        with atomic_path(spath) as tmp:
            tifffile.imwrite(tmp, array, photometric="minisblack")
    else:
        raise ValueError(f"{spath}: unsupported image extension {ext!r}; use .png, .npy or .tif")


def save_figure_atomic(fig, path: str | os.PathLike, **savefig_kwargs: Any) -> None:
    """Save a matplotlib figure atomically; the format follows the extension.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt, tempfile, os
    >>> from skcalc.io import save_figure_atomic
    >>> fig, ax = plt.subplots()
    >>> path = os.path.join(tempfile.mkdtemp(), "roc.png")
    >>> save_figure_atomic(fig, path)
    >>> plt.close(fig); os.path.getsize(path) > 0
    True
    """
    spath = os.fspath(path)
    fmt = savefig_kwargs.pop("format", None) or os.path.splitext(spath)[1].lstrip(".").lower()
    if not fmt:
        raise ValueError(f"{spath}: cannot infer the figure format; add an extension")
    with atomic_path(spath) as tmp:
        fig.savefig(tmp, format=fmt, **savefig_kwargs)
