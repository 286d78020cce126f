"""Headless, reproducible figures: the same data gives byte-identical PNG and SVG files.

matplotlib is imported only when a figure is made, so commands that draw nothing never pay for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .files import write_output

if TYPE_CHECKING:
    from matplotlib.figure import Figure

FORMATS = ("png", "svg")


def new_figure(width: float = 6.4, height: float = 4.0) -> Figure:
    """A figure on the Agg canvas (no display), with the settings that make its files reproducible."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    matplotlib.rcParams["svg.hashsalt"] = "resnet-gen"  # ids in the SVG no longer come from a random salt
    matplotlib.rcParams["svg.fonttype"] = "path"  # glyphs as paths: the same picture without the fonts
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def save_figure(figure: Figure, stem: Path, formats: Sequence[str] = FORMATS) -> list[Path]:
    """Write ``stem.png``, ``stem.svg``, ... atomically, without dates or software versions inside."""
    import io

    written = []
    for fmt in formats:
        buffer = io.BytesIO()
        metadata: dict[str, str | None] = (
            {"Software": None} if fmt == "png" else {"Date": None, "Creator": "resnet-gen"}
        )
        figure.savefig(buffer, format=fmt, metadata=metadata, dpi=100)
        path = stem.with_name(f"{stem.name}.{fmt}")
        write_output(path, buffer.getvalue())
        written.append(path)
    return written
