"""``resnet-gen experiment ...``: train several networks with one recipe and plot them together
(degradation, ablation). torch is imported only when a command runs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from .analyze_commands import check_output, device_option, written
from .app import set_option

F = TypeVar("F", bound=Callable[..., Any])


def training_options(func: F) -> F:
    """The options every experiment shares: data, recipe and its budget, device, output."""
    decorators = [
        click.option(
            "--data",
            required=True,
            metavar="SOURCE",
            help="Local data: digits, cifar10:PATH, mnist:PATH, imagefolder:PATH, ... (never downloaded).",
        ),
        click.option(
            "--recipe", default=None, metavar="NAME|FILE", help="Preset (cifar, digits, imagenet) or recipe YAML."
        ),
        click.option("--epochs", type=click.IntRange(1), default=None, help="Epochs per run (clears a step count)."),
        click.option("--batch", type=click.IntRange(1), default=None, help="Batch size (default: the recipe's)."),
        click.option("--seed", type=click.IntRange(0), default=None, help="Training seed (default: the recipe's)."),
        click.option(
            "--train-set",
            "recipe_items",
            multiple=True,
            metavar="KEY=VALUE",
            help="Override a recipe field, e.g. --train-set optimizer.lr=0.05.",
        ),
        device_option,
        set_option,
        click.option(
            "-o",
            "--output",
            type=click.Path(file_okay=False, path_type=Path),
            default=None,
            help="Folder for the figure, the numbers and one run folder per network (default experiments/<name>).",
        ),
    ]
    for decorate in reversed(decorators):
        func = decorate(func)
    return func


def recipe_settings(
    epochs: int | None, batch: int | None, seed: int | None, items: tuple[str, ...]
) -> tuple[dict[str, Any], list[str]]:
    """Keyword options and ``KEY=VALUE`` overrides for :func:`resnet_gen.train.train`."""
    options: dict[str, Any] = {"epochs": epochs, "batch_size": batch, "seed": seed}
    overrides = list(items)
    if epochs is not None:
        overrides.append("steps=null")
    return {key: value for key, value in options.items() if value is not None}, overrides


def report(experiment: Any, stem: Path) -> list[Path]:
    """Print the table of final errors; write the numbers."""
    from ..analyses.output import write_numbers

    click.echo(f"{'run':<40} {'params':>10} {'train error':>12} {'test error':>11}")
    rows = []
    for run in experiment.runs:
        click.echo(
            f"{run.label:<40} {run.params:>10,} {100 * run.final_train_error:>11.1f}% {100 * run.final_test_error:>10.1f}%"
        )
        for epoch, train_error, test_error in zip(run.epochs, run.train_error, run.test_error, strict=True):
            rows.append({"run": run.label, "epoch": epoch, "train_error": train_error, "test_error": test_error})
    return write_numbers(stem, experiment, rows)


@click.group("experiment")
def experiment() -> None:
    """Training experiments of the ResNet papers: degradation with depth, ablations of any field."""


@experiment.command("degradation")
@click.option(
    "--spec",
    "specs",
    multiple=True,
    metavar="SPEC",
    help="A network to train (repeatable); default cifar_plain20, cifar_plain56, cifar_resnet20, cifar_resnet56.",
)
@training_options
def degradation(
    specs: tuple[str, ...],
    data: str,
    recipe: str | None,
    epochs: int | None,
    batch: int | None,
    seed: int | None,
    recipe_items: tuple[str, ...],
    device: str,
    overrides: tuple[str, ...],
    output: Path | None,
) -> None:
    """He et al. 2015 Fig. 1 / 6: train plain and residual nets of two depths with the same recipe;
    training error (dashed) and test error (bold) per epoch, plain nets left, ResNets right.
    Each spec is fitted to the data (channels, size, classes)."""
    from ..analyses.experiments import DEGRADATION_SPECS
    from ..analyses.experiments import degradation as run_degradation
    from ..analyses.figures import degradation_figure
    from ..plotting import save_figure

    folder = output if output is not None else Path("experiments") / "degradation"
    check_output(folder)
    options, recipe_overrides = recipe_settings(epochs, batch, seed, recipe_items)
    result = run_degradation(
        data,
        specs or DEGRADATION_SPECS,
        recipe=recipe,
        out=folder,
        overrides=overrides,
        options=options,
        recipe_overrides=recipe_overrides,
        device=device,
        show_progress=True,
    )
    stem = folder / "degradation"
    written(report(result, stem) + save_figure(degradation_figure(result), stem))


@experiment.command("ablation")
@click.argument("base")
@click.option(
    "--vary",
    multiple=True,
    required=True,
    metavar="FIELD=V1,V2,...",
    help="A spec field and its values, e.g. shortcut.type=A,B,C (repeatable: every combination trains).",
)
@training_options
def ablation(
    base: str,
    vary: tuple[str, ...],
    data: str,
    recipe: str | None,
    epochs: int | None,
    batch: int | None,
    seed: int | None,
    recipe_items: tuple[str, ...],
    device: str,
    overrides: tuple[str, ...],
    output: Path | None,
) -> None:
    """Train BASE once per value of each varied field (all combinations) with the same recipe, and
    tabulate and plot the errors: the seeds' 'compare shortcut types' exercise."""
    from ..analyses.experiments import ablation as run_ablation
    from ..analyses.figures import ablation_figure
    from ..plotting import save_figure

    folder = output if output is not None else Path("experiments") / "ablation"
    check_output(folder)
    options, recipe_overrides = recipe_settings(epochs, batch, seed, recipe_items)
    result = run_ablation(
        base,
        vary,
        data,
        recipe=recipe,
        out=folder,
        overrides=overrides,
        options=options,
        recipe_overrides=recipe_overrides,
        device=device,
        show_progress=True,
    )
    stem = folder / "ablation"
    written(report(result, stem) + save_figure(ablation_figure(result), stem))
