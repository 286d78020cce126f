"""The plan of a diffusion U-Net: frozen dataclasses, every width, size and skip resolved, no torch.

Module paths follow diffusers' ``UNet2DModel`` (``down_blocks.1.resnets.0.conv1``,
``mid_block.attentions.0.to_q``, ``up_blocks.0.upsamplers.0.conv``), so its state_dict loads into
ours unchanged, and ours into it. Parameters and MACs are counted here from the plan; the report
states the convention (:data:`MACS_CONVENTION`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..plan.layers import KindLayer
from .spec import UNetSpec

Size = tuple[int, int]

MACS_CONVENTION = (
    "conv + linear + attention matmuls, batch 1: each conv and linear (the timestep MLP and every"
    " ResBlock's time projection once per sample), and per attention block its q, k, v and output"
    " projections (4 C^2 HW) plus QK^T and the weighted sum of V (2 C (HW)^2); norms, activations,"
    " softmax, the sinusoid, resampling and additions are not counted"
)


def conv_params(cin: int, cout: int, kernel: int) -> int:
    return cout * cin * kernel * kernel + cout


def linear_params(cin: int, cout: int) -> int:
    return cout * cin + cout


# A ResBlock's forward, as the plan records it and every back end runs it (diffusers'
# ``ResnetBlock2D``): ``h`` starts as the input; ``norm1``/``norm2`` are its GroupNorms, ``act`` the
# activation, ``conv1``/``conv2`` its 3x3 convs; ``time_add`` adds the time embedding's projection
# (activation, linear) to ``h``; ``time_scale_shift`` projects it to a scale and a shift and takes
# ``h * (1 + scale) + shift``; ``dropout`` only where the spec has some; ``residual`` returns the
# shortcut of the input (identity, or the projection where the channels change) plus ``h``.
ResBlockStep = Literal["norm1", "act", "conv1", "time_add", "norm2", "time_scale_shift", "dropout", "conv2", "residual"]
TimeInjection = Literal["add", "scale_shift"]


def resblock_steps(injection: TimeInjection, dropout: float) -> tuple[ResBlockStep, ...]:
    """The forward of a ResBlock that injects time by ``injection``: diffusers adds the projection
    before the second norm ("default"), or scales and shifts after it ("scale_shift")."""
    time: tuple[ResBlockStep, ...] = ("time_add", "norm2") if injection == "add" else ("norm2", "time_scale_shift")
    regularise: tuple[ResBlockStep, ...] = ("dropout",) if dropout else ()
    return ("norm1", "act", "conv1", *time, "act", *regularise, "conv2", "residual")


@dataclass(frozen=True)
class ResBlockKind:
    """What every ResBlock of one U-Net shares: its forward (``steps``), its GroupNorms' groups and
    eps, the dropout rate, the activation and the kernel of its projection shortcuts. The emitter
    writes one class specialised to it; the live back end gives the runtime's class these options."""

    steps: tuple[ResBlockStep, ...]
    groups: int
    eps: float
    dropout: float
    activation: str
    shortcut_kernel: int  # of the projection where the channels change

    @property
    def scale_shift(self) -> bool:
        return "time_scale_shift" in self.steps


@dataclass(frozen=True)
class ResBlockPlan:
    """One ResBlock of ``kind`` (its forward as steps) from ``in_channels`` to ``out_channels``,
    with a projection shortcut where the two differ."""

    path: str
    kind: ResBlockKind
    in_channels: int
    out_channels: int
    time_channels: int
    size: Size
    skip_from: str | None = None  # up stages: the tensor concatenated before this block
    skip_channels: int = 0  # ... and its channels (part of in_channels)

    @property
    def shortcut_kernel(self) -> int | None:
        """The projection's kernel, or None for the identity shortcut."""
        return self.kind.shortcut_kernel if self.in_channels != self.out_channels else None

    @property
    def time_out_channels(self) -> int:
        """The time projection's width: a scale and a shift per channel, or one added value."""
        return self.out_channels * (2 if self.kind.scale_shift else 1)

    @property
    def params(self) -> int:
        total = 2 * self.in_channels + 2 * self.out_channels
        total += conv_params(self.in_channels, self.out_channels, 3) + conv_params(
            self.out_channels, self.out_channels, 3
        )
        total += linear_params(self.time_channels, self.time_out_channels)
        if self.shortcut_kernel is not None:
            total += conv_params(self.in_channels, self.out_channels, self.shortcut_kernel)
        return total

    @property
    def macs(self) -> int:
        area = self.size[0] * self.size[1]
        total = area * 9 * self.out_channels * (self.in_channels + self.out_channels)
        total += self.time_channels * self.time_out_channels
        if self.shortcut_kernel is not None:
            total += area * self.shortcut_kernel**2 * self.in_channels * self.out_channels
        return total


