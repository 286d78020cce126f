"""The U-Net as one nested constructor call, read off the plan, with no torch.

Both back ends use it: the live back end evaluates it (:mod:`resnet_gen.unet.live`), the emitter
prints it as the body of the generated factory (:mod:`resnet_gen.unet.emit`), so the two build
the same module by construction."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..plan.types import BlockPlan
from .plan import AttentionPlan, ResamplePlan, StagePlan, UNetPlan

# The ResBlock's constructor arguments, as the emitted class takes them (resnet_gen.unet.emit
# checks its class against them); everything else a block is, the class is written for.
RESBLOCK_ARGS = ("in_channels", "out_channels")


@dataclass(frozen=True)
class Call:
    """``name(*args, **kwargs)``; arguments are numbers, strings, Calls or lists of Calls. A ResBlock's call carries its ``block`` plan, from
    which the live back end builds it (the emitted file calls its written class instead)."""

    name: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    block: BlockPlan | None = field(default=None, compare=False)


def _resblock(block: BlockPlan) -> Call:
    """A ResBlock gets what varies from block to block; the rest is its class's own."""
    values = {"in_channels": block.in_channels, "out_channels": block.out_channels}
    return Call("ResBlock", tuple(values[name] for name in RESBLOCK_ARGS), block=block)


def _attention(layer: AttentionPlan) -> Call:
    return Call("SelfAttention", (layer.channels,), {"heads": layer.heads, "groups": layer.groups, "eps": layer.eps})


def _resample(layer: ResamplePlan) -> Call:
    if layer.kind == "nearest_conv":
        return Call("Upsample", (layer.channels,))
    if layer.kind == "avg":
        return Call("Downsample", (layer.channels,), {"conv": False})
    return Call("Downsample", (layer.channels,), {"padding": layer.padding})


def _stage(stage: StagePlan) -> Call:
    kwargs: dict[str, Any] = {"resnets": [_resblock(block) for block in stage.resnets]}
    if stage.attentions:
        kwargs["attentions"] = [_attention(layer) for layer in stage.attentions]
    if stage.resample is not None:
        kwargs["downsample" if stage.direction == "down" else "upsample"] = _resample(stage.resample)
    kind = {"down": "DownStage", "mid": "MidStage", "up": "UpStage"}[stage.direction]
    return Call(kind, (), kwargs)


def construction(plan: UNetPlan) -> Call:
    """The whole network as ``UNet(conv_in=..., ...)``."""
    width = plan.first_width
    time = plan.time
    return Call(
        "UNet",
        (),
        {
            "conv_in": Call("nn.Conv2d", (plan.in_channels, width, 3), {"padding": 1}),
            "time_proj": Call(
                "SinusoidalTimesteps",
                (time.frequencies,),
                {"flip_sin_to_cos": time.flip_sin_to_cos, "freq_shift": time.freq_shift},
            ),
            # The timestep MLP and the output use SiLU whatever the ResBlocks use, as diffusers' UNet2DModel.
            "time_embedding": Call("TimestepMLP", (time.frequencies, time.channels)),
            "down_blocks": [_stage(stage) for stage in plan.down],
            "mid_block": _stage(plan.mid),
            "up_blocks": [_stage(stage) for stage in plan.up],
            "conv_norm_out": Call("nn.GroupNorm", (plan.groups, width), {"eps": plan.eps}),
            "conv_act": Call("nn.SiLU"),
            "conv_out": Call("nn.Conv2d", (width, plan.out_channels, 3), {"padding": 1}),
        },
    )


def class_names(call: Any) -> set[str]:
    """Every helper class a construction uses (not the ``nn.`` ones)."""
    found: set[str] = set()
    if isinstance(call, Call):
        if not call.name.startswith("nn."):
            found.add(call.name)
        for value in (*call.args, *call.kwargs.values()):
            found |= class_names(value)
    elif isinstance(call, list):
        for item in call:
            found |= class_names(item)
    return found
