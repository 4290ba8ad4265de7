"""Sphinx configuration of the skcalc documentation."""

import os
import sys

sys.path.insert(0, os.path.abspath(".."))

import skcalc  # noqa: E402

project = "skcalc"
author = "skcalc developers"
release = skcalc.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
]
try:  # the gallery is optional: the docs still build without sphinx-gallery
    import sphinx_gallery  # noqa: F401

    extensions.append("sphinx_gallery.gen_gallery")
    sphinx_gallery_conf = {
        "examples_dirs": "../examples",
        "gallery_dirs": "auto_examples",
        "filename_pattern": "/plot_",
        "plot_gallery": os.environ.get("SKCALC_DOCS_RUN_EXAMPLES", "0") == "1",
    }
except ImportError:  # pragma: no cover
    pass

autosummary_generate = True
numpydoc_show_class_members = False
templates_path = []
exclude_patterns = ["_build"]
html_theme = "alabaster"
