"""The spec language of a diffusion U-Net (``layout: unet``): pydantic models, as for classifiers.

The ``unet`` section reads like the configuration of diffusers' ``UNet2DModel`` in resnet-gen's
terms: ``block_out_channels`` are the stage widths, ``layers_per_block`` the diffusion ResBlocks of
a down stage (an up stage has one more, for the skip that came out of the down-sampler), and
attention is placed by resolution (``attention_resolutions``) or stage by stage (``down_blocks`` /
``up_blocks``, diffusers' ``DownBlock2D`` / ``AttnDownBlock2D`` written as ``resnet`` / ``attention``).
Rules across keys are validators here, each raised at the key that has to change.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from ..spec.backbone import raise_problems
from ..spec.model import Channels, InputSpec, Rate, ReferenceSpec, _Strict, one_line

UNetActivation = Literal["silu", "relu", "gelu", "mish"]
StageKind = Literal["resnet", "attention"]
MAX_STAGES = 8


class UNetNormSpec(_Strict):
    """The GroupNorm of every ResBlock, attention block and the output."""

    groups: Annotated[int, Field(ge=1, le=1024)] = Field(
        default=32, description="GroupNorm groups (diffusers' `norm_num_groups`); must divide every normalised width."
    )
    eps: Annotated[float, Field(gt=0.0, lt=1.0)] = Field(
        default=1e-5, description="GroupNorm epsilon (diffusers' `norm_eps`; the DDPM checkpoints use 1e-6)."
    )


class TimeEmbeddingSpec(_Strict):
    """The sinusoidal timestep embedding and its MLP (linear, activation, linear)."""

    type: Literal["positional"] = Field(
        default="positional", description="`positional`: the sinusoidal embedding of Vaswani et al. / DDPM."
    )
    flip_sin_to_cos: bool = Field(
        default=True, description="Order the embedding cos, sin (true) or sin, cos (false, as the DDPM checkpoints)."
    )
    freq_shift: Annotated[int, Field(ge=0, le=1)] = Field(
        default=0, description="Frequency shift: the exponent is divided by `dim/2 - freq_shift` (DDPM: 1)."
    )
    dim: Annotated[int, Field(ge=2, le=16_384)] | None = Field(
        default=None,
        description="Width of the embedding MLP (diffusers' `time_embedding_dim`); unset: 4 x the first stage width.",
    )


class DownsampleSpec(_Strict):
    """How a down stage halves the resolution (every stage but the last)."""

    type: Literal["conv", "avg"] = Field(
        default="conv", description="`conv`: a 3x3 stride-2 conv; `avg`: 2x2 average pooling (no parameters)."
    )
    padding: Literal[0, 1] = Field(
        default=1,
        description="`conv` only: 1 pads each side; 0 pads right and bottom by one (TensorFlow's SAME, as the DDPM checkpoints).",
    )

    @model_validator(mode="before")
    @classmethod
    def _type_shorthand(cls, data: Any) -> Any:
        return {"type": data} if isinstance(data, str) else data


class UNetSection(_Strict):
    """The encoder-decoder: down stages, a middle, up stages that concatenate the matching skips."""

    block_out_channels: Annotated[list[Channels], Field(min_length=1, max_length=MAX_STAGES)] = Field(
        description="The width of each stage, from the highest resolution down (diffusers' `block_out_channels`)."
    )
    layers_per_block: Annotated[int, Field(ge=1, le=16)] = Field(
        default=2, description="Diffusion ResBlocks per down stage; each up stage has one more."
    )
    out_channels: Annotated[int, Field(ge=1, le=4096)] | None = Field(
        default=None, description="Channels of the output (the predicted noise); unset: as many as the input."
    )
    attention_resolutions: Annotated[list[Annotated[int, Field(ge=1, le=16_384)]], Field(max_length=MAX_STAGES)] = (
        Field(
            default=[],
            description="Side lengths (heights, for a non-square sample) at which the down and up stages add self-attention after each ResBlock (DDPM: [16]).",
        )
    )
    down_blocks: Annotated[list[StageKind], Field(min_length=1, max_length=MAX_STAGES)] | None = Field(
        default=None,
        description="Instead of `attention_resolutions`: each down stage's kind, `resnet` or `attention` (diffusers' `down_block_types`).",
    )
    up_blocks: Annotated[list[StageKind], Field(min_length=1, max_length=MAX_STAGES)] | None = Field(
        default=None,
        description="Instead of `attention_resolutions`: each up stage's kind, from the lowest resolution up (diffusers' `up_block_types`).",
    )
    mid_attention: bool = Field(default=True, description="Self-attention between the two ResBlocks of the middle.")
    mid_attention_norm: bool | None = Field(
        default=None,
        description="GroupNorm before the middle's attention; unset: as diffusers, on with `time_injection: add`, off with `scale_shift`.",
    )
    attention_head_dim: Annotated[int, Field(ge=1, le=65_536)] | None = Field(
        default=None,
        description="Channels per attention head; unset: one head over all channels (the DDPM checkpoints).",
    )
    norm: UNetNormSpec = Field(default=UNetNormSpec(), description="GroupNorm groups and epsilon.")
    activation: UNetActivation = Field(
        default="silu",
        description="The ResBlocks' nonlinearity (diffusers' `act_fn`); the timestep MLP and the output use SiLU, as in diffusers.",
    )
    time_embedding: TimeEmbeddingSpec = Field(
        default=TimeEmbeddingSpec(), description="The timestep embedding and its MLP."
    )
    time_injection: Literal["add", "scale_shift"] = Field(
        default="add",
        description="How a ResBlock takes the time embedding: `add` it after the first conv, or `scale_shift` the second norm's output (diffusers' `resnet_time_scale_shift`).",
    )
    dropout: Rate = Field(default=0.0, description="Dropout before each ResBlock's second conv.")
    downsample: DownsampleSpec = Field(
        default=DownsampleSpec(), description="The down-sampler; a type name is short for `{type: ...}`."
    )
    upsample: Literal["nearest_conv"] = Field(
        default="nearest_conv", description="The up-sampler: nearest-neighbour 2x, then a 3x3 conv."
    )
    shortcut_kernel: Literal[1, 3] = Field(
        default=1, description="Kernel of a ResBlock's projection shortcut where channels change (1x1 or 3x3)."
    )

    @field_validator("downsample", mode="before")
    @classmethod
    def _downsample_shorthand(cls, value: Any) -> Any:
        return {"type": value} if isinstance(value, str) else value


class UNetSpec(_Strict):
    """A whole diffusion U-Net."""

    name: Annotated[str, Field(min_length=1, max_length=80)] = Field(
        description="A Python identifier naming the network and its generated factory function."
    )
    layout: Literal["unet"] = Field(
        description="`unet`: a diffusion U-Net, described by the `unet` section, whose forward takes `(x, t)`; unset: a classifier."
    )
    description: Annotated[str, Field(max_length=500)] = Field(
        default="", description="One paragraph about the network."
    )
    family: Annotated[str, Field(min_length=1, max_length=40)] = Field(
        default="diffusion", description="The catalog group the network is listed under."
    )
    input: InputSpec = Field(default=InputSpec(size=32), description="The sample: channels and size.")
    unet: UNetSection = Field(
        description="`layout: unet` only: the encoder-decoder (down stages, middle, up stages), in the terms of diffusers' `UNet2DModel`."
    )
    reference: ReferenceSpec | None = Field(default=None, description="Published numbers the tests hold this spec to.")

    @field_validator("name")
    @classmethod
    def _name_is_identifier(cls, value: str) -> str:
        from ..spec.names import name_problem

        problem = name_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("family")
    @classmethod
    def _family_one_line(cls, value: str) -> str:
        return one_line(value)

    @field_validator("description")
    @classmethod
    def _description_one_paragraph(cls, value: str) -> str:
        return " ".join(value.split())

    @property
    def out_channels(self) -> int:
        return self.unet.out_channels or self.input.channels

    def stage_sizes(self) -> list[tuple[int, int]]:
        """The (height, width) each down stage works at (the up stages, in reverse)."""
        height, width = self.input.hw
        return [(height >> index, width >> index) for index in range(len(self.unet.block_out_channels))]

    def down_kinds(self) -> list[StageKind]:
        if self.unet.down_blocks is not None:
            return list(self.unet.down_blocks)
        wanted = set(self.unet.attention_resolutions)
        return ["attention" if _side(size) in wanted else "resnet" for size in self.stage_sizes()]

    def up_kinds(self) -> list[StageKind]:
        """Up stage kinds, lowest resolution first (as diffusers lists ``up_block_types``)."""
        if self.unet.up_blocks is not None:
            return list(self.unet.up_blocks)
        wanted = set(self.unet.attention_resolutions)
        return ["attention" if _side(size) in wanted else "resnet" for size in reversed(self.stage_sizes())]

    @model_validator(mode="after")
    def _fits(self) -> UNetSpec:
        raise_problems(_problems(self))
        return self


def _side(size: tuple[int, int]) -> int:
    """A resolution as attention_resolutions names it: the side of a square map, else the height."""
    return size[0]


def _problems(spec: UNetSpec) -> list[tuple[tuple[str | int, ...], str, Any]]:
    """The rules across keys, each at the key that has to change (the first that fails)."""
    unet = spec.unet
    widths = unet.block_out_channels
    stages = len(widths)
    height, width = spec.input.hw
    factor = 2 ** (stages - 1)
    if height % factor or width % factor:
        return [
            (
                ("input", "size"),
                f"{stages} stages halve the sample {stages - 1} times, so its sides must be multiples of {factor}"
                f" (got {height}x{width}); use a size such as {max(factor, round(height / factor) * factor)} or fewer stages",
                spec.input.size,
            )
        ]
    for key in ("down_blocks", "up_blocks"):
        kinds = getattr(unet, key)
        if kinds is None:
            continue
        if unet.attention_resolutions:
            return [
                (
                    ("unet", key),
                    "give attention either by resolution (attention_resolutions) or stage by stage (down_blocks/up_blocks), not both",
                    kinds,
                )
            ]
        if len(kinds) != stages:
            partner = (
                "each down stage has a partner up stage that takes its skips"
                if key == "up_blocks"
                else "one per stage width"
            )
            return [
                (
                    ("unet", key),
                    f"{len(kinds)} {key.split('_')[0]} stages for {stages} widths in block_out_channels; {partner}, so give {stages}",
                    kinds,
                )
            ]
    sizes = {_side(size) for size in spec.stage_sizes()}
    for index, side in enumerate(unet.attention_resolutions):
        if side not in sizes:
            shown = ", ".join(str(s) for s in sorted(sizes, reverse=True))
            return [
                (
                    ("unet", "attention_resolutions", index),
                    f"the network never works at {side}x{side}; its stages work at {shown}",
                    side,
                )
            ]
    groups = unet.norm.groups
    for channels, where in _normalised_widths(spec):
        if channels % groups:
            fits = math.gcd(*(c for c, _ in _normalised_widths(spec)))
            example = next(d for d in (32, 16, 8, 4, 2, 1) if fits % d == 0)
            return [
                (
                    ("unet", "norm", "groups"),
                    f"GroupNorm needs every normalised channel count divisible by groups {groups}, but {where} has"
                    f" {channels}; use a divisor of {fits} such as {example}",
                    groups,
                )
            ]
    head = unet.attention_head_dim
    if head is not None:
        for channels, where in _attention_widths(spec):
            if channels % head:
                return [
                    (
                        ("unet", "attention_head_dim"),
                        f"attention in {where} has {channels} channels, which {head}-channel heads do not divide; use a divisor of {channels}",
                        head,
                    )
                ]
    from ..spec.limits import MAX_PARAMS
    from .plan import lower_unet

    params = lower_unet(spec).params
    if params > MAX_PARAMS:
        return [
            (
                ("unet", "block_out_channels"),
                f"makes {params:,} parameters; at most {MAX_PARAMS:,} are supported, so use narrower stages",
                widths,
            )
        ]
    return []


def _normalised_widths(spec: UNetSpec) -> list[tuple[int, str]]:
    """(channels, where) of the widths GroupNorms normalise: the stages' (each ResBlock's output,
    a down ResBlock's input, the output norm). An up stage's ResBlock normalises its input and a
    skip concatenated, a sum of these widths, which the groups divide whenever they divide these."""
    widths = spec.unet.block_out_channels
    return [(width, f"down_blocks.{index}") for index, width in enumerate(widths)]


def _attention_widths(spec: UNetSpec) -> list[tuple[int, str]]:
    widths = spec.unet.block_out_channels
    out = [(widths[i], f"down_blocks.{i}") for i, kind in enumerate(spec.down_kinds()) if kind == "attention"]
    out += [(widths[-1 - i], f"up_blocks.{i}") for i, kind in enumerate(spec.up_kinds()) if kind == "attention"]
    if spec.unet.mid_attention:
        out.append((widths[-1], "mid_block"))
    return out
