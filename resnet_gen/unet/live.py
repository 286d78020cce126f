"""Live back end of the U-Net: the plan's construction evaluated into an ``nn.Module`` of the
runtime's classes (:mod:`resnet_gen.runtime.diffusion`, the ones the emitted files copy) and of
:class:`ResBlock`, which runs the steps the plan gives every ResBlock."""

from __future__ import annotations

import functools
import typing
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ..runtime.diffusion import Downsample, SelfAttention, SinusoidalTimesteps, TimestepMLP, Upsample
from ..runtime.diffusion_stages import DownStage, MidStage, UNet, UpStage
from .construction import Call, Name, construction, resblock_options
from .plan import ResBlockStep, UNetPlan, lower_unet
from .spec import UNetSpec


class ResBlock(nn.Module):
    """A diffusion ResBlock (diffusers' ``ResnetBlock2D``, its names and arithmetic) that runs its
    forward as the plan lists it (:data:`~resnet_gen.unet.plan.ResBlockStep`): GroupNorm, act, 3x3
    conv, the time embedding's projection added (``time_add``) or applied as a scale and a shift
    after the second norm (``time_scale_shift``), act, dropout, 3x3 conv, and the shortcut (a
    projection where the channels change) plus the result. Emitted files write a class of the same
    name out of the same steps (:func:`resnet_gen.unet.emit.resblock_source`)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        time_channels: int,
        *,
        steps: Sequence[ResBlockStep],
        groups: int,
        eps: float,
        dropout: float,
        shortcut_kernel: int,
        act_layer: type[nn.Module],
    ) -> None:
        super().__init__()
        unknown = set(steps) - set(typing.get_args(ResBlockStep))
        if unknown or tuple(steps[-1:]) != ("residual",) or ("dropout" in steps) != bool(dropout):
            raise ValueError(f"not a ResBlock's steps: {tuple(steps)}")
        self.steps = tuple(steps)
        self.norm1 = nn.GroupNorm(groups, in_channels, eps=eps)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        scale_shift = "time_scale_shift" in self.steps
        self.time_emb_proj = nn.Linear(time_channels, out_channels * (2 if scale_shift else 1))
        self.norm2 = nn.GroupNorm(groups, out_channels, eps=eps)
        self.dropout = nn.Dropout(dropout) if dropout else None
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.nonlinearity = act_layer()
        self.conv_shortcut: nn.Module | None = None
        if in_channels != out_channels:
            self.conv_shortcut = nn.Conv2d(in_channels, out_channels, shortcut_kernel, padding=shortcut_kernel // 2)

    def forward(self, x: torch.Tensor, time: torch.Tensor) -> torch.Tensor:
        projected = self.time_emb_proj(self.nonlinearity(time))[:, :, None, None]
        h = x
        for step in self.steps:
            if step == "norm1":
                h = self.norm1(h)
            elif step == "act":
                h = self.nonlinearity(h)
            elif step == "conv1":
                h = self.conv1(h)
            elif step == "time_add":
                h = h + projected
            elif step == "norm2":
                h = self.norm2(h)
            elif step == "time_scale_shift":
                scale, shift = projected.chunk(2, dim=1)
                h = h * (1 + scale) + shift
            elif step == "dropout" and self.dropout is not None:
                h = self.dropout(h)
            elif step == "conv2":
                h = self.conv2(h)
            elif step == "residual":
                h = (x if self.conv_shortcut is None else self.conv_shortcut(x)) + h
        return h


_HELPERS: dict[str, Any] = {
    cls.__name__: cls
    for cls in (
        Downsample,
        Upsample,
        SelfAttention,
        DownStage,
        MidStage,
        UpStage,
        UNet,
        SinusoidalTimesteps,
        TimestepMLP,
    )
}


def _resolve(name: str, classes: dict[str, Any]) -> Any:
    if name.startswith("nn."):
        return getattr(nn, name.removeprefix("nn."))
    return classes[name]


def _evaluate(value: Any, classes: dict[str, Any]) -> Any:
    if isinstance(value, Call):
        args = [_evaluate(arg, classes) for arg in value.args]
        kwargs = {key: _evaluate(arg, classes) for key, arg in value.kwargs.items()}
        return _resolve(value.name, classes)(*args, **kwargs)
    if isinstance(value, Name):
        return _resolve(value.name, classes)
    if isinstance(value, list):
        return [_evaluate(item, classes) for item in value]
    return value


def build_unet(spec: UNetSpec | UNetPlan) -> UNet:
    """A live ``UNet`` whose ``forward(x, t)`` takes a batch and its timesteps."""
    plan = lower_unet(spec) if isinstance(spec, UNetSpec) else spec
    # The ResBlock's class for this network: the runtime's, running the plan's steps with the
    # options all blocks share (the emitted file writes a class specialised to the same).
    options = {key: _evaluate(value, _HELPERS) for key, value in resblock_options(plan.resblock).items()}
    classes = {**_HELPERS, "ResBlock": functools.partial(ResBlock, **options)}
    model: UNet = _evaluate(construction(plan), classes)
    return model


__all__ = ["ResBlock", "UNet", "build_unet"]
