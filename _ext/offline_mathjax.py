"""Sphinx extension: serve MathJax from the built book itself, so its math renders offline.

MathJax 2.7 comes from the PyPI package ``jupyter-server-mathjax`` (a dependency of the
``book`` extra); this extension copies it into ``_static/mathjax`` of the HTML build.
``_config.yml`` points ``mathjax_path`` there and configures MathJax 2 (``mathjax2_config``).
Nothing is fetched at build time or read time.
"""

from __future__ import annotations

import shutil
from importlib.resources import files
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.errors import ExtensionError

#: Where the copy lands, relative to the HTML output folder (mathjax_path is relative to _static).
TARGET = Path("_static", "mathjax")
# Translations of MathJax's menus: three quarters of the files, and no page of the book needs them.
_SKIPPED = shutil.ignore_patterns("localization", "*.md")


def mathjax_source() -> Path:
    """The MathJax tree that ``jupyter-server-mathjax`` installs (holding ``MathJax.js``)."""
    try:
        source = Path(str(files("jupyter_server_mathjax") / "static"))
    except ModuleNotFoundError as error:
        raise ExtensionError(
            "offline math needs the jupyter-server-mathjax package: "
            "pip install 'hyperlr[book]' (or pip install jupyter-server-mathjax)"
        ) from error
    if not (source / "MathJax.js").is_file():
        raise ExtensionError(f"no MathJax.js in {source}; reinstall jupyter-server-mathjax")
    return source


def copy_mathjax(app: Sphinx) -> None:
    if app.builder.format != "html":
        return
    source = mathjax_source()
    if not app.config.mathjax_path.startswith(TARGET.name + "/"):
        raise ExtensionError(
            f"mathjax_path must point into _static/{TARGET.name}/ for offline math, "
            f"got {app.config.mathjax_path!r}"
        )
    shutil.copytree(source, Path(app.outdir) / TARGET, ignore=_SKIPPED, dirs_exist_ok=True)


def setup(app: Sphinx) -> dict:
    app.connect("builder-inited", copy_mathjax)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
