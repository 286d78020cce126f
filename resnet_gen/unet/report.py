"""The U-Net's report: the classifier report's table (one row per stage, down, middle, up) with
exact parameters and MACs from the plan, counted as :data:`~resnet_gen.unet.plan.MACS_CONVENTION` says."""

from __future__ import annotations

from ..analysis import Report, Row
from .plan import StagePlan, UNetPlan

MACS_NOTE = "conv + linear + attention matmuls, batch 1"


def _detail(stage: StagePlan) -> str:
    parts = [f"{len(stage.resnets)} ResBlock{'s' if len(stage.resnets) != 1 else ''}"]
    if stage.attentions:
        heads = stage.attentions[0].heads
        parts.append(f"attention {stage.size[0]}x{stage.size[1]} ({heads} head{'s' if heads != 1 else ''})")
    if stage.direction == "up":
        parts.append("takes skips of " + ", ".join(str(block.skip_channels) for block in stage.resnets))
    if stage.resample is not None:
        parts.append(
            {"conv": "conv down", "avg": "avg-pool down", "nearest_conv": "nearest+conv up"}[stage.resample.kind]
        )
    return ", ".join(parts)


def unet_report(plan: UNetPlan) -> Report:
    """Per stage: the size it hands on, channels, ResBlocks, params, MACs, what it holds (the
    resolution of its attention, the skips it takes)."""
    time = plan.time
    rows = [
        Row(
            "time_embedding",
            None,
            time.channels,
            0,
            time.params,
            time.macs,
            f"sinusoid {time.frequencies} ({'cos, sin' if time.flip_sin_to_cos else 'sin, cos'}, shift {time.freq_shift}), MLP to {time.channels}",
        ),
        Row("conv_in", plan.size, plan.first_width, 0, plan.conv_in_params, plan.conv_in_macs, "3x3 conv"),
    ]
    for stage in plan.stages:
        rows.append(
            Row(
                stage.path, stage.out_size, stage.channels, len(stage.resnets), stage.params, stage.macs, _detail(stage)
            )
        )
    rows.append(
        Row(
            "out",
            plan.size,
            plan.out_channels,
            0,
            plan.out_params,
            plan.out_macs,
            "GroupNorm, SiLU, 3x3 conv",
        )
    )
    return Report(
        name=plan.name,
        description=plan.description,
        input_channels=plan.in_channels,
        input_size=plan.size,
        params=plan.params,
        macs=plan.macs,
        rows=tuple(rows),
    )
