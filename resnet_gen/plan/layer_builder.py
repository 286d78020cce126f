"""The layer maker every lowering step shares: plan layers with the spec's conv, norm and
activation, and the small rules (timm's rounding, ECA's kernel, anti-aliasing) several use."""

from __future__ import annotations

import math
from typing import assert_never

from ..choices import ActivationType
from ..errors import SpecError
from ..spec.model import AntiAliasSpec, ConvSpec, NormSpec
from .layers import (
    Act,
    BlurPool,
    Conv,
    EvoNormS0,
    FilterResponseNorm,
    Layer,
    Norm,
    Pool,
    Size,
    StdConv,
    conv_out,
    pool_out,
)


def make_divisible(value: float, divisor: int, min_value: int | None = None, round_limit: float = 0.0) -> int:
    """Round to the nearest multiple of ``divisor`` (at least ``min_value``, else ``divisor``), one
    more step where that loses more than ``1 - round_limit`` of ``value``: timm's make_divisible."""
    rounded = max(min_value or divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < round_limit * value else rounded


def eca_kernel(channels: int, gamma: int = 2, beta: int = 1) -> int:
    """ECA-Net's adaptive kernel size: odd, at least 3, growing with log2(channels)."""
    t = int(abs(math.log(channels, 2) + beta) / gamma)
    return max(t if t % 2 else t + 1, 3)


class LayerBuilder:
    """Small helper that turns (kind, channels) into layers with the spec's norm and activation."""

    def __init__(self, norm: NormSpec, activation: ActivationType, conv: ConvSpec | None = None) -> None:
        self.norm_spec = norm
        self.activation = activation
        self.conv_spec = conv or ConvSpec()

    def conv(
        self,
        path: str,
        cin: int,
        cout: int,
        kernel: int,
        stride: int,
        size: Size,
        *,
        dilation: int = 1,
        groups: int = 1,
        bias: bool = False,
    ) -> Conv:
        padding = dilation * (kernel - 1) // 2
        out = (
            conv_out(size[0], kernel, stride, padding, dilation),
            conv_out(size[1], kernel, stride, padding, dilation),
        )
        if self.conv_spec.type == "weight_standardized":
            if cin // groups * kernel * kernel < 2:
                # One weight per filter standardises to zero (and torch refuses the statistics).
                raise SpecError(
                    f"conv.type: weight_standardized needs at least 2 weights per filter, but {path} has 1"
                    f" ({cin // groups} input channel, {kernel}x{kernel} kernel); use plain convs or more input channels"
                )
            eps = self.conv_spec.resolved_eps
            return StdConv(path, cin, cout, kernel, stride, padding, dilation, groups, bias, out, eps)
        return Conv(path, cin, cout, kernel, stride, padding, dilation, groups, bias, out)

    def norm(self, path: str, channels: int) -> list[Layer]:
        spec = self.norm_spec
        kind = spec.type
        match kind:
            case "none":
                return []
            # Norms with their own nonlinearity start without it; _absorb_activations gives it to them.
            case "evonorm_s0":
                return [EvoNormS0(path, channels, spec.groups, spec.eps, apply_act=False)]
            case "frn":
                return [FilterResponseNorm(path, channels, spec.eps, apply_act=False)]
            case "batch" | "frozen_batch" | "group":
                return [Norm(path, kind, channels, spec.eps, spec.momentum, spec.groups)]
            case _:
                assert_never(kind)

    def act(self, path: str, *, inplace: bool = True) -> Act:
        return Act(path, self.activation, inplace)


def anti_alias_layer(aa: AntiAliasSpec, path: str, channels: int, stride: int, size: Size) -> Layer:
    """timm's ``create_aa``: a ``stride`` x ``stride`` average pool, or a blur pool of ``stride``."""
    if aa.type == "avg":
        out = (pool_out(size[0], stride, stride, 0, False), pool_out(size[1], stride, stride, 0, False))
        return Pool(path, "avg", stride, stride, 0, False, True, out)
    filter_size = aa.filter_size or 3
    padding = ((stride - 1) + (filter_size - 1)) // 2
    if padding >= min(size):
        raise SpecError(
            f"input.size: too small for this network: at {path} a {size[0]}x{size[1]} map is too small for a blur pool's reflect padding of {padding}; use a larger input.size"
        )
    out = (conv_out(size[0], filter_size, stride, padding), conv_out(size[1], filter_size, stride, padding))
    return BlurPool(path, channels, filter_size, stride, padding, out)


def size_after(layers: list[Layer] | tuple[Layer, ...], size: Size) -> Size:
    """The map size after ``layers`` (the last conv or pool among them sets it)."""
    for layer in layers:
        if isinstance(layer, (Conv, Pool, BlurPool)):
            size = layer.out_size
    return size
