"""Channel attention, with timm's module names so weights load."""

from __future__ import annotations

import torch
from torch import nn


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation (Hu et al. 2018) with timm's module names (``fc1``, ``act``, ``fc2``)."""

    def __init__(self, channels: int, reduced: int, act: nn.Module) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, reduced, kernel_size=1)
        self.act = act
        self.fc2 = nn.Conv2d(reduced, channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = x.mean((2, 3), keepdim=True)
        scale = self.fc2(self.act(self.fc1(scale)))
        return x * torch.sigmoid(scale)


class EfficientChannelAttention(nn.Module):
    """ECA-Net (Wang et al. 2020): a 1-D conv across the pooled channels gates each channel."""

    def __init__(self, kernel: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(1, 1, kernel_size=kernel, padding=(kernel - 1) // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = x.mean((2, 3)).view(x.shape[0], 1, -1)
        scale = self.conv(scale).view(x.shape[0], -1, 1, 1)
        return x * torch.sigmoid(scale)
