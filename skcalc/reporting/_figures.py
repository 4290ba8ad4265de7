"""Matplotlib figures as inline ``data:`` URIs (no file, no external resource)."""

from __future__ import annotations

import base64
import io
from typing import Any

__all__ = ["figure_data_uri"]


def figure_data_uri(fig: Any, *, dpi: int = 100, close: bool = True) -> str:
    """Render a matplotlib figure as a ``data:image/png;base64,...`` URI.

    Parameters
    ----------
    fig : matplotlib Figure
    dpi : int, default=100
    close : bool, default=True
        Close the figure afterwards (frees its memory).

    Returns
    -------
    str

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> fig, ax = plt.subplots(figsize=(1, 1))
    >>> figure_data_uri(fig, dpi=20)[:22]
    'data:image/png;base64,'
    """
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=dpi)
    finally:
        if close:
            plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
