"""``resnet-gen analyze ...``: the analyses of the ResNet papers, each writing a figure (PNG, SVG),
its numbers (CSV, JSON) and a short table. torch is imported only when a command runs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from ..compile import load_spec
from ..errors import SpecError
from ..spec import Spec
from .app import set_option
from .sources import with_identity

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


def data_option(func: F) -> F:
    return click.option(
        "--data",
        default=None,
        metavar="SOURCE",
        help="Local data: digits, cifar10:PATH, mnist:PATH, imagefolder:PATH, ... (never downloaded).",
    )(func)


def checkpoint_option(func: F) -> F:
    return click.option(
        "--checkpoint",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="A training checkpoint of SPEC (resnet-gen train's last.ckpt or best.ckpt) to probe instead.",
    )(func)


def probe_inputs(
    spec: Spec, checkpoint: Path | None, data: str | None, batch: int, device: str
) -> tuple[dict[str, Any] | None, Any]:
    """The trained weights (checked against ``spec``) and a batch of training images, where asked for."""
    from ..analyses.trained import load_trained, read_split

    state, normalize = None, "dataset"
    if checkpoint is not None:
        trained = load_trained(checkpoint, spec, device)
        state, normalize = trained.model.state_dict(), trained.normalize
    if data is None:
        return state, None
    split = read_split(data, spec, split="train", batch=batch, limit=batch, device=device, normalize=normalize)
    return state, split.batches[0]


def check_output(folder: Path) -> None:
    """Fail before the work, not after it, when the output folder cannot be made: the nearest
    existing ancestor must be a folder."""
    from ..errors import SpecError

    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise SpecError(f"{folder}: cannot write output here: {existing} is a file; choose another folder with -o")


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
@data_option
@checkpoint_option
@output_option
def gradients(
    specs: tuple[str, ...],
    overrides: tuple[str, ...],
    device: str,
    batch: int,
    seed: int,
    repeats: int,
    points: int,
    data: str | None,
    checkpoint: Path | None,
    output: Path,
) -> None:
    """Gradient norm at each block's input at initialisation, for SPECS side by side (log axis), and
    the shattered-gradients similarity per depth (Balduzzi et al. 2017).

    With --checkpoint (one SPEC) the trained weights are probed instead; with --data a batch of
    its training images instead of random ones."""
    check_output(output)
    loaded = [load_spec(source, with_identity(source, overrides)) for source in specs]
    if checkpoint is not None and len(loaded) != 1:
        raise click.UsageError("--checkpoint goes with exactly one SPEC")
    from ..analyses.common import check_device, classifier_plan
    from ..analyses.figures import gradient_figure, shattered_figure
    from ..analyses.gradients import gradient_flow
    from ..analyses.output import write_numbers
    from ..analyses.shattered import shattered_gradients
    from ..plotting import save_figure

    check_device(device)
    plans = [classifier_plan(spec) for spec in loaded]
    seeds = tuple(range(seed, seed + repeats))
    flows = []
    for spec, plan in zip(loaded, plans, strict=True):
        state, probe = probe_inputs(spec, checkpoint, data, batch, device)
        flows.append(
            gradient_flow(
                plan,
                seeds=seeds,
                batch=batch,
                data=probe,
                data_name=data or "random",
                state=state,
                device=device,
                show_progress=True,
            )
        )
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
@data_option
@checkpoint_option
@output_option
def paths(
    spec: str,
    overrides: tuple[str, ...],
    device: str,
    batch: int,
    seed: int,
    samples: int,
    data: str | None,
    checkpoint: Path | None,
    output: Path,
) -> None:
    """Path lengths through SPEC's blocks (binomial, Veit et al. 2016) and the gradient each length
    carries, at initialisation or (as Veit et al. measured it) with a trained --checkpoint."""
    check_output(output)
    loaded = load_spec(spec, with_identity(spec, overrides))
    from ..analyses.figures import paths_figure
    from ..analyses.output import write_numbers
    from ..analyses.paths import path_lengths
    from ..plan import lower
    from ..plotting import save_figure

    plan = lower(loaded)
    lengths = path_lengths(plan)
    gradients = None
    tied = next((stage for stage in plan.stages if stage.tied), None)
    if samples and tied is not None:
        raise SpecError(
            f"{plan.name}: path gradients send each path through block modules, and {tied.path} runs one block"
            f" {tied.repeats} times; pass --samples 0 to count its paths only, or analyse its untied form"
        )
    if samples:
        from ..analyses.common import check_device
        from ..analyses.path_gradients import path_gradients

        check_device(device)
        state, probe = probe_inputs(loaded, checkpoint, data, batch, device)
        gradients = path_gradients(
            plan, samples=samples, batch=batch, seed=seed, device=device, state=state, data=probe, show_progress=True
        )
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


@analyze.command("responses")
@click.argument("pairs", nargs=-1, required=True, metavar="SPEC CHECKPOINT [SPEC CHECKPOINT ...]")
@set_option
@device_option
@batch_option(256)
@seed_option
@click.option(
    "--images", type=click.IntRange(1), default=None, help="Use N test images drawn with --seed (default: all)."
)
@data_option
@output_option
def responses(
    pairs: tuple[str, ...],
    overrides: tuple[str, ...],
    device: str,
    batch: int,
    seed: int,
    images: int | None,
    data: str | None,
    output: Path,
) -> None:
    """He et al. 2015 Fig. 7: the std of each 3x3 layer's response (after its norm, before the
    activation) on the test split, for each SPEC and its trained CHECKPOINT (plain and residual
    side by side). --data defaults to the data the checkpoint trained on."""
    if len(pairs) % 2:
        raise click.UsageError("give SPEC CHECKPOINT pairs (an even number of arguments)")
    check_output(output)
    specs = [load_spec(source, with_identity(source, overrides)) for source in pairs[::2]]
    from ..analyses.common import check_device
    from ..analyses.figures import responses_figure
    from ..analyses.output import write_numbers
    from ..analyses.responses import layer_responses
    from ..analyses.trained import load_trained, read_split
    from ..plotting import save_figure

    check_device(device)
    results = []
    for spec, checkpoint in zip(specs, pairs[1::2], strict=True):
        trained = load_trained(checkpoint, spec, device)
        split = read_split(
            data or trained.data,
            spec,
            batch=batch,
            limit=images,
            device=device,
            normalize=trained.normalize,
            seed=seed,
        )
        results.append(layer_responses(trained.model, trained.plan, split))
    stem = output / ("responses-" + "-".join(result.name for result in results))
    rows = [
        {"spec": result.name, "layer": layer.path, "index": layer.index, "std": layer.std}
        for result in results
        for layer in result.layers
    ]
    paths = write_numbers(stem, results, rows) + save_figure(responses_figure(results), stem)
    click.echo(f"{'spec':<24} {'3x3 layers':>10} {'mean std':>9} {'largest':>8} {'smallest':>9}")
    for result in results:
        values = result.sorted_std
        mean = sum(values) / len(values)
        click.echo(f"{result.name:<24} {len(values):>10} {mean:>9.3f} {values[0]:>8.3f} {values[-1]:>9.3f}")
    written(paths)


@analyze.command("lesion")
@click.argument("checkpoints", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@device_option
@batch_option(256)
@seed_option
@click.option("--draws", type=click.IntRange(1), default=3, show_default=True, help="Random draws per k.")
@click.option(
    "--images", type=click.IntRange(1), default=None, help="Use N test images drawn with --seed (default: all)."
)
@data_option
@output_option
def lesion(
    checkpoints: tuple[Path, ...],
    device: str,
    batch: int,
    seed: int,
    draws: int,
    images: int | None,
    data: str | None,
    output: Path,
) -> None:
    """Veit et al. 2016: test error of each trained CHECKPOINT after deleting each block (branch
    removed, shortcut kept), k random blocks, and after swapping k random pairs of blocks. Give
    a residual net and its plain twin to compare. --data defaults to the data each trained on."""
    from ..analyses.common import check_device
    from ..analyses.figures import lesion_figure
    from ..analyses.lesion import lesion as run_lesion
    from ..analyses.output import write_numbers
    from ..analyses.trained import load_trained, read_split
    from ..plotting import save_figure

    check_output(output)
    check_device(device)
    results = []
    for checkpoint in checkpoints:
        trained = load_trained(checkpoint, device=device)
        split = read_split(
            data or trained.data,
            trained.spec,
            batch=batch,
            limit=images,
            device=device,
            normalize=trained.normalize,
            seed=seed,
        )
        results.append(run_lesion(trained.model, trained.plan, split, draws=draws, seed=seed, show_progress=True))
    stem = output / ("lesion-" + "-".join(result.name for result in results))
    rows: list[dict[str, object]] = []
    for result in results:
        rows.append({"spec": result.name, "kind": "none", "block": "", "k": 0, "mean": result.baseline, "spread": 0.0})
        for row in result.single:
            rows.append(
                {"spec": result.name, "kind": "single", "block": row.path, "k": 1, "mean": row.error, "spread": 0.0}
            )
        for kind, groups in (("delete", result.deletions), ("swap", result.swaps)):
            for group in groups:
                rows.append(
                    {
                        "spec": result.name,
                        "kind": kind,
                        "block": "",
                        "k": group.k,
                        "mean": group.mean,
                        "spread": group.spread,
                    }
                )
    paths = write_numbers(stem, results, rows) + save_figure(lesion_figure(results), stem)
    click.echo(f"{'spec':<24} {'error':>7} {'one block deleted (mean, worst)':>32} {'half deleted':>13}")
    for result in results:
        singles = [row.error for row in result.single]
        half = result.deletions[len(result.deletions) // 2 - 1].mean if len(result.deletions) >= 2 else float("nan")
        mean = sum(singles) / len(singles) if singles else float("nan")
        worst = max(singles) if singles else float("nan")
        click.echo(
            f"{result.name:<24} {100 * result.baseline:>6.1f}% {100 * mean:>23.1f}%, {100 * worst:>5.1f}% {100 * half:>12.1f}%"
        )
    written(paths)
