"""Sphinx configuration of the lavasync docs site (built by ``tox -e docs``, no network)."""

from __future__ import annotations

import os
import sys
from typing import Any

# Document the lavasync next to this folder, not whatever else is installed.
sys.path.insert(0, os.path.abspath(".."))

import lavasync

project = "lavasync"
author = "the lavasync authors"
copyright = "the lavasync authors, MIT License"
release = lavasync.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]

# No intersphinx: the build must not reach the network.
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"members": True, "show-inheritance": True}
autoclass_content = "both"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
myst_heading_anchors = 3
suppress_warnings = ["myst.header"]

html_theme = "alabaster"
html_title = f"lavasync {release}"
html_static_path: list[str] = []


def _public_bases(app: Any, name: str, obj: Any, options: Any, bases: list[type]) -> None:
    """Show only public bases: FakeNode is built from private mixins (one per concern)."""
    bases[:] = [b for b in bases if not b.__name__.startswith("_")] or [object]


def setup(app: Any) -> None:
    app.connect("autodoc-process-bases", _public_bases)
