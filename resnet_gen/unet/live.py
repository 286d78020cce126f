"""Live back end of the U-Net: the plan's construction evaluated into an ``nn.Module`` of the
runtime's classes (:mod:`resnet_gen.runtime.diffusion`, the ones the emitted files copy)."""

from __future__ import annotations

from typing import Any

from torch import nn

from ..runtime.diffusion import DiffusionResBlock, Downsample, SelfAttention, SinusoidalTimesteps, TimestepMLP, Upsample
from ..runtime.diffusion_stages import DownStage, MidStage, UNet, UpStage
from .construction import Call, Name, construction
from .plan import UNetPlan, lower_unet
from .spec import UNetSpec

_HELPERS: dict[str, Any] = {
    cls.__name__: cls
    for cls in (
        DiffusionResBlock,
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


def _resolve(name: str) -> Any:
    if name.startswith("nn."):
        return getattr(nn, name.removeprefix("nn."))
    return _HELPERS[name]


def _evaluate(value: Any) -> Any:
    if isinstance(value, Call):
        args = [_evaluate(arg) for arg in value.args]
        kwargs = {key: _evaluate(arg) for key, arg in value.kwargs.items()}
        return _resolve(value.name)(*args, **kwargs)
    if isinstance(value, Name):
        return _resolve(value.name)
    if isinstance(value, list):
        return [_evaluate(item) for item in value]
    return value


def build_unet(spec: UNetSpec | UNetPlan) -> UNet:
    """A live ``UNet`` whose ``forward(x, t)`` takes a batch and its timesteps."""
    plan = lower_unet(spec) if isinstance(spec, UNetSpec) else spec
    model: UNet = _evaluate(construction(plan))
    return model


__all__ = ["UNet", "build_unet"]
