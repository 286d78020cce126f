"""The plan of a diffusion U-Net: frozen dataclasses, every width, size and skip resolved, no torch.

Module paths follow diffusers' ``UNet2DModel`` (``down_blocks.1.resnets.0.conv1``,
``mid_block.attentions.0.to_q``, ``up_blocks.0.upsamplers.0.conv``), so its state_dict loads into
ours unchanged, and ours into it. Parameters and MACs are counted here from the plan; the report
states the convention (:data:`MACS_CONVENTION`).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..blocks.diffusion import DiffusionBlockSpec, DiffusionKind
from ..blocks.registry import kind_of
from ..plan.layers import KindLayer
from ..plan.types import BlockPlan
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


Layer = BlockPlan | AttentionPlan | ResamplePlan


@dataclass(frozen=True)
class StagePlan:
    """One stage of the U: its layers in the order they run. A down stage hands a skip to the up
    path after each ResBlock (after its attention, if any) and after its down-sampler."""

    path: str  # down_blocks.0, mid_block, up_blocks.3
    direction: str  # down | mid | up
    channels: int
    size: Size  # where its ResBlocks work
    out_size: Size
    resnets: tuple[BlockPlan, ...]  # the diffusion kind's (resnet_gen.blocks.diffusion)
    attentions: tuple[AttentionPlan, ...]
    resample: ResamplePlan | None
    # Up stages: the tensor each ResBlock concatenates before it runs (produced by, channels; part
    # of the block's in_channels).
    skips: tuple[tuple[str, int], ...] = ()

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
    block: DiffusionBlockSpec  # the options every ResBlock shares

    @property
    def resnets(self) -> tuple[BlockPlan, ...]:
        """Every ResBlock, in the order the network runs them."""
        return tuple(block for stage in self.stages for block in stage.resnets)

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
            (source, block.path, channels)
            for stage in self.up
            for block, (source, channels) in zip(stage.resnets, stage.skips, strict=True)
        )


def lower_unet(spec: UNetSpec) -> UNetPlan:
    """Resolve every width, size, skip and module path of ``spec``."""
    unet = spec.unet
    widths = unet.block_out_channels
    sizes = spec.stage_sizes()
    time_channels = unet.time_embedding.dim or 4 * widths[0]
    groups, eps = unet.norm.groups, unet.norm.eps
    options = DiffusionBlockSpec(
        time_injection=unet.time_injection, dropout=unet.dropout, shortcut_kernel=unet.shortcut_kernel
    )
    diffusion = kind_of(options.type)
    assert isinstance(diffusion, DiffusionKind)

    def resblock(path: str, cin: int, cout: int, size: Size) -> BlockPlan:
        return diffusion.resblock(
            options,
            path=path,
            in_channels=cin,
            out_channels=cout,
            time_channels=time_channels,
            size=size,
            groups=groups,
            eps=eps,
            activation=unet.activation,
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
        resnets, attentions, taken = [], [], []
        for layer in range(unet.layers_per_block + 1):
            source, skip = skips.pop()
            taken.append((source, skip))
            resnets.append(resblock(f"{path}.resnets.{layer}", channels + skip, width, size))
            channels = width
            if kind == "attention":
                attentions.append(attention(f"{path}.attentions.{layer}", width, size))
        resample = None
        out_size = size
        if level > 0:
            out_size = sizes[level - 1]
            resample = ResamplePlan(f"{path}.upsamplers.0", width, "nearest_conv", 1, size, out_size)
        up.append(
            StagePlan(path, "up", width, size, out_size, tuple(resnets), tuple(attentions), resample, tuple(taken))
        )

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
        block=options,
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
