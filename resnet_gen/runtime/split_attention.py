"""ResNeSt's split attention (the ``resnest`` block kind's layer), with timm's module names so weights load."""

from __future__ import annotations

import copy

import torch
from torch import nn


class SplitAttention(nn.Module):
    """ResNeSt's split-attention conv (Zhang et al. 2020) with timm's module names (``conv``,
    ``bn0``, ``fc1``, ``bn1``, ``fc2``): ``radix`` splits of a grouped conv, weighted by a softmax
    over the splits (a sigmoid for radix 1) computed from their pooled sum. ``act`` follows
    ``bn0``; a copy of it follows ``bn1``."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int = 1,
        dilation: int = 1,
        groups: int = 1,
        *,
        radix: int,
        attn_channels: int,
        act: nn.Module,
        eps: float = 1e-5,
        momentum: float = 0.1,
    ) -> None:
        super().__init__()
        self.radix = radix
        self.groups = groups
        mid = out_channels * radix
        self.conv = nn.Conv2d(
            in_channels, mid, kernel_size, stride, padding, dilation, groups=groups * radix, bias=False
        )
        self.bn0 = nn.BatchNorm2d(mid, eps=eps, momentum=momentum)
        self.act0 = act
        self.fc1 = nn.Conv2d(out_channels, attn_channels, 1, groups=groups)
        self.bn1 = nn.BatchNorm2d(attn_channels, eps=eps, momentum=momentum)
        self.act1 = copy.deepcopy(act)
        self.fc2 = nn.Conv2d(attn_channels, mid, 1, groups=groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act0(self.bn0(self.conv(x)))
        batch, channels, height, width = x.shape
        splits = x.reshape(batch, self.radix, channels // self.radix, height, width)
        pooled = splits.sum(dim=1).mean((2, 3), keepdim=True)
        logits = self.fc2(self.act1(self.bn1(self.fc1(pooled))))
        if self.radix > 1:
            # Softmax across the splits of each group: logits are laid out (group, split, channel).
            weights = logits.view(batch, self.groups, self.radix, -1).transpose(1, 2).softmax(dim=1)
        else:
            weights = logits.sigmoid()
        weights = weights.reshape(batch, self.radix, channels // self.radix, 1, 1)
        return torch.sum(splits * weights, dim=1)
