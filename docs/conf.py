"""Sphinx configuration of the skar documentation.

Build with ``make docs`` (or ``docs/build.sh``): Sphinx + numpydoc + sphinx-gallery, the
pydata theme, warnings as errors, no network access (no intersphinx inventories are fetched).
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "sphinxext"))

from skar_docs import EXAMPLE_NEEDS, missing_examples  # noqa: E402

import skar  # noqa: E402

# -- project ----------------------------------------------------------------------------------
project = "skar"
author = "the skar developers"
copyright = "2025, the skar developers"
release = skar.__version__
version = ".".join(release.split(".")[:2])

# -- extensions -------------------------------------------------------------------------------
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]
# No intersphinx: the build must work offline, and unresolved references to scikit-learn,
# numpy or torch then render as plain code (they are not errors without nitpicky mode).

templates_path = ["_templates"]
exclude_patterns = ["_build", "_backreferences", "Thumbs.db", ".DS_Store",
                    "**.ipynb_checkpoints",
                    "auto_examples/*.ipynb", "auto_examples/*.py"]
root_doc = "index"
default_role = "literal"

autosummary_generate = True
autodoc_default_options = {"members": True}
autodoc_typehints = "none"  # numpydoc renders the types written in the docstrings

numpydoc_show_class_members = False  # members are listed by the autosummary templates
numpydoc_class_members_toctree = False
# Types stay plain text: cross-referencing them needs the numpy/python inventories
# (intersphinx), which an offline build does not have.
numpydoc_xref_param_type = False

# -- gallery ----------------------------------------------------------------------------------
# Models are written in parallel; an example whose estimator does not import yet is left out of
# the gallery (not executed, no page) instead of failing the build. The build prints what it
# left out; when every model is integrated, nothing is.
_MISSING = missing_examples()
for _example, _names in sorted(_MISSING.items()):
    print(f"[skar docs] leaving {_example} out of the gallery: {', '.join(_names)} "
          "not importable", file=sys.stderr)
_ignored = ["demo_red_wine.py", *_MISSING]  # demo_red_wine.py is `make demo`, not a gallery page

sphinx_gallery_conf = {
    "examples_dirs": str(HERE.parent / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"(" + "|".join(re.escape(name) for name in _ignored) + r")$",
    "within_subsection_order": "FileNameSortKey",
    "doc_module": ("skar",),
    "backreferences_dir": "_backreferences",
    "reference_url": {"skar": None},
    "reset_modules": ("matplotlib", "skar_docs.reset_torch"),
    "remove_config_comments": True,
    "min_reported_time": 1,
    "abort_on_example_error": False,
    "only_warn_on_example_error": False,
    "show_memory": False,
    "plot_gallery": os.environ.get("SKAR_DOCS_PLOT_GALLERY", "True"),
}
assert set(EXAMPLE_NEEDS) <= {p.name for p in (HERE.parent / "examples").glob("plot_*.py")}

# -- HTML -------------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"skar {release}"
html_static_path = ["_static"]
html_css_files = ["skar.css"]
html_theme_options = {
    "navbar_align": "left",
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc", "sourcelink"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_sidebars = {"index": [], "install": [], "benchmarks": []}
html_show_sourcelink = True

# MathJax is loaded by the reader's browser; the build itself needs no network.
mathjax3_config = {"tex": {"macros": {"E": r"\mathbb{E}"}}}


def _skip_metadata_request_methods(app, what, name, obj, skip, options):
    """Leave scikit-learn's generated ``set_*_request`` methods out of the API pages: their
    docstrings link into scikit-learn's glossary, which an offline build cannot resolve."""
    if name.startswith("set_") and name.endswith("_request"):
        return True
    if name == "get_metadata_routing":
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_metadata_request_methods)