@dataclass(frozen=True)
class AttentionPlan:
    """Self-attention over the H*W positions: GroupNorm, q/k/v, heads, output projection, residual."""

    path: str
    channels: int
    heads: int
    groups: int | None  # None: no norm (diffusers' middle under scale_shift)
    eps: float
    size: Size

    @property
    def params(self) -> int:
        return 4 * linear_params(self.channels, self.channels) + (2 * self.channels if self.groups else 0)

    @property
    def macs(self) -> int:
        positions = self.size[0] * self.size[1]
        return 4 * self.channels * self.channels * positions + 2 * self.channels * positions * positions


@dataclass(frozen=True)
class ResamplePlan:
    """A 2x down-sampler (conv or average pool) or up-sampler (nearest, then a 3x3 conv)."""

    path: str
    channels: int
    kind: str  # conv | avg | nearest_conv
    padding: int
    in_size: Size
    out_size: Size

    @property
    def params(self) -> int:
        return 0 if self.kind == "avg" else conv_params(self.channels, self.channels, 3)

    @property
    def macs(self) -> int:
        if self.kind == "avg":
            return 0
        return self.out_size[0] * self.out_size[1] * 9 * self.channels * self.channels


Layer = ResBlockPlan | AttentionPlan | ResamplePlan


@dataclass(frozen=True)
class StagePlan:
    """One stage of the U: its layers in the order they run. A down stage hands a skip to the up
    path after each ResBlock (after its attention, if any) and after its down-sampler."""

    path: str  # down_blocks.0, mid_block, up_blocks.3
    direction: str  # down | mid | up
    channels: int
    size: Size  # where its ResBlocks work
    out_size: Size
    resnets: tuple[ResBlockPlan, ...]
    attentions: tuple[AttentionPlan, ...]
    resample: ResamplePlan | None

    @property
    def layers(self) -> tuple[Layer, ...]:
        """Execution order: (ResBlock, attention) pairs, then the resampler. The middle runs
        ResBlock, attention, ResBlock."""
        ordered: list[Layer] = []
        for index, block in enumerate(self.resnets):
            ordered.append(block)
            if self.direction == "mid" and index == 0:
                ordered.extend(self.attentions)
            elif self.direction != "mid" and index < len(self.attentions):
                ordered.append(self.attentions[index])
        if self.resample is not None:
            ordered.append(self.resample)
        return tuple(ordered)

    @property
    def params(self) -> int:
        return sum(layer.params for layer in self.layers)

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    @property
    def has_attention(self) -> bool:
        return bool(self.attentions)


@dataclass(frozen=True)
class TimeEmbeddingPlan:
    frequencies: int  # the sinusoid's width (the first stage's)
    flip_sin_to_cos: bool
    freq_shift: int
    channels: int  # the MLP's width

    @property
    def params(self) -> int:
        return linear_params(self.frequencies, self.channels) + linear_params(self.channels, self.channels)

    @property
    def macs(self) -> int:
        return self.frequencies * self.channels + self.channels * self.channels


