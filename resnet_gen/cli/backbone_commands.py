"""``weights`` and ``export``: load a local checkpoint into a spec's network; export it to a file.

torch is imported only when one of these commands runs.
"""

from __future__ import annotations

from pathlib import Path

import click

from ..compile import compile_spec
from ..errors import SpecError
from ..files import ONNX, PT2, check_output_file, check_replaceable, target_of
from ..memory import check_fits
from ..paths import LOOP, kind, name_problem, shown
from ..torch_check import TorchMissing, require_torch
from .app import set_option
from .sources import default_output, with_identity


def require_torch_for(command: str) -> None:
    """Torch, or one line saying how to install it, for ``resnet-gen <command>``."""
    try:
        require_torch(f"resnet-gen {command}")
    except TorchMissing as exc:
        raise click.ClickException(str(exc)) from None


# What an existing export file must be for export to replace it.
EXPORT_KINDS = {"onnx": ONNX, "pt2": PT2, "int8": PT2}  # TorchScript files are zip archives too


def check_checkpoint(path: Path) -> None:
    """A checkpoint that is not there is one line, before torch is imported."""
    problem = name_problem(str(path))
    if problem is not None:
        raise SpecError(f"{shown(str(path))}: {problem}; name a .pth, .pt or .safetensors file")
    found = kind(path)
    if found == "missing":
        raise SpecError(f"{path}: no such checkpoint file; check the path")
    if found == "loop":
        raise SpecError(f"{path}: {LOOP}; point it at a checkpoint file")
    if found != "file":
        raise SpecError(f"{path}: is not a regular file; name a .pth, .pt or .safetensors file")


def check_export_files(target: Path, fmt: str, checkpoint: Path | None) -> None:
    """What an export can refuse before torch is imported (which takes seconds): an output it may
    not write or replace, a checkpoint that is not there."""
    check_output_file(target)
    check_replaceable(target_of(target), b"", kind=EXPORT_KINDS[fmt])
    if checkpoint is not None:
        check_checkpoint(checkpoint)


def first_line(exc: BaseException) -> str:
    """An exception's first line of text (its type where it has none), for a one-line message."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@click.command("weights")
@click.argument("spec")
@click.argument("checkpoint", type=click.Path(dir_okay=False, path_type=Path))
@set_option
@click.option("--no-adapt", is_flag=True, help="Refuse a first conv or classifier of another shape.")
@click.option("--strict", is_flag=True, help="Missing or unused keys are errors.")
@click.option("-v", "--verbose", is_flag=True, help="List every loaded key too.")
def weights(
    spec: str, checkpoint: Path, overrides: tuple[str, ...], no_adapt: bool, strict: bool, verbose: bool
) -> None:
    """Load a local CHECKPOINT (.pth, .pt, .safetensors) into SPEC's network and report what fit.

    Never downloads. Adapts the first conv to input.channels and skips a classifier of another
    num_classes (unless --no-adapt); prints loaded, adapted, skipped and missing keys.
    """
    loaded, plan = compile_spec(spec, with_identity(spec, overrides))
    check_checkpoint(checkpoint)  # cheap checks first: importing torch takes seconds
    check_fits(plan, "loading weights", copies=2)
    require_torch_for("weights")
    from .. import build
    from ..weights import WeightsError
    from ..weights.load import load_weights

    model = build(loaded)
    try:
        report = load_weights(model, checkpoint, adapt=not no_adapt, strict=strict)
    except WeightsError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(report.render(verbose=verbose))


@click.command("export")
@click.argument("spec")
@set_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["onnx", "pt2", "int8"]),
    default="onnx",
    show_default=True,
    help="int8: the int8 form calibrated on --calibration, as a TorchScript file (.pt) that needs only torch.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Output file  [default: out/<spec>.<format>]",
)
@click.option(
    "--weights",
    "checkpoint",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Load this local checkpoint first (as 'resnet-gen weights' does); else a fixed-seed initialisation.",
)
@click.option("--opset", type=click.IntRange(18, 30), default=None, help="ONNX opset (default: the exporter's).")
@click.option(
    "--calibration",
    default=None,
    help="int8: the data source to calibrate on (digits, cifar10:PATH, imagefolder:PATH, ...); its training split.",
)
@click.option("--calibration-images", type=click.IntRange(1, 100_000), default=256, show_default=True)
def export(
    spec: str,
    overrides: tuple[str, ...],
    fmt: str,
    output: Path | None,
    checkpoint: Path | None,
    opset: int | None,
    calibration: str | None,
    calibration_images: int,
) -> None:
    """Export SPEC's network (eval mode, dynamic batch) to ONNX, a torch.export program (.pt2), or
    its int8 form calibrated on --calibration images (TorchScript, .pt)."""
    if fmt == "int8" and calibration is None:
        raise click.UsageError("--format int8 needs --calibration SOURCE (for example digits or imagefolder:PATH)")
    if fmt != "int8" and calibration is not None:
        raise click.UsageError("--calibration is only for --format int8")
    from ..spec.load import is_unet

    if is_unet(spec):
        from .unet_export_command import export_unet

        export_unet(spec, with_identity(spec, overrides), fmt, output, checkpoint, opset)
        return
    loaded, plan = compile_spec(spec, with_identity(spec, overrides))
    suffix = "int8.pt" if fmt == "int8" else fmt
    target = output if output is not None else default_output(False) / f"{loaded.name}.{suffix}"
    # Cheap checks first: importing torch and exporting take seconds.
    check_export_files(target, fmt, checkpoint)
    check_fits(plan, f"export to {fmt}", copies=3, example_batch=2)
    require_torch_for("export")
    import torch

    from .. import build
    from ..export import export_onnx, export_program, save_program
    from ..weights import WeightsError
    from ..weights.load import load_weights

    torch.manual_seed(0)  # the same spec always writes the same file
    model = build(loaded)
    if checkpoint is not None:
        try:
            load_weights(model, checkpoint)
        except WeightsError as exc:
            raise click.ClickException(str(exc)) from None
    if fmt == "int8":
        from ..int8_export import calibration_batches, quantised_model, save_int8

        assert calibration is not None
        batches = calibration_batches(loaded, calibration, calibration_images)
        save_int8(quantised_model(loaded, model.state_dict(), batches), target)
        click.echo(f"wrote {target} (int8, calibrated on {sum(len(b) for b in batches)} images of {calibration})")
        return
    try:
        if fmt == "onnx":
            export_onnx(model, target, opset=opset)
        else:
            save_program(export_program(model), target)
    except ImportError as exc:
        raise click.ClickException(str(exc)) from None
    except (RuntimeError, ValueError, TypeError) as exc:
        raise click.ClickException(f"export to {fmt} failed: {first_line(exc)}") from None
    click.echo(f"wrote {target}")
