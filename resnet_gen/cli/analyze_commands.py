"""``resnet-gen analyze ...``: the analyses of the ResNet papers, each writing a figure (PNG, SVG),
its numbers (CSV, JSON) and a short table. torch is imported only when a command runs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from ..spec import load_spec
from .app import set_option

F = TypeVar("F", bound=Callable[..., Any])


def output_option(func: F) -> F:
    return click.option(
        "-o",
        "--output",
        type=click.Path(file_okay=False, path_type=Path),
        default=Path("analysis"),
        show_default=True,
        help="Folder for the figure (PNG, SVG) and the numbers (CSV, JSON).",
    )(func)


def device_option(func: F) -> F:
    return click.option("--device", default="cpu", show_default=True, help="torch device: cpu, cuda, cuda:1, mps.")(
        func
    )


def seed_option(func: F) -> F:
    return click.option("--seed", type=click.IntRange(0), default=0, show_default=True, help="First random seed.")(func)


def batch_option(default: int) -> Callable[[F], F]:
    return click.option(
        "--batch", type=click.IntRange(1), default=default, show_default=True, help="Images in the probing batch."
    )


def written(paths: list[Path]) -> None:
    for path in paths:
        click.echo(f"wrote {path}")


@click.group("analyze")
def analyze() -> None:
    """Analyses of a network: gradient flow, paths (and, with a checkpoint, responses and lesions)."""


@analyze.command("gradients")
@click.argument("specs", nargs=-1, required=True)
@set_option
@device_option
@batch_option(32)
@seed_option
@click.option("--seeds", "repeats", type=click.IntRange(1), default=3, show_default=True, help="Seeds to average.")
@click.option(
    "--points",
    type=click.IntRange(0),
    default=32,
    show_default=True,
    help="Inputs on the line for the shattered-gradients measure (0 skips it).",
)
@output_option
def gradients(
    specs: tuple[str, ...],
    overrides: tuple[str, ...],
    device: str,
    batch: int,
    seed: int,
    repeats: int,
    points: int,
    output: Path,
) -> None:
    """Gradient norm at each block's input at initialisation, for SPECS side by side (log axis), and
    the shattered-gradients similarity per depth (Balduzzi et al. 2017)."""
    loaded = [load_spec(source, list(overrides)) for source in specs]
    from ..analyses.common import check_device, classifier_plan
    from ..analyses.figures import gradient_figure, shattered_figure
    from ..analyses.gradients import gradient_flow
    from ..analyses.output import write_numbers
    from ..analyses.shattered import shattered_gradients
    from ..plotting import save_figure

    check_device(device)
    plans = [classifier_plan(spec) for spec in loaded]
    seeds = tuple(range(seed, seed + repeats))
    flows = [gradient_flow(plan, seeds=seeds, batch=batch, device=device, show_progress=True) for plan in plans]
    stem = output / ("gradients-" + "-".join(plan.name for plan in plans))
    rows = [
        {"spec": flow.name, "block": row.path, "index": row.index, "mean": row.mean, "low": row.low, "high": row.high}
        for flow in flows
        for row in flow.blocks
    ]
    paths = write_numbers(stem, flows, rows) + save_figure(gradient_figure(flows), stem)
    click.echo(f"{'spec':<24} {'first block':>12} {'last block':>12} {'first/last':>11}")
    for flow in flows:
        first, last = flow.blocks[0].mean, flow.blocks[-1].mean
        click.echo(f"{flow.name:<24} {first:>12.4g} {last:>12.4g} {flow.first_to_last:>11.4g}")
    if points:
        shattered = [
            shattered_gradients(plan, seeds=seeds, points=points, device=device, show_progress=True) for plan in plans
        ]
        stem = output / ("shattered-" + "-".join(plan.name for plan in plans))
        rows = [
            {"spec": result.name, "block": row.path, "depth": row.depth, "mean": row.mean}
            for result in shattered
            for row in result.depths
        ]
        paths += write_numbers(stem, shattered, rows) + save_figure(shattered_figure(shattered), stem)
        click.echo(f"\n{'spec':<24} {'similarity after the first block':>34} {'after the last':>15}")
        for result in shattered:
            click.echo(f"{result.name:<24} {result.depths[0].mean:>34.3f} {result.depths[-1].mean:>15.3f}")
    written(paths)


@analyze.command("paths")
@click.argument("spec")
@set_option
@device_option
@batch_option(16)
@seed_option
@click.option(
    "--samples",
    type=click.IntRange(0),
    default=4,
    show_default=True,
    help="Paths sampled per length for their gradient (0: only count them, without torch).",
)
@output_option
def paths(
    spec: str, overrides: tuple[str, ...], device: str, batch: int, seed: int, samples: int, output: Path
) -> None:
    """Path lengths through SPEC's blocks (binomial, Veit et al. 2016) and the gradient each length carries."""
    loaded = load_spec(spec, list(overrides))
    from ..analyses.figures import paths_figure
    from ..analyses.output import write_numbers
    from ..analyses.paths import path_lengths
    from ..plan import lower
    from ..plotting import save_figure

    plan = lower(loaded)
    lengths = path_lengths(plan)
    gradients = None
    if samples:
        from ..analyses.common import check_device
        from ..analyses.path_gradients import path_gradients

        check_device(device)
        gradients = path_gradients(plan, samples=samples, batch=batch, seed=seed, device=device, show_progress=True)
    stem = output / f"paths-{plan.name}"
    rows: list[dict[str, object]] = [
        {"length": length, "paths": count} for length, count in zip(lengths.lengths, lengths.counts, strict=True)
    ]
    if gradients is not None:
        for row, measured in zip(rows, gradients.per_length, strict=True):
            row.update(gradient=measured.mean, total=measured.total)
    result = gradients if gradients is not None else lengths
    written_paths = write_numbers(stem, result, rows) + save_figure(paths_figure(lengths, gradients), stem)
    low, high = lengths.typical
    click.echo(
        f"{plan.name}: {lengths.residual_blocks} residual blocks, {lengths.total:,} paths; 95% have length {low}-{high}"
    )
    if gradients is not None:
        low, high = gradients.effective
        click.echo(f"90% of the gradient comes from paths of length {low}-{high}")
    written(written_paths)
