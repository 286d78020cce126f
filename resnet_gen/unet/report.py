"""The U-Net's report: the classifier report's table (one row per stage, down, middle, up) with
exact parameters and MACs from the plan, counted as :data:`~resnet_gen.unet.plan.MACS_CONVENTION` says,
and the classifier report's other counts (fvcore's and ptflops' conventions, activations, the
per-layer table, the training-memory estimate) over the modules its forward runs."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, assert_never

from ..analysis import Report, Row
from ..blocks.diffusion import TimeScaleShift
from ..counting import DecoderOp, DecoderOpType, Placed, Shape, Step, out_shape
from ..plan import layers as L
from ..plan.types import BlockPlan
from .plan import (
    AttentionPlan,
    AttentionProducts,
    ResamplePlan,
    Sinusoid,
    Size,
    StagePlan,
    TokenLinear,
    UNetPlan,
)

if TYPE_CHECKING:
    from ..counting import Convention
    from ..layer_table import LayerRow
    from ..memory_estimate import Dtype, MemoryEstimate, Optimizer

MACS_NOTE = "conv + linear + attention matmuls, batch 1"


def _detail(stage: StagePlan) -> str:
    parts = [f"{len(stage.resnets)} ResBlock{'s' if len(stage.resnets) != 1 else ''}"]
    if stage.attentions:
        heads = stage.attentions[0].heads
        parts.append(f"attention {stage.size[0]}x{stage.size[1]} ({heads} head{'s' if heads != 1 else ''})")
    if stage.direction == "up":
        parts.append("takes skips of " + ", ".join(str(channels) for _, channels in stage.skips))
    if stage.resample is not None:
        parts.append(
            {"conv": "conv down", "avg": "avg-pool down", "nearest_conv": "nearest+conv up"}[stage.resample.kind]
        )
    return ", ".join(parts)


@dataclass(frozen=True)
class UNetReport(Report):
    """A U-Net's :class:`~resnet_gen.analysis.Report`, whose ``count``, ``activations``,
    ``per_layer`` and ``memory`` read the U-Net's plan (``unet``) as the classifier's read theirs."""

    unet: UNetPlan | None = field(default=None, compare=False, repr=False)

    def _placed(self) -> tuple[Placed, ...]:
        if self.unet is None:
            raise ValueError("this report was made without its plan; use resnet_gen.unet.report.unet_report(plan)")
        return placed_unet(self.unet)

    activations_counted = "conv + linear + attention matmul outputs, batch 1"

    @property
    def activations(self) -> int:
        """Elements of every conv, linear and attention matmul output at batch 1 (fvcore's)."""
        from ..counting import total_of

        return total_of(self._placed()).activations

    def count(self, convention: Convention | str) -> int:
        """MACs as ``torchvision`` (:data:`MACS_CONVENTION`), ``fvcore`` or ``ptflops`` count them."""
        from ..counting import check_convention, total_of

        return total_of(self._placed()).convention(check_convention(convention))

    def per_layer(self, depth: int = 2, convention: Convention | str = "torchvision") -> tuple[LayerRow, ...]:
        """torchinfo-style rows down to ``depth``, in the order the modules first run."""
        from ..counting import check_convention
        from ..layer_table import rows_of

        assert self.unet is not None  # _placed says so otherwise
        return rows_of(self._placed(), depth, check_convention(convention), _containers(self.unet))

    def memory(self, batch: int = 1, dtype: Dtype | str = "fp32", optimizer: Optimizer | str = "sgd") -> MemoryEstimate:
        """Training-memory estimate of one step (see resnet_gen.memory_estimate)."""
        from ..memory_estimate import estimate_of

        steps = self._placed()
        return estimate_of(steps, self.params, (self.input_channels, *self.input_size), batch, dtype, optimizer)

    def row_macs(self, convention: Convention | str) -> dict[str, int]:
        """MACs in ``convention`` per row of the table (``time_embedding``, ``conv_in``, each stage, ``out``)."""
        from ..counting import check_convention, counts

        name = check_convention(convention)
        out = dict.fromkeys((row.name for row in self.rows), 0)
        for item in self._placed():
            out[_row_of(item.step.path)] += counts(item).convention(name)
        return out


def _row_of(path: str) -> str:
    """The table row a module belongs to."""
    parts = path.split(".")
    if parts[0] in ("down_blocks", "up_blocks"):
        return ".".join(parts[:2])
    if parts[0] == "time_proj":
        return "time_embedding"
    if parts[0] in ("time_embedding", "conv_in", "mid_block"):
        return parts[0]
    return "out"  # conv_norm_out, conv_act, conv_out


def _containers(plan: UNetPlan) -> dict[str, str]:
    """The per-layer table's words for the modules that hold others."""
    kinds = {"time_embedding": "timestep MLP"}
    for stage in plan.stages:
        kinds[stage.path] = {"down": "down stage", "mid": "middle", "up": "up stage"}[stage.direction]
        kinds.update({block.path: "ResBlock" for block in stage.resnets})
        kinds.update({layer.path: "self-attention" for layer in stage.attentions})
        if stage.resample is not None:
            kinds[stage.resample.path] = "down-sampler" if stage.direction == "down" else "up-sampler"
    return kinds


Flow = tuple[Shape, int]  # a tensor of the forward pass: its shape (batch left out) and its number


def placed_unet(plan: UNetPlan) -> tuple[Placed, ...]:
    """Every module and tensor operation of the live U-Net's forward (resnet_gen.runtime.diffusion,
    diffusion_stages and each ResBlock's plan, as resnet_gen.live.build.ResidualBlock runs it) in the order it runs them, batch 1, with
    the shapes they read and write: what the counts, the per-layer table and the memory estimate
    read. Tensor 0 is the sample; a tensor operation's path is the module whose forward runs it."""
    out: list[Placed] = []
    tensors = 0

    def step(layer: Step, start: Flow) -> Flow:
        nonlocal tensors
        tensors += 1
        after = out_shape(layer, start[0])
        out.append(Placed(layer, start[0], after, start[1], tensors))
        return after, tensors

    def op(path: str, kind: DecoderOpType, start: Flow, shape: Shape) -> Flow:
        return step(DecoderOp(path, kind, shape), start)

    def conv(path: str, cin: int, cout: int, size: Size, start: Flow, kernel: int = 3) -> Flow:
        return step(L.Conv(path, cin, cout, kernel, 1, kernel // 2, 1, 1, True, size), start)

    def norm(path: str, channels: int, start: Flow) -> Flow:
        return step(L.Norm(path, "group", channels, plan.eps, 0.1, plan.groups), start)

    def run(layers: tuple[L.Layer, ...], start: Flow, prefix: str) -> Flow:
        for layer in layers:
            start = step(replace(layer, path=f"{prefix}.{layer.path}"), start)
        return start

    def resblock(block: BlockPlan, x: Flow, time: Flow) -> Flow:
        """The block's steps, as every back end runs them; its time projection first, which the
        injection reads by shape only (the live block computes it there; the cost is the same)."""
        path = block.path
        run(block.time, time, path)
        h = shortcut = x
        for item in block.steps:
            match item.op:
                case "fork":
                    shortcut = h
                case "branch":
                    h = run(block.branch, h, path)
                case "time_add":
                    h = op(path, "add", h, h[0])
                case "time_scale_shift":
                    h = step(TimeScaleShift(path, block.out_channels), h)
                case "tail":
                    h = run(block.tail, h, path)
                case "shortcut":
                    shortcut = run(block.shortcut, shortcut, path)
                case "add":
                    h = op(path, "add", h, h[0])
                case "preact" | "drop_path" | "scale" | "after_add" | "activation":
                    raise ValueError(f"{path}: a ResBlock has no {item.op} step")
                case _:
                    assert_never(item.op)
        return h

    def attention(layer: AttentionPlan, x: Flow) -> Flow:
        path, channels, positions = layer.path, layer.channels, layer.size[0] * layer.size[1]
        h = x if layer.groups is None else norm(f"{path}.group_norm", channels, x)
        step(TokenLinear(f"{path}.to_q", channels, channels, positions), h)
        step(TokenLinear(f"{path}.to_k", channels, channels, positions, copies_input=True), h)
        v = step(TokenLinear(f"{path}.to_v", channels, channels, positions, copies_input=True), h)
        h = step(AttentionProducts(path, channels, layer.heads, positions), v)
        h = step(TokenLinear(f"{path}.to_out.0", channels, channels, positions), h)
        h = step(L.Dropout(f"{path}.to_out.1", 0.0), h)
        return op(path, "add", h, (channels, *layer.size))  # the residual, back as a map

    def resample(layer: ResamplePlan, x: Flow) -> Flow:
        path, channels = layer.path, layer.channels
        if layer.kind == "avg":
            return step(L.Pool(f"{path}.conv", "avg", 2, 2, 0, False, True, layer.out_size), x)
        if layer.kind == "nearest_conv":
            x = op(path, "nearest", x, (channels, *layer.out_size))
            return conv(f"{path}.conv", channels, channels, layer.out_size, x)
        if layer.padding == 0:  # TensorFlow's SAME: a row and a column of zeros at the bottom and right
            x = op(path, "pad", x, (channels, layer.in_size[0] + 1, layer.in_size[1] + 1))
        down = L.Conv(f"{path}.conv", channels, channels, 3, 2, layer.padding, 1, 1, True, layer.out_size)
        return step(down, x)

    sample: Flow = ((plan.in_channels, *plan.size), 0)
    time: Flow = ((), 1)  # the timesteps, tensor 1
    tensors = 1
    time = step(Sinusoid("time_proj", plan.time.frequencies), time)
    time = step(L.Linear("time_embedding.linear_1", plan.time.frequencies, plan.time.channels), time)
    time = step(L.Act("time_embedding.act", "silu", inplace=False), time)
    time = step(L.Linear("time_embedding.linear_2", plan.time.channels, plan.time.channels), time)
    x = conv("conv_in", plan.in_channels, plan.first_width, plan.size, sample)
    skips = [x]
    for stage in plan.down:
        for index, block in enumerate(stage.resnets):
            x = resblock(block, x, time)
            if stage.attentions:
                x = attention(stage.attentions[index], x)
            skips.append(x)
        if stage.resample is not None:
            x = resample(stage.resample, x)
            skips.append(x)
    x = resblock(plan.mid.resnets[0], x, time)
    for layer in plan.mid.attentions:
        x = attention(layer, x)
    x = resblock(plan.mid.resnets[1], x, time)
    for stage in plan.up:
        for index, block in enumerate(stage.resnets):
            skips.pop()
            x = op(stage.path, "concat", x, (block.in_channels, *stage.size))
            x = resblock(block, x, time)
            if stage.attentions:
                x = attention(stage.attentions[index], x)
        if stage.resample is not None:
            x = resample(stage.resample, x)
    x = norm("conv_norm_out", plan.first_width, x)
    x = step(L.Act("conv_act", "silu", inplace=False), x)
    conv("conv_out", plan.first_width, plan.out_channels, plan.size, x)
    return tuple(out)


def unet_report(plan: UNetPlan) -> UNetReport:
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
    return UNetReport(
        name=plan.name,
        description=plan.description,
        input_channels=plan.in_channels,
        input_size=plan.size,
        params=plan.params,
        macs=plan.macs,
        rows=tuple(rows),
        unet=plan,
    )
