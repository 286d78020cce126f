"""Lowering of the segmentation decoders (``head.type: segmentation | multitask``).

The decoder's layers carry full module paths under ``decoder.`` and their exact shapes at the
spec's input size, so parameters and MACs come from the plan like every other layer's. The
decoders' norms and activations are batch norm and ReLU, as in the third seed's decoder,
whatever the backbone uses (a segmentation decoder is trained from scratch on top of it).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import assert_never

from ..choices import DecoderType
from ..spec.heads import TRANSPOSED_CHANNELS, decoder_features
from ..spec.model import Spec
from .backbone import feature_taps
from .layers import Act, Conv, ConvTranspose, Layer, Norm, Size, conv_out, conv_transpose_out
from .types import FeatureTap, Plan

DECODER = "decoder"
BN_EPS, BN_MOMENTUM = 1e-5, 0.1


@dataclass(frozen=True)
class DecoderPlan:
    """A segmentation decoder: it reads the feature maps ``taps`` (shallowest first) and returns
    a ``num_classes``-channel mask, resized bilinearly to the input's size.

    ``channels``: the transposed convs' widths (``transposed``), the pyramid's one width
    (``fpn``), or each level's width shallowest first (``unet``). ``multitask``: the network
    returns the classifier's scores and the mask together."""

    type: DecoderType
    taps: tuple[FeatureTap, ...]
    channels: tuple[int, ...]
    num_classes: int
    multitask: bool
    layers: tuple[Layer, ...]
    mask_size: Size  # the mask before its resize to the input (the finest level's size)

    @property
    def in_channels(self) -> tuple[int, ...]:
        return tuple(tap.channels for tap in self.taps)

    @property
    def params(self) -> int:
        return sum(layer.params for layer in self.layers)

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)


def with_decoder(spec: Spec, plan: Plan) -> Plan:
    """``plan`` with the decoder of a segmentation or multitask head (no classifier for segmentation)."""
    head = spec.head
    if head is None or not head.has_decoder:
        return plan
    taps_by_index = {tap.index: tap for tap in feature_taps(plan)}
    taps = tuple(taps_by_index[index] for index in decoder_features(spec))
    kind = head.resolved_decoder.type
    match kind:
        case "transposed":
            lowered = _transposed
        case "fpn":
            lowered = _fpn
        case "unet":
            lowered = _unet
        case _:
            assert_never(kind)
    channels, layers, size = lowered(spec, taps, head.mask_channels)
    decoder = DecoderPlan(kind, taps, channels, head.mask_channels, head.type == "multitask", layers, size)
    if decoder.multitask:
        return replace(plan, decoder=decoder)
    # A mask alone needs no stage past the deepest feature it reads (nor, then, the final norm).
    last = taps[-1].index
    final = plan.final if last == len(plan.stages) else ()
    return replace(plan, decoder=decoder, head=None, stages=plan.stages[:last], final=final)


def _conv(path: str, cin: int, cout: int, kernel: int, size: Size, *, bias: bool = True) -> Conv:
    padding = (kernel - 1) // 2
    out = (conv_out(size[0], kernel, 1, padding), conv_out(size[1], kernel, 1, padding))
    return Conv(path, cin, cout, kernel, 1, padding, 1, 1, bias, out)


def _up(path: str, cin: int, cout: int, kernel: int, stride: int, padding: int, size: Size) -> ConvTranspose:
    out = (conv_transpose_out(size[0], kernel, stride, padding), conv_transpose_out(size[1], kernel, stride, padding))
    return ConvTranspose(path, cin, cout, kernel, stride, padding, True, size, out)


def _norm_act(path: str, first: int, channels: int) -> list[Layer]:
    return [
        Norm(f"{path}.{first}", "batch", channels, BN_EPS, BN_MOMENTUM, 1),
        Act(f"{path}.{first + 1}", "relu"),
    ]


def _transposed(
    spec: Spec, taps: tuple[FeatureTap, ...], classes: int
) -> tuple[tuple[int, ...], tuple[Layer, ...], Size]:
    """The seed's decoder: (4x4 stride-2 transposed conv, BN, ReLU) per width, then a 1x1 conv."""
    assert spec.head is not None
    widths = tuple(spec.head.resolved_decoder.channels or TRANSPOSED_CHANNELS)
    path = f"{DECODER}.layers"
    layers: list[Layer] = []
    channels, size = taps[-1].channels, taps[-1].size
    for width in widths:
        up = _up(f"{path}.{len(layers)}", channels, width, 4, 2, 1, size)
        layers += [up, *_norm_act(path, len(layers) + 1, width)]
        channels, size = width, up.out_size
    layers.append(_conv(f"{path}.{len(layers)}", channels, classes, 1, size))
    return widths, tuple(layers), size


def _fpn(spec: Spec, taps: tuple[FeatureTap, ...], classes: int) -> tuple[tuple[int, ...], tuple[Layer, ...], Size]:
    """torchvision's FeaturePyramidNetwork (lateral 1x1s, 3x3 outputs), then a 1x1 classifier at the finest level."""
    assert spec.head is not None
    width = spec.head.resolved_decoder.resolved_width
    lateral = [_conv(f"{DECODER}.lateral.{i}", tap.channels, width, 1, tap.size) for i, tap in enumerate(taps)]
    smooth = [_conv(f"{DECODER}.smooth.{i}", width, width, 3, tap.size) for i, tap in enumerate(taps)]
    size = taps[0].size
    classifier = _conv(f"{DECODER}.classifier", width, classes, 1, size)
    return (width,), (*lateral, *smooth, classifier), size


def _unet(spec: Spec, taps: tuple[FeatureTap, ...], classes: int) -> tuple[tuple[int, ...], tuple[Layer, ...], Size]:
    """U-Net's expanding path: from the deepest feature, per finer feature a 2x2 stride-2
    transposed conv, concatenation with that feature, two (3x3 conv, BN, ReLU); then a 1x1 conv."""
    assert spec.head is not None
    given = spec.head.resolved_decoder.channels
    widths = tuple(given) if given is not None else tuple(tap.channels for tap in taps[:-1])
    layers: list[Layer] = []
    channels = taps[-1].channels
    size = taps[-1].size
    for level, (skip, width) in enumerate(zip(reversed(taps[:-1]), reversed(widths), strict=True)):
        layers.append(_up(f"{DECODER}.up.{level}", channels, width, 2, 2, 0, size))
        # The up-conv's output is cropped (or padded) to the skip's size: odd sizes round up on the way down.
        block = f"{DECODER}.blocks.{level}"
        size = skip.size
        layers += [_conv(f"{block}.0", width + skip.channels, width, 3, size, bias=False), *_norm_act(block, 1, width)]
        layers += [_conv(f"{block}.3", width, width, 3, size, bias=False), *_norm_act(block, 4, width)]
        channels = width
    layers.append(_conv(f"{DECODER}.classifier", channels, classes, 1, size))
    return widths, tuple(layers), size


def describe(decoder: DecoderPlan) -> str:
    """One line for reports and diagrams: ``fpn 256 over layer1..layer4 -> 21-class mask``."""
    sources = ", ".join(tap.module if tap.index else "stem" for tap in decoder.taps)
    widths = {
        "transposed": "4x4/2 transposed convs " + ", ".join(str(c) for c in decoder.channels),
        "fpn": f"pyramid width {decoder.channels[0]}",
        "unet": "levels " + ", ".join(str(c) for c in decoder.channels),
    }[decoder.type]
    return f"{decoder.type} decoder on {sources}: {widths}; {decoder.num_classes}-class mask at input size"
