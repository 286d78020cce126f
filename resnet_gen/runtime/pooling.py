"""Pools torch has no module for, as timm writes them."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class SamePadAvgPool2d(nn.Module):
    """A stride-1 average pool that keeps the size (timm's AvgPool2dSame): zero-pad by ``kernel - 1``,
    the larger half right and bottom (the zeros count in the average), then pool."""

    def __init__(self, kernel: int) -> None:
        super().__init__()
        self.kernel = kernel
        low = (kernel - 1) // 2
        self.padding = [low, kernel - 1 - low, low, kernel - 1 - low]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(F.pad(x, self.padding), self.kernel, 1)


class BlurPool2d(nn.Module):
    """Anti-aliased downsampling (Zhang 2019, timm's BlurPool2d): reflect-pad, then a fixed binomial
    filter per channel at ``stride``. The filter is a non-persistent buffer, not a weight, so
    state_dicts match timm's."""

    filt: torch.Tensor

    def __init__(self, channels: int, filter_size: int, stride: int, padding: int) -> None:
        super().__init__()
        self.channels = channels
        self.filter_size = filter_size
        self.stride = stride
        self.padding = [padding] * 4
        self.register_buffer("filt", torch.empty(channels, 1, filter_size, filter_size), persistent=False)
        self.init_non_persistent_buffers()

    def init_non_persistent_buffers(self) -> None:
        """(Re)compute the filter, as timm's method of this name: after ``to_empty`` from the meta device."""
        coeffs = torch.tensor([math.comb(self.filter_size - 1, k) for k in range(self.filter_size)], device="cpu")
        coeffs = coeffs.double() / 2 ** (self.filter_size - 1)
        blur = (coeffs[:, None] * coeffs[None, :])[None, None].repeat(self.channels, 1, 1, 1)
        with torch.no_grad():
            self.filt.copy_(blur)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, self.padding, mode="reflect")
        # Every argument spelled out, as pairs: FX quantisation turns this call into a quantised conv.
        stride = (self.stride, self.stride)
        return F.conv2d(x, self.filt, None, stride, (0, 0), (1, 1), self.channels)