@dataclass(frozen=True)
class UNetPlan:
    name: str
    description: str
    family: str
    in_channels: int
    out_channels: int
    size: Size
    activation: str
    groups: int
    eps: float
    time: TimeEmbeddingPlan
    down: tuple[StagePlan, ...]
    mid: StagePlan
    up: tuple[StagePlan, ...]
    resblock: ResBlockKind

    @property
    def first_width(self) -> int:
        return self.down[0].channels

    @property
    def stages(self) -> tuple[StagePlan, ...]:
        return (*self.down, self.mid, *self.up)

    @property
    def conv_in_params(self) -> int:
        return conv_params(self.in_channels, self.first_width, 3)

    @property
    def conv_in_macs(self) -> int:
        return self.size[0] * self.size[1] * 9 * self.in_channels * self.first_width

    @property
    def out_params(self) -> int:
        return 2 * self.first_width + conv_params(self.first_width, self.out_channels, 3)

    @property
    def out_macs(self) -> int:
        return self.size[0] * self.size[1] * 9 * self.first_width * self.out_channels

    @property
    def params(self) -> int:
        return self.conv_in_params + self.time.params + sum(s.params for s in self.stages) + self.out_params

    @property
    def macs(self) -> int:
        return self.conv_in_macs + self.time.macs + sum(s.macs for s in self.stages) + self.out_macs

    @property
    def skips(self) -> tuple[tuple[str, str, int], ...]:
        """(produced by, taken by, channels) of every skip connection, in the order they are taken."""
        return tuple(
            (block.skip_from, block.path, block.skip_channels)
            for stage in self.up
            for block in stage.resnets
            if block.skip_from is not None
        )


