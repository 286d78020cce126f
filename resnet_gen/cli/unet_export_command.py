"""``resnet-gen export`` of a U-Net spec: ONNX or a torch.export program; the int8 form is a
classifier's. Paths are checked before torch is imported."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import SpecError


def export_unet(
    spec: str, items: list[str], fmt: str, output: Path | None, checkpoint: Path | None, opset: int | None
) -> None:
    from ..unet.load import load_unet_and_plan
    from .backbone_commands import check_export_files, first_line, require_torch_for
    from .sources import default_output

    loaded, plan = load_unet_and_plan(spec, items)
    if fmt == "int8":
        raise SpecError(
            [
                f"{spec}: --format int8 quantises classifiers (calibrated on labelled images); export a U-Net as onnx or pt2"
            ]
        )
    target = output if output is not None else default_output(False) / f"{loaded.name}.{fmt}"
    check_export_files(target, fmt, checkpoint)
    require_torch_for("export")
    import torch

    from ..export import save_program
    from ..unet.export import export_unet_onnx, export_unet_program, load_state_file
    from ..unet.live import build_unet

    torch.manual_seed(0)  # the same spec always writes the same file
    model = build_unet(plan)
    if checkpoint is not None:
        try:
            load_state_file(model, checkpoint)
        except (RuntimeError, ValueError, OSError) as exc:
            raise click.ClickException(f"{checkpoint}: not a state_dict of this U-Net: {first_line(exc)}") from None
    try:
        if fmt == "onnx":
            export_unet_onnx(model, plan, target, opset=opset)
        else:
            save_program(export_unet_program(model, plan), target)
    except ImportError as exc:
        raise click.ClickException(str(exc)) from None
    except (RuntimeError, ValueError, TypeError) as exc:
        raise click.ClickException(f"export to {fmt} failed: {first_line(exc)}") from None
    click.echo(f"wrote {target} (inputs sample, timestep; output noise)")
