"""Self-contained HTML reports of an evaluation (tables, figures, example overlays).

:func:`write_html_report` takes held-out labels, probabilities, a threshold and exam ids;
:func:`write_protocol_report` takes a :class:`skcalc.model_selection.ProtocolResult`.
The file embeds its styles and images and links no external resource.
"""

from ._figures import figure_data_uri
from ._html import render_html_report, write_html_report, write_protocol_report

__all__ = [
    "figure_data_uri",
    "render_html_report",
    "write_html_report",
    "write_protocol_report",
]