def lower_unet(spec: UNetSpec) -> UNetPlan:
    """Resolve every width, size, skip and module path of ``spec``."""
    unet = spec.unet
    widths = unet.block_out_channels
    sizes = spec.stage_sizes()
    time_channels = unet.time_embedding.dim or 4 * widths[0]
    groups, eps = unet.norm.groups, unet.norm.eps
    block_kind = ResBlockKind(
        resblock_steps(unet.time_injection, unet.dropout),
        groups,
        eps,
        unet.dropout,
        unet.activation,
        unet.shortcut_kernel,
    )

    def resblock(
        path: str, cin: int, cout: int, size: Size, skip_from: str | None = None, skip: int = 0
    ) -> ResBlockPlan:
        return ResBlockPlan(
            path=path,
            kind=block_kind,
            in_channels=cin,
            out_channels=cout,
            time_channels=time_channels,
            size=size,
            skip_from=skip_from,
            skip_channels=skip,
        )

    def attention(path: str, channels: int, size: Size, norm: bool = True) -> AttentionPlan:
        head = unet.attention_head_dim or channels
        return AttentionPlan(path, channels, channels // head, groups if norm else None, eps, size)

    skips: list[tuple[str, int]] = [("conv_in", widths[0])]
    down: list[StagePlan] = []
    channels = widths[0]
    for index, (width, size, kind) in enumerate(zip(widths, sizes, spec.down_kinds(), strict=True)):
        path = f"down_blocks.{index}"
        resnets, attentions = [], []
        for layer in range(unet.layers_per_block):
            resnets.append(resblock(f"{path}.resnets.{layer}", channels, width, size))
            channels = width
            if kind == "attention":
                attentions.append(attention(f"{path}.attentions.{layer}", width, size))
            skips.append((f"{path}.{'attentions' if kind == 'attention' else 'resnets'}.{layer}", width))
        resample = None
        out_size = size
        if index < len(widths) - 1:
            out_size = sizes[index + 1]
            resample = ResamplePlan(
                f"{path}.downsamplers.0", width, unet.downsample.type, unet.downsample.padding, size, out_size
            )
            skips.append((resample.path, width))
        down.append(StagePlan(path, "down", width, size, out_size, tuple(resnets), tuple(attentions), resample))

    low = sizes[-1]
    mid_norm = unet.mid_attention_norm if unet.mid_attention_norm is not None else unet.time_injection == "add"
    mid = StagePlan(
        "mid_block",
        "mid",
        widths[-1],
        low,
        low,
        (
            resblock("mid_block.resnets.0", widths[-1], widths[-1], low),
            resblock("mid_block.resnets.1", widths[-1], widths[-1], low),
        ),
        (attention("mid_block.attentions.0", widths[-1], low, mid_norm),) if unet.mid_attention else (),
        None,
    )

    up: list[StagePlan] = []
    for index, kind in enumerate(spec.up_kinds()):
        level = len(widths) - 1 - index
        width, size = widths[level], sizes[level]
        path = f"up_blocks.{index}"
        resnets, attentions = [], []
        for layer in range(unet.layers_per_block + 1):
            source, skip = skips.pop()
            resnets.append(resblock(f"{path}.resnets.{layer}", channels + skip, width, size, source, skip))
            channels = width
            if kind == "attention":
                attentions.append(attention(f"{path}.attentions.{layer}", width, size))
        resample = None
        out_size = size
        if level > 0:
            out_size = sizes[level - 1]
            resample = ResamplePlan(f"{path}.upsamplers.0", width, "nearest_conv", 1, size, out_size)
        up.append(StagePlan(path, "up", width, size, out_size, tuple(resnets), tuple(attentions), resample))

    embedding = unet.time_embedding
    return UNetPlan(
        name=spec.name,
        description=spec.description,
        family=spec.family,
        in_channels=spec.input.channels,
        out_channels=spec.out_channels,
        size=spec.input.hw,
        activation=unet.activation,
        groups=groups,
        eps=eps,
        time=TimeEmbeddingPlan(widths[0], embedding.flip_sin_to_cos, embedding.freq_shift, time_channels),
        down=tuple(down),
        mid=mid,
        up=tuple(up),
        resblock=block_kind,
    )


# The U-Net's layers that no classifier has, as the per-layer counts, the conventions and the
# memory estimate see them (resnet_gen.counting says how each tool counts them). The rest of its
# forward is made of the classifiers' layers (convs, GroupNorms, activations, linears, dropout,
# average pooling) and tensor operations (sums, concatenations, the nearest resize, padding):
# resnet_gen.unet.report places them all in the order the live module runs them.


@dataclass(frozen=True)
class Sinusoid(KindLayer):
    """``time_proj``: the timesteps to their sinusoidal embedding (exp, sin, cos: counted by no
    tool, and nothing for the backward, which never reaches the timesteps)."""

    frequencies: int
    params = 0
    macs = 0

    def out_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        return (self.frequencies,)

    def counts(self) -> tuple[int, int, int, int]:
        return (0, 0, 0, 0)

    def saved(self) -> tuple[int, int]:
        return (0, 0)

    def buffer_elements(self) -> int:
        return 0


@dataclass(frozen=True)
class TokenLinear(KindLayer):
    """An ``nn.Linear`` over the H*W positions of a map (attention's q, k, v and output
    projections): one linear per position. ``copies_input``: it reads the map as a transposed
    view, which F.linear copies into a matrix of its own to save for the backward (batch > 1)."""

    in_features: int
    out_features: int
    positions: int
    copies_input: bool = False

    @property
    def params(self) -> int:
        return linear_params(self.in_features, self.out_features)

    @property
    def macs(self) -> int:
        return self.positions * self.in_features * self.out_features

    def out_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        return (self.positions, self.out_features)

    def counts(self) -> tuple[int, int, int, int]:
        # ptflops' nn.Linear hook adds the bias at every position
        outputs = self.positions * self.out_features
        return (self.macs, self.macs, self.macs + outputs, outputs)

    def saved(self) -> tuple[int, int]:
        return (self.positions * self.in_features if self.copies_input else 0, 0)

    def buffer_elements(self) -> int:
        return 0


@dataclass(frozen=True)
class AttentionProducts(KindLayer):
    """Self-attention's core between its projections: ``q @ k^T`` per head, scaled, the softmax
    over the positions, and the weights times ``v``. It reads ``v`` (q and k are counted as its own)."""

    channels: int
    heads: int
    positions: int
    params = 0

    @property
    def macs(self) -> int:
        return 2 * self.channels * self.positions * self.positions

    def out_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        return (self.positions, self.channels)

    def counts(self) -> tuple[int, int, int, int]:
        # fvcore counts both products (its matmul handle); ptflops counts nothing here: ``@`` is
        # not the torch.matmul it patches, and torch.softmax is not its F.softmax.
        scores = self.heads * self.positions * self.positions
        return (self.macs, self.macs, 0, scores + self.positions * self.channels)

    def saved(self) -> tuple[int, int]:
        # q and k for the first product, the softmax's output for itself and the second (v is its input)
        return (2 * self.positions * self.channels + self.heads * self.positions * self.positions, 0)

    def buffer_elements(self) -> int:
        return 0


@dataclass(frozen=True)
class TimeScaleShift(KindLayer):
    """``h * (1 + scale) + shift``, the time projection's scale and shift applied after the
    second norm: no tool counts it; the product saves ``h`` and ``1 + scale``."""

    channels: int
    params = 0
    macs = 0

    def out_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        return shape

    def counts(self) -> tuple[int, int, int, int]:
        return (0, 0, 0, 0)

    def saved(self) -> tuple[int, int]:
        return (self.channels, 0)

    def buffer_elements(self) -> int:
        return 0
