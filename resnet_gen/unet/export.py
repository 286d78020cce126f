"""Exporting a U-Net: ONNX and ``torch.export`` programs with inputs ``sample`` and ``timestep``
(both with a dynamic batch dimension) and the output ``noise``; files written atomically.
Importing this imports torch."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..export import quiet_exporter
from ..files import staging
from .plan import UNetPlan

INPUT_NAMES = ["sample", "timestep"]
OUTPUT_NAMES = ["noise"]


def example_inputs(plan: UNetPlan, batch: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """A zero sample of the spec's size and one integer timestep per sample (a batch of 1 would
    be specialised to a constant, so 2 by default)."""
    return torch.zeros(batch, plan.in_channels, *plan.size), torch.arange(batch)


def _dynamic() -> tuple[dict[int, object], dict[int, object]]:
    batch = torch.export.Dim("batch", min=1, max=4096)
    return {0: batch}, {0: batch}


def export_unet_program(model: nn.Module, plan: UNetPlan) -> torch.export.ExportedProgram:
    model.eval()
    with quiet_exporter():
        return torch.export.export(model, example_inputs(plan), dynamic_shapes=_dynamic(), strict=False)


def export_unet_onnx(model: nn.Module, plan: UNetPlan, path: Path, *, opset: int | None = None) -> Path:
    import importlib.util

    if importlib.util.find_spec("onnxscript") is None or importlib.util.find_spec("onnx") is None:
        raise ImportError("ONNX export needs the onnx and onnxscript packages: pip install 'resnet-gen[export]'")
    model.eval()
    with staging(path) as staged, quiet_exporter():
        torch.onnx.export(
            model,
            example_inputs(plan),
            str(staged),
            dynamo=True,
            opset_version=opset,
            input_names=INPUT_NAMES,
            output_names=OUTPUT_NAMES,
            dynamic_shapes=_dynamic(),
            verbose=False,
        )
    return path


def load_state_file(model: nn.Module, path: str | Path) -> None:
    """Load a state_dict file (.pt, .pth or .safetensors, diffusers' UNet2DModel layout) strictly."""
    if str(path).endswith(".safetensors"):
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)
