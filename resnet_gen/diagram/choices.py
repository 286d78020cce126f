"""The diagram options and the one error rendering can raise; importable without Graphviz."""

from __future__ import annotations

VIEWS = ("macro", "blocks")
FORMATS = ("svg", "png", "pdf", "dot")
DIRECTIONS = ("TB", "LR")

INSTALL_HINT = (
    "Graphviz's 'dot' program was not found on PATH; install Graphviz "
    "(Debian/Ubuntu: sudo apt-get install graphviz; macOS: brew install graphviz) or use --format dot"
)


class GraphvizNotFound(RuntimeError):
    """Rendering needs Graphviz's ``dot`` program and it is not installed."""
