"""Networks with a segmentation or multitask head: the backbone, its decoder, and the forward
that feeds the decoder the feature maps it reads."""

from __future__ import annotations

from typing import assert_never

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from ..plan import Plan
from ..plan.heads import DecoderPlan
from ..runtime.decoders import FPNDecoder, MultiTaskOutput, TransposedDecoder, UNetDecoder
from .build import ResNet


def make_decoder(decoder: DecoderPlan) -> nn.Module:
    channels = list(decoder.in_channels)
    match decoder.type:
        case "transposed":
            return TransposedDecoder(channels[-1], list(decoder.channels), decoder.num_classes)
        case "fpn":
            return FPNDecoder(channels, decoder.channels[0], decoder.num_classes)
        case "unet":
            return UNetDecoder(channels, list(decoder.channels), decoder.num_classes)
        case _:
            assert_never(decoder.type)


class SegmentationResNet(ResNet):
    """``forward`` returns the mask ``(N, classes, H, W)`` at the input's size, or with a
    multitask head a :class:`MultiTaskOutput` of class scores and mask. A tap on the last stage
    is taken after the final norm of a pre-activation net (the map the classifier sees)."""

    def __init__(self, plan: Plan) -> None:
        assert plan.decoder is not None
        super().__init__(plan)
        self.decoder = make_decoder(plan.decoder)
        self.multitask = plan.decoder.multitask
        self.taps = [tap.module for tap in plan.decoder.taps]

    def forward(self, x: torch.Tensor) -> torch.Tensor | MultiTaskOutput:  # type: ignore[override]
        size = x.shape[-2:]
        features: list[torch.Tensor] = []
        for name in self.stem:
            x = self._modules[name](x)  # type: ignore[misc]
            if name in self.taps:
                features.append(x)
        for name in self.stages:
            stage = self.get_submodule(name)
            x = checkpoint(stage, x, use_reentrant=False) if self.grad_checkpointing else stage(x)
            if name in self.taps and name != self.stages[-1]:
                features.append(x)
        for name in self.final:
            x = self._modules[name](x)  # type: ignore[misc]
        if self.stages and self.stages[-1] in self.taps:
            features.append(x)
        mask: torch.Tensor = self.decoder(features, size)
        if not self.multitask:
            return mask
        return MultiTaskOutput(self.forward_head(x), mask)
