"""The analyses' figures, drawn as the papers drew them (log axes where they used them).

Each function takes results (plain dataclasses) and returns a matplotlib Figure made by
``plotting.new_figure``; ``plotting.save_figure`` writes it reproducibly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..plotting import new_figure
from .experiments import Experiment
from .gradients import GradientFlow
from .lesion import Lesion
from .path_gradients import PathGradients
from .paths import PathLengths
from .responses import Responses
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


def responses_figure(results: Sequence[Responses]) -> Figure:
    """He et al. 2015 Fig. 7: std of each 3x3 layer's response, in layer order (top) and sorted (bottom)."""
    figure = new_figure(6.4, 6.0)
    ordered, ranked = figure.subplots(2, 1)
    for result in results:
        x = [layer.index + 1 for layer in result.layers]
        ordered.plot(x, [layer.std for layer in result.layers], marker=".", label=result.name)
        ranked.plot(range(1, len(x) + 1), result.sorted_std, marker=".", label=result.name)
    _finish(ordered, "layer index (original)", "std", "Responses of the 3x3 layers")
    _finish(ranked, "layer index (sorted by magnitude)", "std", "")
    return figure


def lesion_figure(results: Sequence[Lesion]) -> Figure:
    """Veit et al. 2016 Fig. 3 and 4: error after deleting each block, after deleting k random
    blocks (mean and spread) and after swapping k random pairs."""
    figure = new_figure(12.0, 3.8)
    single, random_k, swapped = figure.subplots(1, 3)
    for result in results:
        (line,) = single.plot(
            [row.index + 1 for row in result.single],
            [100 * row.error for row in result.single],
            marker="o",
            label=result.name,
        )
        single.axhline(100 * result.baseline, color=line.get_color(), linestyle=":", linewidth=1)
        for axes, rows in ((random_k, result.deletions), (swapped, result.swaps)):
            if rows:
                axes.errorbar(
                    [row.k for row in rows],
                    [100 * row.mean for row in rows],
                    yerr=[100 * row.spread for row in rows],
                    marker="o",
                    capsize=3,
                    color=line.get_color(),
                    label=result.name,
                )
    _finish(single, "deleted block", "test error (%)", "Deleting one block (dotted: none)")
    _finish(random_k, "blocks deleted", "test error (%)", "Deleting k random blocks")
    _finish(swapped, "pairs swapped", "test error (%)", "Swapping k random pairs")
    return figure


def degradation_figure(experiment: Experiment) -> Figure:
    """He et al. 2015 Fig. 1 and 6: training error (dashed) and test error (bold) per epoch,
    plain nets left, residual nets right."""
    groups = [("plain", [run for run in experiment.runs if not run.residual])]
    groups.append(("residual", [run for run in experiment.runs if run.residual]))
    groups = [(title, runs) for title, runs in groups if runs]
    figure = new_figure(5.2 * len(groups), 4.0)
    panels = figure.subplots(1, len(groups), squeeze=False)[0]
    for axes, (title, runs) in zip(panels, groups, strict=True):
        for run in runs:
            (line,) = axes.plot(run.epochs, [100 * e for e in run.test_error], linewidth=2.2, label=f"{run.label} test")
            axes.plot(
                run.epochs,
                [100 * e for e in run.train_error],
                linewidth=1.0,
                linestyle="--",
                color=line.get_color(),
                label=f"{run.label} train",
            )
        _finish(axes, "epoch", "error (%)", f"{title} nets on {experiment.data}")
    return figure


def ablation_figure(experiment: Experiment) -> Figure:
    """Test error per epoch of each variant (left) and its final training and test error (right)."""
    figure = new_figure(11.0, 4.0)
    curves, bars = figure.subplots(1, 2)
    for run in experiment.runs:
        curves.plot(run.epochs, [100 * e for e in run.test_error], marker=".", label=run.label)
    _finish(curves, "epoch", "test error (%)", f"Ablation on {experiment.data}")
    positions = range(len(experiment.runs))
    width = 0.4
    bars.bar(
        [p - width / 2 for p in positions], [100 * r.final_train_error for r in experiment.runs], width, label="train"
    )
    bars.bar(
        [p + width / 2 for p in positions], [100 * r.final_test_error for r in experiment.runs], width, label="test"
    )
    bars.set_xticks(list(positions), [run.label for run in experiment.runs], rotation=20, ha="right")
    _finish(bars, "variant", "final error (%)", "After the last epoch")
    return figure
