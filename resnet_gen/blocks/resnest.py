"""ResNeSt's block (Zhang et al. 2020): a bottleneck whose grouped 3x3 is a split-attention conv,
as timm's ResNestBottleneck, with its average-pool downsampling (``avd``). Its options, rules,
lowering and its one layer kind (:class:`SplitAttention`) are all here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, model_validator

from ..choices import ActivationType
from ..errors import SpecError
from ..plan.layer_builder import make_divisible
from ..plan.layers import KindLayer, Layer, Pool, Size, conv_out, pool_out
from ..spec.model import BlockSpec
from .bottleneck import GroupedBlockSpec, GroupedKind
from .registry import BranchInputs, register

_TIMM_FORM = "a resnest block is timm's ResNestBottleneck: post-activation, striding in its split-attention 3x3, no reduce_first or attention; leave this key unset"


class ResNeStBlockSpec(GroupedBlockSpec):
    type: Literal["resnest"] = "resnest"
    radix: Annotated[int, Field(ge=1, le=8)] = Field(
        default=2, description="`resnest` only: splits per group of the split-attention conv (1: a sigmoid gate)."
    )
    avd: bool = Field(
        default=True,
        description="`resnest` only: a strided block downsamples with a 3x3 average pool (the convs run at stride 1).",
    )
    avd_first: bool = Field(
        default=False, description="`resnest` only: that pool comes before the split-attention conv instead of after."
    )

    @model_validator(mode="after")
    def _timm_form(self) -> ResNeStBlockSpec:
        from ..spec.backbone import raise_problems

        for key, fits in (("order", self.order == "post"), ("attention", self.attention is None)):
            if not fits:
                raise_problems([((key,), _TIMM_FORM, getattr(self, key))])
        return self


@dataclass(frozen=True)
class SplitAttention(KindLayer):
    """ResNeSt's split-attention conv, as timm's SplitAttn: a ``kernel`` x ``kernel`` conv to
    ``radix`` splits of ``out_channels`` (``groups * radix`` groups), norm ``bn0``, activation; the
    splits summed, pooled, 1x1 conv ``fc1`` (bias, ``groups``) to ``attn_channels``, norm ``bn1``,
    activation, 1x1 conv ``fc2`` (bias) back to ``radix * out_channels``, a softmax over the splits
    (a sigmoid for radix 1), and the splits summed under those weights. Its norms are batch norms."""

    in_channels: int
    out_channels: int
    kernel: int
    stride: int
    padding: int
    dilation: int
    groups: int
    radix: int
    attn_channels: int
    eps: float
    momentum: float
    activation: ActivationType
    out_size: Size

    def _conv_weights(self) -> int:
        return self.out_channels * self.radix * (self.in_channels // (self.groups * self.radix)) * self.kernel**2

    def _fc_weights(self) -> int:
        fc1 = self.attn_channels * (self.out_channels // self.groups)
        fc2 = self.out_channels * self.radix * (self.attn_channels // self.groups)
        return fc1 + fc2

    @property
    def params(self) -> int:
        mid = self.out_channels * self.radix
        norms_and_biases = 2 * mid + self.attn_channels + 2 * self.attn_channels + mid
        return self._conv_weights() + self._fc_weights() + norms_and_biases

    @property
    def macs(self) -> int:
        return self._conv_weights() * self.out_size[0] * self.out_size[1] + self._fc_weights()

    def torch_module(self) -> Any:
        from ..live.build import make_activation
        from ..runtime.split_attention import SplitAttention as Module

        return Module(
            self.in_channels,
            self.out_channels,
            self.kernel,
            stride=self.stride,
            padding=self.padding,
            dilation=self.dilation,
            groups=self.groups,
            radix=self.radix,
            attn_channels=self.attn_channels,
            eps=self.eps,
            momentum=self.momentum,
            act=make_activation(self.activation),
        )

    def out_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        return (self.out_channels, *self.out_size)

    def counts(self) -> tuple[int, int, int, int]:
        from ..counting import PTFLOPS_ACTIVATION

        mid = self.out_channels * self.radix
        pixels = self.out_size[0] * self.out_size[1]
        attn = self.attn_channels
        norms = 2 * mid * pixels + 2 * attn  # bn0 on the conv's output, bn1 on the pooled path
        acts = PTFLOPS_ACTIVATION[self.activation] * (mid * pixels + attn)
        biases = attn + mid  # fc1 and fc2
        return (self.macs, self.macs + norms, self.macs + norms + acts + biases, mid * pixels + attn + mid)

    def saved(self) -> tuple[int, int]:
        mid = self.out_channels * self.radix
        pixels = self.out_size[0] * self.out_size[1]
        # bn0's input and act0's output (which the weighting reads); the pooled path's tensors:
        # fc1's input, bn1's input, act1's output, the split weights.
        small = self.out_channels + 2 * self.attn_channels + mid
        return 2 * mid * pixels + small, 2 * (mid + self.attn_channels)

    def buffer_elements(self) -> int:
        return 2 * (self.out_channels * self.radix + self.attn_channels) + 2

    def text(self) -> tuple[str, str, str, str]:
        size = f"{self.kernel}\u00d7{self.kernel}"
        stride = f"/{self.stride}" if self.stride > 1 else ""
        groups = f", {self.groups} groups" if self.groups > 1 else ""
        detail = f"{self.in_channels} \u2192 {self.out_channels}, radix {self.radix}{groups}" + (
            f", stride {self.stride}" if stride else ""
        )
        return (
            "conv",
            f"{size} split attention",
            detail,
            f"{size}{stride} split-attn r{self.radix}, {self.out_channels}",
        )

    def doc(self) -> str:
        return f"{self.kernel}x{self.kernel} split-attention"

    def report(self) -> list[str]:
        words = [f"{self.kernel}x{self.kernel} {self.out_channels}", f"split attention radix {self.radix}"]
        return words + ([f"{self.groups} groups"] if self.groups > 1 else [])


@register
class ResNeStKind(GroupedKind):
    name = "resnest"
    options = ResNeStBlockSpec
    class_name = "ResNeStBottleneck"
    title = "resnest"
    fixed: ClassVar[dict[str, Any]] = {"stride_on": "3x3", "reduce_first": 1, "dropout": 0.0}
    refused: ClassVar[dict[str, str]] = {
        "stride_on": _TIMM_FORM,
        "reduce_first": _TIMM_FORM,
        "dropout": "dropout applies to basic blocks only; a resnest has no dropout between its convs (use drop_path or head.dropout)",
    }

    def anti_alias_problem(self, block: BlockSpec, index: int) -> str | None:
        return "anti_alias does not apply to resnest blocks (their avd pool downsamples)"

    def middle(self, block: BlockSpec, inputs: BranchInputs, size: Size) -> tuple[list[Layer], Size]:
        """The split-attention 3x3 (its own norms and activations); with ``avd`` a strided block
        downsamples with a 3x3 average pool before (``avd_first``) or after it, at stride 1."""
        assert isinstance(block, ResNeStBlockSpec)
        make, stride, dilation = inputs.make, inputs.stride, inputs.first_dilation
        first, mid = inputs.widths.first, inputs.widths.mid
        norm = make.norm_spec
        if norm.type != "batch":
            raise SpecError(
                f"norm.type: a resnest block's split attention uses batch norms, not {norm.type}; use norm: batch"
            )
        split_groups = block.groups * block.radix
        if first % split_groups or mid % block.groups:
            raise SpecError(
                f"block.radix: the split-attention conv has {first} input channels, not divisible by groups x radix = {split_groups}; use a width the product divides"
            )
        avd = block.avd and stride > 1
        name = "avd_first" if block.avd_first else "avd_last"

        def avd_pool(at: Size) -> Pool:
            out = (pool_out(at[0], 3, stride, 1, False), pool_out(at[1], 3, stride, 1, False))
            return Pool(name, "avg", 3, stride, 1, False, True, out)

        layers: list[Layer] = []
        if avd and block.avd_first:
            pool = avd_pool(size)
            layers.append(pool)
            size = pool.out_size
        split_stride = 1 if avd else stride
        size = (
            conv_out(size[0], 3, split_stride, dilation, dilation),
            conv_out(size[1], 3, split_stride, dilation, dilation),
        )
        attn_channels = make_divisible(first * block.radix * 0.25, 8, min_value=32, round_limit=0.9)
        split = SplitAttention(
            "conv2",
            first,
            mid,
            3,
            split_stride,
            dilation,
            dilation,
            block.groups,
            block.radix,
            attn_channels,
            norm.eps,
            norm.momentum,
            make.activation,
            size,
        )
        layers.append(split)
        if avd and not block.avd_first:
            pool = avd_pool(size)
            layers.append(pool)
            size = pool.out_size
        return layers, size
