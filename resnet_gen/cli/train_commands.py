"""``train``, ``evaluate`` and ``plot``: training runs from the command line.

torch is imported only when ``train`` or ``evaluate`` runs; under torchrun
(``torchrun --nproc_per_node=N -m resnet_gen train ...``) every process runs ``train`` and only
the first one prints and writes.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from ..errors import SpecError
from .app import set_option
from .sources import with_identity

_DATA_HELP = "digits, synthetic[:N], cifar10:PATH, cifar100:PATH, mnist:PATH or imagefolder:PATH (local files only)."


def _is_main_process() -> bool:
    return os.environ.get("RANK", "0") == "0"


@click.command("train")
@click.argument("spec", required=False)
@click.option("--data", default=None, metavar="SOURCE", help=_DATA_HELP)
@click.option(
    "--recipe",
    default=None,
    metavar="NAME|FILE",
    help="Preset (imagenet, cifar, digits) or recipe YAML; default by data.",
)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None, help="Run folder (runs/<spec>).")
@set_option
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Epochs (clears the recipe's step count).")
@click.option("--steps", type=click.IntRange(min=1), default=None, help="Total iterations instead of epochs.")
@click.option("--max-steps", type=click.IntRange(min=0), default=None, help="Stop after this many steps; resumable.")
@click.option("--batch-size", type=click.IntRange(min=1), default=None, help="Global batch size.")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=None, help="Learning rate.")
@click.option("--amp", type=click.Choice(["none", "bf16", "fp16"]), default=None, help="Mixed precision.")
@click.option("--channels-last", is_flag=True, default=None, help="Channels-last memory format.")
@click.option("--compile", "compile_model", is_flag=True, default=None, help="torch.compile the model.")
@click.option("--seed", type=click.IntRange(min=0), default=None)
@click.option("--deterministic", is_flag=True, default=None, help="Deterministic algorithms only.")
@click.option("--sync-bn", is_flag=True, default=None, help="Under torchrun on GPUs: SyncBatchNorm.")
@click.option("--workers", type=click.IntRange(min=0), default=None, help="Data loader worker processes.")
@click.option("--device", default=None, help="cpu, cuda, cuda:N (default: cuda when available).")
@click.option("--resume", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Continue a checkpoint.")
@click.option("--no-val", is_flag=True, help="Skip validation on the test split.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def train(
    spec: str | None,
    data: str | None,
    recipe: str | None,
    out: Path | None,
    overrides: tuple[str, ...],
    epochs: int | None,
    steps: int | None,
    max_steps: int | None,
    batch_size: int | None,
    lr: float | None,
    amp: str | None,
    channels_last: bool | None,
    compile_model: bool | None,
    seed: int | None,
    deterministic: bool | None,
    sync_bn: bool | None,
    workers: int | None,
    device: str | None,
    resume: Path | None,
    no_val: bool,
    quiet: bool,
) -> None:
    """Train SPEC (a file or catalog name) on local --data with a --recipe; or --resume a run.

    --set applies to the spec, and to the recipe when the path starts with train.
    (--set train.optimizer.lr=0.05). Writes spec.yaml, recipe.yaml, metrics.jsonl, last.ckpt,
    best.ckpt and curves.png/svg into the run folder.
    """
    from ..compile import load_spec
    from ..train.recipe import recipe_overrides

    if spec is None and resume is None:
        raise click.UsageError("give a SPEC to train, or --resume CHECKPOINT")
    if spec is not None and data is None and resume is None:
        raise click.UsageError("--data is required: " + _DATA_HELP)
    spec_items, recipe_items = recipe_overrides(list(overrides))
    if resume is not None and (spec is not None or spec_items):
        raise click.UsageError("--resume continues the checkpoint's own spec; leave out SPEC and spec --set items")
    loaded = load_spec(spec, with_identity(spec, tuple(spec_items))) if spec is not None else None
    options: dict[str, Any] = {
        "batch_size": batch_size,
        "amp": amp,
        "channels_last": channels_last,
        "compile": compile_model,
        "seed": seed,
        "deterministic": deterministic,
        "sync_batchnorm": sync_bn,
        "workers": workers,
    }
    if lr is not None:
        recipe_items.append(f"optimizer.lr={lr!r}")
    if epochs is not None:
        options["epochs"] = epochs
    if steps is not None:
        options["steps"] = steps
    run_folder = out if out is not None else (Path("runs") / loaded.name if loaded is not None else None)
    from .. import train as training
    from ..train.loop import TrainingInterrupted

    try:
        result = training.train(
            loaded,
            data,
            recipe,
            run_folder,
            overrides=recipe_items,
            resume=resume,
            max_steps=max_steps,
            validate=not no_val,
            device=device,
            progress=not quiet,
            **options,
        )
    except TrainingInterrupted as exc:
        if _is_main_process():
            click.echo(str(exc), err=True)
        sys.exit(130)
    if _is_main_process():
        click.echo(_summary(result))


def _summary(result: dict[str, Any]) -> str:
    history = result["history"]
    lines = [f"{result['stopped']} after {result['global_step']} steps ({len(history)} epochs)"]
    if result["best"] is not None:
        lines.append(f"best {result['best_metric']}: {result['best']:.4f}")
    if result["out"]:
        names = ("last.ckpt", "best.ckpt", "metrics.jsonl", "curves.png")
        written = [name for name in names if (Path(result["out"]) / name).exists()]
        lines.append(f"run folder: {result['out']} ({', '.join(written)})")
    return "\n".join(lines)


@click.command("evaluate")
@click.argument("checkpoint", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--data", default=None, metavar="SOURCE", help="Default: the data the run trained on. " + _DATA_HELP)
@click.option("--split", type=click.Choice(["train", "test", "val"]), default="test", show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=256, show_default=True)
@click.option("--device", default=None, help="cpu, cuda, cuda:N (default: cuda when available).")
@click.option("--ema", is_flag=True, help="Evaluate the EMA weights (recipes with ema).")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where evaluation.json and confusion.png/svg go (default: the checkpoint's folder).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def evaluate(
    checkpoint: Path,
    data: str | None,
    split: str,
    batch_size: int,
    device: str | None,
    ema: bool,
    out: Path | None,
    as_json: bool,
) -> None:
    """Top-1, top-5, loss, per-class accuracy and the confusion matrix of CHECKPOINT on --data."""
    from .. import train as training
    from ..files import write_text_atomic
    from ..train.plots import plot_confusion

    result = training.evaluate(checkpoint, data, split=split, batch_size=batch_size, device=device, ema=ema)
    folder = out if out is not None else checkpoint.parent
    stem = checkpoint.stem
    write_text_atomic(
        folder / f"{stem}.evaluation.json", json.dumps(result, indent=2) + "\n", hint="choose another folder with --out"
    )
    plot_confusion(
        result["confusion"],
        result["class_names"],
        folder / f"{stem}.confusion",
        f"{checkpoint.name} on {result['data']}",
    )
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    _print_evaluation(result)
    click.echo(f"wrote {folder / f'{stem}.evaluation.json'} and {folder / f'{stem}.confusion.png'} (.svg)")


def _print_evaluation(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    console.print(
        f"{result['data']} ({result['split']}, {result['count']} images): top-1 {result['acc1']:.2%}  "
        f"top-5 {result['acc5']:.2%}  loss {result['loss']:.4f}"
    )
    names = result["class_names"]
    confusion = result["confusion"]
    if len(names) > 30:
        worst = sorted((a, n) for n, a in zip(names, result["per_class"], strict=True) if a is not None)[:10]
        console.print("lowest per-class accuracy: " + ", ".join(f"{n} {a:.1%}" for a, n in worst))
        return
    table = Table(title="confusion matrix (rows: true class, columns: predicted)")
    table.add_column("class")
    for name in names:
        table.add_column(str(name), justify="right")
    table.add_column("accuracy", justify="right")
    for name, row, accuracy in zip(names, confusion, result["per_class"], strict=True):
        shown = f"{accuracy:.1%}" if accuracy is not None else "-"
        table.add_row(str(name), *[str(v) if v else "." for v in row], shown)
    console.print(table)


@click.command("plot")
@click.argument("run", type=click.Path(path_type=Path))
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Stem (RUN/curves)."
)
def plot(run: Path, output: Path | None) -> None:
    """Loss and accuracy curves of a RUN folder (its metrics.jsonl) as PNG and SVG."""
    from ..train.plots import plot_history

    metrics = run / "metrics.jsonl" if run.is_dir() else run
    try:
        lines = metrics.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise SpecError(f"{metrics}: no such file; give a run folder written by resnet-gen train") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{metrics}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        rows = [json.loads(line) for line in lines if line.strip()]
        history = [row for row in rows if row.get("kind", "epoch") == "epoch"]
    except (ValueError, AttributeError):
        history = []
    if not history or not all("train_loss" in row and "epoch" in row for row in history):
        raise SpecError(f"{metrics}: not a resnet-gen metrics log (one JSON row per epoch)")
    stem = output.with_suffix("") if output is not None else metrics.parent / "curves"
    for path in plot_history(history, stem):
        click.echo(f"wrote {path}")
