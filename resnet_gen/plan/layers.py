"""Plan leaves: one dataclass per kind of layer, each with its module path and exact cost.

``path`` is the dotted module path inside the network (``layer3.4.conv2``), which is also the
state_dict prefix of the layer's tensors. Parameter and MAC counts live here, next to the
shapes they come from, so every back end and the report agree by construction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..choices import ActivationType, NormLayerType, PoolType

Size = tuple[int, int]


def conv_out(size: int, kernel: int, stride: int, padding: int, dilation: int = 1) -> int:
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def pool_out(size: int, kernel: int, stride: int, padding: int, ceil_mode: bool) -> int:
    span = size + 2 * padding - kernel
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    # PyTorch drops a last window that would start entirely inside the right padding.
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


@dataclass(frozen=True)
class Conv:
    path: str
    in_channels: int
    out_channels: int
    kernel: int
    stride: int
    padding: int
    dilation: int
    groups: int
    bias: bool
    out_size: Size

    @property
    def params(self) -> int:
        weights = self.out_channels * (self.in_channels // self.groups) * self.kernel * self.kernel
        return weights + (self.out_channels if self.bias else 0)

    @property
    def macs(self) -> int:
        per_pixel = self.out_channels * (self.in_channels // self.groups) * self.kernel * self.kernel
        return per_pixel * self.out_size[0] * self.out_size[1]


@dataclass(frozen=True)
class Norm:
    path: str
    type: NormLayerType
    channels: int
    eps: float
    momentum: float
    groups: int

    @property
    def params(self) -> int:
        return 0 if self.type == "frozen_batch" else 2 * self.channels

    macs = 0


@dataclass(frozen=True)
class Act:
    """An activation; ``inplace`` False where its input is still read after it (the shortcut of a
    block that starts with an activation)."""

    path: str
    type: ActivationType
    inplace: bool = True
    params = 0
    macs = 0


@dataclass(frozen=True)
class Pool:
    path: str
    type: PoolType
    kernel: int
    stride: int
    padding: int
    ceil_mode: bool
    count_include_pad: bool
    out_size: Size
    params = 0
    macs = 0


@dataclass(frozen=True)
class Dropout:
    path: str
    rate: float
    params = 0
    macs = 0


@dataclass(frozen=True)
class SqueezeExcite:
    """timm's SEModule: global average, 1x1 conv down (bias), act, 1x1 conv up (bias), sigmoid gate."""

    path: str
    channels: int
    reduced: int
    activation: ActivationType

    @property
    def params(self) -> int:
        return 2 * self.channels * self.reduced + self.reduced + self.channels

    @property
    def macs(self) -> int:
        return 2 * self.channels * self.reduced


@dataclass(frozen=True)
class EfficientChannelAttention:
    """ECA: global average, a 1-D conv of ``kernel`` across channels (no bias), sigmoid gate."""

    path: str
    channels: int
    kernel: int

    @property
    def params(self) -> int:
        return self.kernel

    @property
    def macs(self) -> int:
        return self.kernel * self.channels


@dataclass(frozen=True)
class ZeroPadShortcut:
    """Option A: subsample by ``stride`` and append ``out - in`` zero channels. No parameters."""

    path: str
    in_channels: int
    out_channels: int
    stride: int
    params = 0
    macs = 0


@dataclass(frozen=True)
class Linear:
    path: str
    in_features: int
    out_features: int
    bias: bool = True

    @property
    def params(self) -> int:
        return self.in_features * self.out_features + (self.out_features if self.bias else 0)

    @property
    def macs(self) -> int:
        return self.in_features * self.out_features


@dataclass(frozen=True)
class StdConv(Conv):
    """A weight-standardised conv (timm's StdConv2d): each output filter is normalised to zero mean
    and unit variance (``eps`` added to the variance) before convolving. Costs as a plain conv."""

    eps: float = 1e-6


@dataclass(frozen=True)
class EvoNormS0:
    """EvoNorm-S0 as timm's EvoNorm2dS0: ``x * sigmoid(v * x) / group_std(x)``, then ``weight`` and
    ``bias``. Its nonlinearity replaces the activation after it; without one (``apply_act`` False)
    only the affine terms run and there is no ``v``, as in timm."""

    path: str
    channels: int
    groups: int
    eps: float
    apply_act: bool

    @property
    def params(self) -> int:
        return (3 if self.apply_act else 2) * self.channels

    macs = 0


