"""The analyses' figures, drawn as the papers drew them (log axes where they used them).

Each function takes results (plain dataclasses) and returns a matplotlib Figure made by
``plotting.new_figure``; ``plotting.save_figure`` writes it reproducibly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..plotting import new_figure
from .gradients import GradientFlow
from .path_gradients import PathGradients
from .paths import PathLengths
from .shattered import ShatteredGradients

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def _finish(axes: Axes, xlabel: str, ylabel: str, title: str, legend: bool = True) -> None:
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.grid(True, which="major", alpha=0.3)
    if legend:
        axes.legend()


def gradient_figure(flows: Sequence[GradientFlow]) -> Figure:
    """Gradient norm at each block's input, mean over seeds with the range shaded, log axis."""
    figure = new_figure(6.4, 4.0)
    axes = figure.add_subplot()
    for flow in flows:
        x = [row.index + 1 for row in flow.blocks]
        (line,) = axes.plot(x, [row.mean for row in flow.blocks], marker=".", label=flow.name)
        low, high = [row.low for row in flow.blocks], [row.high for row in flow.blocks]
        axes.fill_between(x, low, high, color=line.get_color(), alpha=0.2)
    axes.set_yscale("log")
    seeds = len(flows[0].seeds) if flows else 0
    _finish(axes, "block (input to)", "gradient norm ||dL/dx||", f"Gradient flow at initialisation ({seeds} seeds)")
    return figure


def shattered_figure(results: Sequence[ShatteredGradients]) -> Figure:
    """Similarity of neighbouring input-gradients after each block (Balduzzi et al. 2017)."""
    figure = new_figure(6.4, 4.0)
    axes = figure.add_subplot()
    for result in results:
        x = [row.depth for row in result.depths]
        (line,) = axes.plot(x, [row.mean for row in result.depths], marker=".", label=result.name)
        low, high = [row.low for row in result.depths], [row.high for row in result.depths]
        axes.fill_between(x, low, high, color=line.get_color(), alpha=0.2)
    axes.axhline(0.0, color="grey", linewidth=0.8)
    _finish(axes, "depth (blocks)", "cosine similarity of neighbouring gradients", "Shattered gradients")
    return figure


def paths_figure(lengths: PathLengths, gradients: PathGradients | None = None) -> Figure:
    """Veit et al. 2016 Fig. 6: paths per length, and with gradients the magnitude per path and in total."""
    panels = 3 if gradients is not None else 1
    figure = new_figure(4.0 * panels, 3.6)
    grid = figure.subplots(1, panels, squeeze=False)[0]
    grid[0].bar(lengths.lengths, lengths.counts, color="tab:blue")
    _finish(grid[0], "path length (branches)", "number of paths", f"{lengths.name}: paths", legend=False)
    if gradients is not None:
        x = [row.length for row in gradients.per_length]
        grid[1].plot(x, [row.mean for row in gradients.per_length], marker=".", color="tab:orange")
        grid[1].fill_between(
            x,
            [min(row.norms) for row in gradients.per_length],
            [max(row.norms) for row in gradients.per_length],
            alpha=0.2,
        )
        grid[1].set_yscale("log")
        _finish(grid[1], "path length (branches)", "gradient norm at input", "gradient per path", legend=False)
        grid[2].bar(x, [row.total for row in gradients.per_length], color="tab:green")
        low, high = gradients.effective
        grid[2].axvspan(low - 0.5, high + 0.5, color="grey", alpha=0.15, label=f"90% of gradient: {low}-{high}")
        _finish(grid[2], "path length (branches)", "total gradient (paths x norm)", "where the gradient comes from")
    return figure
