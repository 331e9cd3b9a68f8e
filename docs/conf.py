"""Sphinx configuration of the webrtc_secure documentation (``make docs``).

Everything the build needs is local: the API reference is read from the installed
package's docstrings, the handshake diagrams come from a real handshake run by
``_ext/dtls_trace.py`` at build time, and mermaid.js is copied into the site from
``docs/node_modules`` (``npm ci`` at install time, pinned by ``package-lock.json``), so
neither the build nor a reader's browser contacts any network.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))

import webrtc_secure  # noqa: E402

project = "webrtc_secure"
author = "the webrtc_secure authors"
copyright = "the webrtc_secure authors, BSD 3-Clause"
release = version = webrtc_secure.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "sphinxcontrib.mermaid",
    "dtls_trace",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "node_modules", "_generated"]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# --- API reference ---------------------------------------------------------------------
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "undoc-members": True, "show-inheritance": True}
# show `srtp_profiles=DEFAULT_PROFILES`, not the expanded tuple of enum members
autodoc_preserve_defaults = True
napoleon_google_docstring = True
napoleon_numpy_docstring = False

# --- diagrams: mermaid.js from docs/node_modules, never from a CDN ---------------------
MERMAID_DIST = DOCS / "node_modules" / "mermaid" / "dist"
mermaid_use_local = "mermaid/mermaid.esm.min.mjs"  # relative to _static
mermaid_version = ""
mermaid_init_config = {"startOnLoad": False, "sequence": {"showSequenceNumbers": False}}
mermaid_fullscreen = False
mermaid_height = "auto"  # scale with the page width, keep the aspect ratio

# --- HTML ----------------------------------------------------------------------------
html_theme = "furo"
html_title = f"webrtc_secure {release}"
html_static_path: list[str] = []
templates_path = ["_templates"]
autosummary_generate = True
html_show_sourcelink = False
html_favicon = "_static/favicon.svg"


def _vendor_mermaid(app: object, exception: BaseException | None) -> None:
    """Copy the ES module build of mermaid and its chunks into ``_static/mermaid``."""
    if exception is not None or getattr(app, "builder", None) is None:
        return
    if app.builder.format != "html":  # type: ignore[attr-defined]
        return
    target = Path(app.outdir) / "_static" / "mermaid"  # type: ignore[attr-defined]
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy2(MERMAID_DIST / "mermaid.esm.min.mjs", target / "mermaid.esm.min.mjs")
    shutil.copytree(
        MERMAID_DIST / "chunks" / "mermaid.esm.min",
        target / "chunks" / "mermaid.esm.min",
        dirs_exist_ok=True,
    )


def _require_mermaid(app: object) -> None:
    if not (MERMAID_DIST / "mermaid.esm.min.mjs").is_file():
        raise RuntimeError(
            f"{MERMAID_DIST} is missing: run `make docs` (it runs `npm ci` in docs/) "
            "so that the diagrams render without any network"
        )


def setup(app: object) -> None:
    app.connect("builder-inited", _require_mermaid)  # type: ignore[attr-defined]
    app.connect("build-finished", _vendor_mermaid)  # type: ignore[attr-defined]
