"""Live back end of the U-Net: the plan's construction evaluated into an ``nn.Module`` of the
runtime's classes (:mod:`resnet_gen.runtime.diffusion`, the ones the emitted files copy) and of
the classifiers' :class:`~resnet_gen.live.build.ResidualBlock`, which runs each ResBlock's plan
(the ``diffusion`` block kind's steps) as it runs every block kind's."""

from __future__ import annotations

from typing import Any

from torch import nn

from ..live.build import ResidualBlock
from ..runtime.diffusion import Downsample, SelfAttention, SinusoidalTimesteps, TimestepMLP, Upsample
from ..runtime.diffusion_stages import DownStage, MidStage, UNet, UpStage
from .construction import Call, construction
from .plan import UNetPlan, lower_unet
from .spec import UNetSpec

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


def _evaluate(value: Any) -> Any:
    if isinstance(value, Call):
        if value.block is not None:
            return ResidualBlock(value.block)
        args = [_evaluate(arg) for arg in value.args]
        kwargs = {key: _evaluate(arg) for key, arg in value.kwargs.items()}
        cls = getattr(nn, value.name.removeprefix("nn.")) if value.name.startswith("nn.") else _HELPERS[value.name]
        return cls(*args, **kwargs)
    if isinstance(value, list):
        return [_evaluate(item) for item in value]
    return value


def build_unet(spec: UNetSpec | UNetPlan) -> UNet:
    """A live ``UNet`` whose ``forward(x, t)`` takes a batch and its timesteps."""
    plan = lower_unet(spec) if isinstance(spec, UNetSpec) else spec
    model: UNet = _evaluate(construction(plan))
    return model


__all__ = ["UNet", "build_unet"]
