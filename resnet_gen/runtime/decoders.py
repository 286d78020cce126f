"""The segmentation decoders (``head.type: segmentation | multitask``) and the multitask output.

Each decoder takes the feature maps it reads (shallowest first) and the input's spatial size,
and returns the mask resized bilinearly to that size: odd input sizes get a mask of exactly
their size. Norms and activations are batch norm and ReLU, as in the third seed's decoder.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn


class MultiTaskOutput(NamedTuple):
    """A multitask network's output: class scores ``(N, classes)`` and the mask ``(N, mask
    classes, H, W)``. A named tuple: it unpacks as the seed's ``class_output, seg_output``,
    and FX tracing and torch.export take tuples."""

    logits: torch.Tensor
    mask: torch.Tensor


class TransposedDecoder(nn.Module):
    """The third seed's segmentation head on the last feature map: per width, a 4x4 stride-2
    transposed conv, batch norm and ReLU; then a 1x1 conv to the classes."""

    def __init__(self, in_channels: int, channels: list[int], num_classes: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for width in channels:
            layers += [
                nn.ConvTranspose2d(in_channels, width, kernel_size=4, stride=2, padding=1),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
            ]
            in_channels = width
        layers.append(nn.Conv2d(in_channels, num_classes, kernel_size=1))
        self.layers = nn.Sequential(*layers)

    def forward(self, features: list[torch.Tensor], size: list[int]) -> torch.Tensor:
        return F.interpolate(self.layers(features[-1]), size=size, mode="bilinear", align_corners=False)


class FPNDecoder(nn.Module):
    """A feature pyramid as torchvision's FeaturePyramidNetwork (a 1x1 lateral conv per feature,
    top-down nearest upsampling added to each lateral, a 3x3 conv per level); the levels are
    upsampled to the finest and summed, and a 1x1 conv gives the classes."""

    def __init__(self, in_channels: list[int], width: int, num_classes: int) -> None:
        super().__init__()
        self.lateral = nn.ModuleList([nn.Conv2d(channels, width, kernel_size=1) for channels in in_channels])
        self.smooth = nn.ModuleList([nn.Conv2d(width, width, kernel_size=3, padding=1) for _ in in_channels])
        self.classifier = nn.Conv2d(width, num_classes, kernel_size=1)

    def forward(self, features: list[torch.Tensor], size: list[int]) -> torch.Tensor:
        laterals = [conv(features[index]) for index, conv in enumerate(self.lateral)]
        for level in range(len(laterals) - 1, 0, -1):
            top_down = F.interpolate(laterals[level], size=laterals[level - 1].shape[-2:], mode="nearest")
            laterals[level - 1] = laterals[level - 1] + top_down
        levels = [conv(laterals[index]) for index, conv in enumerate(self.smooth)]
        out = levels[0]
        for level in levels[1:]:
            out = out + F.interpolate(level, size=out.shape[-2:], mode="bilinear", align_corners=False)
        return F.interpolate(self.classifier(out), size=size, mode="bilinear", align_corners=False)


class UNetDecoder(nn.Module):
    """U-Net's expanding path: from the deepest feature, per finer one a 2x2 stride-2 transposed
    conv, concatenation with it, and two (3x3 conv, batch norm, ReLU); then a 1x1 conv. The
    up-conv's output is cropped or padded to the skip's size (odd sizes round up going down)."""

    def __init__(self, in_channels: list[int], channels: list[int], num_classes: int) -> None:
        super().__init__()
        self.up = nn.ModuleList()
        self.blocks = nn.ModuleList()
        current = in_channels[-1]
        for skip, width in zip(reversed(in_channels[:-1]), reversed(channels), strict=True):
            self.up.append(nn.ConvTranspose2d(current, width, kernel_size=2, stride=2))
            self.blocks.append(
                nn.Sequential(
                    nn.Conv2d(width + skip, width, kernel_size=3, padding=1, bias=False),
                    nn.BatchNorm2d(width),
                    nn.ReLU(inplace=True),
                    nn.Conv2d(width, width, kernel_size=3, padding=1, bias=False),
                    nn.BatchNorm2d(width),
                    nn.ReLU(inplace=True),
                )
            )
            current = width
        self.classifier = nn.Conv2d(current, num_classes, kernel_size=1)

    def forward(self, features: list[torch.Tensor], size: list[int]) -> torch.Tensor:
        x = features[-1]
        # zip without strict=: TorchScript takes none (the two lists are built side by side).
        for index, (up, block) in enumerate(zip(self.up, self.blocks)):  # noqa: B905
            skip = features[-2 - index]  # the finest skip last
            x = up(x)
            x = F.pad(x, [0, skip.shape[-1] - x.shape[-1], 0, skip.shape[-2] - x.shape[-2]])
            x = block(torch.cat([x, skip], dim=1))
        return F.interpolate(self.classifier(x), size=size, mode="bilinear", align_corners=False)
