"""Diffusion U-Nets (``layout: unet``): the spec, plan and back ends of an encoder-decoder whose
forward takes ``(x, t)``, with diffusers' ``UNet2DModel`` module names.

``load_unet`` / ``load_unet_and_plan`` read a spec; ``build_unet`` (torch) makes the live module;
``emit_unet`` the standalone source; ``unet_diagram`` the drawing; ``unet_report`` the numbers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..spec.load import is_unet
from .load import load_unet, load_unet_and_plan
from .plan import UNetPlan, lower_unet
from .spec import UNetSpec

if TYPE_CHECKING:
    from ..runtime.diffusion_stages import UNet


def build_unet(spec: UNetSpec | UNetPlan) -> UNet:
    """The live ``torch.nn.Module`` of a U-Net spec or plan."""
    from ..torch_check import require_torch

    require_torch("resnet_gen.unet.build_unet (a live torch.nn.Module)")
    from .live import build_unet as build

    return build(spec)


__all__ = ["UNetPlan", "UNetSpec", "build_unet", "is_unet", "load_unet", "load_unet_and_plan", "lower_unet"]
