"""Sphinx configuration for the limitor documentation.

Build (warnings are errors)::

    python -m pip install -e ".[docs]"
    python -m sphinx -W --keep-going -b html docs docs/_build/html

The docs extra alone is enough (CI builds them so). Pages are Markdown (MyST) except the
API reference, which is reStructuredText because autodoc writes reStructuredText. Every
```python block in a Markdown page (and in README.md) is run by tests/test_docs.py, which
checks what it prints (its docstring gives the conventions); tests/test_examples.py runs
the programs in examples/.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from sphinx.util import logging

import limitor

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))

project = "limitor"
author = "limitor developers"
copyright = "limitor developers"
release = limitor.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "limitor_pictures",  # docs/_ext: the pictures, drawn by limitor.simulate at build time
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "_generated", "Thumbs.db", ".DS_Store"]

# -- MyST ------------------------------------------------------------------------------
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# -- autodoc and napoleon (Google-style docstrings) ------------------------------------
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented_params"
autodoc_default_options = {
    "members": True,
    "show-inheritance": True,
}
autosummary_generate = False
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
napoleon_attr_annotations = True

# -- HTML ------------------------------------------------------------------------------
html_theme = "furo"
html_title = f"limitor {release}"
html_static_path: list[str] = []
pygments_style = "sphinx"
pygments_dark_style = "monokai"


def _no_inline_attribute_types(app, what, name, obj, options, lines):
    """Keep napoleon from reading ``"Per-user limiters: ..."`` as ``type: description``.

    Napoleon treats the text before the first colon of an attribute's or property's first
    line as its type. limitor never writes types there (they come from annotations), but
    many of its one-line docstrings contain a colon. A leading empty reST comment (which
    renders as nothing) gives napoleon a first line without a colon.
    """
    if what in ("attribute", "data", "property") and lines and ":" in lines[0]:
        lines[:0] = ["..", ""]


def _check_public_names(app):
    """Warn (an error under ``-W``) when a name of ``limitor.__all__`` is not in api/limitor.rst."""
    page = (HERE / "api" / "limitor.rst").read_text(encoding="utf-8")
    listed = set(re.findall(r"^\s+~[\w.]*?(\w+)\s*$", page, re.MULTILINE))
    for name in sorted(set(limitor.__all__) - listed):
        logging.getLogger(__name__).warning(
            "limitor.%s is public but missing from docs/api/limitor.rst", name
        )


def setup(app):
    """Register the docstring fix before napoleon (priority 500) sees the docstrings."""
    app.connect("autodoc-process-docstring", _no_inline_attribute_types, priority=400)
    app.connect("builder-inited", _check_public_names)