@dataclass(frozen=True)
class FilterResponseNorm:
    """Filter response normalisation with its TLU, as timm's FilterResponseNormTlu2d:
    ``x / sqrt(mean(x^2) + eps)`` over each channel's map, ``weight`` and ``bias``, then
    ``max(x, tau)`` in place of an activation (no ``tau`` when ``apply_act`` is False)."""

    path: str
    channels: int
    eps: float
    apply_act: bool

    @property
    def params(self) -> int:
        return (3 if self.apply_act else 2) * self.channels

    macs = 0


@dataclass(frozen=True)
class ConstantPad:
    """A border of ``padding`` pixels of ``value`` on every side (BiT's stem, before its max pool)."""

    path: str
    padding: int
    value: float
    out_size: Size
    params = 0
    macs = 0


@dataclass(frozen=True)
class BlurPool:
    """Anti-aliased downsampling as timm's BlurPool2d (Zhang 2019): reflect-pad by ``padding``, then
    a fixed binomial ``filter_size`` x ``filter_size`` filter per channel at ``stride``. The filter
    is a constant (a non-persistent buffer), not a parameter; its MACs are those of the depthwise
    conv that applies it, as torch counts them."""

    path: str
    channels: int
    filter_size: int
    stride: int
    padding: int
    out_size: Size
    params = 0

    @property
    def macs(self) -> int:
        return self.channels * self.filter_size * self.filter_size * self.out_size[0] * self.out_size[1]


@dataclass(frozen=True)
class KindLayer:
    """A layer kind that a block kind defines in its own module (ResNeSt's split attention lives
    in ``blocks/resnest.py``). Core layer kinds have one case in each back end's dispatcher; a
    kind layer carries its back ends' parts itself, so its block kind stays in one place:
    :meth:`torch_module` (the live module, importing torch only when called), :meth:`text` (its
    diagram label: category, title, detail, short form), :meth:`report` (its words in the
    ``info`` table) and :meth:`doc` (in the emitted class's docstring). Its template is ``templates/layers/<ClassName>.py.j2`` like every layer's."""

    path: str

    @property
    def params(self) -> int:
        raise NotImplementedError

    @property
    def macs(self) -> int:
        raise NotImplementedError

    def torch_module(self) -> Any:
        raise NotImplementedError

    def text(self) -> tuple[str, str, str, str]:
        raise NotImplementedError

    def report(self) -> list[str]:
        raise NotImplementedError

    def doc(self) -> str:
        """How the emitted block class's docstring names it among the convs ("" if not a conv)."""
        return ""

    # Its counts in the report's conventions (resnet_gen.counting) and its training memory
    # (resnet_gen.memory_estimate): the kind's module knows what its torch module runs.
    def out_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """The shape it writes (channels, height, width), given the shape it reads."""
        raise NotImplementedError

    def counts(self) -> tuple[int, int, int, int]:
        """Its cost as torchvision, fvcore and ptflops count it, and its activations."""
        raise NotImplementedError

    def saved(self) -> tuple[int, int]:
        """What its backward keeps beside its input: elements per sample and per batch (statistics)."""
        raise NotImplementedError

    def buffer_elements(self) -> int:
        """Elements of its buffers (batch-norm statistics)."""
        raise NotImplementedError


@dataclass(frozen=True)
class ConvTranspose:
    """A transposed conv (``nn.ConvTranspose2d``), the decoders' learned upsampling. Each input
    pixel scatters a ``kernel`` x ``kernel`` patch, so its MACs count input pixels, as torch does."""

    path: str
    in_channels: int
    out_channels: int
    kernel: int
    stride: int
    padding: int
    bias: bool
    in_size: Size
    out_size: Size

    @property
    def params(self) -> int:
        return self.in_channels * self.out_channels * self.kernel * self.kernel + (
            self.out_channels if self.bias else 0
        )

    @property
    def macs(self) -> int:
        return self.in_channels * self.out_channels * self.kernel * self.kernel * self.in_size[0] * self.in_size[1]


def conv_transpose_out(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size - 1) * stride - 2 * padding + kernel


Layer = (
    Conv
    | Norm
    | Act
    | Pool
    | Dropout
    | SqueezeExcite
    | EfficientChannelAttention
    | ZeroPadShortcut
    | Linear
    | StdConv
    | EvoNormS0
    | FilterResponseNorm
    | ConstantPad
    | BlurPool
    | KindLayer
    | ConvTranspose
)
